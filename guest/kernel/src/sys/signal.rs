//! The signal calls: dispositions, the mask, waiting for a signal, returning from a handler,
//! alarms and the alternate stack. How signals are sent and taken is signal.rs.

use core::sync::atomic::Ordering::Relaxed;

use super::{pml4, SysResult};
use crate::exit;
use crate::percpu::current;
use crate::process::{Process, Tasks, Wait, TASKS};
use crate::scheduler;
use crate::signal::deliver;
use crate::signal::send;
use crate::signal::state;
use crate::signal::state::{
    bit, SigAction, MINSIGSTKSZ, RESTART_EINTR, SIG_DFL, SIG_IGN, SS_DISABLE, SS_ONSTACK,
    UNBLOCKABLE,
};
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_from_user, copy_to_user, read_u64};
use abi::signal::{default_action, DefaultAction, NSIG, SIGKILL, SIGSEGV, SIGSTOP};
use abi::Errno;

const SIGSET_SIZE: u64 = 8;

/// rt_sigaction(sig, act, oldact, sigsetsize).
pub fn sys_rt_sigaction(f: &mut TrapFrame) -> SysResult {
    let (sig, act, old, size) = (f.rdi, f.rsi, f.rdx, f.r10);
    if size != SIGSET_SIZE || sig == 0 || sig > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    let sig = sig as u32;
    if act != 0 && (sig == SIGKILL || sig == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let new = if act != 0 {
        let mut raw = [0u8; 32];
        copy_from_user(pml4(), &mut raw, act)?;
        let w = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Some(SigAction {
            handler: w(0),
            flags: w(1),
            restorer: w(2),
            mask: w(3) & !UNBLOCKABLE,
        })
    } else {
        None
    };
    let me = current();
    let handlers = me.handlers().ok_or(Errno::EINVAL)?;
    let before = handlers.get(sig);
    if old != 0 {
        let mut raw = [0u8; 32];
        for (i, v) in [before.handler, before.flags, before.restorer, before.mask]
            .iter()
            .enumerate()
        {
            raw[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        copy_to_user(pml4(), old, &raw)?;
    }
    if let Some(a) = new {
        handlers.set(sig, a);
        // A signal now ignored is discarded if pending (POSIX).
        let ignored = a.handler == SIG_IGN
            || (a.handler == SIG_DFL && default_action(sig) == DefaultAction::Ignore);
        if ignored {
            me.sig_pending.fetch_and(!bit(sig), Relaxed);
        }
    }
    Ok(0)
}

/// rt_sigprocmask(how, set, oldset, sigsetsize).
pub fn sys_rt_sigprocmask(f: &mut TrapFrame) -> SysResult {
    const SIG_BLOCK: u64 = 0;
    const SIG_UNBLOCK: u64 = 1;
    const SIG_SETMASK: u64 = 2;
    let (how, set, old, size) = (f.rdi, f.rsi, f.rdx, f.r10);
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let me = current();
    let mask = me.sig_blocked.load(Relaxed);
    let new = if set != 0 {
        let s = read_u64(pml4(), set)?;
        Some(match how {
            SIG_BLOCK => mask | s,
            SIG_UNBLOCK => mask & !s,
            SIG_SETMASK => s,
            _ => return Err(Errno::EINVAL),
        })
    } else {
        None
    };
    if old != 0 {
        copy_to_user(pml4(), old, &mask.to_le_bytes())?;
    }
    if let Some(m) = new {
        me.sig_blocked.store(m & !UNBLOCKABLE, Relaxed);
        send::note_unblocked(me);
    }
    Ok(0)
}

/// rt_sigpending(set, sigsetsize): the signals pending (and blocked).
pub fn sys_rt_sigpending(f: &mut TrapFrame) -> SysResult {
    if f.rsi != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let me = current();
    let pending = me.sig_pending.load(Relaxed) & me.sig_blocked.load(Relaxed);
    copy_to_user(pml4(), f.rdi, &pending.to_le_bytes())?;
    Ok(0)
}

/// pause: wait for a signal whose handler runs (then EINTR) or whose default action ends us.
pub fn sys_pause(f: &mut TrapFrame) -> SysResult {
    wait_for_signal(f)
}

fn wait_for_signal(f: &mut TrapFrame) -> SysResult {
    let me = current();
    let t = TASKS.lock();
    if send::deliverable(me) != 0 {
        send::note_unblocked(me); // take it at this exit
        return Err(Errno::EINTR);
    }
    me.restart.store(RESTART_EINTR, Relaxed);
    let _ = f;
    scheduler::block(t, Wait::Signal);
    Err(Errno::EINTR)
}

/// rt_sigsuspend(mask, sigsetsize): pause with `mask` in force; the old mask comes back when
/// the handler returns.
pub fn sys_rt_sigsuspend(f: &mut TrapFrame) -> SysResult {
    if f.rsi != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let mask = read_u64(pml4(), f.rdi)?;
    let me = current();
    me.sig.lock().saved_mask = Some(me.sig_blocked.load(Relaxed));
    me.sig_blocked.store(mask & !UNBLOCKABLE, Relaxed);
    wait_for_signal(f)
}

/// rt_sigreturn (from the slow exit, with the whole frame): the state saved before a handler
/// ran. A frame that cannot be read or names an impossible state kills the process.
pub fn sys_rt_sigreturn(f: &mut TrapFrame) -> SysResult {
    match deliver::sigreturn(f) {
        Ok(rax) => Ok(rax),
        Err(()) => {
            let p = current();
            crate::println!(
                "kernel: killed pid {} ({}): bad signal frame at rsp {:#x} [signal {SIGSEGV}]",
                p.tgid(),
                p.name(),
                f.rsp
            );
            exit::exit_current(SIGSEGV);
            Ok(0)
        }
    }
}

/// The task whose alarm the caller's process uses: its leader. The alarm (alarm, ITIMER_REAL) is
/// the process's, as on Linux: any thread sets or reads it, it outlives the thread that set it,
/// and its SIGALRM goes to the process.
fn alarm_owner(t: &Tasks) -> &'static Process {
    let me = current();
    t.find_pid(me.tgid()).unwrap_or(me)
}

/// alarm(seconds): SIGALRM after that long (0 cancels); returns the seconds left of the
/// previous alarm, rounded up.
pub fn sys_alarm(f: &mut TrapFrame) -> SysResult {
    let mut t = TASKS.lock();
    let me = alarm_owner(&t);
    let now = crate::cpu::rdtsc();
    let left = me.alarm_at.load(Relaxed).saturating_sub(now);
    let prev = if me.alarm_at.load(Relaxed) == 0 {
        0
    } else {
        crate::time::cycles_to_ns(left)
            .div_ceil(1_000_000_000)
            .max(1)
    };
    let secs = f.rdi as u32 as u64;
    let at = if secs == 0 {
        0
    } else {
        now + crate::time::ns_to_cycles(secs * 1_000_000_000)
    };
    scheduler::set_alarm(&mut t, me, at, 0);
    Ok(prev)
}

const ITIMER_REAL: u64 = 0;

fn timeval_ns(raw: &[u8]) -> Result<u64, Errno> {
    let sec = i64::from_le_bytes(raw[..8].try_into().unwrap_or([0; 8]));
    let usec = i64::from_le_bytes(raw[8..16].try_into().unwrap_or([0; 8]));
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64).saturating_mul(1_000_000_000) + usec as u64 * 1000)
}

