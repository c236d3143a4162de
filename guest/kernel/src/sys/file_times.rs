//! Setting a file's access and modification times: utimensat (what `touch`, `cp -p`, `tar`
//! and make's tools call), and the older utimes, futimesat and utime, which C libraries may
//! still use. Linux's rules: no times means now, UTIME_NOW and UTIME_OMIT per time, a null
//! path means the descriptor itself, and the change time becomes now.
//!
//! The tree keeps its times as TSC readings (kcore::fs::Fs::now); a time given here is turned
//! into one (time::realtime_ns_to_tsc), and stat turns it back.

use super::fd::file;
use super::user_path;
use super::{pml4, SysResult};
use crate::file::FileKind;
use crate::fs::{self, fs, start_dir, AT_FDCWD};
use crate::trap_frame::TrapFrame;
use crate::uaccess::read_u64;
use abi::Errno;

use super::{AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};
const UTIME_NOW: u64 = (1 << 30) - 1;
const UTIME_OMIT: u64 = (1 << 30) - 2;

/// One of the two times of a call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum When {
    Now,
    Omit,
    /// Nanoseconds since 1970 (a time before it is taken as 1970).
    At(u64),
}

/// utimensat(dirfd, path, times[2], flags).
pub fn sys_utimensat(f: &mut TrapFrame) -> SysResult {
    let (dirfd, path, times, flags) = (f.rdi, f.rsi, f.rdx, f.r10);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let both = if times == 0 {
        [When::Now; 2]
    } else {
        [timespec(times)?, timespec(times.wrapping_add(16))?]
    };
    // Both omitted: nothing to do, and Linux does not even look the file up.
    if both == [When::Omit; 2] {
        return Ok(0);
    }
    set_at(dirfd, path, flags, both)
}

/// utimes(path, times[2]), times as `struct timeval`.
pub fn sys_utimes(f: &mut TrapFrame) -> SysResult {
    set_at(AT_FDCWD as u64, f.rdi, 0, timevals(f.rsi)?)
}

/// futimesat(dirfd, path, times[2]), as utimes from `dirfd`.
pub fn sys_futimesat(f: &mut TrapFrame) -> SysResult {
    set_at(f.rdi, f.rsi, 0, timevals(f.rdx)?)
}

/// utime(path, &{actime, modtime}), in whole seconds.
pub fn sys_utime(f: &mut TrapFrame) -> SysResult {
    let both = if f.rsi == 0 {
        [When::Now; 2]
    } else {
        let secs = |at: u64| read_u64(pml4(), at).map(|s| When::At(seconds(s, 0)));
        [secs(f.rsi)?, secs(f.rsi.wrapping_add(8))?]
    };
    set_at(AT_FDCWD as u64, f.rdi, 0, both)
}

/// A `struct timespec` of utimensat: UTIME_NOW, UTIME_OMIT, or a time (EINVAL for
/// nanoseconds out of range).
fn timespec(at: u64) -> Result<When, Errno> {
    let sec = read_u64(pml4(), at)?;
    let nsec = read_u64(pml4(), at.wrapping_add(8))?;
    match nsec {
        UTIME_NOW => Ok(When::Now),
        UTIME_OMIT => Ok(When::Omit),
        0..=999_999_999 => Ok(When::At(seconds(sec, nsec))),
        _ => Err(Errno::EINVAL),
    }
}

/// The two `struct timeval` of utimes (null: both now).
fn timevals(at: u64) -> Result<[When; 2], Errno> {
    if at == 0 {
        return Ok([When::Now; 2]);
    }
    let one = |at: u64| -> Result<When, Errno> {
        let sec = read_u64(pml4(), at)?;
        let usec = read_u64(pml4(), at.wrapping_add(8))?;
        if usec >= 1_000_000 {
            return Err(Errno::EINVAL);
        }
        Ok(When::At(seconds(sec, usec * 1000)))
    };
    Ok([one(at)?, one(at.wrapping_add(16))?])
}

/// `sec` (signed) and `nsec` as nanoseconds since 1970, 0 for a time before it.
fn seconds(sec: u64, nsec: u64) -> u64 {
    let ns = (sec as i64 as i128) * 1_000_000_000 + nsec as i128;
    ns.clamp(0, u64::MAX as i128) as u64
}

/// Sets the times of the file `path` names from `dirfd` (following /proc/self/exe unless
/// AT_SYMLINK_NOFOLLOW), or of `dirfd`'s own file for a null path or, with AT_EMPTY_PATH, an
/// empty one. A pipe or the console has no inode in the tree: nothing to set, as fchmod.
fn set_at(dirfd: u64, path: u64, flags: u64, both: [When; 2]) -> SysResult {
    let path = if path == 0 {
        None
    } else {
        Some(user_path(path)?)
    };
    let ino = match path {
        Some(p) if !(p.is_empty() && flags & AT_EMPTY_PATH != 0) => {
            let start = start_dir(dirfd, &p)?;
            let t = fs();
            fs::resolve(&t, start, &p, flags & AT_SYMLINK_NOFOLLOW == 0)?
        }
        // The descriptor's own file; AT_FDCWD is the working directory with AT_EMPTY_PATH,
        // and EFAULT with a null path (Linux's answers).
        _ if dirfd as i32 == AT_FDCWD => match path {
            None => return Err(Errno::EFAULT),
            Some(_) => crate::percpu::current()
                .cwd
                .load(core::sync::atomic::Ordering::Relaxed),
        },
        _ => match &file(dirfd)?.kind {
            FileKind::Inode(i) => i.ino,
            _ => return Ok(0),
        },
    };
    let mut t = fs();
    let now = t.now;
    let stamp = |w: When| match w {
        When::Now => Some(now),
        When::Omit => None,
        When::At(ns) => Some(crate::time::realtime_ns_to_tsc(ns)),
    };
    t.set_times(ino, stamp(both[0]), stamp(both[1]))?;
    Ok(0)
}
