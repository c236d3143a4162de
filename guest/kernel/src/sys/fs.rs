//! The file calls that name paths, or move around in files: open, lseek, pread/pwrite,
//! truncate, getdents64, mkdir, rmdir, unlink, rename, readlink, access, chdir, getcwd, umask,
//! chmod, fsync, sendfile. The tree's rules and errors are kcore::fs's; this is the glue: paths
//! copied in (fs::user_path), resolved from the working directory or a dirfd, open files made.

use alloc::vec::Vec;
use core::sync::atomic::Ordering::Relaxed;

use super::fd::{file, files};
use super::user_path;
use super::{pml4, SysResult};
use crate::file::{
    FileKind, InodeFile, OpenFile, O_ACCMODE, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL,
    O_LARGEFILE, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_TRUNC, O_WRONLY,
};
use crate::fs::{self, fs, start_dir, AT_FDCWD};
use crate::percpu::current;
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_to_user, read_u64};
use abi::Errno;
use kcore::fs::{Data, Device, Ino, Kind};

use super::{AT_EMPTY_PATH, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW};
const AT_REMOVEDIR: u64 = 0x200;
const AT_EACCESS: u64 = 0x200;
const CWD: u64 = AT_FDCWD as u64;

// Opening.

pub fn sys_open(f: &mut TrapFrame) -> SysResult {
    open_at(CWD, f.rdi, f.rsi as u32, f.rdx as u32)
}

pub fn sys_openat(f: &mut TrapFrame) -> SysResult {
    open_at(f.rdi, f.rsi, f.rdx as u32, f.r10 as u32)
}

/// creat(path, mode): open with O_CREAT | O_WRONLY | O_TRUNC.
pub fn sys_creat(f: &mut TrapFrame) -> SysResult {
    open_at(CWD, f.rdi, O_CREAT | O_WRONLY | O_TRUNC, f.rsi as u32)
}

fn open_at(dirfd: u64, path: u64, flags: u32, mode: u32) -> SysResult {
    if flags & (O_CREAT | O_DIRECTORY) == O_CREAT | O_DIRECTORY {
        return Err(Errno::EINVAL); // as Linux since 6.4: it cannot make a directory
    }
    let path = user_path(path)?;
    let start = start_dir(dirfd, &path)?;
    let acc = flags & O_ACCMODE;
    let writing = acc != O_RDONLY;
    let umask = current().umask.load(Relaxed);
    let kind = {
        let mut t = fs();
        let last = t.parent_of(start, &path)?;
        if flags & O_CREAT != 0 && last.trailing_slash && last.is_normal() {
            return Err(Errno::EISDIR); // "name/" can only be a directory, which O_CREAT is not
        }
        let ino = match t.lookup_in(last.dir, last.name) {
            Ok(_) if flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL => return Err(Errno::EEXIST),
            Ok(ino) if flags & O_NOFOLLOW != 0 && t.link_target(ino).is_some() => {
                return Err(Errno::ELOOP)
            }
            Ok(ino) => match t.follow(last.dir, ino) {
                Ok(to) => match fs::follow_link(&t, to) {
                    // A /proc/PID/fd link to a pipe: that open file itself (bash's <(cmd),
                    // `> /dev/stdout` in a pipeline).
                    Err(Errno::ENXIO) => {
                        let (pid, fd) = fs::fd_links::link_of(&t, to)?;
                        drop(t);
                        return share_descriptor(pid, fd, flags);
                    }
                    r => r?,
                },
                // A link to nothing, with O_CREAT: the file it names is made (as Linux does).
                Err(Errno::ENOENT) if flags & O_CREAT != 0 => {
                    let target = owned(t.link_target(ino).unwrap_or_default())?;
                    let at = t.parent_of(last.dir, &target)?;
                    t.create_file(at.dir, at.name, mode & !umask & 0o7777)?
                }
                Err(e) => return Err(e),
            },
            Err(Errno::ENOENT) if flags & O_CREAT != 0 => {
                if last.trailing_slash || !last.is_normal() {
                    return Err(Errno::EISDIR);
                }
                t.create_file(last.dir, last.name, mode & !umask & 0o7777)?
            }
            Err(e) => return Err(e),
        };
        let node = t.get(ino)?;
        let is_dir = node.is_dir();
        if last.trailing_slash && !is_dir {
            return Err(Errno::ENOTDIR);
        }
        if flags & O_DIRECTORY != 0 && !is_dir {
            return Err(Errno::ENOTDIR);
        }
        let kind = match &node.kind {
            Kind::Dir(_) if writing || flags & O_CREAT != 0 => return Err(Errno::EISDIR),
            Kind::File(Data::Static(_)) if writing || flags & O_TRUNC != 0 => {
                return Err(Errno::EROFS)
            }
            Kind::File(_) if flags & O_TRUNC != 0 => {
                t.truncate(ino, 0)?;
                None
            }
            Kind::Device(Device::Null) => Some(FileKind::Null),
            Kind::Device(Device::Zero) => Some(FileKind::Zero),
            Kind::Device(d @ (Device::Random | Device::Urandom)) => Some(FileKind::Random(*d)),
            Kind::Generated(_) if writing || flags & O_TRUNC != 0 => return Err(Errno::EACCES),
            Kind::Generated(which) => Some(FileKind::Snapshot(
                crate::karc::Karc::try_new(crate::file::Snapshot {
                    data: crate::procfs::generate(*which, &t)?,
                    pos: core::sync::atomic::AtomicU64::new(0),
                })
                .map_err(|_| Errno::ENOMEM)?,
            )),
            Kind::Device(Device::Console | Device::Tty) => Some(FileKind::Console),
            _ => None,
        };
        kind.unwrap_or_else(|| {
            t.hold(ino);
            FileKind::Inode(InodeFile {
                ino,
                pos: core::sync::atomic::AtomicU64::new(0),
            })
        })
    };
    // The tree's lock is let go: a failure below drops the open file, which releases its inode.
    let kept = O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECTORY;
    let file = OpenFile::new(kind, (flags & kept) | O_LARGEFILE)?;
    let files = files()?;
    let fd = files.0.lock().alloc(file, 0, flags & O_CLOEXEC != 0);
    fd.map(|fd| fd as u64)
}

