//! poll, ppoll, select and pselect6: wait until one of several descriptors is ready.
//!
//! Readiness is each open file's own answer (`OpenFile::poll`). A poller that finds nothing
//! ready waits in one queue shared by all pollers, with its deadline; everything that can make
//! a file ready (pipe reads, writes and closes, console input) wakes that queue, and each
//! woken poller runs its call again, keeping its first deadline. Simple, and as cheap as a
//! queue that is empty when nobody polls.
//!
//! Not done: ppoll's and pselect6's signal mask (the call runs with the caller's own mask),
//! and select's update of the time left.

use alloc::vec::Vec;
use core::sync::atomic::Ordering::Relaxed;

use super::{pml4, SysResult};
use crate::file::{
    FileKind, OpenFile, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLRDNORM, POLLWRNORM,
};
use crate::karc::Karc;
use crate::percpu::current;
use crate::process::TASKS;
use crate::scheduler;
use crate::signal::state::RESTART_SYSCALL;
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_from_user, copy_to_user, read_u64};
use abi::Errno;
use kcore::runqueue::NIL;

/// How long to wait: not at all, until a TSC deadline, or for ever.
#[derive(Clone, Copy)]
enum Timeout {
    Now,
    Ns(u64),
    Never,
}

/// Waits (the call runs again when woken or at the deadline) unless the deadline passed;
/// returns what the call returns now: 0 when the time is up, the call's number when it blocked.
fn wait(f: &mut TrapFrame, timeout: Timeout) -> SysResult {
    let me = current();
    let deadline = match timeout {
        Timeout::Now => return Ok(0),
        Timeout::Never => None,
        Timeout::Ns(ns) => {
            // The same call run again after a wake-up keeps its first deadline.
            let again = me.poll_rip.load(Relaxed) == f.rip && me.poll_deadline.load(Relaxed) != 0;
            let d = if again {
                me.poll_deadline.load(Relaxed)
            } else {
                crate::cpu::rdtsc().saturating_add(crate::time::ns_to_cycles(ns))
            };
            if crate::cpu::rdtsc() >= d {
                done(me);
                return Ok(0);
            }
            me.poll_deadline.store(d, Relaxed);
            Some(d)
        }
    };
    me.poll_rip.store(f.rip, Relaxed);
    let q = crate::wakeup::poll_queue();
    if q == NIL {
        return Err(Errno::ENOMEM);
    }
    // Woken or at the deadline, the call runs again: it then finds a file ready, or the time
    // up (and says so itself: revents and the sets cleared).
    let timeout = deadline.map(|d| (d, scheduler::RUN_AGAIN));
    scheduler::wait_in_until(TASKS.lock(), f, q, RESTART_SYSCALL, timeout);
    Ok(f.rax)
}

/// A call that failed forgets its wait (the next one starts its own).
fn forget_on_error(r: SysResult) -> SysResult {
    if r.is_err() {
        done(current());
    }
    r
}

fn done(me: &crate::process::Process) {
    me.poll_rip.store(0, Relaxed);
    me.poll_deadline.store(0, Relaxed);
}

fn descriptor(fd: i32) -> Option<Karc<OpenFile>> {
    let files = current().files()?;
    files.get(fd as u32 as u64).ok().filter(|_| fd >= 0)
}

/// A `struct timespec` as a timeout (NULL: for ever).
fn timespec(at: u64) -> Result<Timeout, Errno> {
    if at == 0 {
        return Ok(Timeout::Never);
    }
    let sec = read_u64(pml4(), at)? as i64;
    let nsec = read_u64(pml4(), at + 8)? as i64;
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    let ns = (sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec as u64);
    Ok(if ns == 0 {
        Timeout::Now
    } else {
        Timeout::Ns(ns)
    })
}

fn do_poll(f: &mut TrapFrame, fds: u64, nfds: u64, timeout: Timeout) -> SysResult {
    if nfds > crate::file::MAX_FDS as u64 {
        return Err(Errno::EINVAL);
    }
    let mut raw = Vec::new();
    raw.try_reserve_exact(nfds as usize * 8)
        .map_err(|_| Errno::ENOMEM)?;
    raw.resize(nfds as usize * 8, 0);
    copy_from_user(pml4(), &mut raw, fds)?;
    let mut ready = 0;
    for entry in raw.chunks_exact_mut(8) {
        let fd = i32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let events = u16::from_le_bytes([entry[4], entry[5]]);
        let revents = if fd < 0 {
            0
        } else {
            match descriptor(fd) {
                Some(file) => file.poll() & (events | POLLERR | POLLHUP),
                None => POLLNVAL,
            }
        };
        entry[6..8].copy_from_slice(&revents.to_le_bytes());
        ready += (revents != 0) as u64;
    }
    copy_to_user(pml4(), fds, &raw)?;
    if ready > 0 {
        done(current());
        return Ok(ready);
    }
    wait(f, timeout)
}

/// poll(fds, nfds, timeout_ms).
pub fn sys_poll(f: &mut TrapFrame) -> SysResult {
    let ms = f.rdx as i32;
    let timeout = match ms {
        0 => Timeout::Now,
        ms if ms < 0 => Timeout::Never,
        ms => Timeout::Ns(ms as u64 * 1_000_000),
    };
    forget_on_error(do_poll(f, f.rdi, f.rsi, timeout))
}

