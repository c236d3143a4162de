//! Time: sleeping, and the clocks (from the TSC; there is no RTC, so CLOCK_REALTIME starts at the
//! command line's `epoch=`).

use super::{pml4, SysResult};
use crate::percpu::current;
use crate::scheduler;
use crate::time;
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_to_user, read_u64};
use abi::Errno;
use core::sync::atomic::Ordering::Relaxed;

/// A `struct timespec` from user memory, in nanoseconds; EINVAL if malformed.
fn read_timespec(at: u64) -> Result<u64, Errno> {
    let sec = read_u64(pml4(), at)?;
    let nsec = read_u64(pml4(), at.wrapping_add(8))?;
    if (sec as i64) < 0 || nsec >= 1_000_000_000 {
        return Err(Errno::EINVAL);
    }
    Ok(sec.saturating_mul(1_000_000_000).saturating_add(nsec))
}

/// Sleeps `ns` from now. A handled signal ends the sleep early: EINTR, and the time left
/// goes to `rem` unless it is 0.
fn sleep_for(ns: u64, rem: u64) -> SysResult {
    if ns == 0 {
        return Ok(0);
    }
    let deadline = crate::cpu::rdtsc().saturating_add(time::ns_to_cycles(ns));
    let p = current();
    p.sleep_rem.store(rem, Relaxed);
    p.sleep_deadline.store(deadline, Relaxed);
    scheduler::sleep_until(deadline, crate::signal::state::RESTART_SLEEP);
    Ok(0) // what the task sees when it wakes at the deadline
}

pub fn sys_nanosleep(f: &mut TrapFrame) -> SysResult {
    let ns = read_timespec(f.rdi)?;
    sleep_for(ns, f.rsi)
}

const REALTIME: u64 = 0;
const MONOTONIC: u64 = 1;
const PROCESS_CPUTIME: u64 = 2;
const THREAD_CPUTIME: u64 = 3;
const MONOTONIC_RAW: u64 = 4;
const REALTIME_COARSE: u64 = 5;
const MONOTONIC_COARSE: u64 = 6;
const BOOTTIME: u64 = 7;

/// clock_nanosleep(clock, flags, req, rem): relative, or until an absolute time of the clock
/// (TIMER_ABSTIME), which a signal does not shorten into a `rem`.
pub fn sys_clock_nanosleep(f: &mut TrapFrame) -> SysResult {
    const TIMER_ABSTIME: u64 = 1;
    let now = match f.rdi {
        REALTIME => time::realtime_ns(),
        MONOTONIC | BOOTTIME => time::monotonic_ns(),
        PROCESS_CPUTIME | THREAD_CPUTIME => return Err(Errno::EOPNOTSUPP),
        _ => return Err(Errno::EINVAL),
    };
    if f.rsi & !TIMER_ABSTIME != 0 {
        return Err(Errno::EINVAL);
    }
    let ns = read_timespec(f.rdx)?;
    if f.rsi & TIMER_ABSTIME != 0 {
        sleep_for(ns.saturating_sub(now), 0)
    } else {
        sleep_for(ns, f.r10)
    }
}

/// gettimeofday(tv, tz): CLOCK_REALTIME in microseconds; the time zone is UTC.
pub fn sys_gettimeofday(f: &mut TrapFrame) -> SysResult {
    let ns = time::realtime_ns();
    if f.rdi != 0 {
        let mut tv = [0u8; 16];
        tv[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
        tv[8..].copy_from_slice(&(ns % 1_000_000_000 / 1000).to_le_bytes());
        copy_to_user(pml4(), f.rdi, &tv)?;
    }
    if f.rsi != 0 {
        copy_to_user(pml4(), f.rsi, &[0u8; 8])?;
    }
    Ok(0)
}

/// time(tloc): seconds since the epoch, also stored at `tloc` unless NULL.
pub fn sys_time(f: &mut TrapFrame) -> SysResult {
    let s = time::realtime_ns() / 1_000_000_000;
    if f.rdi != 0 {
        copy_to_user(pml4(), f.rdi, &s.to_le_bytes())?;
    }
    Ok(s)
}

/// clock_getres(clock, res): the TSC's nanosecond for the fine clocks, a tick for the coarse.
pub fn sys_clock_getres(f: &mut TrapFrame) -> SysResult {
    let ns = match f.rdi {
        REALTIME | MONOTONIC | MONOTONIC_RAW | BOOTTIME | PROCESS_CPUTIME | THREAD_CPUTIME => 1,
        REALTIME_COARSE | MONOTONIC_COARSE => 10_000_000,
        _ => return Err(Errno::EINVAL),
    };
    if f.rsi != 0 {
        let mut ts = [0u8; 16];
        ts[8..].copy_from_slice(&(ns as u64).to_le_bytes());
        copy_to_user(pml4(), f.rsi, &ts)?;
    }
    Ok(0)
}

pub fn sys_clock_gettime(f: &mut TrapFrame) -> SysResult {
    let ns = match f.rdi {
        MONOTONIC | MONOTONIC_RAW | MONOTONIC_COARSE | BOOTTIME => time::monotonic_ns(),
        REALTIME | REALTIME_COARSE => time::realtime_ns(),
        PROCESS_CPUTIME | THREAD_CPUTIME => {
            scheduler::charge_running();
            time::cycles_to_ns(current().stats.cpu_cycles.load(Relaxed))
        }
        _ => return Err(Errno::EINVAL),
    };
    let mut ts = [0u8; 16];
    ts[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    ts[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    copy_to_user(pml4(), f.rsi, &ts)?;
    Ok(0)
}
