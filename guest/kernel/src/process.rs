//! The process list (OSTEP's "process list", xv6's proc table): what the kernel remembers about
//! every task while it is not running.
//!
//! Each process has a slot, allocated once on the heap and never freed (a dead process's slot
//! is reused), so a `&'static Process` is always valid memory. Its fields that the hot paths
//! read without a lock (the pid, the page table, the counters) are atomics; everything about how
//! processes relate to each other and to the scheduler (states, parents, the ready queue) is
//! changed only under the `TASKS` lock.
//!
//! Each process owns a page table (user half), a kernel stack under an unmapped guard page, and
//! an FXSAVE area. Its trap frame lives at the top of its kernel stack, where the CPU and the entry
//! stubs put it on every trap from ring 3; a task that is not running is exactly that frame.

use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};

use crate::memory::frame::FRAMES;
use crate::memory::heap::try_box;
use crate::memory::paging::{self, OutOfMemory, KERNEL_STACKS};
use crate::memory::PAGE_SIZE;
use crate::sync::IrqLock;
use crate::trap_frame::TrapFrame;
use kcore::runqueue::{Links, RunQueue, NIL};

const KSTACK_PAGES: u64 = 4;
/// One slot of the kernel-stack area: an unmapped guard page, then the stack.
const KSTACK_SLOT: u64 = (KSTACK_PAGES + 1) * PAGE_SIZE;
pub const NAME_LEN: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wait {
    Sleep,
    Child,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Unused,
    /// Being built by the loader: not runnable yet.
    Embryo,
    Ready,
    Running,
    Blocked(Wait),
    /// Exited, not yet reaped by its parent: `wait_status` says how it ended.
    Zombie,
}

impl State {
    const fn to_u8(self) -> u8 {
        match self {
            State::Unused => 0,
            State::Embryo => 1,
            State::Ready => 2,
            State::Running => 3,
            State::Blocked(Wait::Sleep) => 4,
            State::Blocked(Wait::Child) => 5,
            State::Zombie => 6,
        }
    }
    const fn from_u8(v: u8) -> State {
        match v {
            1 => State::Embryo,
            2 => State::Ready,
            3 => State::Running,
            4 => State::Blocked(Wait::Sleep),
            5 => State::Blocked(Wait::Child),
            6 => State::Zombie,
            _ => State::Unused,
        }
    }
}

/// Counters for the report, bumped by the task itself (or by the scheduler for it).
#[derive(Default)]
pub struct Stats {
    pub cpu_cycles: AtomicU64,
    pub syscalls: AtomicU64,
    pub preempted: AtomicU64,
    pub yielded: AtomicU64,
}

/// A copy of `Stats` at one moment.
#[derive(Clone, Copy, Default, Debug)]
pub struct StatsSnapshot {
    pub cpu_cycles: u64,
    pub syscalls: u64,
    pub preempted: u64,
    pub yielded: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            cpu_cycles: self.cpu_cycles.load(Relaxed),
            syscalls: self.syscalls.load(Relaxed),
            preempted: self.preempted.load(Relaxed),
            yielded: self.yielded.load(Relaxed),
        }
    }
    fn reset(&self) {
        for c in [
            &self.cpu_cycles,
            &self.syscalls,
            &self.preempted,
            &self.yielded,
        ] {
            c.store(0, Relaxed);
        }
    }
}

#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct FpuState(pub [u8; 512]);

impl FpuState {
    /// The state `fninit` and a reset MXCSR give: x87 control word 0x37f, MXCSR 0x1f80.
    pub const fn initial() -> Self {
        let mut a = [0u8; 512];
        a[0] = 0x7f;
        a[1] = 0x03;
        a[24] = 0x80;
        a[25] = 0x1f;
        FpuState(a)
    }
}

/// A process name, NUL-padded.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Name(pub [u8; NAME_LEN]);

impl Name {
    pub fn new(s: &str) -> Name {
        let mut n = [0; NAME_LEN];
        let len = s.len().min(NAME_LEN - 1);
        n[..len].copy_from_slice(&s.as_bytes()[..len]);
        Name(n)
    }
    pub fn as_str(&self) -> &str {
        let n = self.0.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        core::str::from_utf8(&self.0[..n]).unwrap_or("?")
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.pad(self.as_str())
    }
}

