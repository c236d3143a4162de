//! The scheduler: which task runs next, and when the current one must give up the CPU.
//!
//! Round robin over a FIFO ready queue: O(1) to pick, O(1) to requeue. A task gives up the CPU
//! when it yields (sched_yield), blocks (nanosleep, wait4), exits or is killed, or when the timer
//! finds it has used its time slice while another task is ready (preemption, OSTEP 6.3). With
//! nothing to run, the CPU halts with interrupts on until the timer wakes a sleeper.
//!
//! Every decision to run another task ends in `prepare_switch`, which tells `context_switch`
//! what to do; the trap handler returns, and its entry stub leaves through the switch into the
//! next task's trap frame instead of returning to the old one.

use crate::context_switch::{context_switch_to_first, SWITCH};
use crate::cpu::rdtsc;
use crate::memory::paging;
use crate::process::{self, Process, State, Wait, NPROC};
use crate::timer::{self, Fired};
use x86_64::registers::model_specific::FsBase;

const NONE: usize = usize::MAX;

pub struct Scheduler {
    ready: [u8; NPROC],
    head: usize,
    len: usize,
    pub current: usize,
    /// `&slots[current]`, kept so that `current()` is one load on the system-call path.
    current_proc: *mut Process,
    sleepers: [u8; NPROC],
    nsleepers: usize,
    switched_in_at: u64,
    fs_loaded: u64,
    /// Time slice in scheduler ticks.
    pub slice_ticks: u32,
    ticks_used: u32,
    pub switches: u64,
    pub idle_cycles: u64,
    /// Set by `prepare_switch`, read and cleared by the trap handler (`take_switch`).
    switch_pending: bool,
    /// `trace=sched` on the command line: print a line for every switch.
    pub trace: bool,
}

static mut SCHED: Scheduler = Scheduler {
    ready: [0; NPROC],
    head: 0,
    len: 0,
    current: NONE,
    current_proc: core::ptr::null_mut(),
    sleepers: [0; NPROC],
    nsleepers: 0,
    switched_in_at: 0,
    fs_loaded: 0,
    slice_ticks: 1,
    ticks_used: 0,
    switches: 0,
    idle_cycles: 0,
    switch_pending: false,
    trace: false,
};

#[inline(always)]
pub fn sched() -> &'static mut Scheduler {
    // SAFETY: one CPU; only touched with interrupts off (trap handlers, and the idle loop,
    // which re-disables them before looking).
    unsafe { &mut *core::ptr::addr_of_mut!(SCHED) }
}

/// The running process. Only meaningful while one runs (always, in a trap from ring 3).
#[inline(always)]
pub fn current() -> &'static mut Process {
    // SAFETY: set by `prepare_switch` to the slot of the task it switches to, which stays
    // allocated while it runs; every trap from ring 3 comes from that task.
    unsafe { &mut *sched().current_proc }
}

impl Scheduler {
    fn push_ready(&mut self, slot: usize) {
        let tail = (self.head + self.len) % NPROC;
        self.ready[tail] = slot as u8;
        self.len += 1;
    }

    fn pop_ready(&mut self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let slot = self.ready[self.head] as usize;
        self.head = (self.head + 1) % NPROC;
        self.len -= 1;
        Some(slot)
    }

    fn earliest_sleeper(&self) -> Option<u64> {
        let procs = &process::table().slots;
        self.sleepers[..self.nsleepers]
            .iter()
            .map(|&s| procs[s as usize].sleep_until)
            .min()
    }

    /// Moves every sleeper whose deadline has passed to the ready queue.
    fn wake_sleepers(&mut self, now: u64) {
        let procs = &mut process::table().slots;
        let mut i = 0;
        while i < self.nsleepers {
            let s = self.sleepers[i] as usize;
            if procs[s].sleep_until <= now {
                self.nsleepers -= 1;
                self.sleepers[i] = self.sleepers[self.nsleepers];
                procs[s].state = State::Ready;
                self.push_ready(s);
            } else {
                i += 1;
            }
        }
    }

