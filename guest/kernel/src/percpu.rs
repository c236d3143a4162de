//! What each CPU keeps for itself: the task it runs, the switch it is about to make, its time
//! slice. Reached through `this()`, only ever by its own CPU, and made of `CpuCell`s (copies in
//! and out, like `Cell`), so a shared `&'static PerCpu` is all anyone gets (no `&mut`, nothing
//! to alias) and the hot paths compile to plain moves.
//!
//! Today there is one CPU and `this()` is `CPU0`. A second CPU brings an array of these, found
//! through GS base, and nothing else here changes.

use crate::sync::CpuCell;

use crate::process::Process;

/// What the scheduler asks `context_switch` (context_switch.rs) to do. Read by assembly at
/// fixed offsets (`SWITCH_*` below); each field is a 64-bit word.
#[repr(C)]
pub struct Switch {
    /// Where to save the old task's FPU state; null when the old task is gone.
    pub prev_fpu: CpuCell<*mut u8>,
    pub next_fpu: CpuCell<*mut u8>,
    pub next_cr3: CpuCell<u64>,
    /// The new task's trap frame (at the top of its kernel stack).
    pub next_frame: CpuCell<u64>,
    pub next_kstack_top: CpuCell<u64>,
}

#[repr(C)]
pub struct PerCpu {
    /// First, at offset 0, for the assembly.
    pub switch: Switch,
    /// The running task, or the last one while the CPU idles (never dangling: slots are never
    /// freed). `running` says which.
    current: CpuCell<*const Process>,
    /// The sleepers' and alarms' count, published by the scheduler (which changes them under
    /// the `TASKS` lock) for the timer tick's fast path, which reads them without it. First of
    /// the four fields of `tick_gate`, the word the tick's leaf (trap_entry.rs) tests at once.
    pub nsleepers: CpuCell<u32>,
    /// What the trap exit must do besides returning (`WORK_*`): the one thing every exit tests
    /// (the system call's in trap_entry.rs, the other handlers' return value).
    pub work: CpuCell<u8>,
    /// Why the timer tick cannot take its fast path now (`TICK_SLOW_*`), set at boot.
    pub tick_slow: CpuCell<u8>,
    tick_gate_pad: CpuCell<u16>,
    pub running: CpuCell<bool>,
    /// The number of a system call that needs the whole register set (fork, execve,
    /// rt_sigreturn...), left for the slow exit (`WORK_SLOW`) to run.
    pub deferred_syscall: CpuCell<u64>,
    /// The task being switched in has signals to take: its trap exit goes the slow way.
    pub resume_slow: CpuCell<bool>,
    /// How the switched-in task's blocked system call ends if a handler interrupts it.
    pub resume_restart: CpuCell<u8>,
    /// Scheduler ticks the running task has used of its slice, and the slice's length.
    pub ticks_used: CpuCell<u32>,
    pub slice_ticks: CpuCell<u32>,
    /// The ready queue's length, published like `nsleepers`.
    pub nready: CpuCell<u32>,
    /// TSC when the running task was switched in.
    pub switched_in_at: CpuCell<u64>,
    /// The FS base loaded in the CPU (so a switch loads it only when it changes).
    pub fs_loaded: CpuCell<u64>,
    pub switches: CpuCell<u64>,
    /// Page faults from user mode (the report's count; resolved or not).
    pub page_faults: CpuCell<u64>,
    pub idle_cycles: CpuCell<u64>,
    /// `trace=sched`: a console line for every switch.
    pub trace_sched: CpuCell<bool>,
    /// `trace=events`: the return address of the system call in progress, which the recording
    /// dispatcher (trap_entry.rs) compares with the frame's at the end (a call that blocks
    /// moved it back to run again).
    pub trace_rip: CpuCell<u64>,
}

/// `work`: the scheduler prepared a switch (context_switch.rs).
pub const WORK_SWITCH: u8 = 1;
/// `work`: leave through the slow exit (trap_slow.rs): a deferred system call, or signals.
pub const WORK_SLOW: u8 = 2;
/// `deferred_syscall` when none is.
pub const NO_SYSCALL: u64 = u64::MAX;
/// Set in the slow exit's work word by `context_switch` for a task switched in with signals to
/// take (trap_slow.rs).
pub const RESUMED: u32 = 0x100;

/// `tick_slow`: the LAPIC timer is periodic (no TSC deadline to re-arm).
pub const TICK_SLOW_PERIODIC: u8 = 1;
/// `tick_slow`: the LAPIC is in xAPIC mode (the EOI is a store, not the x2APIC MSR).
pub const TICK_SLOW_XAPIC: u8 = 2;

