//! The file system: one `kcore::fs::Fs` tree behind a lock, its file data in frames of RAM. The
//! tree's logic (paths, directories, errors, pages) is kcore's and tested on the host; this
//! module gives it frames, resolves paths from a process's working directory or a dirfd, and
//! copies paths in from user memory.
//!
//! Layout at boot (boot.rs): the archive's programs in /bin, its other files where their names
//! put them, /dev/{null,zero,console,tty}, /tmp (mode 1777), /proc/self/exe.

pub mod boot;
pub mod fd_links;
pub mod io;

use alloc::vec::Vec;
use core::sync::atomic::Ordering::Relaxed;

use crate::file::FileKind;
use crate::memory::frame::FRAMES;
use crate::memory::{phys_to_virt, PAGE_SIZE};
use crate::percpu::current;
use crate::sync::{IrqGuard, IrqLock};
use crate::uaccess::copy_from_user;
use abi::Errno;
use kcore::fs::{Fs, Ino, Kind, PageStore, PAGE, ROOT};

/// PATH_MAX: a path argument's most bytes, with its NUL.
pub const PATH_MAX: usize = 4096;
/// dirfd meaning "the working directory".
pub const AT_FDCWD: i32 = -100;
/// Frames file data may not take: what the kernel and the programs need to go on (page tables,
/// stacks, the heap) once a file has eaten the rest. A write then fails with ENOSPC.
const RESERVED_FRAMES: u64 = 256;

/// File data's pages: frames, seen through the direct map.
pub struct Frames;

impl PageStore for Frames {
    fn alloc(&mut self, zeroed: bool) -> Option<u64> {
        let mut frames = FRAMES.lock();
        if frames.free_frames <= RESERVED_FRAMES {
            return None;
        }
        if zeroed {
            frames.alloc_zeroed()
        } else {
            frames.alloc_dirty()
        }
    }

    fn free(&mut self, page: u64) {
        FRAMES.lock().release(page);
    }

    fn bytes(&self, page: u64) -> &[u8; PAGE] {
        // SAFETY: `page` is a frame the tree holds (from `alloc`, not yet freed), mapped in the
        // direct map; the tree's lock, held by our caller, makes this its only user.
        unsafe { &*(phys_to_virt(page) as *const [u8; PAGE]) }
    }

    fn bytes_mut(&mut self, page: u64) -> &mut [u8; PAGE] {
        // SAFETY: as in `bytes`, and `&mut self` (under the lock) makes the access exclusive.
        unsafe { &mut *(phys_to_virt(page) as *mut [u8; PAGE]) }
    }
}

static FS: IrqLock<Fs<Frames>> = IrqLock::new("file system", Fs::new(Frames));

/// The tree, locked, its clock set to now (the TSC: for the times changes are stamped with,
/// turned into nanoseconds only by stat, so that a write pays no division). Nothing
/// that takes this lock may be done while holding it: dropping an open file does (it releases
/// its inode), so open files are dropped only after the guard.
pub fn fs() -> IrqGuard<'static, Fs<Frames>> {
    let mut g = FS.lock();
    g.now = crate::cpu::rdtsc();
    g
}

/// A path argument, copied from user memory: up to its NUL, at most PATH_MAX - 1 bytes
/// (ENAMETOOLONG beyond), EFAULT if it runs into memory the caller may not read. Copied in
/// small pieces, so a short path costs a short copy.
pub fn user_path(addr: u64) -> Result<Vec<u8>, Errno> {
    const PIECE: usize = 128;
    let pml4 = current().pml4();
    let mut out = Vec::new();
    let mut chunk = [0u8; PIECE];
    loop {
        let at = addr.checked_add(out.len() as u64).ok_or(Errno::EFAULT)?;
        let in_page = (PAGE_SIZE - (at & (PAGE_SIZE - 1))) as usize;
        let k = in_page.min(PIECE).min(PATH_MAX - out.len());
        copy_from_user(pml4, &mut chunk[..k], at)?;
        let nul = chunk[..k].iter().position(|&b| b == 0);
        let take = nul.unwrap_or(k);
        out.try_reserve(take).map_err(|_| Errno::ENOMEM)?;
        out.extend_from_slice(&chunk[..take]);
        if nul.is_some() {
            return Ok(out);
        }
        if out.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
    }
}

/// Where a path given with `dirfd` starts: the root for an absolute path, else the working
/// directory (AT_FDCWD) or the directory `dirfd` has open (EBADF, ENOTDIR); ENOENT for an
/// empty path.
pub fn start_dir(dirfd: u64, path: &[u8]) -> Result<Ino, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT); // before the dirfd is looked at, as Linux does
    }
    if path.first() == Some(&b'/') {
        return Ok(ROOT);
    }
    let dirfd = dirfd as i32;
    if dirfd == AT_FDCWD {
        return Ok(current().cwd.load(Relaxed));
    }
    let files = current().files().ok_or(Errno::EBADF)?;
    let file = files.get(dirfd as u32 as u64)?;
    match &file.kind {
        FileKind::Inode(f) if fs().get(f.ino)?.is_dir() => Ok(f.ino),
        _ => Err(Errno::ENOTDIR),
    }
}

/// Resolves `path` from `start`, symbolic links followed on the way; with `follow`, the last
/// one too, and /proc/self/exe becomes the caller's program.
pub fn resolve(fs: &Fs<Frames>, start: Ino, path: &[u8], follow: bool) -> Result<Ino, Errno> {
    if follow {
        return follow_link(fs, fs.resolve_follow(start, path)?);
    }
    fs.resolve(start, path)
}

/// /proc/self/exe's target (the caller's program), a /proc/PID/fd link's (the file or device
/// that descriptor is open on), or `ino` itself. (Symbolic links are the tree's to follow:
/// kcore::fs::Fs::follow; these targets depend on who asks and when.) A descriptor open on
/// something with no place in the tree (a pipe) is ENXIO here: open shares that open file.
pub fn follow_link(fs: &Fs<Frames>, ino: Ino) -> Result<Ino, Errno> {
    match fs.get(ino)?.kind {
        Kind::SelfExe => {
            let exe = current().exe.load(Relaxed);
            fs.get(exe)?;
            Ok(exe)
        }
        Kind::FdLink { pid, fd } => match fd_links::fd_target(pid, fd)? {
            fd_links::Target::Inode(file) => fs.get(file).map(|_| file),
            fd_links::Target::Text(path) => fs.resolve(ROOT, path.as_bytes()),
            fd_links::Target::Pipe(_) => Err(Errno::ENXIO),
        },
        _ => Ok(ino),
    }
}

/// One more reference to `ino` (a working directory, an open file).
pub fn hold(ino: Ino) {
    fs().hold(ino);
}

pub fn release(ino: Ino) {
    fs().release(ino);
}