    fn program_timer(&self, now: u64) {
        timer::program(now, self.len > 0, self.earliest_sleeper());
    }
}

/// Makes a new or woken task runnable.
pub fn make_ready(slot: usize) {
    process::table().slots[slot].state = State::Ready;
    sched().push_ready(slot);
}

/// Starts the first task (at boot; never returns).
pub fn start() -> ! {
    let s = sched();
    let next = s.pop_ready().expect("no task to start");
    prepare_switch(NONE, next, rdtsc(), "start");
    s.switch_pending = false;
    // SAFETY: `prepare_switch` filled in SWITCH for a live task with a complete trap frame;
    // with no old task, nothing is saved.
    unsafe { context_switch_to_first() }
}

/// For the trap handlers: did the scheduler pick another task? (Clears the answer.)
#[inline(always)]
pub fn take_switch() -> bool {
    let s = sched();
    if s.switch_pending {
        s.switch_pending = false;
        return true;
    }
    false
}

/// sched_yield: let the next ready task run; if there is none, keep running.
pub fn yield_now() {
    current().stats.yielded += 1;
    requeue_current("yield");
}

/// Timer interrupt: wake sleepers; preempt the running task if its slice is used up and
/// someone else is ready. `from_user`: a task was running (else we were idle).
pub fn timer_interrupt(from_user: bool) {
    let fired = timer::acknowledge();
    let s = sched();
    if let Fired::Tick { at } = fired {
        if from_user {
            s.ticks_used += 1;
            // The common case, kept short: a tick while a task runs and nobody sleeps. Unless
            // its slice is used up and another task waits, re-arm and return to it.
            if at != 0 && s.nsleepers == 0 && (s.len == 0 || s.ticks_used < s.slice_ticks) {
                timer::rearm_tick(at, s.len > 0);
                return;
            }
        }
    }
    let now = rdtsc();
    if s.nsleepers > 0 {
        s.wake_sleepers(now);
    }
    if !from_user {
        return; // the idle loop looks at the ready queue itself
    }
    if s.len > 0 && s.ticks_used >= s.slice_ticks {
        current().stats.preempted += 1;
        requeue_current("preempt");
    } else {
        s.program_timer(now);
    }
}

/// Puts the running task at the back of the ready queue and switches to the front one.
fn requeue_current(why: &'static str) {
    let s = sched();
    let now = rdtsc();
    if s.len == 0 {
        s.program_timer(now);
        return; // nobody else wants the CPU: carry on
    }
    let me = s.current;
    account(s, now);
    process::table().slots[me].state = State::Ready;
    s.push_ready(me);
    let next = s.pop_ready().unwrap_or(me);
    prepare_switch(me, next, now, why)
}

/// Blocks the running task until `deadline` (TSC).
pub fn sleep_until(deadline: u64) {
    let s = sched();
    let me = s.current;
    process::table().slots[me].sleep_until = deadline;
    s.sleepers[s.nsleepers] = me as u8;
    s.nsleepers += 1;
    block(Wait::Sleep)
}

/// Blocks the running task; it runs again after `wake` (or a sleeper's deadline).
pub fn block(why: Wait) {
    current().state = State::Blocked(why);
    run_next()
}

/// Wakes `slot` if it is blocked for `why`.
pub fn wake(slot: usize, why: Wait) {
    if process::table().slots[slot].state == State::Blocked(why) {
        make_ready(slot);
    }
}

/// The running task is gone (exited or killed): run something else.
pub fn exit_current() {
    run_next()
}

/// Gives the CPU to the next ready task, halting until there is one.
fn run_next() {
    let s = sched();
    let prev = s.current;
    account(s, rdtsc());
    s.current = NONE;
    let next = loop {
        if s.nsleepers > 0 {
            s.wake_sleepers(rdtsc());
        }
        if let Some(next) = s.pop_ready() {
            break next;
        }
        s.program_timer(rdtsc());
        let idle_start = rdtsc();
        // SAFETY: `sti; hlt` waits for the next interrupt (the timer, armed above for the earliest
        // sleeper); `sti` takes effect after `hlt` starts, so a wake-up cannot slip in between.
        // The interrupt handler runs on this stack and returns here; `cli` restores the
        // interrupts-off discipline before we look at the queues again.
        unsafe { core::arch::asm!("sti", "hlt", "cli", options(nomem, nostack)) };
        s.idle_cycles += rdtsc() - idle_start;
    };
    let why = match process::table().slots.get(prev).map(|p| p.state) {
        Some(State::Blocked(Wait::Sleep)) => "sleep",
        Some(State::Blocked(Wait::Child)) => "wait",
        _ => "exit",
    };
    prepare_switch(prev, next, rdtsc(), why)
}

