//! Reading and writing the tree's files from and to user memory: a page-sized piece at a time
//! straight between the file's page and the program's buffer (no bounce buffer, no per-byte
//! loop in ring 0).

use core::sync::atomic::Ordering::Relaxed;

use super::fs;
use crate::file::{InodeFile, OpenFile, O_APPEND};
use crate::percpu::current;
use crate::sys_result::SysResult;
use crate::uaccess::{copy_from_user, copy_to_user, Fault};
use abi::Errno;
use kcore::fs::{Ino, ReadError};

fn errno(e: ReadError<Fault>) -> Errno {
    match e {
        ReadError::Fs(e) => e,
        ReadError::Out(_) => Errno::EFAULT,
    }
}

/// pread: `count` bytes of `ino` at `off` into user `buf`; how many (0 at end-of-file).
pub fn read_at(ino: Ino, off: u64, buf: u64, count: u64) -> SysResult {
    let pml4 = current().pml4();
    let mut at = buf;
    fs().read(ino, off, count, |piece: &[u8]| {
        copy_to_user(pml4, at, piece)?;
        at += piece.len() as u64;
        Ok(())
    })
    .map_err(errno)
}

/// pwrite: `count` bytes from user `buf` into `ino` at `off`.
pub fn write_at(ino: Ino, off: u64, buf: u64, count: u64) -> SysResult {
    let pml4 = current().pml4();
    let mut at = buf;
    fs().write(ino, off, count, |dst: &mut [u8]| {
        copy_from_user(pml4, dst, at)?;
        at += dst.len() as u64;
        Ok(())
    })
    .map_err(errno)
}

/// read(2) at the open file's offset, which moves on by what was read.
pub fn read(f: &InodeFile, buf: u64, count: u64) -> SysResult {
    let pos = f.pos.load(Relaxed);
    let n = read_at(f.ino, pos, buf, count)?;
    f.pos.store(pos + n, Relaxed);
    Ok(n)
}

/// write(2) at the offset, or at the end with O_APPEND (the end as it is now: one lock).
pub fn write(file: &OpenFile, f: &InodeFile, buf: u64, count: u64) -> SysResult {
    let append = file.flags.load(Relaxed) & O_APPEND != 0;
    let pml4 = current().pml4();
    let mut at = buf;
    let mut t = fs();
    let pos = if append {
        t.get(f.ino)?.size()
    } else {
        f.pos.load(Relaxed)
    };
    let n = t
        .write(f.ino, pos, count, |dst: &mut [u8]| {
            copy_from_user(pml4, dst, at)?;
            at += dst.len() as u64;
            Ok(())
        })
        .map_err(errno)?;
    f.pos.store(pos + n, Relaxed);
    Ok(n)
}

/// read(2) of /dev/zero: zeros into the whole buffer.
/// A read of /dev/random or /dev/urandom: `count` random bytes (at most Linux's MAX_RW_COUNT a
/// call), short if the buffer runs into a missing page.
pub fn read_random(buf: u64, count: u64) -> SysResult {
    const MAX_RW_COUNT: u64 = (i32::MAX as u64) & !(crate::memory::PAGE_SIZE - 1);
    crate::random::fill_user(current().pml4(), buf, count.min(MAX_RW_COUNT))
}

/// A read of a /proc file's snapshot at its offset, which moves on.
pub fn read_snapshot(s: &crate::file::Snapshot, buf: u64, count: u64) -> SysResult {
    let n = read_snapshot_at(s, s.pos.load(Relaxed), buf, count)?;
    s.pos.fetch_add(n, Relaxed);
    Ok(n)
}

/// pread of a /proc file's snapshot: up to `count` of its bytes from `at`.
pub fn read_snapshot_at(s: &crate::file::Snapshot, at: u64, buf: u64, count: u64) -> SysResult {
    let from = (at as usize).min(s.data.len());
    let n = (s.data.len() - from).min(count as usize);
    copy_to_user(current().pml4(), buf, &s.data[from..from + n])?;
    Ok(n as u64)
}

pub fn read_zeros(buf: u64, count: u64) -> SysResult {
    static ZEROS: [u8; 4096] = [0; 4096];
    let pml4 = current().pml4();
    crate::uaccess::check(pml4, buf, count, true)?;
    let mut done = 0;
    while done < count {
        let n = (count - done).min(ZEROS.len() as u64);
        copy_to_user(pml4, buf + done, &ZEROS[..n as usize])?;
        done += n;
    }
    Ok(count)
}
