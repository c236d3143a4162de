//! File-system calls for the small programs (ls, cat, mkdir, rm, wc): open, close, mkdir,
//! unlink, rmdir, stat, and directory listing with getdents64. Paths are byte strings; each is
//! copied with its NUL into a buffer on the stack, since the kernel wants C strings.

use crate::errno::Errno;
use crate::syscall::{nr, syscall2, syscall3, syscall4};

use abi::fs::open;

// open's flags as the C `int` the calls take (the numbers are abi's).
pub const O_RDONLY: i32 = open::O_RDONLY as i32;
pub const O_WRONLY: i32 = open::O_WRONLY as i32;
pub const O_RDWR: i32 = open::O_RDWR as i32;
pub const O_CREAT: i32 = open::O_CREAT as i32;
pub const O_TRUNC: i32 = open::O_TRUNC as i32;
pub const O_APPEND: i32 = open::O_APPEND as i32;
pub const O_DIRECTORY: i32 = open::O_DIRECTORY as i32;
pub use crate::process::O_CLOEXEC;
pub use abi::fs::mode::{S_IFDIR, S_IFMT};
pub use abi::fs::{AT_FDCWD, AT_REMOVEDIR};

/// The longest path we pass (Linux's PATH_MAX, with the NUL).
const PATH_MAX: usize = 4096;

/// Runs `f` with `path` as a NUL-terminated string.
fn with_cpath<T>(path: &[u8], f: impl FnOnce(usize) -> Result<T, Errno>) -> Result<T, Errno> {
    let mut buf = [0u8; PATH_MAX];
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if path.contains(&0) {
        return Err(Errno::EINVAL);
    }
    buf[..path.len()].copy_from_slice(path);
    f(buf.as_ptr() as usize)
}

/// openat(dirfd, path, flags, mode): the new descriptor.
pub fn openat(dirfd: i32, path: &[u8], flags: i32, mode: u32) -> Result<i32, Errno> {
    with_cpath(path, |p| {
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        let r = unsafe { syscall4(nr::OPENAT, dirfd as usize, p, flags as usize, mode as usize) };
        Errno::from_ret(r).map(|fd| fd as i32)
    })
}

pub fn open(path: &[u8], flags: i32, mode: u32) -> Result<i32, Errno> {
    openat(AT_FDCWD, path, flags, mode)
}

pub fn close(fd: i32) -> Result<(), Errno> {
    // SAFETY: close takes no pointer.
    Errno::from_ret(unsafe { crate::syscall::syscall1(nr::CLOSE, fd as usize) }).map(|_| ())
}

/// chdir(path): the working directory (the shell's `cd`).
pub fn chdir(path: &[u8]) -> Result<(), Errno> {
    with_cpath(path, |p| {
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        let r = unsafe { crate::syscall::syscall1(nr::CHDIR, p) };
        Errno::from_ret(r).map(|_| ())
    })
}

pub fn mkdir(path: &[u8], mode: u32) -> Result<(), Errno> {
    with_cpath(path, |p| {
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        let r = unsafe { syscall2(nr::MKDIR, p, mode as usize) };
        Errno::from_ret(r).map(|_| ())
    })
}

/// unlinkat(dirfd, path, flags): a file, or with AT_REMOVEDIR an empty directory.
pub fn unlinkat(dirfd: i32, path: &[u8], flags: i32) -> Result<(), Errno> {
    with_cpath(path, |p| {
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        let r = unsafe { syscall3(nr::UNLINKAT, dirfd as usize, p, flags as usize) };
        Errno::from_ret(r).map(|_| ())
    })
}

/// What `stat` tells: the fields our programs print.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stat {
    pub mode: u32,
    pub nlink: u64,
    pub size: u64,
    pub ino: u64,
}

impl Stat {
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    fn from_raw(b: &[u8; 144]) -> Stat {
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
        Stat {
            ino: u64_at(8),
            nlink: u64_at(16),
            mode: u64_at(24) as u32,
            size: u64_at(48),
        }
    }
}

/// newfstatat(dirfd, path, flags): `stat` with AT_SYMLINK_NOFOLLOW as 0x100 in `flags`.
pub fn statat(dirfd: i32, path: &[u8], flags: i32) -> Result<Stat, Errno> {
    let mut raw = [0u8; 144];
    with_cpath(path, |p| {
        // SAFETY: `p` is a C string and `raw` has room for a `struct stat` (144 bytes).
        let r = unsafe {
            syscall4(
                nr::NEWFSTATAT,
                dirfd as usize,
                p,
                raw.as_mut_ptr() as usize,
                flags as usize,
            )
        };
        Errno::from_ret(r)
    })?;
    Ok(Stat::from_raw(&raw))
}

pub fn stat(path: &[u8]) -> Result<Stat, Errno> {
    statat(AT_FDCWD, path, 0)
}

/// The entries of an open directory, read with getdents64 a buffer at a time.
pub struct DirReader {
    fd: i32,
    buf: [u8; 2048],
    len: usize,
    at: usize,
}

/// One directory entry: its name and d_type (4 a directory, 8 a regular file).
pub struct DirEntry<'a> {
    pub name: &'a [u8],
    pub d_type: u8,
}

impl DirReader {
    pub fn new(fd: i32) -> DirReader {
        DirReader {
            fd,
            buf: [0; 2048],
            len: 0,
            at: 0,
        }
    }

    /// The next entry (`.` and `..` included), None at the end.
    pub fn next_entry(&mut self) -> Result<Option<DirEntry<'_>>, Errno> {
        if self.at >= self.len {
            // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
            let r = unsafe {
                syscall3(
                    nr::GETDENTS64,
                    self.fd as usize,
                    self.buf.as_mut_ptr() as usize,
                    self.buf.len(),
                )
            };
            self.len = Errno::from_ret(r)?;
            self.at = 0;
            if self.len == 0 {
                return Ok(None);
            }
        }
        // struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name[].
        let rec = &self.buf[self.at..self.len];
        let reclen = u16::from_le_bytes([rec[16], rec[17]]) as usize;
        if reclen < 20 || reclen > rec.len() {
            return Err(Errno::EIO);
        }
        let d_type = rec[18];
        let name = &rec[19..reclen];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        self.at += reclen;
        Ok(Some(DirEntry { name, d_type }))
    }
}