pub struct Process {
    /// Index in the task table; fixed for the slot's life.
    pub slot: u32,
    /// Top of this slot's kernel stack; fixed for the slot's life.
    pub kstack_top: u64,
    pub pid: AtomicU32,
    /// The parent's pid (0: none; orphans are reaped as they exit).
    pub parent: AtomicU32,
    state: AtomicU8,
    name: IrqLock<Name>,
    /// Physical address of the PML4.
    pub pml4: AtomicU64,
    /// The FXSAVE area: touched by `context_switch` when this task is switched out or in, and
    /// by the loader before the task first runs; never while another context uses it.
    fpu: UnsafeCell<FpuState>,
    pub fs_base: AtomicU64,
    /// Linux wait status: `code << 8` after exit, or the signal number when killed.
    pub wait_status: AtomicU32,
    pub sleep_until: AtomicU64,
    pub heap_start: AtomicU64,
    pub brk: AtomicU64,
    pub stats: Stats,
    /// The next slot in the ready queue or the sleepers' list (under `TASKS`).
    run_next: AtomicU32,
}

// SAFETY: every field is an atomic, a lock, or immutable, except `fpu`, whose accesses are
// exclusive by the scheduling discipline documented on it (one CPU; a task's FPU area is used
// only while it is being switched out or in, or before it first runs).
unsafe impl Sync for Process {}

impl Process {
    /// The process of `slot`, with a kernel stack mapped at its place in the stack area.
    fn new(slot: u32) -> Result<Process, OutOfMemory> {
        let base = KERNEL_STACKS + slot as u64 * KSTACK_SLOT + PAGE_SIZE;
        for i in 0..KSTACK_PAGES {
            let f = FRAMES.lock().alloc_dirty().ok_or(OutOfMemory)?;
            let flags = paging::WRITABLE | paging::nx();
            if let Err(e) = paging::map(paging::kernel_pml4(), base + i * PAGE_SIZE, f, flags) {
                FRAMES.lock().free(f);
                return Err(e);
            }
        }
        Ok(Process::with_stack(slot, base + KSTACK_PAGES * PAGE_SIZE))
    }

    pub const fn with_stack(slot: u32, kstack_top: u64) -> Process {
        Process {
            slot,
            kstack_top,
            pid: AtomicU32::new(0),
            parent: AtomicU32::new(0),
            state: AtomicU8::new(State::Unused.to_u8()),
            name: IrqLock::new("process name", Name([0; NAME_LEN])),
            pml4: AtomicU64::new(0),
            fpu: UnsafeCell::new(FpuState::initial()),
            fs_base: AtomicU64::new(0),
            wait_status: AtomicU32::new(0),
            sleep_until: AtomicU64::new(0),
            heap_start: AtomicU64::new(0),
            brk: AtomicU64::new(0),
            stats: Stats {
                cpu_cycles: AtomicU64::new(0),
                syscalls: AtomicU64::new(0),
                preempted: AtomicU64::new(0),
                yielded: AtomicU64::new(0),
            },
            run_next: AtomicU32::new(NIL),
        }
    }

    #[inline]
    pub fn pid(&self) -> u32 {
        self.pid.load(Relaxed)
    }

    #[inline]
    pub fn pml4(&self) -> u64 {
        self.pml4.load(Relaxed)
    }

    #[inline]
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Relaxed))
    }

    /// Changes the state; callers hold the `TASKS` lock (the `&mut Tasks` proves it).
    #[inline]
    pub fn set_state(&self, _tasks: &mut Tasks, s: State) {
        self.state.store(s.to_u8(), Relaxed);
    }

    pub fn name(&self) -> Name {
        *self.name.lock()
    }

    pub fn set_name(&self, name: &str) {
        *self.name.lock() = Name::new(name);
    }

    /// The FXSAVE area, for `context_switch` (which saves into it and restores from it).
    pub fn fpu_ptr(&self) -> *mut u8 {
        self.fpu.get() as *mut u8
    }

    /// Where the trap frame lives: the top of the kernel stack.
    #[inline]
    pub fn frame_ptr(&self) -> *mut TrapFrame {
        (self.kstack_top - core::mem::size_of::<TrapFrame>() as u64) as *mut TrapFrame
    }

    /// The status a shell would report: the exit code, or 128 + signal.
    pub fn shell_status(&self) -> u32 {
        shell_status(self.wait_status.load(Relaxed))
    }
}

/// The status a shell reports for Linux wait status `w`: the exit code, or 128 + signal.
pub fn shell_status(w: u32) -> u32 {
    if w & 0x7f != 0 {
        abi::machine::exit_status::killed_by(w & 0x7f)
    } else {
        (w >> 8) & 0xff
    }
}

