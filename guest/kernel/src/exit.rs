//! How a process ends (OSTEP 5: exit and wait): what it holds goes back at once (memory, open
//! files: pipes it wrote to see end-of-file), it stays a zombie until its parent reaps it with
//! wait4, and its children are handed to pid 1, which reaps them. Its parent hears of it by
//! SIGCHLD. When pid 1 ends, the machine powers off with its status, as init's death would.

use core::sync::atomic::Ordering::Relaxed;

use crate::percpu::current;
use crate::process::{Process, State, Tasks, Wait, TASKS};
use crate::scheduler;
use crate::signal::send;
use crate::signal::state;
use crate::signal::state::{CLD_EXITED, CLD_KILLED};
use crate::wakeup;
use kcore::runqueue::NIL;

/// `Process::group_exit`: the whole group is ending (exit_group, a fatal signal), with the wait
/// status in the low 16 bits.
pub const GROUP_EXIT: u32 = 1 << 31;
/// `Process::group_exit`: one thread is in execve, waiting for the others to go; its slot in
/// the low bits.
pub const GROUP_EXEC: u32 = 1 << 30;

/// Ends the running task's whole process (exit_group, a fatal signal, a fault) with Linux wait
/// status `wait_status` (exit code << 8, or a signal), and runs something else: every other
/// thread of the group is sent SIGKILL and the last one out reports the group's status.
pub fn exit_current(wait_status: u32) {
    let me = current();
    {
        let mut t = TASKS.lock();
        if let Some(leader) = t.find_pid(me.tgid()) {
            let g = leader.group_exit.load(Relaxed);
            let execing_elsewhere = g & GROUP_EXEC != 0 && g & 0xffff != me.slot;
            if leader.threads.load(Relaxed) > 1 && g & GROUP_EXIT == 0 && !execing_elsewhere {
                leader
                    .group_exit
                    .store(GROUP_EXIT | (wait_status & 0xffff), Relaxed);
                kill_other_threads(&mut t, me);
            }
        }
    }
    exit_thread(wait_status)
}

/// SIGKILL to every other live thread of `me`'s group (a group exit, or an execve).
pub fn kill_other_threads(t: &mut Tasks, me: &Process) {
    let tgid = me.tgid();
    for slot in 0..t.slot_count() {
        let p = t.get(slot);
        if p.tgid() == tgid && !core::ptr::eq(p, me) {
            let sig = abi::signal::SIGKILL;
            send::post(t, p, sig, state::SigInfo::kernel(sig));
        }
    }
}

/// Ends the running thread (exit, 60): its robust futexes and clear-child-tid word are let go,
/// and if it was the last of its group, the process ends (`process_ended`).
pub fn exit_thread(wait_status: u32) {
    let me = current();
    me.wait_status.store(wait_status, Relaxed);
    if crate::trace_events::on() {
        crate::trace_events::exit(wait_status);
    }
    crate::crash::at_exit();
    crate::futex::exit_cleanup(me);
    release_resources(me);
    let mut t = TASKS.lock();
    // Alarms are kept at the leader and end with the process (`process_ended`); a thread's
    // slot must not leave one armed behind.
    if me.pid() != me.tgid() && me.alarm_at.load(Relaxed) != 0 {
        scheduler::set_alarm(&mut t, me, 0, 0);
    }
    // A vfork parent waits for this exit (or an exec).
    release_vfork_parent(&mut t, me);
    let leader = match t.find_pid(me.tgid()) {
        Some(l) => l,
        None => me, // cannot happen: the leader's slot lives until its last thread is gone
    };
    let left = leader.threads.load(Relaxed).saturating_sub(1);
    leader.threads.store(left, Relaxed);
    let is_leader = core::ptr::eq(me, leader);
    if !is_leader {
        // A thread other than the leader leaves nothing to wait for: its slot goes now and
        // its counters to its process's.
        scheduler::charge_running();
        leader.stats.absorb(&me.stats);
        me.set_state(&mut t, State::Zombie);
        t.release(me);
    } else {
        me.set_state(&mut t, State::Zombie);
    }
    let g = leader.group_exit.load(Relaxed);
    if left > 0 {
        if left == 1 && g & GROUP_EXEC != 0 {
            // The thread in execve is the only one left: it goes on.
            let execer = t.get(g & 0xffff);
            wakeup::wake(&mut t, execer, Wait::Group);
        }
        return scheduler::run_next(t);
    }
    if g & GROUP_EXIT != 0 {
        leader.wait_status.store(g & 0xffff, Relaxed);
    }
    process_ended(t, leader)
}

