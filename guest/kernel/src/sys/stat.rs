//! stat, fstat, lstat, newfstatat and statx: what the tree knows of a file (kcore::fs::Inode),
//! or of the objects outside it (pipes, the console), in Linux's x86-64 layouts.

use core::sync::atomic::Ordering::Relaxed;

use super::fd::file;
use super::user_path;
use super::{pml4, SysResult};
use crate::file::{FileKind, OpenFile};
use crate::fs::{self, fs, start_dir, AT_FDCWD};
use crate::time::tsc_to_realtime_ns;
use crate::trap_frame::TrapFrame;
use crate::uaccess::copy_to_user;
use abi::Errno;
use kcore::fs::{Device, Ino, S_IFCHR};

use super::{AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};
const AT_NO_AUTOMOUNT: u64 = 0x800;
const AT_STATX_SYNC_TYPE: u64 = 0x6000;
const S_IFIFO: u32 = 0o010000;
/// st_dev of the tree (one file system), and of pipes (Linux's pipefs is another).
const TREE_DEV: (u32, u32) = (0, 0x1a);
const PIPE_DEV: (u32, u32) = (0, 0x0e);

/// What every stat call reports.
struct Stat {
    dev: (u32, u32),
    ino: u64,
    mode: u32,
    nlink: u64,
    rdev: (u32, u32),
    size: u64,
    blocks: u64,
    atime_ns: u64,
    mtime_ns: u64,
    ctime_ns: u64,
}

fn stat_ino(ino: Ino) -> Result<Stat, Errno> {
    let t = fs();
    let n = t.get(ino)?;
    let rdev = match n.kind {
        kcore::fs::Kind::Device(d) => d.rdev(),
        _ => (0, 0),
    };
    Ok(Stat {
        dev: TREE_DEV,
        ino: ino as u64 + 1,
        mode: n.mode(),
        nlink: n.nlink(),
        rdev,
        size: n.size(),
        blocks: n.pages_held() * 8,
        atime_ns: tsc_to_realtime_ns(n.atime),
        mtime_ns: tsc_to_realtime_ns(n.mtime),
        ctime_ns: tsc_to_realtime_ns(n.ctime),
    })
}

fn device(d: Device, perm: u32) -> Stat {
    Stat {
        dev: TREE_DEV,
        ino: 0,
        mode: S_IFCHR | perm,
        nlink: 1,
        rdev: d.rdev(),
        size: 0,
        blocks: 0,
        atime_ns: 0,
        mtime_ns: 0,
        ctime_ns: 0,
    }
}

fn stat_file(file: &OpenFile) -> Result<Stat, Errno> {
    Ok(match &file.kind {
        FileKind::Inode(i) => return stat_ino(i.ino),
        FileKind::Console => device(Device::Console, 0o620),
        FileKind::Null => device(Device::Null, 0o666),
        FileKind::Zero => device(Device::Zero, 0o666),
        FileKind::Random(d) => device(*d, 0o666),
        FileKind::Snapshot(_) => Stat {
            mode: kcore::fs::S_IFREG | 0o444,
            ..device(Device::Null, 0)
        },
        FileKind::PipeRead(p) | FileKind::PipeWrite(p) => Stat {
            dev: PIPE_DEV,
            ino: p.ino(),
            mode: S_IFIFO | 0o600,
            nlink: 1,
            rdev: (0, 0),
            size: 0,
            blocks: 0,
            atime_ns: 0,
            mtime_ns: 0,
            ctime_ns: 0,
        },
    })
}