fn put_timeval(out: &mut [u8], ns: u64) {
    out[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    out[8..16].copy_from_slice(&(ns % 1_000_000_000 / 1000).to_le_bytes());
}

/// The current ITIMER_REAL as an itimerval (interval, value).
fn itimer_now() -> [u8; 32] {
    let me = alarm_owner(&TASKS.lock());
    let at = me.alarm_at.load(Relaxed);
    let left = if at == 0 {
        0
    } else {
        crate::time::cycles_to_ns(at.saturating_sub(crate::cpu::rdtsc())).max(1000)
    };
    let mut v = [0u8; 32];
    // The interval went through TSC cycles and back, which can lose a nanosecond: round to the
    // microsecond, so that what setitimer set is what getitimer reads (as on Linux).
    let every = crate::time::cycles_to_ns(me.alarm_interval.load(Relaxed));
    put_timeval(&mut v[..16], (every + 500) / 1000 * 1000);
    put_timeval(&mut v[16..], left);
    v
}

/// setitimer(ITIMER_REAL, new, old): an alarm, repeating every interval.
pub fn sys_setitimer(f: &mut TrapFrame) -> SysResult {
    if f.rdi != ITIMER_REAL {
        return Err(Errno::EINVAL);
    }
    let old = itimer_now();
    let (mut every, mut value) = (0, 0);
    if f.rsi != 0 {
        let mut raw = [0u8; 32];
        copy_from_user(pml4(), &mut raw, f.rsi)?;
        every = timeval_ns(&raw[..16])?;
        value = timeval_ns(&raw[16..])?;
    }
    if f.rdx != 0 {
        copy_to_user(pml4(), f.rdx, &old)?;
    }
    if f.rsi != 0 {
        let at = if value == 0 {
            0
        } else {
            crate::cpu::rdtsc() + crate::time::ns_to_cycles(value)
        };
        let every = if value == 0 {
            0
        } else {
            crate::time::ns_to_cycles(every)
        };
        let mut t = TASKS.lock();
        let owner = alarm_owner(&t);
        scheduler::set_alarm(&mut t, owner, at, every);
    }
    Ok(0)
}

pub fn sys_getitimer(f: &mut TrapFrame) -> SysResult {
    if f.rdi != ITIMER_REAL {
        return Err(Errno::EINVAL);
    }
    copy_to_user(pml4(), f.rsi, &itimer_now())?;
    Ok(0)
}

/// sigaltstack(ss, old_ss): where handlers with SA_ONSTACK run.
pub fn sys_sigaltstack(f: &mut TrapFrame) -> SysResult {
    const SS_AUTODISARM: u32 = 1 << 31;
    let me = current();
    let cur = me.sig.lock().altstack;
    let on = cur.flags & SS_DISABLE == 0 && f.rsp > cur.sp && f.rsp <= cur.sp + cur.size;
    if f.rsi != 0 {
        let mut raw = [0u8; 24];
        raw[..8].copy_from_slice(&cur.sp.to_le_bytes());
        let flags = if on {
            SS_ONSTACK
        } else {
            cur.flags & SS_DISABLE
        };
        raw[8..12].copy_from_slice(&flags.to_le_bytes());
        raw[16..24].copy_from_slice(&cur.size.to_le_bytes());
        copy_to_user(pml4(), f.rsi, &raw)?;
    }
    if f.rdi != 0 {
        let mut raw = [0u8; 24];
        copy_from_user(pml4(), &mut raw, f.rdi)?;
        let sp = u64::from_le_bytes(raw[..8].try_into().unwrap_or([0; 8]));
        let flags = u32::from_le_bytes(raw[8..12].try_into().unwrap_or([0; 4])) & !SS_AUTODISARM;
        let size = u64::from_le_bytes(raw[16..24].try_into().unwrap_or([0; 8]));
        if on {
            return Err(Errno::EPERM);
        }
        if flags != 0 && flags != SS_DISABLE {
            return Err(Errno::EINVAL);
        }
        if flags == 0 && size < MINSIGSTKSZ {
            return Err(Errno::ENOMEM);
        }
        let mut s = me.sig.lock();
        s.altstack = if flags == SS_DISABLE {
            state::TaskSignals::new().altstack
        } else {
            state::AltStack { sp, size, flags: 0 }
        };
    }
    Ok(0)
}
