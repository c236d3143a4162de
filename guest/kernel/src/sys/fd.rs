//! File descriptors: read and write through them, close and duplicate them, make pipes.

use super::{pml4, SysResult};
use crate::console;
use crate::file::{
    Fd, FileKind, Files, ForWrite, OpenFile, Pipe, O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_WRONLY,
};
use crate::karc::Karc;
use crate::percpu::current;
use crate::trap_frame::TrapFrame;
use crate::tty;
use crate::uaccess::{copy_to_user, read_u64};
use abi::Errno;

/// The running process's descriptor table.
pub fn files() -> Result<Karc<Files>, Errno> {
    current().files().ok_or(Errno::EBADF)
}

/// The open file behind `fd`, looked up under the process's resource lock: read and write do
/// this on every call, and cloning the table's Karc for it would cost two atomics more.
pub fn file(fd: u64) -> Result<Karc<OpenFile>, Errno> {
    let res = current().res.lock();
    res.files.as_ref().ok_or(Errno::EBADF)?.get(fd)
}

pub fn read_file(f: &mut TrapFrame, file: &OpenFile, buf: u64, count: u64) -> SysResult {
    if !file.readable() {
        return Err(Errno::EBADF);
    }
    let nonblock = file.nonblocking();
    match &file.kind {
        FileKind::Console => tty::read(f, buf, count, nonblock),
        FileKind::PipeRead(p) => p.read(f, buf, count, nonblock),
        FileKind::PipeWrite(_) => Err(Errno::EBADF),
        FileKind::Inode(i) => crate::fs::io::read(i, buf, count),
        FileKind::Null => Ok(0),
        FileKind::Zero => crate::fs::io::read_zeros(buf, count),
        FileKind::Random(_) => crate::fs::io::read_random(buf, count),
        FileKind::Snapshot(s) => crate::fs::io::read_snapshot(s, buf, count),
    }
}

pub fn write_file(f: &mut TrapFrame, file: &OpenFile, buf: u64, count: u64) -> SysResult {
    if !file.writable() {
        return Err(Errno::EBADF);
    }
    match &file.kind {
        FileKind::Console => console::write_user(buf, count),
        FileKind::PipeWrite(p) => p.write(f, buf, count, file.nonblocking()),
        FileKind::PipeRead(_) => Err(Errno::EBADF),
        FileKind::Inode(i) => crate::fs::io::write(file, i, buf, count),
        FileKind::Null | FileKind::Zero | FileKind::Random(_) => Ok(count),
        FileKind::Snapshot(_) => Err(Errno::EBADF), // opened read-only
    }
}

/// read(fd, buf, count).
pub fn sys_read(f: &mut TrapFrame) -> SysResult {
    let file = file(f.rdi)?;
    read_file(f, &file, f.rsi, f.rdx)
}

/// write(fd, buf, count).
pub fn sys_write(f: &mut TrapFrame) -> SysResult {
    // The console first, outside write_file, whose frame its other arms need: most writes
    // are the console's, and on kvm_pvm that frame is ~30 instructions of a ~300 path.
    let file = {
        let res = current().res.lock();
        match res
            .files
            .as_ref()
            .ok_or(Errno::EBADF)?
            .get_for_write(f.rdi)?
        {
            ForWrite::Console => {
                drop(res);
                return write_console(f);
            }
            ForWrite::File(file) => file,
        }
    };
    write_file(f, &file, f.rsi, f.rdx)
}

/// write(2) to a writable console.
#[inline(always)]
fn write_console(f: &mut TrapFrame) -> SysResult {
    if console_stopped_by_tostop(f)? {
        return Ok(f.rax);
    }
    console::write_user(f.rsi, f.rdx)
}

/// A write of the console from the background with TOSTOP set stops the writer's group with
/// SIGTTOU (tty.rs job_control); then the call is backed up to run again once continued
/// (true). Checked before any byte is written.
fn stopped_by_tostop(f: &mut TrapFrame, file: &OpenFile) -> Result<bool, Errno> {
    Ok(matches!(file.kind, FileKind::Console) && console_stopped_by_tostop(f)?)
}

/// `stopped_by_tostop` for a file known to be the console.
#[inline(always)]
fn console_stopped_by_tostop(f: &mut TrapFrame) -> Result<bool, Errno> {
    if crate::tty::job_control_write()? {
        f.rip -= 2;
        return Ok(true);
    }
    Ok(false)
}