/// Every process slot, the pids, and the scheduler's queues. Behind `TASKS`.
pub struct Tasks {
    slots: Vec<&'static Process>,
    /// The most slots there may be (`nproc=` on the command line, or one per 128 KiB of RAM).
    pub max: u32,
    pub next_pid: u32,
    /// Runnable tasks, oldest first (scheduler.rs).
    pub ready: RunQueue,
    /// Sleeping tasks, linked through `run_next` like the ready queue (a task is in one or the
    /// other or neither).
    pub sleepers: u32,
    pub nsleepers: u32,
}

pub static TASKS: IrqLock<Tasks> = IrqLock::new(
    "tasks",
    Tasks {
        slots: Vec::new(),
        max: 64,
        next_pid: 1,
        ready: RunQueue::new(),
        sleepers: NIL,
        nsleepers: 0,
    },
);

#[derive(Debug, Clone, Copy)]
pub enum SpawnError {
    NoSlot,
    OutOfMemory,
}

impl From<OutOfMemory> for SpawnError {
    fn from(_: OutOfMemory) -> Self {
        SpawnError::OutOfMemory
    }
}

/// The ready queue's links live in the processes.
pub struct SlotLinks<'a>(pub &'a [&'static Process]);

impl Links for SlotLinks<'_> {
    #[inline]
    fn next(&self, slot: u32) -> u32 {
        slot_of(self.0, slot).run_next.load(Relaxed)
    }
    #[inline]
    fn set_next(&mut self, slot: u32, next: u32) {
        slot_of(self.0, slot).run_next.store(next, Relaxed);
    }
}

/// `slots[slot]` without a bounds check: the scheduler's hot paths pass only slot numbers taken
/// from `Process::slot` of this table's own processes, and the table never shrinks.
#[inline(always)]
fn slot_of(slots: &[&'static Process], slot: u32) -> &'static Process {
    debug_assert!((slot as usize) < slots.len());
    // SAFETY: see above: `slot` is the index of a process of this table.
    unsafe { slots.get_unchecked(slot as usize) }
}

impl Tasks {
    /// A fresh slot in state Embryo with a pid, a name, an empty address space and a mapped
    /// kernel stack; the caller loads a program into it and makes it ready.
    pub fn alloc(&mut self, name: &str, parent: u32) -> Result<&'static Process, SpawnError> {
        let p = match self.slots.iter().find(|p| p.state() == State::Unused) {
            Some(p) => *p,
            None => self.grow()?,
        };
        let pml4 = paging::new_address_space()?;
        p.set_state(self, State::Embryo);
        p.pid.store(self.next_pid, Relaxed);
        self.next_pid += 1;
        p.parent.store(parent, Relaxed);
        p.set_name(name);
        p.pml4.store(pml4, Relaxed);
        // SAFETY: the slot was Unused: no context uses its FPU area.
        unsafe { *p.fpu.get() = FpuState::initial() };
        for v in [&p.fs_base, &p.sleep_until, &p.heap_start, &p.brk] {
            v.store(0, Relaxed);
        }
        p.wait_status.store(0, Relaxed);
        p.stats.reset();
        Ok(p)
    }

    /// A new slot at the end of the table.
    fn grow(&mut self) -> Result<&'static Process, SpawnError> {
        if self.slots.len() >= self.max as usize {
            return Err(SpawnError::NoSlot);
        }
        self.slots
            .try_reserve(1)
            .map_err(|_| SpawnError::OutOfMemory)?;
        let slot = self.slots.len() as u32;
        let p: &'static Process = alloc::boxed::Box::leak(try_box(Process::new(slot)?)?);
        self.slots.push(p);
        Ok(p)
    }

    /// Gives a slot back after a failed load (its address space is already freed).
    pub fn release(&mut self, p: &'static Process) {
        p.set_state(self, State::Unused);
    }

    pub fn slot_count(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The process of `slot`, a slot number of this table (from `Process::slot`).
    pub fn get(&self, slot: u32) -> &'static Process {
        slot_of(&self.slots, slot)
    }

    /// Every slot in use (not Unused).
    pub fn live(&self) -> impl Iterator<Item = &'static Process> + '_ {
        self.slots
            .iter()
            .copied()
            .filter(|p| p.state() != State::Unused)
    }

    pub fn find_pid(&self, pid: u32) -> Option<&'static Process> {
        self.live().find(|p| p.pid() == pid)
    }

    pub fn links(&self) -> SlotLinks<'_> {
        SlotLinks(&self.slots)
    }

    /// The ready queue together with its links (they are borrowed from different fields).
    pub fn ready_queue(&mut self) -> (&mut RunQueue, SlotLinks<'_>) {
        (&mut self.ready, SlotLinks(&self.slots))
    }
}
