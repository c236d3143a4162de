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
//!
//! Three files, in layers: `state` is what a process holds (handlers, pending details, the
//! alternate stack: process.rs keeps them); `send` is posting, which only marks and wakes
//! (wakeup.rs), so the scheduler and every blocking object may send; `deliver` is taking,
//! which may end the process (exit.rs) or build a frame on its stack.

pub mod deliver;
pub mod send;
pub mod state;
