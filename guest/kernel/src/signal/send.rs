//! Sending a signal: mark it pending, then wake the target if it can take it now, or stop or
//! continue its group at once (SIGSTOP, SIGCONT). Also who is told when a child changes
//! state, and which process groups are orphaned.

use core::sync::atomic::Ordering::Relaxed;

use crate::percpu::{self, current};
use crate::process::{Process, State, Tasks, Wait, TASKS};
use crate::signal::state::{
    bit, SigInfo, CLD_CONTINUED, CLD_STOPPED, SA_NOCLDSTOP, SA_NOCLDWAIT, SIG_DFL, SIG_IGN,
    STOP_SIGNALS,
};
use crate::wakeup;
use abi::signal::*;

/// Linux's kill_orphaned_pgrp: a process's end can orphan a process group, its own (if its
/// parent was the group's link to the session) or a child's (if it was that). An orphaned
/// group with a stopped member could never be continued by job control, so it is sent SIGHUP
/// and then SIGCONT. Called for each such group of session `sid` once the process is a zombie
/// and its children have gone to pid 1 (which does not count as a link).
pub fn hang_up_if_orphaned(t: &mut Tasks, pgid: u32, sid: u32) {
    if !group_is_orphaned_in(t, pgid, sid) {
        return;
    }
    if !t
        .live()
        .any(|m| m.pgid.load(Relaxed) == pgid && m.state() == State::Stopped)
    {
        return;
    }
    post_pgrp(t, pgid, abi::signal::SIGHUP);
    post_pgrp(t, pgid, SIGCONT);
}

/// Sends `sig` to every live process of group `pgid`, as the kernel (SI_KERNEL): the
/// terminal's signal keys and job control, and the hang-up of an orphaned group.
pub fn post_pgrp(t: &mut Tasks, pgid: u32, sig: u32) {
    for slot in 0..t.slot_count() {
        let p = t.get(slot);
        if p.pgid.load(Relaxed) == pgid && !matches!(p.state(), State::Unused | State::Zombie) {
            post(t, p, sig, SigInfo::kernel(sig));
        }
    }
}

/// Whether `p` ignores `sig` by SIG_IGN or blocks it (the terminal's job control asks this of
/// SIGTTIN and SIGTTOU, as Linux does).
pub fn ignored_or_blocked(p: &Process, sig: u32) -> bool {
    p.sig_blocked.load(Relaxed) & bit(sig) != 0
        || p.handlers().is_none_or(|h| h.get(sig).handler == SIG_IGN)
}

/// Whether `sig` would be thrown away by `p` (ignored, explicitly or by default).
fn ignored(p: &Process, sig: u32) -> bool {
    let Some(h) = p.handlers() else {
        return true;
    };
    let a = h.get(sig);
    a.handler == SIG_IGN || (a.handler == SIG_DFL && default_action(sig) == DefaultAction::Ignore)
}

/// Signals `p` can take now.
#[inline]
pub fn deliverable(p: &Process) -> u64 {
    let pending = p.sig_pending.load(Relaxed);
    pending & (!p.sig_blocked.load(Relaxed) | bit(SIGKILL))
}

/// Sends `sig` to `p` (kill, a pipe's SIGPIPE, a child's SIGCHLD, a fault). Signal 0 and dead
/// processes do nothing.
pub fn post(t: &mut Tasks, p: &'static Process, sig: u32, info: SigInfo) {
    if sig == 0 || sig > NSIG {
        return;
    }
    let state = p.state();
    if matches!(state, State::Zombie | State::Unused | State::Embryo) {
        return;
    }
    if sig == SIGCONT {
        continue_group(t, p);
    } else if STOP_SIGNALS & bit(sig) != 0 {
        p.sig_pending.fetch_and(!bit(SIGCONT), Relaxed);
    }
    // A blocked signal is kept even if ignored now, as on Linux: its disposition may change
    // before it is unblocked (and `deliver` drops it if it is still ignored then).
    if sig != SIGKILL && p.sig_blocked.load(Relaxed) & bit(sig) == 0 && ignored(p, sig) {
        return;
    }
    let b = bit(sig);
    if p.sig_pending.fetch_or(b, Relaxed) & b == 0 {
        p.sig.lock().info[sig as usize - 1] = info;
    }
    if deliverable(p) & b != 0 {
        kick(t, p, sig);
    }
}