/// glibc's makedev: the 64-bit dev_t of stat.
fn makedev((major, minor): (u32, u32)) -> u64 {
    let (ma, mi) = (major as u64, minor as u64);
    ((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff)
}

/// `struct stat` (x86-64, 144 bytes).
fn encode_stat(s: &Stat) -> [u8; 144] {
    let mut b = [0u8; 144];
    let mut put = |at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(0, makedev(s.dev));
    put(8, s.ino);
    put(16, s.nlink);
    put(24, s.mode as u64); // st_mode, then st_uid = 0
    put(40, makedev(s.rdev));
    put(48, s.size);
    put(56, 4096);
    put(64, s.blocks);
    for (at, ns) in [(72, s.atime_ns), (88, s.mtime_ns), (104, s.ctime_ns)] {
        put(at, ns / 1_000_000_000);
        put(at + 8, ns % 1_000_000_000);
    }
    b
}

/// `struct statx` (256 bytes), every basic field filled.
fn encode_statx(s: &Stat) -> [u8; 256] {
    const STATX_BASIC_STATS: u32 = 0x7ff;
    let mut b = [0u8; 256];
    let put4 =
        |b: &mut [u8; 256], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put4(&mut b, 0, STATX_BASIC_STATS);
    put4(&mut b, 4, 4096);
    put4(&mut b, 16, s.nlink as u32);
    b[28..30].copy_from_slice(&(s.mode as u16).to_le_bytes());
    b[32..40].copy_from_slice(&s.ino.to_le_bytes());
    b[40..48].copy_from_slice(&s.size.to_le_bytes());
    b[48..56].copy_from_slice(&s.blocks.to_le_bytes());
    for (at, ns) in [(64, s.atime_ns), (96, s.ctime_ns), (112, s.mtime_ns)] {
        b[at..at + 8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
        put4(&mut b, at + 8, (ns % 1_000_000_000) as u32);
    }
    put4(&mut b, 128, s.rdev.0);
    put4(&mut b, 132, s.rdev.1);
    put4(&mut b, 136, s.dev.0);
    put4(&mut b, 140, s.dev.1);
    b
}

/// The file a *at call names: `path` from `dirfd`, or with AT_EMPTY_PATH and an empty path,
/// the descriptor itself.
fn stat_at(dirfd: u64, path: u64, flags: u64) -> Result<Stat, Errno> {
    let path = user_path(path)?;
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if dirfd as i32 == AT_FDCWD {
            return stat_ino(crate::percpu::current().cwd.load(Relaxed));
        }
        return stat_file(&*file(dirfd)?);
    }
    let start = start_dir(dirfd, &path)?;
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    let ino = {
        let t = fs();
        match fs::resolve(&t, start, &path, follow) {
            // A /proc/PID/fd link to a pipe: that open file's own stat, as fstat gives it.
            Err(Errno::ENXIO) if follow => {
                let link = fs::resolve(&t, start, &path, false)?;
                let (pid, fd) = fs::fd_links::link_of(&t, link)?;
                drop(t);
                return stat_file(&*crate::fs::fd_links::fd_file(pid, fd)?);
            }
            r => r?,
        }
    };
    stat_ino(ino)
}

pub fn sys_stat(f: &mut TrapFrame) -> SysResult {
    let s = stat_at(AT_FDCWD as u64, f.rdi, 0)?;
    copy_to_user(pml4(), f.rsi, &encode_stat(&s))?;
    Ok(0)
}

pub fn sys_lstat(f: &mut TrapFrame) -> SysResult {
    let s = stat_at(AT_FDCWD as u64, f.rdi, AT_SYMLINK_NOFOLLOW)?;
    copy_to_user(pml4(), f.rsi, &encode_stat(&s))?;
    Ok(0)
}

pub fn sys_fstat(f: &mut TrapFrame) -> SysResult {
    let s = stat_file(&*file(f.rdi)?)?;
    copy_to_user(pml4(), f.rsi, &encode_stat(&s))?;
    Ok(0)
}

/// newfstatat(dirfd, path, statbuf, flags).
pub fn sys_newfstatat(f: &mut TrapFrame) -> SysResult {
    if f.r10 & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let s = stat_at(f.rdi, f.rsi, f.r10)?;
    copy_to_user(pml4(), f.rdx, &encode_stat(&s))?;
    Ok(0)
}

/// statx(dirfd, path, flags, mask, statxbuf): every basic field, whatever `mask` asks.
pub fn sys_statx(f: &mut TrapFrame) -> SysResult {
    const STATX_RESERVED: u64 = 0x8000_0000;
    let allowed = AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE;
    if f.rdx & !allowed != 0
        || f.rdx & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
        || f.r10 & STATX_RESERVED != 0
    {
        return Err(Errno::EINVAL);
    }
    let s = stat_at(f.rdi, f.rsi, f.rdx)?;
    copy_to_user(pml4(), f.r8, &encode_statx(&s))?;
    Ok(0)
}
