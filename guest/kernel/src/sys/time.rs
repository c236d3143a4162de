//! Time: sleeping, and the clocks (from the TSC; there is no RTC, so CLOCK_REALTIME starts at the
//! command line's `epoch=`).

use super::{pml4, SysResult};
use crate::percpu::current;
use crate::scheduler;
use crate::time;
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_to_user, read_u64};
use abi::Errno;

pub fn sys_nanosleep(f: &mut TrapFrame) -> SysResult {
    let sec = read_u64(pml4(), f.rdi)?;
    let nsec = read_u64(pml4(), f.rdi.wrapping_add(8))?;
    if (sec as i64) < 0 || nsec >= 1_000_000_000 {
        return Err(Errno::EINVAL);
    }
    let ns = sec.saturating_mul(1_000_000_000).saturating_add(nsec);
    if ns == 0 {
        return Ok(0);
    }
    let deadline = crate::cpu::rdtsc().saturating_add(time::ns_to_cycles(ns));
    // A handled signal ends the sleep early: EINTR, and the time left in `rem` (f.rsi).
    let p = current();
    p.sleep_rem
        .store(f.rsi, core::sync::atomic::Ordering::Relaxed);
    p.sleep_deadline
        .store(deadline, core::sync::atomic::Ordering::Relaxed);
    scheduler::sleep_until(deadline, crate::signal::RESTART_SLEEP);
    Ok(0) // what the task sees when it wakes at the deadline
}

pub fn sys_clock_gettime(f: &mut TrapFrame) -> SysResult {
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
    copy_to_user(pml4(), f.rsi, &ts)?;
    Ok(0)
}
