//! Signals (signal(7)): how they are sent, what they do by default, and how a handler is run and
//! returned from, exactly as Linux x86-64 does it, so the C libraries' restorers work unmodified.
//!
//! Sending (`post`) sets a bit in the target's pending set and, if the signal can be taken now,
//! wakes the target from any interruptible wait. Taking a signal happens only on the way back
//! to ring 3, in the slow trap exit (trap_slow.rs), where the whole register set is in the trap
//! frame: `deliver` runs the default action (terminate, stop, continue, ignore) or builds the
//! signal frame on the user stack (siginfo, ucontext with the registers and the FPU state) and
//! points the frame at the handler, whose return through the restorer calls `rt_sigreturn`.
//! `sigreturn` trusts nothing in that frame: only user-mode state can come back.
//!
//! A blocking system call that is interrupted either restarts (it backed RIP up over its
//! `syscall`, so re-running it is the default) or fails with EINTR, as `restart` says.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::exit;
use crate::gdt::{USER_CODE, USER_DATA};
use crate::karc::Karc;
use crate::memory::paging::{OutOfMemory, USER_END};
use crate::percpu::{self, current};
use crate::process::{Process, State, Tasks, Wait, TASKS};
use crate::scheduler;
use crate::sync::IrqLock;
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_from_user, copy_to_user};
use crate::wakeup;
use abi::signal::*;
use abi::Errno;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;
pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_NOCLDWAIT: u64 = 2;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;
pub const SS_ONSTACK: u32 = 1;
pub const SS_DISABLE: u32 = 2;
pub const MINSIGSTKSZ: u64 = 2048;

/// si_code values.
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_TKILL: i32 = -6;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;

/// How a blocked system call ends if a handler interrupts it (`Process::restart`).
pub const RESTART_NONE: u8 = 0;
/// RIP is backed up over the call: re-run it under SA_RESTART, else fail with EINTR (or
/// return the bytes a write already moved).
pub const RESTART_SYSCALL: u8 = 1;
/// Never restarted (pause, sigsuspend): EINTR.
pub const RESTART_EINTR: u8 = 2;
/// nanosleep: EINTR, and the time left goes to `rem`.
pub const RESTART_SLEEP: u8 = 3;

#[inline(always)]
pub const fn bit(sig: u32) -> u64 {
    1 << (sig - 1)
}

/// What can never be blocked or caught.
pub const UNBLOCKABLE: u64 = bit(SIGKILL) | bit(SIGSTOP);
const STOP_SIGNALS: u64 = bit(SIGSTOP) | bit(SIGTSTP) | bit(SIGTTIN) | bit(SIGTTOU);

/// Linux's `struct sigaction` for rt_sigaction (x86-64 kernel layout).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// The dispositions of signals 1..=64 (index sig - 1), shared by processes that share them,
/// and which of them may differ from the default (bit sig - 1; a superset): exec resets only
/// those instead of visiting all 64.
pub struct SigHandlers(pub IrqLock<[SigAction; 64]>, AtomicU64);

impl SigHandlers {
    pub fn new() -> SigHandlers {
        SigHandlers(
            IrqLock::new("signal handlers", [SigAction::default(); 64]),
            AtomicU64::new(0),
        )
    }

    /// rt_sigaction's change of `sig`'s disposition.
    pub fn set(&self, sig: u32, a: SigAction) {
        self.0.lock()[sig as usize - 1] = a;
        if a != SigAction::default() {
            self.1.fetch_or(bit(sig), Relaxed);
        }
    }

    pub fn get(&self, sig: u32) -> SigAction {
        self.0.lock()[sig as usize - 1]
    }

    /// A copy for a forked child.
    pub fn try_clone(&self) -> Result<Karc<SigHandlers>, OutOfMemory> {
        let copy = *self.0.lock();
        Karc::try_new(SigHandlers(
            IrqLock::new("signal handlers", copy),
            AtomicU64::new(self.1.load(Relaxed)),
        ))
    }

    /// exec: handled signals go back to their default (ignored ones stay ignored).
    pub fn reset_handled(&self) {
        let mut maybe = self.1.load(Relaxed);
        if maybe == 0 {
            return; // every action is the default already
        }
        let mut actions = self.0.lock();
        let mut still = 0;
        while maybe != 0 {
            let i = maybe.trailing_zeros() as usize;
            maybe &= maybe - 1;
            if actions[i].handler != SIG_IGN {
                actions[i] = SigAction::default();
            } else {
                still |= 1 << i;
            }
        }
        self.1.store(still, Relaxed);
    }
}

