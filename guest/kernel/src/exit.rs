//! How a process ends (OSTEP 5: exit and wait): what it holds goes back at once (memory, open
//! files: pipes it wrote to see end-of-file), it stays a zombie until its parent reaps it with
//! wait4, and its children are handed to pid 1, which reaps them. Its parent hears of it by
//! SIGCHLD. When pid 1 ends, the machine powers off with its status, as init's death would.

use core::sync::atomic::Ordering::Relaxed;

use crate::percpu::current;
use crate::process::{Process, State, Tasks, Wait, TASKS};
use crate::scheduler;
use crate::signal::{self, CLD_EXITED, CLD_KILLED};
use kcore::runqueue::NIL;

/// Ends the running process with Linux wait status `wait_status` (exit code << 8, or a signal)
/// and runs something else.
pub fn exit_current(wait_status: u32) {
    let me = current();
    me.wait_status.store(wait_status, Relaxed);
    // set_tid_address / CLONE_CHILD_CLEARTID: the tid word goes to 0 (threads wait on it).
    let ctid = me.clear_tid.swap(0, Relaxed);
    if ctid != 0 {
        let _ = crate::uaccess::copy_to_user(me.pml4(), ctid, &0u32.to_le_bytes());
    }
    release_resources(me);
    let mut t = TASKS.lock();
    if me.alarm_at.load(Relaxed) != 0 {
        scheduler::set_alarm(&mut t, me, 0, 0);
    }
    me.set_state(&mut t, State::Zombie);
    let pid = me.pid();
    if pid == 1 {
        drop(t);
        scheduler::charge_running();
        crate::report::print();
        crate::power::power_off(me.shell_status() as u8);
    }
    // A vfork parent waits for this exit (or an exec).
    release_vfork_parent(&mut t, me);
    // Children go to pid 1; those already dead are its to reap now.
    let init = t.find_pid(1);
    let mut orphaned_zombie = false;
    for slot in 0..t.slot_count() {
        let c = t.get(slot);
        if c.state() != State::Unused && c.parent.load(Relaxed) == pid {
            c.parent.store(1, Relaxed);
            orphaned_zombie |= c.state() == State::Zombie;
        }
    }
    if let (true, Some(init)) = (orphaned_zombie, init) {
        let sig = abi::signal::SIGCHLD;
        signal::post(&mut t, init, sig, signal::SigInfo::kernel(sig));
        scheduler::wake(&mut t, init, Wait::Child);
    }
    let parent = t.find_pid(me.parent.load(Relaxed));
    match parent {
        Some(pp) if !signal::parent_reaps_automatically(pp) => {
            let (code, status) = if wait_status & 0x7f != 0 {
                (CLD_KILLED, (wait_status & 0x7f) as i32)
            } else {
                (CLD_EXITED, (wait_status >> 8 & 0xff) as i32)
            };
            signal::notify_parent(&mut t, me, code, status);
        }
        _ => reap(&mut t, me),
    }
    scheduler::run_next(t)
}

/// Gives back what a dying process holds. Outside the task lock: closing files wakes others.
fn release_resources(me: &Process) {
    scheduler::enter_kernel_address_space();
    let old_mm = me.set_mm(None);
    let (files, handlers) = {
        let mut r = me.res.lock();
        (r.files.take(), r.handlers.take())
    };
    if let Some(files) = files {
        let fds = files.0.lock().take_all();
        drop(fds);
    }
    drop(handlers);
    drop(old_mm);
    let cwd = me.cwd.swap(kcore::fs::ROOT, Relaxed);
    let exe = me.exe.swap(crate::process::NO_EXE, Relaxed);
    let mut fs = crate::fs::fs();
    fs.release(cwd);
    if exe != crate::process::NO_EXE {
        fs.release(exe);
    }
}

/// The vfork child `child` exec'd or exited: its parent runs again.
pub fn release_vfork_parent(t: &mut Tasks, child: &Process) {
    let slot = child.vfork_parent.swap(NIL, Relaxed);
    if slot != NIL {
        let parent = t.get(slot);
        scheduler::wake(t, parent, Wait::Vfork);
    }
}

/// Frees the slot of a dead process (its resources are already gone), keeping it for the
/// report.
pub fn reap(t: &mut Tasks, p: &'static Process) {
    crate::report::remember(p);
    t.release(p);
}