/// The iovec array of readv/writev: (base, len) pairs, at most IOV_MAX of them.
fn iovecs(iov: u64, cnt: u64) -> Result<impl Iterator<Item = Result<(u64, u64), Errno>>, Errno> {
    const IOV_MAX: u64 = 1024;
    if cnt > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    Ok((0..cnt).map(move |i| {
        let at = iov.wrapping_add(i * 16);
        Ok((read_u64(pml4(), at)?, read_u64(pml4(), at.wrapping_add(8))?))
    }))
}

/// readv(fd, iov, iovcnt): like read, into each buffer in turn, stopping at a short one. A
/// blocking readv blocks only for its first buffer (after that it returns what it has).
pub fn sys_readv(f: &mut TrapFrame) -> SysResult {
    let file = file(f.rdi)?;
    let mut total = 0;
    for v in iovecs(f.rsi, f.rdx)? {
        let (base, len) = v?;
        if len == 0 {
            continue;
        }
        if total > 0 && !has_input(&file) {
            break;
        }
        let n = read_file(f, &file, base, len)?;
        if blocked() {
            return Ok(n); // the call's number, for the restart
        }
        total += n;
        if n < len {
            break;
        }
    }
    Ok(total)
}

/// Whether the call just blocked (it left a restart note: it runs again when woken).
fn blocked() -> bool {
    current()
        .restart
        .load(core::sync::atomic::Ordering::Relaxed)
        != crate::signal::state::RESTART_NONE
}

/// Turns a block into a return: `writev` had already written earlier buffers. The task still
/// waits for the pipe; when it wakes it goes on after the call, with what it wrote (the earlier
/// buffers, and this one's part, returned here) as its result.
fn unblock(f: &mut TrapFrame) -> u64 {
    use core::sync::atomic::Ordering::Relaxed;
    f.rip += 2;
    current()
        .restart
        .store(crate::signal::state::RESTART_NONE, Relaxed);
    current().io_progress.swap(0, Relaxed)
}

fn has_input(file: &OpenFile) -> bool {
    match &file.kind {
        FileKind::Console => tty::readable(),
        FileKind::PipeRead(p) => p.available() > 0,
        FileKind::PipeWrite(_) => false,
        FileKind::Inode(_)
        | FileKind::Null
        | FileKind::Zero
        | FileKind::Random(_)
        | FileKind::Snapshot(_) => true,
    }
}

