//! The system-call table: Linux x86-64 numbers, so ordinary static programs run unchanged, plus
//! two calls of our own (`spawn`, 1000, and `bench`, 1001). Each handler reads its arguments from
//! the trap frame and returns `Ok(value)` or `Err(errno)`; every user pointer goes through
//! uaccess.rs.

use crate::console::CONSOLE;
use crate::initrd;
use crate::loader::{self, LoadError, MAX_ARGS};
use crate::memory::paging::USER_END;
use crate::process::{self, SpawnError, State, Wait};
use crate::scheduler::{self, current};
use crate::time;
use crate::trap_entry::TrapFrame;
use crate::uaccess::{copy_str_from_user, copy_to_user, read_u64, read_user_chunks, StrError};
use abi::syscall::nr;
use abi::Errno;

/// What the dispatcher calls: the raw Linux convention, the result or -errno in one register.
pub type Handler = fn(&mut TrapFrame) -> i64;
/// What a system call returns: its value, or the error.
pub type SysResult = Result<u64, Errno>;

const TABLE_LEN: usize = nr::BENCH + 1;

/// `-errno` for an error, the value otherwise. Inlined into each table entry, so a handler that
/// cannot fail (getpid) costs no more than one that returned a raw i64.
#[inline(always)]
fn raw(r: SysResult) -> i64 {
    match r {
        Ok(v) => v as i64,
        Err(e) => e.ret(),
    }
}

/// Builds the table: each `number => handler` entry becomes a `Handler` that converts the
/// handler's `SysResult`; numbers with no entry get ENOSYS.
macro_rules! syscall_table {
    ($($nr:expr => $handler:path),* $(,)?) => {{
        let mut t: [Handler; TABLE_LEN] = [sys_nosys; TABLE_LEN];
        $(
            t[$nr] = {
                fn entry(f: &mut TrapFrame) -> i64 {
                    raw($handler(f))
                }
                entry
            };
        )*
        t
    }};
}

/// Indexed by system-call number.
pub static SYSCALL_TABLE: [Handler; TABLE_LEN] = syscall_table! {
    nr::READ => sys_read,
    nr::WRITE => sys_write,
    nr::BRK => sys_brk,
    nr::IOCTL => sys_ioctl,
    nr::WRITEV => sys_writev,
    nr::SCHED_YIELD => sys_sched_yield,
    nr::NANOSLEEP => sys_nanosleep,
    nr::GETPID => sys_getpid,
    nr::EXIT => sys_exit,
    nr::WAIT4 => sys_wait4,
    nr::GETPPID => sys_getppid,
    nr::ARCH_PRCTL => sys_arch_prctl,
    nr::SET_TID_ADDRESS => sys_set_tid_address,
    nr::CLOCK_GETTIME => sys_clock_gettime,
    nr::EXIT_GROUP => sys_exit, // one thread per process
    nr::SPAWN => sys_spawn,
    nr::BENCH => crate::bench::sys_bench,
};

fn sys_nosys(_f: &mut TrapFrame) -> i64 {
    Errno::ENOSYS.ret()
}

fn pml4() -> u64 {
    current().pml4
}

