//! The scheduler: which task runs next, and when the current one must give up the CPU.
//!
//! Round robin over a FIFO ready queue (`kcore::runqueue`): O(1) to pick, O(1) to requeue. A
//! task gives up the CPU when it yields (sched_yield), blocks (nanosleep, wait4), exits or is
//! killed, or when the timer finds it has used its time slice while another task is ready
//! (preemption, OSTEP 6.3). With nothing to run, the CPU halts with interrupts on until the
//! timer wakes a sleeper.
//!
//! The queues live in `Tasks`, under the `TASKS` lock; the functions that change them take the
//! lock's guard (`&mut Tasks`). Putting a task on them (waking it) is wakeup.rs's, below the
//! signals that wake tasks; this file blocks tasks, rings the sleepers' and alarms' deadlines
//! (alarms send SIGALRM, so they are rung here, above signal/send.rs) and picks the next task.
//! The timer tick's common case (a task runs, nobody else waits) reads only this CPU's atomics
//! (percpu.rs) and takes no lock.
//!
//! Every decision to run another task ends in `prepare_switch`, which tells `context_switch`
//! what to do; the trap handler returns, and its entry stub leaves through the switch into the
//! next task's trap frame instead of returning to the old one.

use core::sync::atomic::Ordering::Relaxed;

use crate::context_switch::context_switch_to_first;
use crate::cpu::rdtsc;
use crate::memory::paging;
use crate::percpu::{self, current};
use crate::process::{Process, State, Tasks, Wait, TASKS};
use crate::timer;
use crate::trap_frame::TrapFrame;
use crate::wakeup;
use kcore::runqueue::{Links, NIL};
use x86_64::registers::model_specific::FsBase;

/// The oldest ready task, out of the queue.
fn pop_ready(t: &mut Tasks) -> Option<&'static Process> {
    let (q, mut links) = t.ready_queue();
    let slot = q.pop_front(&mut links)?;
    wakeup::publish(t);
    Some(t.get(slot))
}

/// Starts the first task (at boot; never returns).
pub fn start() -> ! {
    {
        let mut t = TASKS.lock();
        let Some(next) = pop_ready(&mut t) else {
            panic!("no task to start");
        };
        prepare_switch(&mut t, None, next, rdtsc(), "start");
    }
    percpu::this().work.set(0);
    // SAFETY: `prepare_switch` filled in the switch request for a live task with a complete trap
    // frame; with no old task, nothing is saved.
    unsafe { context_switch_to_first() }
}

/// For the trap handlers: what the trap exit must do (0: just return; `WORK_SWITCH`: the
/// scheduler picked another task; `WORK_SLOW`: the slow exit, trap_slow.rs). Clears it.
#[inline(always)]
pub fn take_work() -> u8 {
    let cpu = percpu::this();
    let w = cpu.work.get();
    cpu.work.set(0);
    w
}

/// sched_yield: let the next ready task run; if there is none, keep running (and touch nothing:
/// the timer already has what it needs).
pub fn yield_now() {
    current().stats.yielded.fetch_add(1, Relaxed);
    if percpu::this().nready.get() == 0 {
        return;
    }
    requeue_current(&mut TASKS.lock(), "yield");
}

/// Timer interrupt: wake sleepers; preempt the running task if its slice is used up and
/// someone else is ready. `from_user`: a task was running (else we were idle). Returns what the
/// trap exit must do.
#[inline(always)]
pub fn timer_interrupt(from_user: bool) -> u8 {
    let at = timer::acknowledge();
    if from_user & (at != 0) {
        let cpu = percpu::this();
        let used = cpu.ticks_used.get() + 1;
        cpu.ticks_used.set(used);
        // The common case, kept short and lock-free: a tick while a task runs and nobody
        // sleeps. Unless its slice is used up and another task waits, re-arm and return.
        let nready = cpu.nready.get();
        if cpu.nsleepers.get() == 0 && (nready == 0 || used < cpu.slice_ticks.get()) {
            timer::rearm_tick(at, nready > 0);
            return take_work();
        }
        return timer_interrupt_slow(from_user, false);
    }
    timer_interrupt_slow(from_user, timer::is_periodic())
}

/// The rest of a timer interrupt; `tick`: a periodic-mode tick not yet charged to the task.
#[cold]
#[inline(never)]
fn timer_interrupt_slow(from_user: bool, tick: bool) -> u8 {
    let cpu = percpu::this();
    if tick && from_user {
        cpu.ticks_used.set(cpu.ticks_used.get() + 1);
    }
    let mut t = TASKS.lock();
    let now = rdtsc();
    // Alarms too: with an alarm armed and nobody asleep, a due alarm must still ring, or the
    // timer is re-armed for a deadline already past, again and again.
    if t.nsleepers + t.nalarms > 0 {
        wake_sleepers(&mut t, now);
    }
    // (Idle: the idle loop looks at the ready queue itself.)
    if from_user {
        if !t.ready.is_empty() && cpu.ticks_used.get() >= cpu.slice_ticks.get() {
            current().stats.preempted.fetch_add(1, Relaxed);
            requeue_current(&mut t, "preempt");
        } else {
            wakeup::program_timer(&t, now);
        }
    }
    drop(t);
    take_work()
}

