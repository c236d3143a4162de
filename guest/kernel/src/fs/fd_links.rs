//! /proc/PID/fd/N's links (kcore's `Kind::FdLink`): what a process's descriptor is open on,
//! which only the kernel can tell. procfs.rs makes the links and answers readlink; following
//! one (fs::follow_link: open, stat, exec through it) is the tree's, so it is here, below both.

use super::Frames;
use crate::file::{FileKind, Files, OpenFile};
use crate::karc::Karc;
use crate::process::TASKS;
use abi::Errno;
use kcore::fs::{Fs, Ino, Kind};

/// What a descriptor is open on, as /proc/PID/fd's links say it.
pub enum Target {
    Text(&'static str),
    /// `pipe:[N]`, N the number fstat gives the pipe as its inode.
    Pipe(u64),
    Inode(Ino),
}

impl Target {
    pub fn of(kind: &FileKind) -> Target {
        match kind {
            FileKind::Console => Target::Text("/dev/console"),
            FileKind::PipeRead(p) | FileKind::PipeWrite(p) => Target::Pipe(p.ino()),
            FileKind::Null => Target::Text("/dev/null"),
            FileKind::Zero => Target::Text("/dev/zero"),
            FileKind::Random(kcore::fs::Device::Random) => Target::Text("/dev/random"),
            FileKind::Random(_) => Target::Text("/dev/urandom"),
            FileKind::Inode(i) => Target::Inode(i.ino),
            FileKind::Snapshot(_) => Target::Text("/proc"),
        }
    }
}

/// Process `pid`'s descriptor table (ENOENT once it is gone). The reference taken is never
/// the table's last while the caller holds the tree's lock (the process holds its own until
/// it has exited, and then it has none to give), so dropping it releases nothing into the tree.
fn table_of(pid: u32) -> Result<Karc<Files>, Errno> {
    TASKS
        .lock()
        .find_process(pid)
        .and_then(|p| p.files())
        .ok_or(Errno::ENOENT)
}

/// Process `pid`'s open file behind descriptor `fd` (ENOENT once it is closed). The caller
/// must not hold the tree's lock when it drops it (the last reference to a file releases its
/// inode).
pub fn fd_file(pid: u32, fd: u32) -> Result<Karc<OpenFile>, Errno> {
    let table = table_of(pid)?;
    let file = table
        .0
        .lock()
        .get(fd as i32)
        .ok_or(Errno::ENOENT)?
        .file
        .clone();
    Ok(file)
}

/// What process `pid`'s descriptor `fd` is open on (ENOENT once it is closed or the process
/// is gone, as Linux's readlink says). Called with the tree's lock held (following a link).
pub fn fd_target(pid: u32, fd: u32) -> Result<Target, Errno> {
    let table = table_of(pid)?;
    let t = table.0.lock();
    let file = t.get(fd as i32).ok_or(Errno::ENOENT)?;
    Ok(Target::of(&file.file.kind))
}

/// The process and descriptor a /proc/PID/fd link `ino` stands for: what open and stat turn
/// to when following it ended in ENXIO (a pipe end has no place in the tree). ENXIO for any
/// other node.
pub fn link_of(tree: &Fs<Frames>, ino: Ino) -> Result<(u32, u32), Errno> {
    match tree.get(ino)?.kind {
        Kind::FdLink { pid, fd } => Ok((pid, fd)),
        _ => Err(Errno::ENXIO),
    }
}