/// The last thread of `leader`'s process is gone: its children go to pid 1, its parent hears
/// of it (or reaps it at once), and pid 1's end powers the machine off.
fn process_ended(mut t: crate::sync::IrqGuard<'_, Tasks>, leader: &'static Process) {
    let pid = leader.pid();
    // The alarm is the process's (sys/signal.rs keeps it at the leader): it ends with it.
    if leader.alarm_at.load(Relaxed) != 0 {
        scheduler::set_alarm(&mut t, leader, 0, 0);
    }
    if pid == 1 {
        drop(t);
        scheduler::charge_running();
        crate::report::print();
        crate::power::power_off(leader.shell_status() as u8);
    }
    // A session leader's end takes the console from its session and hangs up the
    // foreground group (tty.rs).
    if pid == leader.sid.load(Relaxed) {
        if let Some(pgrp) = crate::tty::session_leader_left(pid) {
            send::post_pgrp(&mut t, pgrp, abi::signal::SIGHUP);
        }
    }
    // Children go to pid 1; those already dead are its to reap now.
    let init = t.find_process(1);
    let mut orphaned_zombie = false;
    // The groups this end may orphan (send::hang_up_if_orphaned): ours, if our parent was
    // its link to the session, and each child's that is not ours. Remembered in a few slots
    // (no allocation on the way out); past them, every group of pid 1's children in our
    // session is looked at, which finds the same ones and perhaps groups orphaned before.
    let (pgid, sid) = (leader.pgid.load(Relaxed), leader.sid.load(Relaxed));
    let own = t
        .find_process(leader.parent.load(Relaxed))
        .is_some_and(|pp| pp.pgid.load(Relaxed) != pgid && pp.sid.load(Relaxed) == sid);
    let mut groups = [0u32; 8];
    let (mut n, mut overflow) = (0, false);
    for slot in 0..t.slot_count() {
        let c = t.get(slot);
        if c.state() != State::Unused && c.parent.load(Relaxed) == pid {
            c.parent.store(1, Relaxed);
            orphaned_zombie |= c.state() == State::Zombie;
            let cg = c.pgid.load(Relaxed);
            let candidate = c.state() != State::Zombie && cg != pgid && c.sid.load(Relaxed) == sid;
            if candidate && !groups[..n].contains(&cg) {
                match groups.get_mut(n) {
                    Some(g) => {
                        *g = cg;
                        n += 1;
                    }
                    None => overflow = true,
                }
            }
        }
    }
    if own {
        send::hang_up_if_orphaned(&mut t, pgid, sid);
    }
    for &g in &groups[..n] {
        send::hang_up_if_orphaned(&mut t, g, sid);
    }
    if overflow {
        for slot in 0..t.slot_count() {
            let c = t.get(slot);
            let cg = c.pgid.load(Relaxed);
            if c.state() != State::Unused
                && c.parent.load(Relaxed) == 1
                && cg != pgid
                && c.sid.load(Relaxed) == sid
            {
                send::hang_up_if_orphaned(&mut t, cg, sid);
            }
        }
    }
    if let (true, Some(init)) = (orphaned_zombie, init) {
        let sig = abi::signal::SIGCHLD;
        send::post_process(&mut t, init, sig, state::SigInfo::kernel(sig));
        send::wake_waiters(&mut t, init);
    }
    let parent = t.find_process(leader.parent.load(Relaxed));
    match parent {
        Some(pp) if !send::parent_reaps_automatically(pp) => {
            let wait_status = leader.wait_status.load(Relaxed);
            let (code, status) = if wait_status & 0x7f != 0 {
                (CLD_KILLED, (wait_status & 0x7f) as i32)
            } else {
                (CLD_EXITED, (wait_status >> 8 & 0xff) as i32)
            };
            send::notify_parent(&mut t, leader, code, status);
        }
        _ => reap(&mut t, leader),
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
    // Threads may share the descriptor table: the last one to go closes the files.
    drop(files);
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
        wakeup::wake(t, parent, Wait::Vfork);
    }
}

/// Frees the slot of a dead process (its resources are already gone), keeping it for the
/// report.
pub fn reap(t: &mut Tasks, p: &'static Process) {
    crate::report::remember(p);
    t.release(p);
    t.trim_spare_stacks(current().slot);
}