/// Arms the timer afresh (after its settings changed).
pub fn reprogram_timer() {
    let t = TASKS.lock();
    wakeup::program_timer(&t, rdtsc());
}

/// Moves every sleeper whose deadline has passed to the ready queue, and rings due alarms. A
/// task that also waits in a queue (a wait with a timeout) leaves it, its call returning
/// `timeout_rax`.
fn wake_sleepers(t: &mut Tasks, now: u64) {
    if t.nalarms > 0 {
        ring_alarms(t, now);
    }
    let mut at = t.sleepers;
    while at != NIL {
        let next = t.sleep_links().next(at);
        let p = t.get(at);
        if p.sleep_until.load(Relaxed) <= now {
            wakeup::unlink_sleeper(t, p);
            if p.state() == State::Blocked(Wait::Queue) {
                wakeup::leave_queue(t, p);
                let on_timeout = p.timeout_rax.load(Relaxed);
                if on_timeout != RUN_AGAIN {
                    // SAFETY: `p` is blocked (not running), and we hold TASKS: its frame is ours.
                    let frame = unsafe { p.frame_mut() };
                    frame.rax = on_timeout;
                    // A call that would have run again (RIP backed up over it) is over instead.
                    let was = p.restart.swap(crate::signal::state::RESTART_NONE, Relaxed);
                    if was == crate::signal::state::RESTART_SYSCALL {
                        frame.rip += 2;
                    }
                }
            }
            wakeup::make_ready(t, p);
        }
        at = next;
    }
    wakeup::publish(t);
}

/// SIGALRM for every process whose alarm is due (it is kept at the leader, and goes to the
/// process: the first thread that does not block it); an interval timer is re-armed.
fn ring_alarms(t: &mut Tasks, now: u64) {
    for slot in 0..t.slot_count() {
        let p = t.get(slot);
        let at = p.alarm_at.load(Relaxed);
        if at == 0 || at > now || p.state() == State::Unused {
            continue;
        }
        let every = p.alarm_interval.load(Relaxed);
        if every != 0 {
            p.alarm_at.store(now + every, Relaxed);
        } else {
            p.alarm_at.store(0, Relaxed);
            t.nalarms -= 1;
        }
        let sig = abi::signal::SIGALRM;
        crate::signal::send::post_process(t, p, sig, crate::signal::state::SigInfo::kernel(sig));
    }
    wakeup::publish(t);
}

/// Arms (or disarms, `at` = 0) `p`'s alarm: SIGALRM at TSC `at`, then every `every` cycles.
pub fn set_alarm(t: &mut Tasks, p: &Process, at: u64, every: u64) {
    let was = p.alarm_at.swap(at, Relaxed);
    p.alarm_interval.store(every, Relaxed);
    match (was != 0, at != 0) {
        (false, true) => t.nalarms += 1,
        (true, false) => t.nalarms -= 1,
        _ => {}
    }
    wakeup::publish(t);
    wakeup::program_timer(t, rdtsc());
}

/// Puts the running task at the back of the ready queue and switches to the front one.
fn requeue_current(t: &mut Tasks, why: &'static str) {
    let now = rdtsc();
    if t.ready.is_empty() {
        wakeup::program_timer(t, now);
        return; // nobody else wants the CPU: carry on
    }
    let me = current();
    account(now);
    wakeup::make_ready(t, me);
    let next = pop_ready(t).unwrap_or(me);
    prepare_switch(t, Some(me), next, now, why)
}

/// Blocks the running task until `deadline` (TSC). `restart` says how a signal ends the wait.
pub fn sleep_until(deadline: u64, restart: u8) {
    let mut t = TASKS.lock();
    let me = current();
    me.restart.store(restart, Relaxed);
    wakeup::add_sleeper(&mut t, me, deadline);
    block(t, Wait::Sleep)
}

/// Blocks the running task; it runs again after `wake` (or a sleeper's deadline). Takes the
/// lock's guard: the state change and the choice of the next task are one step.
pub fn block(mut t: crate::sync::IrqGuard<'_, Tasks>, why: Wait) {
    current().set_state(&mut t, State::Blocked(why));
    run_next(t)
}