/// read(fd, buf, count): console input. Returns what the UART has now, 0 if nothing (EOF).
fn sys_read(f: &mut TrapFrame) -> SysResult {
    let (fd, buf, count) = (f.rdi, f.rsi, f.rdx);
    if fd != 0 {
        return Err(Errno::EBADF);
    }
    // The whole buffer must be writable user memory, even if less arrives (as on Linux).
    crate::uaccess::check(pml4(), buf, count, true).map_err(|_| Errno::EFAULT)?;
    let mut tmp = [0u8; 64];
    let mut n = 0;
    let want = (count as usize).min(tmp.len());
    {
        let mut console = CONSOLE.lock();
        while n < want {
            match console.try_read_byte() {
                Some(b) => {
                    tmp[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
    }
    copy_to_user(pml4(), buf, &tmp[..n]).map_err(|_| Errno::EFAULT)?;
    Ok(n as u64)
}

/// Writes `len` bytes at user address `buf` to the console; a bad buffer writes nothing.
fn write_console(buf: u64, len: u64) -> SysResult {
    read_user_chunks::<256>(pml4(), buf, len, |chunk| CONSOLE.lock().write_bytes(chunk))
        .map_err(|_| Errno::EFAULT)?;
    Ok(len)
}

fn sys_write(f: &mut TrapFrame) -> SysResult {
    match f.rdi {
        1 | 2 => write_console(f.rsi, f.rdx),
        _ => Err(Errno::EBADF),
    }
}

fn sys_writev(f: &mut TrapFrame) -> SysResult {
    let (fd, iov, cnt) = (f.rdi, f.rsi, f.rdx);
    if fd != 1 && fd != 2 {
        return Err(Errno::EBADF);
    }
    if cnt > 1024 {
        return Err(Errno::EINVAL);
    }
    let mut total = 0;
    for i in 0..cnt {
        let at = iov + i * 16;
        let (Ok(base), Ok(len)) = (read_u64(pml4(), at), read_u64(pml4(), at.wrapping_add(8)))
        else {
            return Err(Errno::EFAULT);
        };
        total += write_console(base, len)?;
    }
    Ok(total)
}

fn sys_ioctl(_f: &mut TrapFrame) -> SysResult {
    Err(Errno::ENOTTY)
}

/// brk(addr): the heap grows on demand; pages appear when first touched (trap.rs, page fault).
fn sys_brk(f: &mut TrapFrame) -> SysResult {
    const HEAP_MAX: u64 = 256 << 20;
    let p = current();
    let want = f.rdi;
    if want >= p.heap_start && want <= p.heap_start + HEAP_MAX {
        p.brk = want;
    }
    Ok(p.brk)
}

fn sys_sched_yield(_f: &mut TrapFrame) -> SysResult {
    scheduler::yield_now();
    Ok(0)
}

fn sys_nanosleep(f: &mut TrapFrame) -> SysResult {
    let (Ok(sec), Ok(nsec)) = (
        read_u64(pml4(), f.rdi),
        read_u64(pml4(), f.rdi.wrapping_add(8)),
    ) else {
        return Err(Errno::EFAULT);
    };
    if (sec as i64) < 0 || nsec >= 1_000_000_000 {
        return Err(Errno::EINVAL);
    }
    let ns = sec.saturating_mul(1_000_000_000).saturating_add(nsec);
    if ns == 0 {
        return Ok(0);
    }
    let deadline = crate::cpu::rdtsc().saturating_add(time::ns_to_cycles(ns));
    scheduler::sleep_until(deadline);
    Ok(0) // what the task sees when it wakes
}

fn sys_getpid(_f: &mut TrapFrame) -> SysResult {
    Ok(current().pid as u64)
}

fn sys_getppid(_f: &mut TrapFrame) -> SysResult {
    Ok(current().parent as u64)
}

fn sys_exit(f: &mut TrapFrame) -> SysResult {
    process::exit_current(((f.rdi & 0xff) << 8) as u32);
    Ok(0) // goes to a frame nobody will return to
}

/// wait4(pid, status, options, rusage): reap a child that has exited; block until one does.
fn sys_wait4(f: &mut TrapFrame) -> SysResult {
    const WNOHANG: u64 = 1;
    // Linux's valid bits (WNOHANG, WUNTRACED, WCONTINUED, __WNOTHREAD, __WALL, __WCLONE); the
    // others are EINVAL. We have no stopped children and no threads, so only WNOHANG matters.
    const KNOWN: u64 = 0x1 | 0x2 | 0x8 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000;
    let (want, status_ptr, options) = (f.rdi as i64, f.rsi, f.rdx);
    if options & !KNOWN != 0 {
        return Err(Errno::EINVAL);
    }
    let me = current().pid;
    let procs = &process::table().slots;
    let mut children = procs
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.state != State::Unused && p.parent == me && (want <= 0 || p.pid as i64 == want)
        })
        .peekable();
    let have_child = children.peek().is_some();
    if let Some((slot, p)) = children.find(|(_, p)| p.state == State::Zombie) {
        let (pid, status) = (p.pid, p.wait_status);
        if status_ptr != 0 {
            copy_to_user(pml4(), status_ptr, &status.to_le_bytes()).map_err(|_| Errno::EFAULT)?;
        }
        process::reap(slot);
        return Ok(pid as u64);
    }
    if !have_child {
        return Err(Errno::ECHILD);
    }
    if options & WNOHANG != 0 {
        return Ok(0);
    }
    // Sleep until a child exits, then run this call again: back up over the 2-byte `syscall` /
    // `int 0x80` and restore the number (Linux's syscall restart).
    f.rip -= 2;
    scheduler::block(Wait::Child);
    Ok(nr::WAIT4 as u64)
}

fn sys_arch_prctl(f: &mut TrapFrame) -> SysResult {
    const ARCH_SET_FS: u64 = 0x1002;
    const ARCH_GET_FS: u64 = 0x1003;
    match f.rdi {
        ARCH_SET_FS => {
            if f.rsi >= USER_END {
                return Err(Errno::EPERM);
            }
            current().fs_base = f.rsi;
            scheduler::load_fs_base(f.rsi);
            Ok(0)
        }
        ARCH_GET_FS => {
            copy_to_user(pml4(), f.rsi, &current().fs_base.to_le_bytes())
                .map_err(|_| Errno::EFAULT)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

fn sys_set_tid_address(_f: &mut TrapFrame) -> SysResult {
    Ok(current().pid as u64)
}

fn sys_clock_gettime(f: &mut TrapFrame) -> SysResult {
    const REALTIME: u64 = 0;
    const MONOTONIC: u64 = 1;
    const MONOTONIC_RAW: u64 = 4;
    const REALTIME_COARSE: u64 = 5;
    const MONOTONIC_COARSE: u64 = 6;
    const BOOTTIME: u64 = 7;
    let ns = match f.rdi {
        MONOTONIC | MONOTONIC_RAW | MONOTONIC_COARSE | BOOTTIME => time::monotonic_ns(),
        REALTIME | REALTIME_COARSE => time::realtime_ns(),
        _ => return Err(Errno::EINVAL),
    };
    let mut ts = [0u8; 16];
    ts[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    ts[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    copy_to_user(pml4(), f.rsi, &ts).map_err(|_| Errno::EFAULT)?;
    Ok(0)
}

/// spawn(name, argv): start program `name` from the archive as a child of the caller.
/// `argv` is a NULL-terminated array of C strings, or NULL for argv = [name].
fn sys_spawn(f: &mut TrapFrame) -> SysResult {
    let mut name_buf = [0u8; 64];
    let n = match copy_str_from_user(pml4(), &mut name_buf, f.rdi) {
        Ok(n) => n,
        Err(StrError::Fault) => return Err(Errno::EFAULT),
        Err(StrError::TooLong) => return Err(Errno::ENOENT), // longer than any name in the archive
    };
    let name = core::str::from_utf8(&name_buf[..n]).map_err(|_| Errno::ENOENT)?;
    let file = initrd::archive().find(name).ok_or(Errno::ENOENT)?;
    let mut strings = [0u8; 2048];
    let mut bounds = [(0usize, 0usize); MAX_ARGS];
    let mut argc = 0;
    if f.rsi == 0 {
        strings[..n].copy_from_slice(&name_buf[..n]);
        bounds[0] = (0, n);
        argc = 1;
    } else {
        let mut used = 0;
        loop {
            let ptr =
                read_u64(pml4(), f.rsi.wrapping_add(argc as u64 * 8)).map_err(|_| Errno::EFAULT)?;
            if ptr == 0 {
                break;
            }
            if argc == MAX_ARGS || used >= strings.len() {
                return Err(Errno::E2BIG);
            }
            match copy_str_from_user(pml4(), &mut strings[used..], ptr) {
                Ok(len) => {
                    bounds[argc] = (used, used + len);
                    used += len;
                    argc += 1;
                }
                Err(StrError::TooLong) => return Err(Errno::E2BIG),
                Err(StrError::Fault) => return Err(Errno::EFAULT),
            }
        }
    }
    let mut args: [&[u8]; MAX_ARGS] = [&[]; MAX_ARGS];
    for i in 0..argc {
        args[i] = &strings[bounds[i].0..bounds[i].1];
    }
    match loader::spawn(file.data, name, &args[..argc], current().pid) {
        Ok(slot) => {
            scheduler::make_ready(slot);
            Ok(process::table().slots[slot].pid as u64)
        }
        Err(LoadError::Program(_)) => Err(Errno::ENOEXEC),
        Err(LoadError::TooManyArgs) => Err(Errno::E2BIG),
        Err(LoadError::Spawn(SpawnError::NoSlot)) => Err(Errno::EAGAIN),
        Err(LoadError::Spawn(SpawnError::OutOfMemory)) => Err(Errno::ENOMEM),
    }
}