/// open of a /proc/PID/fd link whose descriptor has no place in the tree (a pipe end): a new
/// descriptor for the same open file, as dup would give (Linux opens the pipe anew, with the
/// access mode asked for: here the end is the one that descriptor is).
fn share_descriptor(pid: u32, fd: u32, flags: u32) -> SysResult {
    let file = crate::fs::fd_links::fd_file(pid, fd)?;
    let files = files()?;
    let fd = files.0.lock().alloc(file, 0, flags & O_CLOEXEC != 0);
    fd.map(|fd| fd as u64)
}

/// The tree's open file behind `fd`: EBADF for none, `other` for a descriptor of another kind.
fn inode_file(fd: u64, other: Errno) -> Result<(crate::karc::Karc<OpenFile>, Ino), Errno> {
    let file = file(fd)?;
    let ino = match &file.kind {
        FileKind::Inode(i) => i.ino,
        _ => return Err(other),
    };
    Ok((file, ino))
}

// Moving in a file.

/// lseek(fd, offset, whence): SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE (the whole
/// file is data, as tmpfs reports it).
pub fn sys_lseek(f: &mut TrapFrame) -> SysResult {
    const SEEK_SET: u64 = 0;
    const SEEK_CUR: u64 = 1;
    const SEEK_END: u64 = 2;
    const SEEK_DATA: u64 = 3;
    const SEEK_HOLE: u64 = 4;
    let file = file(f.rdi)?;
    // The offset to move, the size it is bounded by, and whether it is a directory's.
    let (at, size, is_dir) = match &file.kind {
        FileKind::Inode(i) => {
            let t = fs();
            let n = t.get(i.ino)?;
            (&i.pos, n.size() as i64, n.is_dir())
        }
        FileKind::Snapshot(s) => (&s.pos, s.data.len() as i64, false),
        FileKind::Null | FileKind::Zero | FileKind::Random(_) => return Ok(0),
        _ => return Err(Errno::ESPIPE),
    };
    let off = f.rsi as i64;
    let pos = at.load(Relaxed) as i64;
    let new = match f.rdx {
        SEEK_SET => Some(off),
        SEEK_CUR => pos.checked_add(off),
        SEEK_END if !is_dir => size.checked_add(off),
        SEEK_DATA | SEEK_HOLE if !is_dir => {
            if off < 0 {
                return Err(Errno::EINVAL);
            }
            if off >= size {
                return Err(Errno::ENXIO);
            }
            Some(if f.rdx == SEEK_DATA { off } else { size })
        }
        _ => return Err(Errno::EINVAL),
    };
    match new {
        Some(n) if n >= 0 => {
            at.store(n as u64, Relaxed);
            Ok(n as u64)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// pread64(fd, buf, count, offset): a read at `offset`, the file's own offset untouched.
pub fn sys_pread64(f: &mut TrapFrame) -> SysResult {
    let file = file(f.rdi)?;
    if !file.readable() {
        return Err(Errno::EBADF);
    }
    if (f.r10 as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    match &file.kind {
        FileKind::Inode(i) => fs::io::read_at(i.ino, f.r10, f.rsi, f.rdx),
        FileKind::Null => Ok(0),
        FileKind::Zero => fs::io::read_zeros(f.rsi, f.rdx),
        FileKind::Random(_) => fs::io::read_random(f.rsi, f.rdx),
        FileKind::Snapshot(s) => fs::io::read_snapshot_at(s, f.r10, f.rsi, f.rdx),
        _ => Err(Errno::ESPIPE),
    }
}

/// pwrite64(fd, buf, count, offset). With O_APPEND it appends anyway, as Linux's does.
pub fn sys_pwrite64(f: &mut TrapFrame) -> SysResult {
    let file = file(f.rdi)?;
    if !file.writable() {
        return Err(Errno::EBADF);
    }
    if (f.r10 as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    match &file.kind {
        FileKind::Inode(i) if file.flags.load(Relaxed) & O_APPEND != 0 => {
            let end = fs().get(i.ino)?.size();
            fs::io::write_at(i.ino, end, f.rsi, f.rdx)
        }
        FileKind::Inode(i) => fs::io::write_at(i.ino, f.r10, f.rsi, f.rdx),
        FileKind::Null | FileKind::Zero | FileKind::Random(_) => Ok(f.rdx),
        _ => Err(Errno::ESPIPE),
    }
}

/// ftruncate(fd, length): the descriptor must be open for writing (EINVAL otherwise).
pub fn sys_ftruncate(f: &mut TrapFrame) -> SysResult {
    let (file, ino) = inode_file(f.rdi, Errno::EINVAL)?;
    if (f.rsi as i64) < 0 || !file.writable() {
        return Err(Errno::EINVAL);
    }
    fs().truncate(ino, f.rsi)?;
    Ok(0)
}

/// truncate(path, length).
pub fn sys_truncate(f: &mut TrapFrame) -> SysResult {
    let path = user_path(f.rdi)?;
    if (f.rsi as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let start = start_dir(CWD, &path)?;
    let mut t = fs();
    let ino = fs::resolve(&t, start, &path, true)?;
    t.truncate(ino, f.rsi)?;
    Ok(0)
}

/// fsync(fd), fdatasync(fd): nothing to write back (the tree is all in RAM). EINVAL for what
/// cannot be synced (pipes, the console), as Linux says.
pub fn sys_fsync(f: &mut TrapFrame) -> SysResult {
    match &file(f.rdi)?.kind {
        FileKind::Inode(_) => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

// Directories.

/// getdents64(fd, dirp, count): as many `linux_dirent64` records as fit.
pub fn sys_getdents64(f: &mut TrapFrame) -> SysResult {
    let (_file, ino) = inode_file(f.rdi, Errno::ENOTDIR)?;
    let FileKind::Inode(i) = &_file.kind else {
        return Err(Errno::ENOTDIR);
    };
    let (buf, count) = (f.rsi, f.rdx.min(1 << 20));
    if ino == crate::procfs::root() && i.pos.load(Relaxed) == 0 {
        crate::procfs::refresh(None); // a listing of /proc names the processes there are now
    }
    // Records are built in a kernel buffer and copied out a buffer at a time.
    let mut out = [0u8; 1024];
    let mut used = 0usize;
    let mut written = 0u64;
    let mut pos = i.pos.load(Relaxed);
    let t = fs();
    if !t.get(ino)?.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    while let Some((next, child, name, d_type)) = t.readdir(ino, pos)? {
        let reclen = (19 + name.len() + 1).next_multiple_of(8);
        if written + (used + reclen) as u64 > count {
            if written + used as u64 == 0 {
                return Err(Errno::EINVAL);
            }
            break;
        }
        if used + reclen > out.len() {
            copy_to_user(pml4(), buf + written, &out[..used])?;
            written += used as u64;
            used = 0;
        }
        let r = &mut out[used..used + reclen];
        r[..8].copy_from_slice(&(child as u64 + 1).to_le_bytes());
        r[8..16].copy_from_slice(&next.to_le_bytes());
        r[16..18].copy_from_slice(&(reclen as u16).to_le_bytes());
        r[18] = d_type;
        r[19..19 + name.len()].copy_from_slice(name);
        r[19 + name.len()..].fill(0);
        used += reclen;
        pos = next;
    }
    drop(t);
    copy_to_user(pml4(), buf + written, &out[..used])?;
    i.pos.store(pos, Relaxed);
    Ok(written + used as u64)
}

pub fn sys_mkdir(f: &mut TrapFrame) -> SysResult {
    mkdir_at(CWD, f.rdi, f.rsi as u32)
}

pub fn sys_mkdirat(f: &mut TrapFrame) -> SysResult {
    mkdir_at(f.rdi, f.rsi, f.rdx as u32)
}

fn mkdir_at(dirfd: u64, path: u64, mode: u32) -> SysResult {
    let path = user_path(path)?;
    let start = start_dir(dirfd, &path)?;
    let umask = current().umask.load(Relaxed);
    let mut t = fs();
    let last = t.parent_of(start, &path)?;
    t.mkdir(&last, mode & !umask & 0o7777)?;
    Ok(0)
}

pub fn sys_rmdir(f: &mut TrapFrame) -> SysResult {
    unlink_at(CWD, f.rdi, AT_REMOVEDIR)
}

pub fn sys_unlink(f: &mut TrapFrame) -> SysResult {
    unlink_at(CWD, f.rdi, 0)
}

pub fn sys_unlinkat(f: &mut TrapFrame) -> SysResult {
    unlink_at(f.rdi, f.rsi, f.rdx)
}

fn unlink_at(dirfd: u64, path: u64, flags: u64) -> SysResult {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    let start = start_dir(dirfd, &path)?;
    let mut t = fs();
    let last = t.parent_of(start, &path)?;
    if flags & AT_REMOVEDIR != 0 {
        t.rmdir(&last)?;
    } else {
        t.unlink(&last)?;
    }
    Ok(0)
}

pub fn sys_rename(f: &mut TrapFrame) -> SysResult {
    rename_at(CWD, f.rdi, CWD, f.rsi, 0)
}

pub fn sys_renameat(f: &mut TrapFrame) -> SysResult {
    rename_at(f.rdi, f.rsi, f.rdx, f.r10, 0)
}

pub fn sys_renameat2(f: &mut TrapFrame) -> SysResult {
    rename_at(f.rdi, f.rsi, f.rdx, f.r10, f.r8)
}

fn rename_at(old_dirfd: u64, old: u64, new_dirfd: u64, new: u64, flags: u64) -> SysResult {
    let flags = u32::try_from(flags).map_err(|_| Errno::EINVAL)?;
    let old = user_path(old)?;
    let new = user_path(new)?;
    let old_start = start_dir(old_dirfd, &old)?;
    let new_start = start_dir(new_dirfd, &new)?;
    let mut t = fs();
    let from = t.parent_of(old_start, &old)?;
    let to = t.parent_of(new_start, &new)?;
    t.rename(&from, &to, flags)?;
    Ok(0)
}

/// link(oldpath, newpath): a hard link, one more name for a file (a symbolic link as
/// oldpath is linked itself, as Linux's link does).
pub fn sys_link(f: &mut TrapFrame) -> SysResult {
    link_at(CWD, f.rdi, CWD, f.rsi, 0)
}

/// linkat(olddirfd, oldpath, newdirfd, newpath, flags): AT_SYMLINK_FOLLOW links what a
/// symbolic link names, AT_EMPTY_PATH the file `olddirfd` has open.
pub fn sys_linkat(f: &mut TrapFrame) -> SysResult {
    link_at(f.rdi, f.rsi, f.rdx, f.r10, f.r8)
}

fn link_at(old_dirfd: u64, old: u64, new_dirfd: u64, new: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old = user_path(old)?;
    let new = user_path(new)?;
    let ino = if old.is_empty() && flags & AT_EMPTY_PATH != 0 {
        match &file(old_dirfd)?.kind {
            FileKind::Inode(i) => i.ino,
            _ => return Err(Errno::ENOENT), // no name in the tree to add to
        }
    } else {
        let start = start_dir(old_dirfd, &old)?;
        fs::resolve(&fs(), start, &old, flags & AT_SYMLINK_FOLLOW != 0)?
    };
    let new_start = start_dir(new_dirfd, &new)?;
    let mut t = fs();
    let last = t.parent_of(new_start, &new)?;
    if last.trailing_slash {
        return Err(if t.lookup_in(last.dir, last.name).is_ok() {
            Errno::EEXIST
        } else {
            Errno::ENOENT
        });
    }
    t.link(ino, last.dir, last.name)?;
    Ok(0)
}

/// symlink(target, linkpath).
pub fn sys_symlink(f: &mut TrapFrame) -> SysResult {
    symlink_at(f.rdi, CWD, f.rsi)
}

/// symlinkat(target, newdirfd, linkpath).
pub fn sys_symlinkat(f: &mut TrapFrame) -> SysResult {
    symlink_at(f.rdi, f.rsi, f.rdx)
}

/// A link at `path` (from `dirfd`) to `target`, which is kept as given, unresolved: it may
/// name nothing yet.
fn symlink_at(target: u64, dirfd: u64, path: u64) -> SysResult {
    let target = user_path(target)?;
    let path = user_path(path)?;
    let start = start_dir(dirfd, &path)?;
    let mut t = fs();
    let last = t.parent_of(start, &path)?;
    if !last.is_normal() || last.trailing_slash {
        return Err(Errno::EEXIST); // ".", ".." or "name/": a directory's name, or no name
    }
    t.symlink(last.dir, last.name, &target)?;
    Ok(0)
}

/// A copy of `bytes` (ENOMEM if the heap has no room).
fn owned(bytes: &[u8]) -> Result<Vec<u8>, Errno> {
    let mut v = Vec::new();
    v.try_reserve_exact(bytes.len())
        .map_err(|_| Errno::ENOMEM)?;
    v.extend_from_slice(bytes);
    Ok(v)
}

pub fn sys_readlink(f: &mut TrapFrame) -> SysResult {
    readlink_at(CWD, f.rdi, f.rsi, f.rdx)
}

pub fn sys_readlinkat(f: &mut TrapFrame) -> SysResult {
    readlink_at(f.rdi, f.rsi, f.rdx, f.r10)
}

/// readlink: a symbolic link's target; /proc/self/exe's is the caller's program (" (deleted)"
/// after its name once unlinked, as Linux shows it); anything else is EINVAL.
fn readlink_at(dirfd: u64, path: u64, buf: u64, size: u64) -> SysResult {
    let path = user_path(path)?;
    if size as i64 <= 0 {
        return Err(Errno::EINVAL);
    }
    let start = start_dir(dirfd, &path)?;
    let mut target = Vec::new();
    target
        .try_reserve_exact(fs::PATH_MAX + 10)
        .map_err(|_| Errno::ENOMEM)?;
    target.resize(fs::PATH_MAX + 10, 0);
    let n = {
        let t = fs();
        let ino = fs::resolve(&t, start, &path, false)?;
        if let Some(link) = t.link_target(ino) {
            let n = link.len().min(size as usize);
            target[..n].copy_from_slice(&link[..n]);
            drop(t);
            copy_to_user(pml4(), buf, &target[..n])?;
            return Ok(n as u64);
        }
        match t.get(ino)?.kind {
            Kind::FdLink { pid, fd } => {
                crate::procfs::fd_link_text(&t, pid, fd, &mut target[..fs::PATH_MAX])?
            }
            Kind::SelfExe => {
                let exe = current().exe.load(Relaxed);
                let node = t.get(exe).map_err(|_| Errno::ENOENT)?;
                if node.linked() {
                    t.path_of(exe, &mut target[..fs::PATH_MAX])?
                } else {
                    const DELETED: &[u8] = b" (deleted)";
                    target[..DELETED.len()].copy_from_slice(DELETED);
                    DELETED.len()
                }
            }
            _ => return Err(Errno::EINVAL),
        }
    };
    let n = n.min(size as usize);
    copy_to_user(pml4(), buf, &target[..n])?;
    Ok(n as u64)
}

// Permissions and places.

pub fn sys_access(f: &mut TrapFrame) -> SysResult {
    access_at(CWD, f.rdi, f.rsi, 0)
}

pub fn sys_faccessat(f: &mut TrapFrame) -> SysResult {
    access_at(f.rdi, f.rsi, f.rdx, 0)
}

pub fn sys_faccessat2(f: &mut TrapFrame) -> SysResult {
    access_at(f.rdi, f.rsi, f.rdx, f.r10)
}

/// access: everyone is root here, so R_OK and W_OK pass (W_OK is EROFS for the archive's
/// files) and X_OK needs an x bit (on anything but a directory).
fn access_at(dirfd: u64, path: u64, mode: u64, flags: u64) -> SysResult {
    const W_OK: u64 = 2;
    const X_OK: u64 = 1;
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    let t_start = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        None
    } else {
        Some(start_dir(dirfd, &path)?)
    };
    let Some(start) = t_start else {
        // The descriptor itself: it exists, and whatever it is, root may use it.
        file(dirfd)?;
        return Ok(0);
    };
    let t = fs();
    let ino = fs::resolve(&t, start, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    let node = t.get(ino)?;
    if mode & W_OK != 0 && matches!(node.kind, Kind::File(Data::Static(_))) {
        return Err(Errno::EROFS);
    }
    if mode & X_OK != 0 && !node.is_dir() && node.perm & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    Ok(0)
}

/// The caller and the other threads of its process (which share the working directory and
/// the umask, as pthreads' CLONE_FS shares them on Linux), the dead ones left out.
fn thread_group(
    t: &crate::process::Tasks,
) -> impl Iterator<Item = &'static crate::process::Process> + '_ {
    let tgid = current().tgid();
    t.live()
        .filter(move |p| p.tgid() == tgid && p.state() != crate::process::State::Zombie)
}

/// Makes `ino` the working directory (held by each thread), letting the old one go.
fn set_cwd(ino: Ino) {
    let tasks = crate::process::TASKS.lock();
    let mut t = fs();
    for p in thread_group(&tasks) {
        t.hold(ino);
        let old = p.cwd.swap(ino, Relaxed);
        t.release(old);
    }
}

pub fn sys_chdir(f: &mut TrapFrame) -> SysResult {
    let path = user_path(f.rdi)?;
    let start = start_dir(CWD, &path)?;
    let ino = {
        let t = fs();
        let ino = fs::resolve(&t, start, &path, true)?;
        if !t.get(ino)?.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        ino
    };
    set_cwd(ino);
    Ok(0)
}

pub fn sys_fchdir(f: &mut TrapFrame) -> SysResult {
    let (_file, ino) = inode_file(f.rdi, Errno::ENOTDIR)?;
    if !fs().get(ino)?.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    set_cwd(ino);
    Ok(0)
}

/// getcwd(buf, size): the path with its NUL; its length with the NUL is the raw call's result.
/// ENOENT once the directory was removed, ERANGE when it does not fit.
pub fn sys_getcwd(f: &mut TrapFrame) -> SysResult {
    let mut path = Vec::new();
    path.try_reserve_exact(fs::PATH_MAX)
        .map_err(|_| Errno::ENOMEM)?;
    path.resize(fs::PATH_MAX, 0);
    let n = fs().path_of(current().cwd.load(Relaxed), &mut path[..fs::PATH_MAX - 1])?;
    if n + 1 > f.rsi as usize {
        return Err(Errno::ERANGE);
    }
    path[n] = 0;
    copy_to_user(pml4(), f.rdi, &path[..n + 1])?;
    Ok(n as u64 + 1)
}

/// umask(mask): the old mask.
pub fn sys_umask(f: &mut TrapFrame) -> SysResult {
    let old = current().umask.load(Relaxed);
    let tasks = crate::process::TASKS.lock();
    for p in thread_group(&tasks) {
        p.umask.store(f.rdi as u32 & 0o777, Relaxed);
    }
    Ok(old as u64)
}

pub fn sys_chmod(f: &mut TrapFrame) -> SysResult {
    chmod_at(CWD, f.rdi, f.rsi as u32)
}

pub fn sys_fchmodat(f: &mut TrapFrame) -> SysResult {
    chmod_at(f.rdi, f.rsi, f.rdx as u32)
}

fn chmod_at(dirfd: u64, path: u64, mode: u32) -> SysResult {
    let path = user_path(path)?;
    let start = start_dir(dirfd, &path)?;
    let mut t = fs();
    let ino = fs::resolve(&t, start, &path, true)?;
    t.chmod(ino, mode)?;
    Ok(0)
}

/// fchmod(fd, mode). Pipes and the console have no inode in the tree: nothing to change.
pub fn sys_fchmod(f: &mut TrapFrame) -> SysResult {
    let file = file(f.rdi)?;
    if let FileKind::Inode(i) = &file.kind {
        fs().chmod(i.ino, f.rsi as u32)?;
    }
    Ok(0)
}

/// chown(path, uid, gid), lchown (the link itself), fchown(fd, ...), fchownat(dirfd, path,
/// ..., flags). There is one user, root (as the set*id calls say): an owner of 0, or -1 for
/// "unchanged", is taken (the change time moves); any other is EPERM. EROFS for the
/// archive's files, as for chmod.
pub fn sys_chown(f: &mut TrapFrame) -> SysResult {
    chown_at(CWD, f.rdi, f.rsi, f.rdx, 0)
}

pub fn sys_lchown(f: &mut TrapFrame) -> SysResult {
    chown_at(CWD, f.rdi, f.rsi, f.rdx, AT_SYMLINK_NOFOLLOW)
}

pub fn sys_fchownat(f: &mut TrapFrame) -> SysResult {
    chown_at(f.rdi, f.rsi, f.rdx, f.r10, f.r8)
}

pub fn sys_fchown(f: &mut TrapFrame) -> SysResult {
    fchown(f.rdi, f.rsi, f.rdx)
}

/// A pipe or the console has no inode to change, as fchmod.
fn fchown(fd: u64, uid: u64, gid: u64) -> SysResult {
    let file = file(fd)?;
    root_owner(uid, gid)?;
    if let FileKind::Inode(i) = &file.kind {
        fs().set_times(i.ino, None, None)?;
    }
    Ok(0)
}

fn chown_at(dirfd: u64, path: u64, uid: u64, gid: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        return fchown(dirfd, uid, gid);
    }
    let start = start_dir(dirfd, &path)?;
    let mut t = fs();
    let ino = fs::resolve(&t, start, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    root_owner(uid, gid)?;
    t.set_times(ino, None, None)?;
    Ok(0)
}

/// An owner chown may set: root's 0, or -1 (leave it).
fn root_owner(uid: u64, gid: u64) -> Result<(), Errno> {
    let ok = |id: u64| id as u32 == 0 || id as u32 == u32::MAX;
    if ok(uid) && ok(gid) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// statfs(path, buf), fstatfs(fd, buf): the one file system, the tree in RAM, as a tmpfs
/// reports itself: its blocks are the machine's pages, free as RAM is.
pub fn sys_statfs(f: &mut TrapFrame) -> SysResult {
    let path = user_path(f.rdi)?;
    let start = start_dir(CWD, &path)?;
    fs::resolve(&fs(), start, &path, true)?;
    put_statfs(f.rsi)
}

pub fn sys_fstatfs(f: &mut TrapFrame) -> SysResult {
    file(f.rdi)?;
    put_statfs(f.rsi)
}

fn put_statfs(buf: u64) -> SysResult {
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    const ST_VALID: u64 = 0x20;
    let (total, free) = {
        let fr = crate::memory::frame::FRAMES.lock();
        (fr.total_frames, fr.free_frames)
    };
    // struct statfs (x86-64): type, bsize, blocks, bfree, bavail, files, ffree, fsid (two
    // ints), namelen, frsize, flags, four spare words.
    let words: [u64; 15] = [
        TMPFS_MAGIC,
        4096,
        total,
        free,
        free,
        total,
        free,
        0,
        kcore::fs::NAME_MAX as u64,
        4096,
        ST_VALID,
        0,
        0,
        0,
        0,
    ];
    let mut b = [0u8; 120];
    for (i, w) in words.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    copy_to_user(pml4(), buf, &b)?;
    Ok(0)
}

// Copying between descriptors.

/// sendfile(out_fd, in_fd, offset, count): from a file of the tree to any descriptor, through
/// a kernel buffer. With `offset` (a pointer) the reading starts there and it is updated; the
/// in file's own offset moves only without it. A full pipe takes what fits (EAGAIN if nothing).
pub fn sys_sendfile(f: &mut TrapFrame) -> SysResult {
    const CHUNK: usize = 1024;
    let out = file(f.rdi)?;
    let (input, ino) = inode_file(f.rsi, Errno::EINVAL)?;
    if !input.readable() || !out.writable() {
        return Err(Errno::EBADF);
    }
    if out.flags.load(Relaxed) & O_APPEND != 0 && matches!(out.kind, FileKind::Inode(_)) {
        return Err(Errno::EINVAL);
    }
    let FileKind::Inode(inf) = &input.kind else {
        return Err(Errno::EINVAL);
    };
    if fs().get(ino)?.is_dir() {
        return Err(Errno::EINVAL);
    }
    let mut pos = if f.rdx != 0 {
        let p = read_u64(pml4(), f.rdx)? as i64;
        if p < 0 {
            return Err(Errno::EINVAL);
        }
        p as u64
    } else {
        inf.pos.load(Relaxed)
    };
    let count = f.r10.min(0x7fff_f000);
    let mut done = 0u64;
    let mut buf = [0u8; CHUNK];
    while done < count {
        let want = (count - done).min(CHUNK as u64);
        let mut got = 0usize;
        let _ = fs().read(ino, pos, want, |p: &[u8]| {
            buf[got..got + p.len()].copy_from_slice(p);
            got += p.len();
            Ok::<(), ()>(())
        });
        if got == 0 {
            break;
        }
        let put = match write_kernel(&out, &buf[..got]) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => 0,
        };
        pos += put as u64;
        done += put as u64;
        if put < got {
            break;
        }
    }
    if f.rdx != 0 {
        copy_to_user(pml4(), f.rdx, &pos.to_le_bytes())?;
    } else {
        inf.pos.store(pos, Relaxed);
    }
    Ok(done)
}

/// Writes kernel bytes to an open file (sendfile's other half); how many it took.
fn write_kernel(out: &OpenFile, data: &[u8]) -> Result<usize, Errno> {
    match &out.kind {
        FileKind::Console => {
            crate::console::write_kernel(data);
            Ok(data.len())
        }
        FileKind::Null | FileKind::Zero | FileKind::Random(_) => Ok(data.len()),
        FileKind::PipeWrite(p) => p.write_kernel(data),
        FileKind::PipeRead(_) | FileKind::Snapshot(_) => Err(Errno::EBADF),
        FileKind::Inode(o) => {
            let pos = o.pos.load(Relaxed);
            let mut at = 0;
            let n = fs()
                .write(o.ino, pos, data.len() as u64, |dst: &mut [u8]| {
                    dst.copy_from_slice(&data[at..at + dst.len()]);
                    at += dst.len();
                    Ok::<(), ()>(())
                })
                .map_err(|e| match e {
                    kcore::fs::ReadError::Fs(e) => e,
                    kcore::fs::ReadError::Out(()) => Errno::EFAULT,
                })?;
            o.pos.store(pos + n, Relaxed);
            Ok(n as usize)
        }
    }
}