/// Blocks the running task in a system call that runs again when it wakes: RIP goes back over
/// the 2-byte `syscall` / `int 0x80`, and the caller returns the call's number (rax). A handled
/// signal instead ends it with EINTR, or restarts it under SA_RESTART (signal/deliver.rs).
pub fn block_restartable(t: crate::sync::IrqGuard<'_, Tasks>, f: &mut TrapFrame, why: Wait) {
    f.rip -= 2;
    current()
        .restart
        .store(crate::signal::state::RESTART_SYSCALL, Relaxed);
    block(t, why)
}

/// Blocks the running task in wait queue `q` (a pipe's, the console's); `restart` says how a
/// signal ends the wait (RESTART_SYSCALL also backs RIP up, as `block_restartable`).
pub fn wait_in(t: crate::sync::IrqGuard<'_, Tasks>, f: &mut TrapFrame, q: u32, restart: u8) {
    wait_in_until(t, f, q, restart, None)
}

/// `on_timeout` of a wait whose call runs again at its deadline, as when woken (poll and
/// select, which then see the time is up and answer themselves).
pub const RUN_AGAIN: u64 = u64::MAX;

/// `wait_in` with a deadline (TSC): if it comes first, the task leaves the queue and its call
/// returns `on_timeout` (its raw rax, such as -ETIMEDOUT), or runs again if that is RUN_AGAIN.
pub fn wait_in_until(
    mut t: crate::sync::IrqGuard<'_, Tasks>,
    f: &mut TrapFrame,
    q: u32,
    restart: u8,
    timeout: Option<(u64, u64)>,
) {
    if restart == crate::signal::state::RESTART_SYSCALL {
        f.rip -= 2;
    }
    let me = current();
    me.restart.store(restart, Relaxed);
    me.waiting_in.store(q, Relaxed);
    let (queue, mut links) = t.queue(q);
    queue.push_back(&mut links, me.slot);
    if let Some((deadline, on_timeout)) = timeout {
        me.timeout_rax.store(on_timeout, Relaxed);
        wakeup::add_sleeper(&mut t, me, deadline);
    }
    block(t, Wait::Queue)
}

/// Gives the CPU to the next ready task, halting until there is one. The running task has
/// already left the Running state (blocked, or a zombie).
pub fn run_next(mut t: crate::sync::IrqGuard<'_, Tasks>) {
    let cpu = percpu::this();
    let prev = current();
    account(rdtsc());
    cpu.running.set(false);
    let next = loop {
        if t.nsleepers + t.nalarms > 0 {
            wake_sleepers(&mut t, rdtsc());
        }
        if let Some(next) = pop_ready(&mut t) {
            break next;
        }
        wakeup::program_timer(&t, rdtsc());
        // Interrupts come on while we halt, and the timer's handler takes the lock: let go of
        // it first.
        drop(t);
        let traced = crate::trace_events::on();
        if traced {
            crate::trace_events::idle_begin();
        }
        let idle_start = rdtsc();
        // SAFETY: `sti; hlt` waits for the next interrupt (the timer, armed above for the earliest
        // sleeper); `sti` takes effect after `hlt` starts, so a wake-up cannot slip in between.
        // The interrupt handler runs on this stack and returns here; `cli` restores the
        // interrupts-off discipline before we look at the queues again.
        unsafe { core::arch::asm!("sti", "hlt", "cli", options(nomem, nostack)) };
        cpu.idle_cycles
            .set(cpu.idle_cycles.get() + (rdtsc() - idle_start));
        if traced {
            crate::trace_events::idle_end();
        }
        t = TASKS.lock();
    };
    let why = match prev.state() {
        State::Blocked(Wait::Sleep) => "sleep",
        State::Blocked(Wait::Child) => "wait",
        State::Blocked(Wait::Queue) => "block",
        State::Blocked(Wait::Signal) => "pause",
        State::Blocked(Wait::Vfork) => "vfork",
        State::Blocked(Wait::Group) => "dethread",
        State::Stopped => "stop",
        _ => "exit",
    };
    prepare_switch(&mut t, Some(prev), next, rdtsc(), why)
}

/// Charges the running task its CPU time up to `now`.
fn account(now: u64) {
    let cpu = percpu::this();
    if cpu.running.get() {
        let since = cpu.switched_in_at.get();
        current().stats.cpu_cycles.fetch_add(now - since, Relaxed);
        cpu.switched_in_at.set(now);
    }
}

/// Charges the running task its CPU time up to now (for the report at power-off).
pub fn charge_running() {
    account(rdtsc());
}

