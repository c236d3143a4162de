//! Processes: who am I, yield, exit, wait for a child, and our own `spawn`.

use core::sync::atomic::Ordering::Relaxed;

use super::{pml4, SysResult};
use crate::exit;
use crate::initrd;
use crate::loader::{self, LoadError, MAX_ARGS};
use crate::percpu::current;
use crate::process::{SpawnError, State, Wait, TASKS};
use crate::scheduler;
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_str_from_user, copy_to_user, read_u64, StrError};
use abi::syscall::nr;
use abi::Errno;

pub fn sys_getpid(_f: &mut TrapFrame) -> SysResult {
    Ok(current().pid() as u64)
}

pub fn sys_getppid(_f: &mut TrapFrame) -> SysResult {
    Ok(current().parent.load(Relaxed) as u64)
}

pub fn sys_set_tid_address(_f: &mut TrapFrame) -> SysResult {
    Ok(current().pid() as u64)
}

pub fn sys_sched_yield(_f: &mut TrapFrame) -> SysResult {
    scheduler::yield_now();
    Ok(0)
}

/// exit and exit_group (one thread per process).
pub fn sys_exit(f: &mut TrapFrame) -> SysResult {
    exit::exit_current(((f.rdi & 0xff) << 8) as u32);
    Ok(0) // goes to a frame nobody will return to
}

/// wait4(pid, status, options, rusage): reap a child that has exited; block until one does.
pub fn sys_wait4(f: &mut TrapFrame) -> SysResult {
    const WNOHANG: u64 = 1;
    // Linux's valid bits (WNOHANG, WUNTRACED, WCONTINUED, __WNOTHREAD, __WALL, __WCLONE); the
    // others are EINVAL. We have no stopped children and no threads, so only WNOHANG matters.
    const KNOWN: u64 = 0x1 | 0x2 | 0x8 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000;
    let (want, status_ptr, options) = (f.rdi as i64, f.rsi, f.rdx);
    if options & !KNOWN != 0 {
        return Err(Errno::EINVAL);
    }
    let me = current().pid();
    let mut t = TASKS.lock();
    let is_child = |p: &crate::process::Process| {
        p.parent.load(Relaxed) == me && (want <= 0 || p.pid() as i64 == want)
    };
    let have_child = t.live().any(is_child);
    let zombie = t.live().find(|p| is_child(p) && p.state() == State::Zombie);
    if let Some(p) = zombie {
        let (pid, status) = (p.pid(), p.wait_status.load(Relaxed));
        if status_ptr != 0 {
            copy_to_user(pml4(), status_ptr, &status.to_le_bytes())?;
        }
        exit::reap(&mut t, p);
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
    scheduler::block(t, Wait::Child);
    Ok(nr::WAIT4 as u64)
}

/// spawn(name, argv): start program `name` from the archive as a child of the caller.
/// `argv` is a NULL-terminated array of C strings, or NULL for argv = [name].
pub fn sys_spawn(f: &mut TrapFrame) -> SysResult {
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
            let ptr = read_u64(pml4(), f.rsi.wrapping_add(argc as u64 * 8))?;
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
    let mut t = TASKS.lock();
    match loader::spawn(&mut t, file.data, name, &args[..argc], current().pid()) {
        Ok(p) => {
            scheduler::make_ready(&mut t, p);
            Ok(p.pid() as u64)
        }
        Err(LoadError::Program(_)) => Err(Errno::ENOEXEC),
        Err(LoadError::TooManyArgs) => Err(Errno::E2BIG),
        Err(LoadError::Spawn(SpawnError::NoSlot)) => Err(Errno::EAGAIN),
        Err(LoadError::Spawn(SpawnError::OutOfMemory)) => Err(Errno::ENOMEM),
    }
}