/// Offsets in `PerCpu` of what the entry stubs (trap_entry.rs) read and write.
pub const CURRENT: usize = core::mem::offset_of!(PerCpu, current);
pub const WORK: usize = core::mem::offset_of!(PerCpu, work);
/// `nsleepers`, `work`, `tick_slow` and a zero pad: one aligned u64, zero when the timer
/// tick may take its fast path.
pub const TICK_GATE: usize = core::mem::offset_of!(PerCpu, nsleepers);
pub const TICKS_USED: usize = core::mem::offset_of!(PerCpu, ticks_used);
pub const SLICE_TICKS: usize = core::mem::offset_of!(PerCpu, slice_ticks);
pub const NREADY: usize = core::mem::offset_of!(PerCpu, nready);
pub const TRACE_RIP: usize = core::mem::offset_of!(PerCpu, trace_rip);
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(PerCpu, work) == TICK_GATE + 4);
    assert!(offset_of!(PerCpu, tick_slow) == TICK_GATE + 5);
    assert!(offset_of!(PerCpu, tick_gate_pad) == TICK_GATE + 6);
    assert!(offset_of!(PerCpu, running) == TICK_GATE + 8);
};

/// Offsets of `Switch`'s fields in `PerCpu`, for context_switch.rs.
pub const SWITCH_PREV_FPU: usize = 0;
pub const SWITCH_NEXT_FPU: usize = 8;
pub const SWITCH_NEXT_CR3: usize = 16;
pub const SWITCH_NEXT_FRAME: usize = 24;
pub const SWITCH_NEXT_KSTACK_TOP: usize = 32;
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(PerCpu, switch) == 0);
    assert!(offset_of!(Switch, prev_fpu) == SWITCH_PREV_FPU);
    assert!(offset_of!(Switch, next_fpu) == SWITCH_NEXT_FPU);
    assert!(offset_of!(Switch, next_cr3) == SWITCH_NEXT_CR3);
    assert!(offset_of!(Switch, next_frame) == SWITCH_NEXT_FRAME);
    assert!(offset_of!(Switch, next_kstack_top) == SWITCH_NEXT_KSTACK_TOP);
    assert!(offset_of!(PerCpu, resume_slow) == RESUME_SLOW);
};

/// Offset of `resume_slow`, for context_switch.rs.
pub const RESUME_SLOW: usize = core::mem::offset_of!(PerCpu, resume_slow);

/// Stands in for "the current task" before the first task runs.
static BOOT_TASK: Process = Process::with_stack(u32::MAX, 0);

#[no_mangle]
pub static CPU0: PerCpu = PerCpu {
    switch: Switch {
        prev_fpu: CpuCell::new(core::ptr::null_mut()),
        next_fpu: CpuCell::new(core::ptr::null_mut()),
        next_cr3: CpuCell::new(0),
        next_frame: CpuCell::new(0),
        next_kstack_top: CpuCell::new(0),
    },
    current: CpuCell::new(&BOOT_TASK as *const Process),
    nsleepers: CpuCell::new(0),
    work: CpuCell::new(0),
    tick_slow: CpuCell::new(0),
    tick_gate_pad: CpuCell::new(0),
    running: CpuCell::new(false),
    deferred_syscall: CpuCell::new(NO_SYSCALL),
    resume_slow: CpuCell::new(false),
    resume_restart: CpuCell::new(0),
    ticks_used: CpuCell::new(0),
    slice_ticks: CpuCell::new(1),
    nready: CpuCell::new(0),
    switched_in_at: CpuCell::new(0),
    fs_loaded: CpuCell::new(0),
    switches: CpuCell::new(0),
    page_faults: CpuCell::new(0),
    idle_cycles: CpuCell::new(0),
    trace_sched: CpuCell::new(false),
    trace_rip: CpuCell::new(0),
};

/// This CPU's state.
#[inline(always)]
pub fn this() -> &'static PerCpu {
    &CPU0
}

/// The task this CPU runs (in a trap from ring 3, the task that trapped).
#[inline(always)]
pub fn current() -> &'static Process {
    // SAFETY: `current` always points at a process slot (or BOOT_TASK), and slots are never
    // freed; a `&Process` is all anyone gets, and its mutable fields are atomics or locks.
    unsafe { &*this().current.get() }
}

impl PerCpu {
    /// Makes `p` the running task (the scheduler, preparing a switch to it).
    pub fn set_current(&self, p: &'static Process) {
        self.current.set(p);
        self.running.set(true);
    }
}
