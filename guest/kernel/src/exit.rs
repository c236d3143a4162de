//! How a process ends (OSTEP 5: exit and wait): its memory goes back at once, it stays a zombie
//! until its parent reaps it with wait4, and its own children are orphaned. When pid 1 ends, the
//! machine powers off with its status, as init's death would.

use core::sync::atomic::Ordering::Relaxed;

use crate::memory::paging;
use crate::percpu::current;
use crate::process::{State, Tasks, Wait, TASKS};
use crate::scheduler;

/// Ends the running process with Linux wait status `wait_status` (exit code << 8, or a signal)
/// and runs something else.
pub fn exit_current(wait_status: u32) {
    let me = current();
    me.wait_status.store(wait_status, Relaxed);
    scheduler::enter_kernel_address_space();
    paging::free_address_space(me.pml4());
    me.pml4.store(paging::kernel_pml4(), Relaxed);
    let mut t = TASKS.lock();
    me.set_state(&mut t, State::Zombie);
    let pid = me.pid();
    if pid == 1 {
        drop(t);
        scheduler::charge_running();
        crate::report::print();
        crate::power::power_off(me.shell_status() as u8);
    }
    // Orphans are reaped as they exit; the ones already dead are reaped now.
    for slot in 0..t.slot_count() {
        let p = t.get(slot);
        if p.state() != State::Unused && p.parent.load(Relaxed) == pid {
            p.parent.store(0, Relaxed);
            if p.state() == State::Zombie {
                reap(&mut t, p);
            }
        }
    }
    let parent = me.parent.load(Relaxed);
    match t.find_pid(parent) {
        Some(pp) if parent != 0 => scheduler::wake(&mut t, pp, Wait::Child),
        _ => reap(&mut t, me),
    }
    scheduler::run_next(t)
}

/// Frees the slot of a dead process (its memory is already gone), keeping it for the report.
pub fn reap(t: &mut Tasks, p: &'static crate::process::Process) {
    crate::report::remember(p);
    t.release(p);
}