/// SIGCONT, sent to any thread of a process, continues all of them (a stop is the whole
/// group's, as on Linux) and drops the stops still pending; the parent hears of it once.
fn continue_group(t: &mut Tasks, p: &'static Process) {
    let tgid = p.tgid();
    let mut continued = false;
    for slot in 0..t.slot_count() {
        let q = t.get(slot);
        if q.tgid() != tgid || matches!(q.state(), State::Zombie | State::Unused | State::Embryo) {
            continue;
        }
        q.sig_pending.fetch_and(!STOP_SIGNALS, Relaxed);
        q.group_stop.store(false, Relaxed);
        if q.state() == State::Stopped {
            wakeup::make_ready(t, q);
            continued = true;
        }
    }
    if continued {
        let leader = t.find_pid(tgid).unwrap_or(p);
        leader.stop_report.store(0xffff, Relaxed);
        notify_parent(t, leader, CLD_CONTINUED, SIGCONT as i32);
    }
}

/// Sends `sig` to the process (thread group) that `p` leads, as kill does: one of its threads
/// takes it, the first that does not block it (the leader first), as Linux picks one.
pub fn post_process(t: &mut Tasks, p: &'static Process, sig: u32, info: SigInfo) {
    if p.threads.load(Relaxed) <= 1 {
        return post(t, p, sig, info);
    }
    let tgid = p.tgid();
    let live = |q: &Process| !matches!(q.state(), State::Zombie | State::Unused | State::Embryo);
    let takes = |q: &Process| sig == SIGKILL || q.sig_blocked.load(Relaxed) & bit(sig) == 0;
    // If every thread blocks it, it waits at the leader (alive, or the first live thread) for
    // a thread to unblock it (`adopt_process_signals`).
    let mut fallback = live(p).then_some(p);
    let chosen = 'find: {
        if live(p) && takes(p) {
            break 'find Some(p);
        }
        for slot in 0..t.slot_count() {
            let q = t.get(slot);
            if q.tgid() == tgid && live(q) {
                if takes(q) {
                    break 'find Some(q);
                }
                fallback.get_or_insert(q);
            }
        }
        None
    };
    post(t, chosen.or(fallback).unwrap_or(p), sig, info);
}

/// Moves to thread `p` the signals pending at its leader that the leader blocks and `p` does
/// not: Linux keeps them pending for the whole process, for whichever thread unblocks first.
fn adopt_process_signals(p: &'static Process) {
    let mut t = TASKS.lock();
    let Some(leader) = t.find_pid(p.tgid()) else {
        return;
    };
    let mut stranded = leader.sig_pending.load(Relaxed)
        & leader.sig_blocked.load(Relaxed)
        & !p.sig_blocked.load(Relaxed);
    while stranded != 0 {
        let sig = stranded.trailing_zeros() + 1;
        stranded &= stranded - 1;
        leader.sig_pending.fetch_and(!bit(sig), Relaxed);
        let info = leader.sig.lock().info[sig as usize - 1];
        post(&mut t, p, sig, info);
    }
}

/// Wakes every thread of the process `p` leads that waits for a child (wait4, waitid).
pub fn wake_waiters(t: &mut Tasks, p: &'static Process) {
    if p.threads.load(Relaxed) <= 1 {
        return wakeup::wake(t, p, Wait::Child);
    }
    let tgid = p.tgid();
    for slot in 0..t.slot_count() {
        let q = t.get(slot);
        if q.tgid() == tgid {
            wakeup::wake(t, q, Wait::Child);
        }
    }
}