/// writev(fd, iov, iovcnt): like write, of each buffer in turn.
pub fn sys_writev(f: &mut TrapFrame) -> SysResult {
    let file = file(f.rdi)?;
    if stopped_by_tostop(f, &file)? {
        return Ok(f.rax);
    }
    let mut total = 0;
    for v in iovecs(f.rsi, f.rdx)? {
        let (base, len) = v?;
        if len == 0 {
            continue;
        }
        match write_file(f, &file, base, len) {
            Ok(n) if blocked() => {
                // Blocked on a full pipe. With earlier buffers written, those are the result.
                if total > 0 {
                    return Ok(total + unblock(f));
                }
                return Ok(n);
            }
            Ok(n) => {
                total += n;
                if n < len {
                    break;
                }
            }
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

/// close(fd).
pub fn sys_close(f: &mut TrapFrame) -> SysResult {
    let files = files()?;
    let fd = i32::try_from(f.rdi).map_err(|_| Errno::EBADF)?;
    let gone = files.0.lock().take(fd).ok_or(Errno::EBADF)?;
    drop(gone); // outside the table's lock: closing a pipe end wakes its other side
    Ok(0)
}

/// close_range(first, last, flags): every descriptor from `first` to `last` closed (or, with
/// CLOSE_RANGE_CLOEXEC, marked close-on-exec), after CLOSE_RANGE_UNSHARE has made a shared
/// table the caller's own. What Python's subprocess and systemd-style daemons call before exec
/// instead of closing each possible descriptor in turn (1,024 calls without it).
pub fn sys_close_range(f: &mut TrapFrame) -> SysResult {
    const CLOSE_RANGE_UNSHARE: u64 = 2;
    const CLOSE_RANGE_CLOEXEC: u64 = 4;
    let (first, last, flags) = (f.rdi as u32, f.rsi as u32, f.rdx);
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    let me = current();
    if flags & CLOSE_RANGE_UNSHARE != 0 {
        let shared = me.res.lock().files.as_ref().is_some_and(Karc::is_shared);
        if shared {
            let own = Files::new(files()?.0.lock().try_clone()?)?;
            let old = me.res.lock().files.replace(own);
            drop(old);
        }
    }
    let gone = files()?.0.lock().take_range(
        first as usize,
        last as usize,
        flags & CLOSE_RANGE_CLOEXEC != 0,
    );
    drop(gone); // outside the table's lock, as close does
    Ok(0)
}

/// fadvise64(fd, offset, len, advice): the advice is taken and needs nothing (every file's
/// pages are in RAM already). EBADF for no descriptor, ESPIPE for a pipe, EINVAL for an
/// advice Linux does not know (POSIX_FADV_NORMAL .. POSIX_FADV_NOREUSE, 0 to 5).
pub fn sys_fadvise64(f: &mut TrapFrame) -> SysResult {
    let file = file(f.rdi)?;
    if matches!(file.kind, FileKind::PipeRead(_) | FileKind::PipeWrite(_)) {
        return Err(Errno::ESPIPE);
    }
    if f.r10 > 5 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// dup(fd): the lowest free descriptor for the same open file.
pub fn sys_dup(f: &mut TrapFrame) -> SysResult {
    let files = files()?;
    let mut t = files.0.lock();
    let fd = i32::try_from(f.rdi).map_err(|_| Errno::EBADF)?;
    let file = t.get(fd).ok_or(Errno::EBADF)?.file.clone();
    t.alloc(file, 0, false).map(|n| n as u64)
}

fn dup_to(old: u64, new: u64, cloexec: bool, same_is_error: bool) -> SysResult {
    let files = files()?;
    let (old, new) = (
        i32::try_from(old).map_err(|_| Errno::EBADF)?,
        i32::try_from(new).map_err(|_| Errno::EBADF)?,
    );
    let mut t = files.0.lock();
    let file = t.get(old).ok_or(Errno::EBADF)?.file.clone();
    if old == new {
        return if same_is_error {
            Err(Errno::EINVAL)
        } else {
            Ok(new as u64)
        };
    }
    if new < 0 {
        return Err(Errno::EBADF);
    }
    let replaced = t.put(new as usize, Fd { file, cloexec })?;
    drop(t);
    drop(replaced);
    Ok(new as u64)
}

/// dup2(old, new): `new` becomes `old`'s open file (closing what it was).
pub fn sys_dup2(f: &mut TrapFrame) -> SysResult {
    dup_to(f.rdi, f.rsi, false, false)
}

/// dup3(old, new, flags): dup2 with O_CLOEXEC, and `old == new` is EINVAL.
pub fn sys_dup3(f: &mut TrapFrame) -> SysResult {
    if f.rdx as u32 & !O_CLOEXEC != 0 || f.rdx > u32::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    dup_to(f.rdi, f.rsi, f.rdx as u32 & O_CLOEXEC != 0, true)
}

/// fcntl(fd, cmd, arg): F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL, F_SETFL.
pub fn sys_fcntl(f: &mut TrapFrame) -> SysResult {
    const F_DUPFD: u64 = 0;
    const F_GETFD: u64 = 1;
    const F_SETFD: u64 = 2;
    const F_GETFL: u64 = 3;
    const F_SETFL: u64 = 4;
    const F_DUPFD_CLOEXEC: u64 = 1030;
    const FD_CLOEXEC: u64 = 1;
    let files = files()?;
    let fd = i32::try_from(f.rdi).map_err(|_| Errno::EBADF)?;
    let mut t = files.0.lock();
    let entry = t.get_mut(fd).ok_or(Errno::EBADF)?;
    match f.rsi {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = usize::try_from(f.rdx as i32).map_err(|_| Errno::EINVAL)?;
            if min >= crate::file::MAX_FDS {
                return Err(Errno::EINVAL);
            }
            let file = entry.file.clone();
            t.alloc(file, min, f.rsi == F_DUPFD_CLOEXEC)
                .map(|n| n as u64)
        }
        F_GETFD => Ok(if entry.cloexec { FD_CLOEXEC } else { 0 }),
        F_SETFD => {
            entry.cloexec = f.rdx & FD_CLOEXEC != 0;
            Ok(0)
        }
        F_GETFL => Ok(entry.file.flags.load(core::sync::atomic::Ordering::Relaxed) as u64),
        F_SETFL => {
            // Only the status flags change (here O_NONBLOCK and O_APPEND); the access mode stays.
            const SETTABLE: u32 = O_NONBLOCK | crate::file::O_APPEND;
            let fl = &entry.file.flags;
            let old = fl.load(core::sync::atomic::Ordering::Relaxed);
            fl.store(
                (old & !SETTABLE) | (f.rdx as u32 & SETTABLE),
                core::sync::atomic::Ordering::Relaxed,
            );
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// pipe(fds) and pipe2(fds, flags): a new pipe, its read end in fds[0], its write end in fds[1].
pub fn sys_pipe(f: &mut TrapFrame) -> SysResult {
    make_pipe(f.rdi, 0)
}

pub fn sys_pipe2(f: &mut TrapFrame) -> SysResult {
    if f.rsi & !((O_CLOEXEC | O_NONBLOCK) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    make_pipe(f.rdi, f.rsi as u32)
}

fn make_pipe(fds_at: u64, flags: u32) -> SysResult {
    let cloexec = flags & O_CLOEXEC != 0;
    let status = flags & O_NONBLOCK;
    // Check the destination first: a bad pointer must not leave two descriptors behind.
    crate::uaccess::check(pml4(), fds_at, 8, true)?;
    let pipe = Pipe::new()?;
    let r = OpenFile::new(FileKind::PipeRead(pipe.clone()), O_RDONLY | status)?;
    let w = OpenFile::new(FileKind::PipeWrite(pipe), O_WRONLY | status)?;
    let files = files()?;
    let mut t = files.0.lock();
    let rfd = t.alloc(r, 0, cloexec)?;
    let wfd = match t.alloc(w, 0, cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let gone = t.take(rfd);
            drop(t);
            drop(gone);
            return Err(e);
        }
    };
    drop(t);
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&rfd.to_le_bytes());
    out[4..].copy_from_slice(&wfd.to_le_bytes());
    copy_to_user(pml4(), fds_at, &out)?;
    Ok(0)
}

/// ioctl(fd, request, arg): the terminal's requests on the console (tty.rs); FIONREAD on
/// pipes, which are not terminals (ENOTTY for the rest, so isatty is false).
pub fn sys_ioctl(f: &mut TrapFrame) -> SysResult {
    const FIONREAD: u64 = 0x541b;
    const FIONBIO: u64 = 0x5421;
    const FIONCLEX: u64 = 0x5450;
    const FIOCLEX: u64 = 0x5451;
    let file = file(f.rdi)?;
    let req = f.rsi & 0xffff_ffff; // the kernel's `unsigned int cmd`
    match req {
        // The requests Linux answers for every kind of file (do_vfs_ioctl).
        FIONBIO => {
            let mut b = [0u8; 4];
            crate::uaccess::copy_from_user(pml4(), &mut b, f.rdx)?;
            let fl = &file.flags;
            let old = fl.load(core::sync::atomic::Ordering::Relaxed);
            let new = if u32::from_le_bytes(b) != 0 {
                old | O_NONBLOCK
            } else {
                old & !O_NONBLOCK
            };
            fl.store(new, core::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        FIOCLEX | FIONCLEX => {
            let files = files()?;
            let fd = i32::try_from(f.rdi).map_err(|_| Errno::EBADF)?;
            let mut t = files.0.lock();
            t.get_mut(fd).ok_or(Errno::EBADF)?.cloexec = req == FIOCLEX;
            Ok(0)
        }
        _ if matches!(file.kind, FileKind::Console) => {
            if crate::tty::job_control_ioctl(req)? {
                // Stopped by SIGTTOU on the way out; the call runs again when continued.
                f.rip -= 2;
                return Ok(f.rax);
            }
            crate::tty::ioctl(req, f.rdx)
        }
        FIONREAD => {
            let n = match &file.kind {
                FileKind::Console => 0, // answered by the terminal, above
                FileKind::PipeRead(p) => p.available(),
                FileKind::Inode(i) => {
                    let size = crate::fs::fs().get(i.ino)?.size();
                    size.saturating_sub(i.pos.load(core::sync::atomic::Ordering::Relaxed)) as usize
                }
                FileKind::Snapshot(s) => s
                    .data
                    .len()
                    .saturating_sub(s.pos.load(core::sync::atomic::Ordering::Relaxed) as usize),
                FileKind::PipeWrite(_) | FileKind::Null | FileKind::Zero | FileKind::Random(_) => 0,
            } as u32;
            copy_to_user(pml4(), f.rdx, &n.to_le_bytes())?;
            Ok(0)
        }
        _ => Err(Errno::ENOTTY),
    }
}

// Here rather than in file.rs, beside the reads and writes of each kind: what a last close
// does reaches the pipes and the tree, which sit above the open-file objects.
impl Drop for OpenFile {
    /// The last descriptor of this open file is gone: a pipe loses a reader or a writer, a
    /// file of the tree its open reference.
    fn drop(&mut self) {
        match &self.kind {
            FileKind::PipeRead(p) => p.close_end(false),
            FileKind::PipeWrite(p) => p.close_end(true),
            FileKind::Inode(f) => crate::fs::release(f.ino),
            FileKind::Console
            | FileKind::Null
            | FileKind::Zero
            | FileKind::Random(_)
            | FileKind::Snapshot(_) => {}
        }
    }
}