/// ppoll(fds, nfds, timeout_ts, sigmask, sigsetsize).
pub fn sys_ppoll(f: &mut TrapFrame) -> SysResult {
    let timeout = timespec(f.rdx)?;
    forget_on_error(do_poll(f, f.rdi, f.rsi, timeout))
}

/// The three fd_sets of select, `nfds` bits each (rounded up to whole words).
fn do_select(f: &mut TrapFrame, nfds: u64, sets: [u64; 3], timeout: Timeout) -> SysResult {
    let nfds = nfds as i32;
    if nfds < 0 {
        return Err(Errno::EINVAL);
    }
    let nfds = (nfds as usize).min(crate::file::MAX_FDS);
    let words = nfds.div_ceil(64);
    let mut input = [[0u64; crate::file::MAX_FDS / 64]; 3];
    for (k, &at) in sets.iter().enumerate() {
        if at != 0 {
            let mut b = [0u8; crate::file::MAX_FDS / 8];
            copy_from_user(pml4(), &mut b[..words * 8], at)?;
            for w in 0..words {
                input[k][w] = u64::from_le_bytes(b[w * 8..w * 8 + 8].try_into().unwrap_or([0; 8]));
            }
        }
    }
    let mut output = [[0u64; crate::file::MAX_FDS / 64]; 3];
    let mut ready = 0;
    for fd in 0..nfds {
        let (w, bit) = (fd / 64, 1u64 << (fd % 64));
        if (input[0][w] | input[1][w] | input[2][w]) & bit == 0 {
            continue;
        }
        let file = descriptor(fd as i32).ok_or(Errno::EBADF)?;
        let r = file.poll();
        let hits = [
            r & (POLLIN | POLLHUP | POLLERR) != 0,
            r & (POLLOUT | POLLERR) != 0,
            false, // no exceptional conditions (out-of-band data) here
        ];
        for k in 0..3 {
            if input[k][w] & bit != 0 && hits[k] {
                output[k][w] |= bit;
                ready += 1;
            }
        }
    }
    let write_back = |out: &[[u64; crate::file::MAX_FDS / 64]; 3]| -> Result<(), Errno> {
        for (k, &at) in sets.iter().enumerate() {
            if at != 0 {
                let mut b = [0u8; crate::file::MAX_FDS / 8];
                for w in 0..words {
                    b[w * 8..w * 8 + 8].copy_from_slice(&out[k][w].to_le_bytes());
                }
                copy_to_user(pml4(), at, &b[..words * 8])?;
            }
        }
        Ok(())
    };
    if ready > 0 {
        done(current());
        write_back(&output)?;
        return Ok(ready);
    }
    // The sets stay as they were while it waits: the call reads them again when it runs again.
    match wait(f, timeout)? {
        0 => {
            write_back(&output)?; // the time is up: nothing is set
            Ok(0)
        }
        n => Ok(n),
    }
}

/// select(nfds, readfds, writefds, exceptfds, timeout): a `struct timeval` timeout.
pub fn sys_select(f: &mut TrapFrame) -> SysResult {
    let timeout = if f.r8 == 0 {
        Timeout::Never
    } else {
        let sec = read_u64(pml4(), f.r8)? as i64;
        let usec = read_u64(pml4(), f.r8 + 8)? as i64;
        if sec < 0 || !(0..1_000_000).contains(&usec) {
            return Err(Errno::EINVAL);
        }
        let ns = (sec as u64).saturating_mul(1_000_000_000) + usec as u64 * 1000;
        if ns == 0 {
            Timeout::Now
        } else {
            Timeout::Ns(ns)
        }
    };
    forget_on_error(do_select(f, f.rdi, [f.rsi, f.rdx, f.r10], timeout))
}

/// pselect6(nfds, readfds, writefds, exceptfds, timeout_ts, sigmask_arg).
pub fn sys_pselect6(f: &mut TrapFrame) -> SysResult {
    let timeout = timespec(f.r8)?;
    forget_on_error(do_select(f, f.rdi, [f.rsi, f.rdx, f.r10], timeout))
}

// Here rather than in file.rs: the answer for each kind asks the pipe or the terminal, which sit
// above the open-file objects.
impl OpenFile {
    /// What a read or write would do now without blocking (poll and select ask this): the
    /// POLL* bits. Whatever changes a file's answer wakes the pollers (wakeup.rs `wake_pollers`).
    pub fn poll(&self) -> u16 {
        const IN: u16 = POLLIN | POLLRDNORM;
        const OUT: u16 = POLLOUT | POLLWRNORM;
        match &self.kind {
            FileKind::Console => {
                let input = if crate::tty::readable() { IN } else { 0 };
                input | OUT
            }
            FileKind::PipeRead(p) => {
                let (len, _, _, writers) = p.poll_state();
                (if len > 0 { IN } else { 0 }) | (if writers == 0 { POLLHUP } else { 0 })
            }
            FileKind::PipeWrite(p) => {
                let (_, space, readers, _) = p.poll_state();
                (if space > 0 { OUT } else { 0 }) | (if readers == 0 { POLLERR } else { 0 })
            }
            FileKind::Inode(_)
            | FileKind::Null
            | FileKind::Zero
            | FileKind::Random(_)
            | FileKind::Snapshot(_) => IN | OUT,
        }
    }
}
