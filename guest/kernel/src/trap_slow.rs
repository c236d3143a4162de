//! The slow trap exit: what only a complete trap frame allows, on the way back to ring 3.
//!
//! The common exits restore nine registers and `iretq` (trap_entry.rs). When a trap handler
//! asks for more (`percpu::WORK_SLOW`), or a task with signals to take is switched in, the entry
//! code first makes the frame whole (all sixteen registers) and comes here:
//! 1. a system call that needs the whole register set, left here by the dispatcher: fork and
//!    clone (the child starts from a copy of the frame), execve (which replaces all of it),
//!    rt_sigreturn (which restores all of it);
//! 2. the signals the task can take (signal/deliver.rs): a handler's frame, or a default action, which
//!    may end or stop the task.
//!
//! Then the entry code reloads the registers from the frame (they may have changed) and returns,
//! or leaves through the context switch if one was prepared.

use crate::percpu::{self, NO_SYSCALL, RESUMED, WORK_SWITCH};
use crate::scheduler;
use crate::signal::deliver;
use crate::signal::state;
use crate::sys::{self, SysResult};
use crate::trap_frame::TrapFrame;
use abi::syscall::nr;

/// `f` is the task's complete frame; `work` the trap handler's `WORK_*` bits, or `RESUMED`.
/// Returns whether to leave through the context switch.
#[no_mangle]
extern "C" fn trap_slow(f: &mut TrapFrame, work: u32) -> bool {
    let cpu = percpu::this();
    let restart = if work & RESUMED != 0 {
        cpu.resume_restart.replace(state::RESTART_NONE)
    } else {
        state::RESTART_NONE
    };
    let mut switching = work & WORK_SWITCH as u32 != 0;
    let nr = cpu.deferred_syscall.replace(NO_SYSCALL);
    if nr != NO_SYSCALL {
        if crate::syscall::recording() {
            crate::trace_events::take_back_deferred_end();
        }
        let r = run_full(f, nr);
        f.rax = sys::raw(r) as u64;
        if crate::syscall::tracing() {
            crate::syscall::deferred_result(nr, f.rax);
        }
    }
    switching |= scheduler::take_work() & WORK_SWITCH != 0;
    if !switching {
        deliver::deliver(f, restart);
        deliver::restore_suspend_mask();
        switching = scheduler::take_work() & WORK_SWITCH != 0;
    }
    switching
}

/// The system calls that need the whole register set.
fn run_full(f: &mut TrapFrame, nr: u64) -> SysResult {
    match nr as usize {
        nr::FORK => sys::process::sys_fork(f),
        nr::VFORK => sys::process::sys_vfork(f),
        nr::CLONE => sys::process::sys_clone(f),
        nr::EXECVE => sys::exec::sys_execve(f),
        nr::RT_SIGRETURN => sys::signal::sys_rt_sigreturn(f),
        _ => Err(abi::Errno::ENOSYS),
    }
}
