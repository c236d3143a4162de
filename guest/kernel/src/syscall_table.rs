//! The system-call table: Linux x86-64 numbers, so ordinary static programs run unchanged, plus
//! one call of our own (`spawn`, 1000). Each handler reads its arguments from the trap frame and
//! returns the result or -errno; every user pointer goes through uaccess.rs.

use crate::console::CONSOLE;
use crate::initrd;
use crate::loader::{self, LoadError, MAX_ARGS};
use crate::memory::paging::USER_END;
use crate::process::{self, SpawnError, State, Wait};
use crate::scheduler::{self, current};
use crate::syscall::*;
use crate::time;
use crate::trap_entry::TrapFrame;
use crate::uaccess::{copy_str_from_user, copy_to_user, read_u64, read_user_chunks, StrError};

pub type Handler = fn(&mut TrapFrame) -> i64;

pub const SYS_SPAWN: usize = 1000;
const TABLE_LEN: usize = crate::bench::SYS_BENCH + 1;

/// Indexed by system-call number; numbers we do not implement hold `sys_nosys`.
pub static SYSCALL_TABLE: [Handler; TABLE_LEN] = {
    let mut t: [Handler; TABLE_LEN] = [sys_nosys; TABLE_LEN];
    t[0] = sys_read;
    t[1] = sys_write;
    t[12] = sys_brk;
    t[16] = sys_ioctl;
    t[20] = sys_writev;
    t[24] = sys_sched_yield;
    t[35] = sys_nanosleep;
    t[39] = sys_getpid;
    t[60] = sys_exit;
    t[61] = sys_wait4;
    t[110] = sys_getppid;
    t[158] = sys_arch_prctl;
    t[218] = sys_set_tid_address;
    t[228] = sys_clock_gettime;
    t[231] = sys_exit; // exit_group: one thread per process
    t[SYS_SPAWN] = sys_spawn;
    t[crate::bench::SYS_BENCH] = crate::bench::sys_bench;
    t
};

fn sys_nosys(_f: &mut TrapFrame) -> i64 {
    -ENOSYS
}

fn pml4() -> u64 {
    current().pml4
}

/// read(fd, buf, count): console input. Returns what the UART has now, 0 if nothing (EOF).
fn sys_read(f: &mut TrapFrame) -> i64 {
    let (fd, buf, count) = (f.rdi, f.rsi, f.rdx);
    if fd != 0 {
        return -EBADF;
    }
    // The whole buffer must be writable user memory, even if less arrives (as on Linux).
    if crate::uaccess::check(pml4(), buf, count, true).is_err() {
        return -EFAULT;
    }
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
    match copy_to_user(pml4(), buf, &tmp[..n]) {
        Ok(()) => n as i64,
        Err(_) => -EFAULT,
    }
}

/// Writes `len` bytes at user address `buf` to the console, through a small bounce buffer.
/// Writes `len` bytes at user address `buf` to the console; a bad buffer writes nothing.
fn write_console(buf: u64, len: u64) -> i64 {
    match read_user_chunks::<256>(pml4(), buf, len, |chunk| CONSOLE.lock().write_bytes(chunk)) {
        Ok(()) => len as i64,
        Err(_) => -EFAULT,
    }
}

fn sys_write(f: &mut TrapFrame) -> i64 {
    match f.rdi {
        1 | 2 => write_console(f.rsi, f.rdx),
        _ => -EBADF,
    }
}

fn sys_writev(f: &mut TrapFrame) -> i64 {
    let (fd, iov, cnt) = (f.rdi, f.rsi, f.rdx);
    if fd != 1 && fd != 2 {
        return -EBADF;
    }
    if cnt > 1024 {
        return -EINVAL;
    }
    let mut total = 0i64;
    for i in 0..cnt {
        let at = iov + i * 16;
        let (Ok(base), Ok(len)) = (read_u64(pml4(), at), read_u64(pml4(), at.wrapping_add(8)))
        else {
            return -EFAULT;
        };
        let r = write_console(base, len);
        if r < 0 {
            return r;
        }
        total += r;
    }
    total
}

fn sys_ioctl(_f: &mut TrapFrame) -> i64 {
    -ENOTTY
}

/// brk(addr): the heap grows on demand; pages appear when first touched (trap.rs, page fault).
fn sys_brk(f: &mut TrapFrame) -> i64 {
    const HEAP_MAX: u64 = 256 << 20;
    let p = current();
    let want = f.rdi;
    if want >= p.heap_start && want <= p.heap_start + HEAP_MAX {
        p.brk = want;
    }
    p.brk as i64
}

fn sys_sched_yield(_f: &mut TrapFrame) -> i64 {
    scheduler::yield_now();
    0
}

fn sys_nanosleep(f: &mut TrapFrame) -> i64 {
    let (Ok(sec), Ok(nsec)) = (
        read_u64(pml4(), f.rdi),
        read_u64(pml4(), f.rdi.wrapping_add(8)),
    ) else {
        return -EFAULT;
    };
    if (sec as i64) < 0 || nsec >= 1_000_000_000 {
        return -EINVAL;
    }
    let ns = sec.saturating_mul(1_000_000_000).saturating_add(nsec);
    if ns == 0 {
        return 0;
    }
    let deadline = crate::cpu::rdtsc().saturating_add(time::ns_to_cycles(ns));
    scheduler::sleep_until(deadline);
    0 // what the task sees when it wakes
}

