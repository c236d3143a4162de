//! How a task becomes runnable again (xv6's wakeup): onto the ready queue's tail, out of a wait
//! queue or the sleepers' list, and the timer armed for whatever comes first. Signals
//! (signal/send.rs) and every blocking object (pipes, the terminal, futexes, poll) wake tasks
//! through these; choosing which task runs is the scheduler's (scheduler.rs).
//!
//! Every function takes the `TASKS` guard (`&mut Tasks`): the queues live there.

use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use crate::cpu::rdtsc;
use crate::percpu;
use crate::process::{Process, State, Tasks, Wait, TASKS};
use crate::timer;
use abi::Errno;
use kcore::runqueue::{Links, NIL};

/// Publishes the queues' lengths for the tick's lock-free fast path.
#[inline]
pub fn publish(t: &Tasks) {
    let cpu = percpu::this();
    cpu.nready.set(t.ready.len());
    // Alarms need the timer's slow path as sleepers do.
    cpu.nsleepers.set(t.nsleepers + t.nalarms);
}

/// Makes a new or woken task runnable.
pub fn make_ready(t: &mut Tasks, p: &'static Process) {
    p.set_state(t, State::Ready);
    let (q, mut links) = t.ready_queue();
    q.push_back(&mut links, p.slot);
    publish(t);
    // The first task to wait for the CPU while another runs: the running one must now give way
    // when its slice ends, so a tickless timer starts ticking. Without this a task woken by a
    // running one (a pipe's reader, a forked child) waited until that one blocked or exited.
    if t.ready.len() == 1 && percpu::this().running.get() && timer::TIMER.next_tick.get() == 0 {
        program_timer(t, rdtsc());
    }
}

/// Arms the timer for the next tick (if tasks compete) or the earliest sleeper.
pub fn program_timer(t: &Tasks, now: u64) {
    timer::program(now, !t.ready.is_empty(), earliest_sleeper(t));
}

/// The first deadline to come: a sleeper's or an alarm's.
fn earliest_sleeper(t: &Tasks) -> Option<u64> {
    let links = t.sleep_links();
    let mut at = t.sleepers;
    let mut min: Option<u64> = None;
    while at != NIL {
        let d = t.get(at).sleep_until.load(Relaxed);
        min = Some(min.map_or(d, |m| m.min(d)));
        at = links.next(at);
    }
    if t.nalarms > 0 {
        for p in t.live() {
            let d = p.alarm_at.load(Relaxed);
            if d != 0 {
                min = Some(min.map_or(d, |m| m.min(d)));
            }
        }
    }
    min
}

/// Puts `p` on the sleepers' list until TSC `deadline` (the scheduler then blocks it).
pub fn add_sleeper(t: &mut Tasks, p: &Process, deadline: u64) {
    p.sleep_until.store(deadline.max(1), Relaxed);
    let head = t.sleepers;
    t.sleep_links().set_next(p.slot, head);
    t.sleepers = p.slot;
    t.nsleepers += 1;
    publish(t);
}

/// Takes `p` out of the sleepers' list if it is there.
pub fn unlink_sleeper(t: &mut Tasks, p: &Process) {
    if p.sleep_until.swap(0, Relaxed) == 0 {
        return;
    }
    let mut prev = NIL;
    let mut at = t.sleepers;
    while at != NIL {
        let next = t.sleep_links().next(at);
        if at == p.slot {
            if prev == NIL {
                t.sleepers = next;
            } else {
                t.sleep_links().set_next(prev, next);
            }
            t.nsleepers -= 1;
            publish(t);
            return;
        }
        prev = at;
        at = next;
    }
}

/// Takes `p` out of the wait queue it is in, if any.
pub fn leave_queue(t: &mut Tasks, p: &Process) {
    let q = p.waiting_in.swap(NIL, Relaxed);
    if q != NIL {
        let (queue, mut links) = t.queue(q);
        queue.remove(&mut links, p.slot);
    }
}

/// Wakes every task waiting in queue `q`.
pub fn wake_all(t: &mut Tasks, q: u32) {
    while wake_one(t, q).is_some() {}
}

/// Wakes the task that has waited longest in queue `q`, if any, and returns it.
pub fn wake_one(t: &mut Tasks, q: u32) -> Option<&'static Process> {
    let p = take_waiter(t, q)?;
    make_ready(t, p);
    Some(p)
}

/// The task that has waited longest in queue `q`, left there.
pub fn first_waiter(t: &mut Tasks, q: u32) -> Option<&'static Process> {
    let slot = t.queue(q).0.front()?;
    Some(t.get(slot))
}

/// Takes the task that has waited longest in queue `q` out of it, still blocked: the caller
/// completes its call and makes it ready. Inlined: a pipe's writer takes its reader this way
/// on every hand-over.
#[inline(always)]
pub fn take_waiter(t: &mut Tasks, q: u32) -> Option<&'static Process> {
    let (queue, mut links) = t.queue(q);
    let slot = queue.pop_front(&mut links)?;
    let p = t.get(slot);
    p.waiting_in.store(NIL, Relaxed);
    unlink_sleeper(t, p);
    Some(p)
}

/// Wakes `p`, which the caller took out of its wait queue (a futex wake, futex.rs): off the
/// sleepers' list too, and ready.
pub fn wake_taken(t: &mut Tasks, p: &'static Process) {
    p.waiting_in.store(NIL, Relaxed);
    unlink_sleeper(t, p);
    make_ready(t, p);
}

/// Moves `p`, which the caller took out of its wait queue, to the end of queue `q`, still
/// blocked (a futex requeue).
pub fn move_taken(t: &mut Tasks, p: &'static Process, q: u32) {
    p.waiting_in.store(q, Relaxed);
    let (queue, mut links) = t.queue(q);
    queue.push_back(&mut links, p.slot);
}

/// Wakes `p` if it is blocked for `why`.
pub fn wake(t: &mut Tasks, p: &'static Process, why: Wait) {
    if p.state() == State::Blocked(why) {
        make_ready(t, p);
    }
}

/// Ends whatever `p` waits for (a signal came, signal/send.rs): out of its wait queue or the
/// sleepers' list, and ready. Its blocked call then restarts or fails, as `restart` says.
pub fn interrupt(t: &mut Tasks, p: &'static Process) {
    match p.state() {
        State::Blocked(_) | State::Stopped => {}
        _ => return,
    }
    leave_queue(t, p);
    unlink_sleeper(t, p);
    p.poll_rip.store(0, Relaxed); // an interrupted poll that runs again starts a new wait
    make_ready(t, p);
}

/// The pollers' wait queue (sys/poll.rs): one for every poll and select, woken by whatever
/// changes a file's answer (`wake_pollers`). NIL before `init_poll_queue`.
static POLL_QUEUE: AtomicU32 = AtomicU32::new(NIL);

pub fn init_poll_queue() -> Result<(), Errno> {
    let q = TASKS.lock().alloc_queue().map_err(|_| Errno::ENOMEM)?;
    POLL_QUEUE.store(q, Relaxed);
    Ok(())
}

pub fn poll_queue() -> u32 {
    POLL_QUEUE.load(Relaxed)
}

/// Something a poller waits for may have become ready: every poller looks again.
pub fn wake_pollers(t: &mut Tasks) {
    let q = POLL_QUEUE.load(Relaxed);
    if q != NIL {
        wake_all(t, q);
    }
}
