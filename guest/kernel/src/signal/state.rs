//! What a signal is to a process: the numbers and flags, the handlers, the details of a pending
//! signal, the alternate stack. Data only: process.rs holds it.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::karc::Karc;
use crate::memory::paging::OutOfMemory;
use crate::sync::IrqLock;
use abi::signal::*;

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
pub const STOP_SIGNALS: u64 = bit(SIGSTOP) | bit(SIGTSTP) | bit(SIGTTIN) | bit(SIGTTOU);

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