fn account(s: &mut Scheduler, now: u64) {
    if s.current != NONE {
        current().stats.cpu_cycles += now - s.switched_in_at;
        s.switched_in_at = now;
    }
}

/// Charges the running task its CPU time up to now (for the report at power-off).
pub fn charge_running() {
    account(sched(), rdtsc());
}

/// Prepares the switch from `prev` (NONE at boot) to `next` (OSTEP figure 6.3), which
/// `context_switch` carries out when the trap handler returns: save the old task's registers and
/// FPU state, load the new task's address space, kernel stack and registers, return from trap
/// into it. The caller has charged `prev` its CPU time.
fn prepare_switch(prev: usize, next: usize, now: u64, why: &'static str) {
    let s = sched();
    if s.trace {
        trace_switch(prev, next, now, why);
    }
    let procs = &mut process::table().slots;
    let prev_fpu = match procs.get_mut(prev) {
        Some(p) if p.state != State::Zombie && p.state != State::Unused => p.fpu.0.as_mut_ptr(),
        _ => core::ptr::null_mut(),
    };
    let n = &mut procs[next];
    n.state = State::Running;
    s.current = next;
    s.current_proc = n;
    s.switched_in_at = now;
    s.ticks_used = 0;
    timer::timer().next_tick = 0; // the new task's slice starts now, not at the old task's tick
    s.switches += 1;
    if n.fs_base != s.fs_loaded {
        FsBase::write(x86_64::VirtAddr::new_truncate(n.fs_base));
        s.fs_loaded = n.fs_base;
    }
    s.program_timer(now);
    s.switch_pending = true;
    // SAFETY: one CPU, interrupts off; `context_switch` reads this only after we return. `next`
    // is a live process: its page table maps the kernel half, its kernel stack holds a complete
    // trap frame (built by the loader or saved by `context_switch`), its FXSAVE area is aligned.
    unsafe {
        SWITCH.prev_fpu = prev_fpu;
        SWITCH.next_fpu = n.fpu.0.as_ptr();
        SWITCH.next_cr3 = n.pml4;
        SWITCH.next_frame = n.frame_ptr();
        SWITCH.next_kstack_top = n.kstack_top;
    }
}

/// One line per switch for `trace=sched`: `sched: <µs since boot> <pid>:<name> -> <pid>:<name>
/// <why>` (why: start, yield, preempt, sleep, wait, exit). Meant for tools that draw which task
/// ran when; each line costs a few dozen port exits, so it is off by default.
#[cold]
fn trace_switch(prev: usize, next: usize, now: u64, why: &'static str) {
    let procs = &process::table().slots;
    let us = crate::time::cycles_to_ns(now.wrapping_sub(crate::time::clock().boot_tsc)) / 1000;
    let (ppid, pname) = procs.get(prev).map_or((0, "-"), |p| (p.pid, p.name()));
    let n = &procs[next];
    crate::println!("sched: {us} {ppid}:{pname} -> {}:{} {why}", n.pid, n.name());
}

/// arch_prctl(ARCH_SET_FS) for the running task: load it now, remember what is loaded.
pub fn load_fs_base(base: u64) {
    FsBase::write(x86_64::VirtAddr::new_truncate(base));
    sched().fs_loaded = base;
}

/// For the exit path: leave the dying task's address space before it is freed.
pub fn enter_kernel_address_space() {
    // SAFETY: the kernel PML4 maps everything the kernel uses (it is the template of all others).
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) paging::kernel_pml4(), options(nostack)) };
}
