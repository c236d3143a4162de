//! Open files and the per-process descriptor table (xv6's file.c). A descriptor names an open
//! file; an open file (Linux's "open file description") holds what is shared by every
//! descriptor that fork or dup made from one open: the object, the status flags, the offset.
//! The table may itself be shared (threads, later), so it sits behind a lock in a `Karc`.
//!
//! Only the objects are here, below everything that gives them behaviour: what a read, a write
//! or a poll does to each kind, and what its last close does, is in sys/fd.rs and sys/poll.rs,
//! above the pipes (pipe.rs), the terminal (tty.rs) and the tree (fs/) that they reach.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::karc::Karc;
use crate::sync::IrqLock;
use abi::Errno;
use kcore::ring::Ring;

pub use abi::fs::open::*;
/// The most descriptors a process may have (Linux's default RLIMIT_NOFILE).
pub const MAX_FDS: usize = 1024;

pub enum FileKind {
    /// The console: reads take keyboard input, writes go to the screen.
    Console,
    PipeRead(Karc<Pipe>),
    PipeWrite(Karc<Pipe>),
    /// /dev/null: reads end at once, writes vanish.
    Null,
    /// /dev/zero: reads give zeros, writes vanish.
    Zero,
    /// /dev/random or /dev/urandom (which one, for stat): reads give the kernel's random
    /// bytes, writes vanish (Linux mixes them in, and credits them nothing).
    Random(kcore::fs::Device),
    /// A file or directory of the tree (fs/).
    Inode(InodeFile),
    /// A /proc file (procfs.rs): its bytes as they were when it was opened, and the offset.
    /// Behind a pointer like a pipe's, so that the enum keeps the shape the hot paths'
    /// matches were tuned on (an inline Vec let its discriminant share the Vec's spare values,
    /// and every read and write paid ~12 instructions more to tell the kinds apart).
    Snapshot(Karc<Snapshot>),
}

pub struct Snapshot {
    pub data: Vec<u8>,
    pub pos: AtomicU64,
}

/// A pipe: a ring buffer between its reading and its writing ends, each end an open file
/// (pipe.rs does all the rest).
pub struct Pipe {
    pub state: IrqLock<PipeState>,
}

impl Pipe {
    /// The number it shows as its inode (fstat's st_ino, /proc/PID/fd's `pipe:[N]`): from
    /// where it lives, so both ends agree.
    pub fn ino(&self) -> u64 {
        (self as *const Pipe as u64) >> 4 & 0xff_ffff
    }
}

pub struct PipeState {
    pub ring: Ring,
    pub readers: u32,
    pub writers: u32,
    /// Wait queues (wakeup.rs) of blocked readers and writers.
    pub read_q: u32,
    pub write_q: u32,
}

/// An open file or directory of the tree: which, and the offset every descriptor of this open
/// shares (for a directory, the readdir position).
pub struct InodeFile {
    pub ino: kcore::fs::Ino,
    pub pos: AtomicU64,
}

pub struct OpenFile {
    pub kind: FileKind,
    /// The access mode and the status flags F_SETFL may change (O_NONBLOCK, O_APPEND).
    pub flags: AtomicU32,
}

impl OpenFile {
    pub fn new(kind: FileKind, flags: u32) -> Result<Karc<OpenFile>, Errno> {
        Karc::try_new(OpenFile {
            kind,
            flags: AtomicU32::new(flags),
        })
        .map_err(|_| Errno::ENOMEM)
    }

    pub fn nonblocking(&self) -> bool {
        self.flags.load(Relaxed) & O_NONBLOCK != 0
    }

    pub fn readable(&self) -> bool {
        self.flags.load(Relaxed) & O_ACCMODE != O_WRONLY
    }

    pub fn writable(&self) -> bool {
        self.flags.load(Relaxed) & O_ACCMODE != O_RDONLY
    }
}

/// poll's events (Linux's numbers).
pub const POLLIN: u16 = 0x1;
pub const POLLOUT: u16 = 0x4;
pub const POLLERR: u16 = 0x8;
pub const POLLHUP: u16 = 0x10;
pub const POLLNVAL: u16 = 0x20;
pub const POLLRDNORM: u16 = 0x40;
pub const POLLWRNORM: u16 = 0x100;

#[derive(Clone)]
pub struct Fd {
    pub file: Karc<OpenFile>,
    pub cloexec: bool,
}

#[derive(Default)]
pub struct FdTable {
    fds: Vec<Option<Fd>>,
    /// A number no other table state has had (/proc/PID/fd's links are remade only when it
    /// moves): set from `GENERATIONS` by every change.
    generation: u64,
}

/// Where the tables' generations come from: one count for all, so two tables never share one.
static GENERATIONS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