/// What a signal's sender and cause were, for SA_SIGINFO handlers and waitid.
#[derive(Clone, Copy, Default, Debug)]
pub struct SigInfo {
    pub signo: u32,
    pub code: i32,
    pub pid: u32,
    pub status: i32,
    pub addr: u64,
    /// The exception's vector and error code, for the sigcontext (faults only).
    pub trapno: u64,
    pub err: u64,
}

impl SigInfo {
    pub fn user(sig: u32, from: u32) -> SigInfo {
        SigInfo {
            signo: sig,
            code: SI_USER,
            pid: from,
            ..SigInfo::default()
        }
    }
    pub fn kernel(sig: u32) -> SigInfo {
        SigInfo {
            signo: sig,
            code: SI_KERNEL,
            ..SigInfo::default()
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct AltStack {
    pub sp: u64,
    pub size: u64,
    pub flags: u32,
}

/// A task's own signal state beyond its pending and blocked sets (process.rs).
pub struct TaskSignals {
    /// The pending signal's details, one per signal number (standard signals do not queue).
    pub info: [SigInfo; 64],
    pub altstack: AltStack,
    /// rt_sigsuspend's caller's mask, to restore when the handler returns.
    pub saved_mask: Option<u64>,
}

impl TaskSignals {
    pub const fn new() -> TaskSignals {
        TaskSignals {
            info: [SigInfo {
                signo: 0,
                code: 0,
                pid: 0,
                status: 0,
                addr: 0,
                trapno: 0,
                err: 0,
            }; 64],
            altstack: AltStack {
                sp: 0,
                size: 0,
                flags: SS_DISABLE,
            },
            saved_mask: None,
        }
    }
}

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

/// Takes the current task's deliverable signals on its way back to ring 3 (`f`: its complete
/// trap frame). `restart` says how the system call it was blocked in (if any) ends. Returns
/// whether the task is gone or stopped (a switch is prepared), else its frame now enters the
/// handlers, innermost last.
pub fn deliver(f: &mut TrapFrame, mut restart: u8) -> bool {
    let p = current();
    loop {
        let ready = deliverable(p);
        if ready == 0 {
            return false;
        }
        let sig = if ready & bit(SIGKILL) != 0 {
            SIGKILL
        } else {
            ready.trailing_zeros() + 1
        };
        p.sig_pending.fetch_and(!bit(sig), Relaxed);
        if crate::trace_events::on() {
            crate::trace_events::emit(abi::trace::SIGNAL, p.pid(), [sig as u64]);
        }
        let info = p.sig.lock().info[sig as usize - 1];
        let Some(handlers) = p.handlers() else {
            return false;
        };
        let action = handlers.get(sig);
        if sig == SIGKILL || sig == SIGSTOP || action.handler == SIG_DFL {
            match default_action(sig) {
                DefaultAction::Ignore | DefaultAction::Continue => continue,
                // Nobody would be left to continue an orphaned group: Linux drops the stops
                // that come from the terminal or a user's kill there, all but SIGSTOP.
                DefaultAction::Stop if sig != SIGSTOP && group_is_orphaned(p) => continue,
                DefaultAction::Stop => {
                    stop_current(sig);
                    return true;
                }
                DefaultAction::Terminate | DefaultAction::Core => {
                    exit::exit_current(sig);
                    return true;
                }
            }
        }
        if action.handler == SIG_IGN {
            continue;
        }
        // A handler runs: settle the interrupted system call first (once).
        end_interrupted_syscall(p, f, restart, action.flags & SA_RESTART != 0);
        restart = RESTART_NONE;
        if setup_frame(p, f, sig, &info, &action).is_err() {
            // No room for the frame (a bad stack): Linux's answer is SIGSEGV, uncatchable now.
            crate::println!(
                "kernel: killed pid {} ({}): cannot deliver {} (bad stack at {:#x}) [signal {SIGSEGV}]",
                p.tgid(),
                p.name(),
                name(sig),
                f.rsp
            );
            exit::exit_current(SIGSEGV);
            return true;
        }
        let mut mask = action.mask;
        if action.flags & SA_NODEFER == 0 {
            mask |= bit(sig);
        }
        p.sig_blocked.fetch_or(mask & !UNBLOCKABLE, Relaxed);
        if action.flags & SA_RESETHAND != 0 {
            handlers.0.lock()[sig as usize - 1] = SigAction::default();
        }
    }
}

/// A handler is about to run over a blocked system call: restart it (SA_RESTART), or make it
/// return EINTR, or the bytes a write had already moved.
fn end_interrupted_syscall(p: &Process, f: &mut TrapFrame, restart: u8, sa_restart: bool) {
    match restart {
        RESTART_SYSCALL if sa_restart => {}
        RESTART_SYSCALL => {
            f.rip += 2;
            let done = p.io_progress.swap(0, Relaxed);
            f.rax = if done > 0 {
                done
            } else {
                Errno::EINTR.ret() as u64
            };
        }
        RESTART_EINTR => f.rax = Errno::EINTR.ret() as u64,
        RESTART_SLEEP => {
            f.rax = Errno::EINTR.ret() as u64;
            let rem = p.sleep_rem.swap(0, Relaxed);
            if rem != 0 {
                let left = p
                    .sleep_deadline
                    .load(Relaxed)
                    .saturating_sub(crate::cpu::rdtsc());
                let ns = crate::time::cycles_to_ns(left);
                let mut ts = [0u8; 16];
                ts[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
                ts[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
                let _ = copy_to_user(p.pml4(), rem, &ts);
            }
        }
        _ => {}
    }
}

/// Stops the current task's whole process (SIGSTOP, SIGTSTP...) until SIGCONT, telling its
/// parent once. The thread that takes the signal stops the others: each is sent SIGSTOP
/// marked as the group's (`group_stop`), and stops quietly when it takes it.
pub fn stop_current(sig: u32) {
    let mut t = TASKS.lock();
    let p = current();
    let follower = p.group_stop.swap(false, Relaxed);
    p.set_state(&mut t, State::Stopped);
    if !follower {
        let tgid = p.tgid();
        let leader = t.find_pid(tgid).unwrap_or(p);
        if leader.threads.load(Relaxed) > 1 {
            for slot in 0..t.slot_count() {
                let q = t.get(slot);
                let live = !matches!(
                    q.state(),
                    State::Zombie | State::Unused | State::Embryo | State::Stopped
                );
                if q.tgid() == tgid && live {
                    q.group_stop.store(true, Relaxed);
                    post(&mut t, q, SIGSTOP, SigInfo::kernel(SIGSTOP));
                }
            }
        }
        leader.stop_report.store((sig << 8) | 0x7f, Relaxed);
        notify_parent(&mut t, leader, CLD_STOPPED, sig as i32);
    }
    scheduler::run_next(t)
}

// The signal frame, as Linux x86-64 lays it out (arch/x86/include/uapi/asm/sigcontext.h,
// ucontext.h, siginfo.h). The handler starts with RSP at `RtSigFrame`, whose first word is the
// return address: the restorer, which calls rt_sigreturn with RSP at `uc`.

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SigContext {
    r8: u64,
    r9: u64,
    r10: u64,
    r11: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    rdi: u64,
    rsi: u64,
    rbp: u64,
    rbx: u64,
    rdx: u64,
    rax: u64,
    rcx: u64,
    rsp: u64,
    rip: u64,
    eflags: u64,
    cs: u16,
    gs: u16,
    fs: u16,
    ss: u16,
    err: u64,
    trapno: u64,
    oldmask: u64,
    cr2: u64,
    fpstate: u64,
    reserved: [u64; 8],
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct UContext {
    flags: u64,
    link: u64,
    ss_sp: u64,
    ss_flags: u32,
    _pad: u32,
    ss_size: u64,
    mcontext: SigContext,
    sigmask: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct SigInfoRaw {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    fields: [u64; 14],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct RtSigFrame {
    pretcode: u64,
    uc: UContext,
    info: SigInfoRaw,
}

const _: () = {
    assert!(core::mem::size_of::<SigContext>() == 256);
    assert!(core::mem::size_of::<UContext>() == 304);
    assert!(core::mem::size_of::<SigInfoRaw>() == 128);
    assert!(core::mem::size_of::<RtSigFrame>() == 440);
};

/// uc_flags: the sigcontext's SS is meaningful (what Linux sets for 64-bit frames).
const UC_SIGCONTEXT_SS: u64 = 2;
const UC_STRICT_RESTORE_SS: u64 = 4;
const FPSTATE_SIZE: u64 = 512;

fn bytes_of<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: `T` is one of the `repr(C)` frame structures above, made only of integers with
    // every byte initialised (their padding fields are explicit), so viewing it as bytes is fine.
    unsafe { core::slice::from_raw_parts(v as *const T as *const u8, core::mem::size_of::<T>()) }
}

fn siginfo_raw(info: &SigInfo) -> SigInfoRaw {
    let mut r = SigInfoRaw {
        signo: info.signo as i32,
        errno: 0,
        code: info.code,
        _pad: 0,
        fields: [0; 14],
    };
    if info.addr != 0 {
        r.fields[0] = info.addr; // si_addr
    } else {
        // si_pid, si_uid (0: root); for SIGCHLD si_status after them.
        r.fields[0] = info.pid as u64;
        r.fields[1] = info.status as u32 as u64;
    }
    r
}

fn on_altstack(a: &AltStack, sp: u64) -> bool {
    a.flags & SS_DISABLE == 0 && sp > a.sp && sp <= a.sp + a.size
}

/// Builds the signal frame on the user stack (or the alternate stack) and points `f` at the
/// handler. Fails if the stack cannot hold it.
fn setup_frame(
    p: &Process,
    f: &mut TrapFrame,
    sig: u32,
    info: &SigInfo,
    action: &SigAction,
) -> Result<(), crate::uaccess::Fault> {
    let (altstack, saved_mask) = {
        let mut s = p.sig.lock();
        (s.altstack, s.saved_mask.take())
    };
    let mut sp = f.rsp;
    if action.flags & SA_ONSTACK != 0
        && altstack.flags & SS_DISABLE == 0
        && !on_altstack(&altstack, sp)
    {
        sp = altstack.sp + altstack.size;
    }
    sp = sp.wrapping_sub(128); // the red zone below the interrupted code's stack pointer
    let fpstate = sp.wrapping_sub(FPSTATE_SIZE) & !63;
    let frame_at = (fpstate.wrapping_sub(core::mem::size_of::<RtSigFrame>() as u64) & !15) - 8;

    // The task's FPU registers are live in the CPU (the kernel uses none): save them.
    // SAFETY: the FXSAVE area is the task's own, 16-byte aligned, and unused while it runs.
    unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) p.fpu_ptr(), options(nostack)) };
    // SAFETY: 512 bytes at `fpu_ptr`, just written.
    let fpu = unsafe { core::slice::from_raw_parts(p.fpu_ptr(), FPSTATE_SIZE as usize) };

    let old_mask = saved_mask.unwrap_or_else(|| p.sig_blocked.load(Relaxed));
    let frame = RtSigFrame {
        pretcode: action.restorer,
        uc: UContext {
            flags: UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS,
            link: 0,
            ss_sp: altstack.sp,
            ss_flags: altstack.flags
                | if on_altstack(&altstack, f.rsp) {
                    SS_ONSTACK
                } else {
                    0
                },
            _pad: 0,
            ss_size: altstack.size,
            mcontext: SigContext {
                r8: f.r8,
                r9: f.r9,
                r10: f.r10,
                r11: f.r11,
                r12: f.r12,
                r13: f.r13,
                r14: f.r14,
                r15: f.r15,
                rdi: f.rdi,
                rsi: f.rsi,
                rbp: f.rbp,
                rbx: f.rbx,
                rdx: f.rdx,
                rax: f.rax,
                rcx: f.rcx,
                rsp: f.rsp,
                rip: f.rip,
                eflags: f.rflags,
                cs: USER_CODE,
                gs: 0,
                fs: 0,
                ss: USER_DATA,
                err: info.err,
                trapno: info.trapno,
                oldmask: old_mask,
                cr2: info.addr,
                fpstate,
                reserved: [0; 8],
            },
            sigmask: old_mask,
        },
        info: siginfo_raw(info),
    };
    let pml4 = p.pml4();
    copy_to_user(pml4, fpstate, fpu)?;
    copy_to_user(pml4, frame_at, bytes_of(&frame))?;

    let uc = frame_at + 8;
    let info_at = uc + core::mem::size_of::<UContext>() as u64;
    f.rip = action.handler;
    f.rsp = frame_at;
    f.rdi = sig as u64;
    f.rsi = info_at;
    f.rdx = uc;
    f.rax = 0;
    // The handler starts with the direction and trap flags clear, as the ABI wants.
    f.rflags &= !(RFLAGS_DF | RFLAGS_TF);
    Ok(())
}

const RFLAGS_CF: u64 = 1 << 0;
const RFLAGS_PF: u64 = 1 << 2;
const RFLAGS_AF: u64 = 1 << 4;
const RFLAGS_ZF: u64 = 1 << 6;
const RFLAGS_SF: u64 = 1 << 7;
const RFLAGS_TF: u64 = 1 << 8;
const RFLAGS_IF: u64 = 1 << 9;
const RFLAGS_DF: u64 = 1 << 10;
const RFLAGS_OF: u64 = 1 << 11;
const RFLAGS_RF: u64 = 1 << 16;
const RFLAGS_AC: u64 = 1 << 18;
/// The flags a program may set for itself (Linux's FIX_EFLAGS); IOPL, IF, VM, NT... never.
const USER_FLAGS: u64 = RFLAGS_CF
    | RFLAGS_PF
    | RFLAGS_AF
    | RFLAGS_ZF
    | RFLAGS_SF
    | RFLAGS_TF
    | RFLAGS_DF
    | RFLAGS_OF
    | RFLAGS_RF
    | RFLAGS_AC;

/// rt_sigreturn: back from a handler, the registers, mask and FPU state the frame at `f.rsp`
/// holds. Everything in it is the program's to forge, so only user-mode state is taken: the
/// selectors are ours, RFLAGS keeps only the flags a program may set (IF on, IOPL 0), and a
/// RIP outside user space (non-canonical or in the kernel half, which `iretq` would fault on in
/// ring 0) is refused. Returns the restored rax, or Err: the process is then killed (SIGSEGV).
pub fn sigreturn(f: &mut TrapFrame) -> Result<u64, ()> {
    let p = current();
    let uc_at = f.rsp;
    let mut raw = [0u8; core::mem::size_of::<UContext>()];
    copy_from_user(p.pml4(), &mut raw, uc_at).map_err(|_| ())?;
    let mut uc = UContext::default();
    // SAFETY: `UContext` is plain integers (no invalid bit patterns), and `raw` is its size.
    unsafe {
        core::ptr::copy_nonoverlapping(raw.as_ptr(), &mut uc as *mut UContext as *mut u8, raw.len())
    };
    let m = &uc.mcontext;
    if m.rip >= USER_END || m.rsp >= USER_END {
        return Err(());
    }
    if m.fpstate != 0 {
        let fpu = p.fpu_ptr();
        // SAFETY: the task's own 512-byte FXSAVE area, unused while it runs.
        let area = unsafe { core::slice::from_raw_parts_mut(fpu, FPSTATE_SIZE as usize) };
        copy_from_user(p.pml4(), area, m.fpstate).map_err(|_| ())?;
        // MXCSR's reserved bits would make fxrstor fault in ring 0: keep only the defined ones.
        let mxcsr = u32::from_le_bytes([area[24], area[25], area[26], area[27]]) & 0xffff;
        area[24..28].copy_from_slice(&mxcsr.to_le_bytes());
        // SAFETY: a 16-byte aligned FXSAVE image whose MXCSR is valid; the rest of the image
        // cannot make fxrstor fault.
        unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) fpu, options(nostack)) };
    }
    f.r8 = m.r8;
    f.r9 = m.r9;
    f.r10 = m.r10;
    f.r11 = m.r11;
    f.r12 = m.r12;
    f.r13 = m.r13;
    f.r14 = m.r14;
    f.r15 = m.r15;
    f.rdi = m.rdi;
    f.rsi = m.rsi;
    f.rbp = m.rbp;
    f.rbx = m.rbx;
    f.rdx = m.rdx;
    f.rcx = m.rcx;
    f.rsp = m.rsp;
    f.rip = m.rip;
    f.rflags = (m.eflags & USER_FLAGS) | RFLAGS_IF | 0x2;
    f.cs = USER_CODE as u64;
    f.ss = USER_DATA as u64;
    p.sig_blocked.store(uc.sigmask & !UNBLOCKABLE, Relaxed);
    note_unblocked(p);
    Ok(m.rax)
}

/// rt_sigsuspend's caller's mask comes back when a handler returns (it is in the handler's
/// frame); if no handler ran, it comes back now.
pub fn restore_suspend_mask() {
    let p = current();
    if let Some(m) = p.sig.lock().saved_mask.take() {
        p.sig_blocked.store(m, Relaxed);
    }
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
