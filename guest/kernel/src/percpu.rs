//! What each CPU keeps for itself: the task it runs, the switch it is about to make, its time
//! slice. Reached through `this()`, only ever by its own CPU, and made of atomics, so a shared
//! `&'static PerCpu` is all anyone gets (no `&mut`, nothing to alias).
//!
//! Today there is one CPU and `this()` is `CPU0`. A second CPU brings an array of these, found
//! through GS base, and nothing else here changes.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::process::Process;

/// What the scheduler asks `context_switch` (context_switch.rs) to do. Read by assembly at
/// fixed offsets (`SWITCH_*` below); each field is a 64-bit word.
#[repr(C)]
pub struct Switch {
    /// Where to save the old task's FPU state; null when the old task is gone.
    pub prev_fpu: AtomicPtr<u8>,
    pub next_fpu: AtomicPtr<u8>,
    pub next_cr3: AtomicU64,
    /// The new task's trap frame (at the top of its kernel stack).
    pub next_frame: AtomicU64,
    pub next_kstack_top: AtomicU64,
}

#[repr(C)]
pub struct PerCpu {
    /// First, at offset 0, for the assembly.
    pub switch: Switch,
    /// The running task, or the last one while the CPU idles (never dangling: slots are never
    /// freed). `running` says which.
    current: AtomicPtr<Process>,
    pub running: AtomicBool,
    /// Set by the scheduler when it has prepared a switch; the trap handler's return value.
    pub switch_pending: AtomicBool,
    /// Scheduler ticks the running task has used of its slice, and the slice's length.
    pub ticks_used: AtomicU32,
    pub slice_ticks: AtomicU32,
    /// The ready queue's and the sleepers' lengths, published by the scheduler (which changes
    /// them under the `TASKS` lock) for the timer tick's fast path, which reads them without it.
    pub nready: AtomicU32,
    pub nsleepers: AtomicU32,
    /// TSC when the running task was switched in.
    pub switched_in_at: AtomicU64,
    /// The FS base loaded in the CPU (so a switch loads it only when it changes).
    pub fs_loaded: AtomicU64,
    pub switches: AtomicU64,
    pub idle_cycles: AtomicU64,
    /// `trace=sched`: a console line for every switch.
    pub trace_sched: AtomicBool,
}

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
};

/// Stands in for "the current task" before the first task runs.
static BOOT_TASK: Process = Process::with_stack(u32::MAX, 0);

#[no_mangle]
pub static CPU0: PerCpu = PerCpu {
    switch: Switch {
        prev_fpu: AtomicPtr::new(core::ptr::null_mut()),
        next_fpu: AtomicPtr::new(core::ptr::null_mut()),
        next_cr3: AtomicU64::new(0),
        next_frame: AtomicU64::new(0),
        next_kstack_top: AtomicU64::new(0),
    },
    current: AtomicPtr::new(&BOOT_TASK as *const Process as *mut Process),
    running: AtomicBool::new(false),
    switch_pending: AtomicBool::new(false),
    ticks_used: AtomicU32::new(0),
    slice_ticks: AtomicU32::new(1),
    nready: AtomicU32::new(0),
    nsleepers: AtomicU32::new(0),
    switched_in_at: AtomicU64::new(0),
    fs_loaded: AtomicU64::new(0),
    switches: AtomicU64::new(0),
    idle_cycles: AtomicU64::new(0),
    trace_sched: AtomicBool::new(false),
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
    unsafe { &*this().current.load(Relaxed) }
}

impl PerCpu {
    /// Makes `p` the running task (the scheduler, preparing a switch to it).
    pub fn set_current(&self, p: &'static Process) {
        self.current
            .store(p as *const Process as *mut Process, Relaxed);
        self.running.store(true, Relaxed);
    }
}
