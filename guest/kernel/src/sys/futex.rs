//! futex(2) and the robust-list calls: argument decoding; the mechanism is futex.rs.

use core::sync::atomic::Ordering::Relaxed;

use super::{pml4, SysResult};
use crate::futex;
use crate::percpu::current;
use crate::time;
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_to_user, read_u64};
use abi::Errno;

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAKE_OP: u64 = 5;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;

/// futex(uaddr, op, val, timeout or val2, uaddr2, val3). The priority-inheritance operations
/// are ENOSYS: the C libraries use them only for PI mutexes, which a program asks for.
pub fn sys_futex(f: &mut TrapFrame) -> SysResult {
    let (uaddr, op, val, arg4, uaddr2, val3) = (f.rdi, f.rsi, f.rdx as u32, f.r10, f.r8, f.r9);
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if realtime && cmd != FUTEX_WAIT_BITSET {
        return Err(Errno::ENOSYS);
    }
    // A wake count is an int, and Linux's wake loop wakes a waiter before it compares the
    // count: a count of 0 or below wakes one.
    let count = |v: u32| (v as i32).max(1) as u32;
    let val3 = val3 as u32;
    match cmd {
        FUTEX_WAIT => {
            let deadline = relative_deadline(arg4)?;
            futex::wait(f, uaddr, val, u32::MAX, deadline, private)
        }
        FUTEX_WAIT_BITSET => {
            if val3 == 0 {
                return Err(Errno::EINVAL);
            }
            let deadline = absolute_deadline(arg4, realtime)?;
            futex::wait(f, uaddr, val, val3, deadline, private)
        }
        FUTEX_WAKE => futex::wake(uaddr, count(val), u32::MAX, private),
        FUTEX_WAKE_BITSET => {
            if val3 == 0 {
                return Err(Errno::EINVAL);
            }
            futex::wake(uaddr, count(val), val3, private)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let n_move = arg4 as u32;
            if (val as i32) < 0 || (n_move as i32) < 0 {
                return Err(Errno::EINVAL);
            }
            let cmp = (cmd == FUTEX_CMP_REQUEUE).then_some(val3);
            futex::requeue(uaddr, val, uaddr2, n_move, cmp, private)
        }
        FUTEX_WAKE_OP => futex::wake_op(uaddr, count(val), uaddr2, arg4 as u32, val3, private),
        _ => Err(Errno::ENOSYS),
    }
}

/// A `struct timespec` at `at`, in nanoseconds (EINVAL if malformed), or None for NULL.
fn timespec_ns(at: u64) -> Result<Option<u64>, Errno> {
    if at == 0 {
        return Ok(None);
    }
    let sec = read_u64(pml4(), at)?;
    let nsec = read_u64(pml4(), at.wrapping_add(8))?;
    if (sec as i64) < 0 || nsec >= 1_000_000_000 {
        return Err(Errno::EINVAL);
    }
    Ok(Some(sec.saturating_mul(1_000_000_000).saturating_add(nsec)))
}

/// FUTEX_WAIT's timeout is relative.
fn relative_deadline(at: u64) -> Result<Option<u64>, Errno> {
    let now = crate::cpu::rdtsc();
    Ok(timespec_ns(at)?.map(|ns| now.saturating_add(time::ns_to_cycles(ns))))
}

/// FUTEX_WAIT_BITSET's is absolute, on CLOCK_MONOTONIC or (with FUTEX_CLOCK_REALTIME)
/// CLOCK_REALTIME.
fn absolute_deadline(at: u64, realtime: bool) -> Result<Option<u64>, Errno> {
    let Some(abs) = timespec_ns(at)? else {
        return Ok(None);
    };
    let tsc = crate::cpu::rdtsc();
    let now = if realtime {
        time::realtime_ns()
    } else {
        time::monotonic_ns()
    };
    Ok(Some(tsc.saturating_add(time::ns_to_cycles(
        abs.saturating_sub(now),
    ))))
}

/// The size of `struct robust_list_head`, the only length set_robust_list accepts.
const ROBUST_HEAD_LEN: u64 = 24;

/// set_robust_list(head, len): where the thread's list of held robust mutexes starts (walked
/// at its exit, futex.rs).
pub fn sys_set_robust_list(f: &mut TrapFrame) -> SysResult {
    if f.rsi != ROBUST_HEAD_LEN {
        return Err(Errno::EINVAL);
    }
    current().robust_list.store(f.rdi, Relaxed);
    Ok(0)
}

/// get_robust_list(tid, head_ptr, len_ptr): of the caller (tid 0) or any thread (we run as
/// root, who may look at anyone's).
pub fn sys_get_robust_list(f: &mut TrapFrame) -> SysResult {
    let me = current();
    let head = if f.rdi == 0 || f.rdi as u32 == me.pid() {
        me.robust_list.load(Relaxed)
    } else {
        let t = crate::process::TASKS.lock();
        let p = t.find_pid(f.rdi as u32).ok_or(Errno::ESRCH)?;
        p.robust_list.load(Relaxed)
    };
    copy_to_user(pml4(), f.rsi, &head.to_le_bytes())?;
    copy_to_user(pml4(), f.rdx, &ROBUST_HEAD_LEN.to_le_bytes())?;
    Ok(0)
}