/// Prepares the switch from `prev` (None at boot) to `next` (OSTEP figure 6.3), which
/// `context_switch` carries out when the trap handler returns: save the old task's registers and
/// FPU state, load the new task's address space, kernel stack and registers, return from trap
/// into it. The caller has charged `prev` its CPU time.
fn prepare_switch(
    t: &mut Tasks,
    prev: Option<&'static Process>,
    next: &'static Process,
    now: u64,
    why: &'static str,
) {
    // Both ways end in a tail call, so the common one saves no registers.
    if percpu::this().trace_sched.get() {
        return prepare_switch_traced(t, prev, next, now, why);
    }
    switch_to(t, prev, next, now)
}

#[cold]
#[inline(never)]
fn prepare_switch_traced(
    t: &mut Tasks,
    prev: Option<&'static Process>,
    next: &'static Process,
    now: u64,
    why: &'static str,
) {
    if crate::trace_events::on() {
        let from = prev.map_or(0, |p| p.pid());
        crate::trace_events::switch(from, next.pid(), &next.name().0, why);
    }
    if !crate::trace_events::on() || crate::trace_events::sched_lines() {
        trace_switch(prev, next, now, why);
    }
    switch_to(t, prev, next, now)
}

#[inline(never)]
fn switch_to(t: &mut Tasks, prev: Option<&'static Process>, next: &'static Process, now: u64) {
    let cpu = percpu::this();
    // A dead task's registers are not worth saving (and its FPU area may be reused).
    let prev_fpu = match prev.map(|p| (p, p.state())) {
        Some((p, s)) if s != State::Zombie && s != State::Unused => p.fpu_ptr(),
        _ => core::ptr::null_mut(),
    };
    next.set_state(t, State::Running);
    cpu.set_current(next);
    cpu.switched_in_at.set(now);
    cpu.ticks_used.set(0);
    timer::restart_slice();
    cpu.switches.set(cpu.switches.get() + 1);
    let fs = next.fs_base.load(Relaxed);
    if fs != cpu.fs_loaded.get() {
        FsBase::write(x86_64::VirtAddr::new_truncate(fs));
        cpu.fs_loaded.set(fs);
    }
    cpu.work.set(cpu.work.get() | percpu::WORK_SWITCH);
    let s = &cpu.switch;
    s.prev_fpu.set(prev_fpu);
    s.next_fpu.set(next.fpu_ptr());
    s.next_cr3.set(next.pml4());
    s.next_frame.set(next.frame_ptr() as u64);
    s.next_kstack_top.set(next.kstack_top);
    // Signals waiting for it, or a blocked call's restart note to settle: see `resume_work`.
    // Both ways end in a tail call (the timer: the new task's slice starts now), so this
    // function saves no registers.
    if next.restart.load(Relaxed) != 0 || next.sig_pending.load(Relaxed) != 0 {
        return resume_work(t, next, now);
    }
    cpu.resume_slow.set(false);
    wakeup::program_timer(t, now)
}

/// The task being switched in has signals it can take: it leaves through the slow exit, which
/// ends its blocked system call (if any) as its restart note says. Without them, the note is
/// simply dropped: the call runs again, or completed already.
#[cold]
#[inline(never)]
fn resume_work(t: &Tasks, next: &Process, now: u64) {
    let cpu = percpu::this();
    let restart = next
        .restart
        .swap(crate::signal::state::RESTART_NONE, Relaxed);
    let signals = crate::signal::send::deliverable(next) != 0;
    cpu.resume_slow.set(signals);
    cpu.resume_restart.set(if signals {
        restart
    } else {
        crate::signal::state::RESTART_NONE
    });
    wakeup::program_timer(t, now)
}

/// One line per switch for `trace=sched`: `sched: <µs since boot> <pid>:<name> -> <pid>:<name>
/// <why>` (why: start, yield, preempt, sleep, wait, exit). Meant for tools that draw which task
/// ran when; each line costs a few dozen port exits, so it is off by default.
#[cold]
fn trace_switch(prev: Option<&'static Process>, next: &'static Process, now: u64, why: &str) {
    let us = crate::time::cycles_to_ns(now.wrapping_sub(crate::time::clock().boot_tsc)) / 1000;
    let (ppid, pname) = prev.map_or((0, crate::process::Name::new("-")), |p| (p.pid(), p.name()));
    crate::println!(
        "sched: {us} {ppid}:{pname} -> {}:{} {why}",
        next.pid(),
        next.name()
    );
}

/// arch_prctl(ARCH_SET_FS) for the running task: load it now, remember what is loaded.
pub fn load_fs_base(base: u64) {
    FsBase::write(x86_64::VirtAddr::new_truncate(base));
    percpu::this().fs_loaded.set(base);
}

/// For the exit path: leave the dying task's address space before it is freed.
pub fn enter_kernel_address_space() {
    // SAFETY: the kernel PML4 maps everything the kernel uses (it is the template of all others).
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) paging::kernel_pml4(), options(nostack)) };
}