impl FdTable {
    /// Its state's number: equal only if nothing changed in between.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn changed(&mut self) {
        self.generation = GENERATIONS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(&self, fd: i32) -> Option<&Fd> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get(i)?.as_ref())
    }

    pub fn get_mut(&mut self, fd: i32) -> Option<&mut Fd> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get_mut(i)?.as_mut())
    }

    /// Installs `file` at the lowest free descriptor >= `min`.
    pub fn alloc(&mut self, file: Karc<OpenFile>, min: usize, cloexec: bool) -> Result<i32, Errno> {
        let free = (min..MAX_FDS).find(|&i| self.fds.get(i).is_none_or(|f| f.is_none()));
        let i = free.ok_or(Errno::EMFILE)?;
        self.put(i, Fd { file, cloexec })?;
        Ok(i as i32)
    }

    /// Installs `fd` at `i`, returning what was there (dup2): the caller drops it after
    /// letting go of the table's lock.
    pub fn put(&mut self, i: usize, fd: Fd) -> Result<Option<Fd>, Errno> {
        if i >= MAX_FDS {
            return Err(Errno::EBADF);
        }
        if i >= self.fds.len() {
            self.fds
                .try_reserve(i + 1 - self.fds.len())
                .map_err(|_| Errno::ENOMEM)?;
            self.fds.resize(i + 1, None);
        }
        self.changed();
        Ok(self.fds[i].replace(fd))
    }

    /// Takes descriptor `fd` out (close): the caller drops it after letting go of the lock.
    pub fn take(&mut self, fd: i32) -> Option<Fd> {
        let taken = usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get_mut(i)?.take());
        if taken.is_some() {
            self.changed();
        }
        taken
    }

    /// The open descriptors and their files, in order (/proc/PID/fd).
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Fd)> {
        self.fds
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.as_ref().map(|f| (i, f)))
    }

    /// A copy for fork: the same open files, one more descriptor each.
    pub fn try_clone(&self) -> Result<FdTable, Errno> {
        let mut fds = Vec::new();
        fds.try_reserve(self.fds.len()).map_err(|_| Errno::ENOMEM)?;
        fds.extend(self.fds.iter().cloned());
        let mut t = FdTable { fds, generation: 0 };
        t.changed();
        Ok(t)
    }

    /// close_range: takes out the descriptors `first..=last` (to be dropped by the caller), or
    /// with `cloexec` marks them close-on-exec instead (and takes none).
    pub fn take_range(&mut self, first: usize, last: usize, cloexec: bool) -> Vec<Fd> {
        self.changed();
        let mut gone = Vec::new();
        let end = last.saturating_add(1).min(self.fds.len());
        for slot in self.fds.get_mut(first..end).into_iter().flatten() {
            if cloexec {
                if let Some(fd) = slot {
                    fd.cloexec = true;
                }
            } else if slot.is_some() {
                if gone.try_reserve(1).is_ok() {
                    gone.extend(slot.take());
                } else {
                    drop(slot.take()); // as in take_cloexec
                }
            }
        }
        gone
    }

    /// exec: takes out the close-on-exec descriptors (to be dropped by the caller).
    pub fn take_cloexec(&mut self) -> Vec<Fd> {
        self.changed();
        let mut gone = Vec::new();
        for slot in self.fds.iter_mut() {
            if slot.as_ref().is_some_and(|f| f.cloexec) {
                if gone.try_reserve(1).is_ok() {
                    gone.extend(slot.take());
                } else {
                    // No room to defer the drop: drop it here (a pipe end's wake-ups take
                    // other locks than this table's, so this is safe, only less tidy).
                    drop(slot.take());
                }
            }
        }
        gone
    }
}

/// A process's descriptor table.
pub struct Files(pub IrqLock<FdTable>);

impl Files {
    pub fn new(table: FdTable) -> Result<Karc<Files>, Errno> {
        Karc::try_new(Files(IrqLock::new("descriptor table", table))).map_err(|_| Errno::ENOMEM)
    }

    /// The open file behind `fd`, or EBADF.
    pub fn get(&self, fd: u64) -> Result<Karc<OpenFile>, Errno> {
        let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.0
            .lock()
            .get(fd)
            .map(|f| f.file.clone())
            .ok_or(Errno::EBADF)
    }

    /// What write(2) needs of `fd`: a writable console needs nothing of its open file, so
    /// none is held (two atomic operations fewer on the most common write); anything else
    /// is the open file, for `write_file` to judge.
    pub fn get_for_write(&self, fd: u64) -> Result<ForWrite, Errno> {
        let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
        let table = self.0.lock();
        let file = &table.get(fd).ok_or(Errno::EBADF)?.file;
        Ok(match file.kind {
            FileKind::Console if file.writable() => ForWrite::Console,
            _ => ForWrite::File(file.clone()),
        })
    }
}

/// `Files::get_for_write`'s answer.
pub enum ForWrite {
    Console,
    File(Karc<OpenFile>),
}

/// The first three descriptors of the processes started at boot: the console, opened once
/// for reading and writing, as descriptors 0, 1 and 2 (as Linux gives init /dev/console).
pub fn console_table() -> Result<FdTable, Errno> {
    let mut t = FdTable::default();
    let console = OpenFile::new(FileKind::Console, O_RDWR)?;
    for fd in 0..3 {
        t.put(
            fd,
            Fd {
                file: console.clone(),
                cloexec: false,
            },
        )?;
    }
    Ok(t)
}