/// Makes `p` take a signal soon: the running task at its next trap exit, a blocked one by
/// waking it (its system call then restarts or fails with EINTR), a stopped one only for
/// SIGKILL.
fn kick(t: &mut Tasks, p: &'static Process, sig: u32) {
    let cpu = percpu::this();
    match p.state() {
        State::Running if cpu.running.get() && core::ptr::eq(current(), p) => {
            cpu.work.set(cpu.work.get() | percpu::WORK_SLOW);
        }
        State::Blocked(Wait::Vfork | Wait::Group) | State::Stopped if sig == SIGKILL => {
            wakeup::interrupt(t, p)
        }
        State::Blocked(Wait::Vfork | Wait::Group) | State::Stopped => {}
        State::Blocked(_) => wakeup::interrupt(t, p),
        _ => {}
    }
}

/// Tells `child`'s parent that it exited, was killed, stopped or continued: SIGCHLD (unless the
/// parent asked not to hear of stops), and a wake-up if it waits.
pub fn notify_parent(t: &mut Tasks, child: &Process, code: i32, status: i32) {
    let Some(parent) = t.find_process(child.parent.load(Relaxed)) else {
        return;
    };
    let stopping = code == CLD_STOPPED || code == CLD_CONTINUED;
    let nocldstop = parent
        .handlers()
        .is_some_and(|h| h.get(SIGCHLD).flags & SA_NOCLDSTOP != 0);
    if !(stopping && nocldstop) {
        let info = SigInfo {
            signo: SIGCHLD,
            code,
            pid: child.pid(),
            status,
            ..SigInfo::default()
        };
        post_process(t, parent, SIGCHLD, info);
    }
    wake_waiters(t, parent);
}

/// Whether the parent of an exiting child lets it vanish at once (SIGCHLD ignored, or
/// SA_NOCLDWAIT): then there is no zombie to wait for.
pub fn parent_reaps_automatically(parent: &Process) -> bool {
    parent.handlers().is_some_and(|h| {
        let a = h.get(SIGCHLD);
        a.handler == SIG_IGN || a.flags & SA_NOCLDWAIT != 0
    })
}

/// A fault in ring 3 (#PF, #GP, #DE, #UD, #BP...): its signal goes to the task's handler if it
/// has one and does not block it; otherwise the task dies of it, as Linux's force_sig does, with
/// one console line. Returns whether the task goes on (to its handler).
pub fn fault(sig: u32, info: SigInfo) -> bool {
    let p = current();
    let handled = p.handlers().is_some_and(|h| {
        let a = h.get(sig);
        a.handler != SIG_DFL && a.handler != SIG_IGN
    });
    if handled && p.sig_blocked.load(Relaxed) & bit(sig) == 0 {
        let mut t = TASKS.lock();
        post(&mut t, p, sig, info);
        return true;
    }
    false
}

/// Whether `p`'s process group is orphaned (POSIX): no living member has a parent in another
/// group of the same session. As in Linux, a parent that is pid 1 does not count.
pub fn group_is_orphaned(p: &Process) -> bool {
    let t = TASKS.lock();
    group_is_orphaned_in(&t, p.pgid.load(Relaxed), p.sid.load(Relaxed))
}

/// `group_is_orphaned` for group `pgid` of session `sid`, the table already held.
pub fn group_is_orphaned_in(t: &Tasks, pgid: u32, sid: u32) -> bool {
    let has_outside_parent = t.live().any(|m| {
        let parent = m.parent.load(Relaxed);
        m.pgid.load(Relaxed) == pgid
            && m.state() != State::Zombie
            && parent != 1
            && t.find_process(parent)
                .is_some_and(|pp| pp.pgid.load(Relaxed) != pgid && pp.sid.load(Relaxed) == sid)
    });
    !has_outside_parent
}

/// After the running task's mask changed: if that made a pending signal deliverable, take it
/// at this trap exit. A thread also takes over the signals sent to its process that wait at
/// the leader because every thread blocked them (`post_process`).
pub fn note_unblocked(p: &Process) {
    if !p.is_leader() {
        adopt_process_signals(current());
    }
    if deliverable(p) != 0 {
        let cpu = percpu::this();
        cpu.work.set(cpu.work.get() | percpu::WORK_SLOW);
    }
}