fn sys_getpid(_f: &mut TrapFrame) -> i64 {
    current().pid as i64
}

fn sys_getppid(_f: &mut TrapFrame) -> i64 {
    current().parent as i64
}

fn sys_exit(f: &mut TrapFrame) -> i64 {
    process::exit_current(((f.rdi & 0xff) << 8) as u32);
    0 // goes to a frame nobody will return to
}

/// wait4(pid, status, options, rusage): reap a child that has exited; block until one does.
fn sys_wait4(f: &mut TrapFrame) -> i64 {
    const WNOHANG: u64 = 1;
    // Linux's valid bits (WNOHANG, WUNTRACED, WCONTINUED, __WNOTHREAD, __WALL, __WCLONE); the
    // others are -EINVAL. We have no stopped children and no threads, so only WNOHANG matters.
    const KNOWN: u64 = 0x1 | 0x2 | 0x8 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000;
    let (want, status_ptr, options) = (f.rdi as i64, f.rsi, f.rdx);
    if options & !KNOWN != 0 {
        return -EINVAL;
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
        if status_ptr != 0 && copy_to_user(pml4(), status_ptr, &status.to_le_bytes()).is_err() {
            return -EFAULT;
        }
        process::reap(slot);
        return pid as i64;
    }
    if !have_child {
        return -ECHILD;
    }
    if options & WNOHANG != 0 {
        return 0;
    }
    // Sleep until a child exits, then run this call again: back up over the 2-byte `syscall` /
    // `int 0x80` and restore the number (Linux's syscall restart).
    f.rip -= 2;
    scheduler::block(Wait::Child);
    61
}

fn sys_arch_prctl(f: &mut TrapFrame) -> i64 {
    const ARCH_SET_FS: u64 = 0x1002;
    const ARCH_GET_FS: u64 = 0x1003;
    match f.rdi {
        ARCH_SET_FS => {
            if f.rsi >= USER_END {
                return -EPERM;
            }
            current().fs_base = f.rsi;
            scheduler::load_fs_base(f.rsi);
            0
        }
        ARCH_GET_FS => match copy_to_user(pml4(), f.rsi, &current().fs_base.to_le_bytes()) {
            Ok(()) => 0,
            Err(_) => -EFAULT,
        },
        _ => -EINVAL,
    }
}

fn sys_set_tid_address(_f: &mut TrapFrame) -> i64 {
    current().pid as i64
}

fn sys_clock_gettime(f: &mut TrapFrame) -> i64 {
    const REALTIME: u64 = 0;
    const MONOTONIC: u64 = 1;
    const MONOTONIC_RAW: u64 = 4;
    const REALTIME_COARSE: u64 = 5;
    const MONOTONIC_COARSE: u64 = 6;
    const BOOTTIME: u64 = 7;
    let ns = match f.rdi {
        MONOTONIC | MONOTONIC_RAW | MONOTONIC_COARSE | BOOTTIME => time::monotonic_ns(),
        REALTIME | REALTIME_COARSE => time::realtime_ns(),
        _ => return -EINVAL,
    };
    let mut ts = [0u8; 16];
    ts[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    ts[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    match copy_to_user(pml4(), f.rsi, &ts) {
        Ok(()) => 0,
        Err(_) => -EFAULT,
    }
}

/// spawn(name, argv): start program `name` from the archive as a child of the caller.
/// `argv` is a NULL-terminated array of C strings, or NULL for argv = [name].
fn sys_spawn(f: &mut TrapFrame) -> i64 {
    let mut name_buf = [0u8; 64];
    let n = match copy_str_from_user(pml4(), &mut name_buf, f.rdi) {
        Ok(n) => n,
        Err(StrError::Fault) => return -EFAULT,
        Err(StrError::TooLong) => return -ENOENT, // longer than any name in the archive
    };
    let Ok(name) = core::str::from_utf8(&name_buf[..n]) else {
        return -ENOENT;
    };
    let Some(file) = initrd::archive().find(name) else {
        return -ENOENT;
    };
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
            let Ok(ptr) = read_u64(pml4(), f.rsi.wrapping_add(argc as u64 * 8)) else {
                return -EFAULT;
            };
            if ptr == 0 {
                break;
            }
            if argc == MAX_ARGS || used >= strings.len() {
                return -E2BIG;
            }
            match copy_str_from_user(pml4(), &mut strings[used..], ptr) {
                Ok(len) => {
                    bounds[argc] = (used, used + len);
                    used += len;
                    argc += 1;
                }
                Err(StrError::TooLong) => return -E2BIG,
                Err(StrError::Fault) => return -EFAULT,
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
            process::table().slots[slot].pid as i64
        }
        Err(LoadError::NotElf | LoadError::Unsupported(_) | LoadError::BadSegment) => -ENOEXEC,
        Err(LoadError::TooManyArgs) => -E2BIG,
        Err(LoadError::Spawn(SpawnError::NoSlot)) => -EAGAIN,
        Err(LoadError::Spawn(SpawnError::OutOfMemory)) => -ENOMEM,
    }
}
