//! The process list (OSTEP's "process list" / xv6's proc table): one fixed slot per process,
//! with what the kernel must remember about a task while it is not running.
//!
//! Each process owns a page table (user half), a kernel stack under an unmapped guard page, and
//! an FXSAVE area. Its trap frame lives at the top of its kernel stack, where the CPU and the entry
//! stubs put it on every trap from ring 3; a task that is not running is exactly that frame.

use crate::memory::frame::FRAMES;
use crate::memory::paging::{self, KERNEL_STACKS};
use crate::memory::PAGE_SIZE;
use crate::trap_entry::TrapFrame;

pub const NPROC: usize = 64;
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
    Ready,
    Running,
    Blocked(Wait),
    /// Exited, not yet reaped by its parent: `wait_status` says how it ended.
    Zombie,
}

#[derive(Clone, Copy, Default)]
pub struct Stats {
    pub cpu_cycles: u64,
    pub syscalls: u64,
    pub preempted: u64,
    pub yielded: u64,
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

pub struct Process {
    pub pid: u32,
    pub parent: u32,
    pub state: State,
    pub name: [u8; NAME_LEN],
    pub pml4: u64,
    pub kstack_top: u64,
    kstack_mapped: bool,
    pub fpu: FpuState,
    pub fs_base: u64,
    /// Linux wait status: `code << 8` after exit, or the signal number when killed.
    pub wait_status: u32,
    pub sleep_until: u64,
    pub heap_start: u64,
    pub brk: u64,
    pub ticks_used: u32,
    pub stats: Stats,
}

impl Process {
    const EMPTY: Process = Process {
        pid: 0,
        parent: 0,
        state: State::Unused,
        name: [0; NAME_LEN],
        pml4: 0,
        kstack_top: 0,
        kstack_mapped: false,
        fpu: FpuState::initial(),
        fs_base: 0,
        wait_status: 0,
        sleep_until: 0,
        heap_start: 0,
        brk: 0,
        ticks_used: 0,
        stats: Stats {
            cpu_cycles: 0,
            syscalls: 0,
            preempted: 0,
            yielded: 0,
        },
    };

    pub fn name(&self) -> &str {
        let n = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        core::str::from_utf8(&self.name[..n]).unwrap_or("?")
    }

    /// The saved user registers: the trap frame at the top of the kernel stack.
    pub fn frame(&mut self) -> &mut TrapFrame {
        let at = self.kstack_top - core::mem::size_of::<TrapFrame>() as u64;
        // SAFETY: the kernel stack is mapped and owned by this process; the frame is where the
        // CPU and trap_entry.rs put it on every entry from ring 3.
        unsafe { &mut *(at as *mut TrapFrame) }
    }

    pub fn frame_ptr(&self) -> u64 {
        self.kstack_top - core::mem::size_of::<TrapFrame>() as u64
    }

    /// The status a shell would report: the exit code, or 128 + signal.
    pub fn shell_status(&self) -> u32 {
        if self.wait_status & 0x7f != 0 {
            128 + (self.wait_status & 0x7f)
        } else {
            (self.wait_status >> 8) & 0xff
        }
    }
}

pub struct ProcessTable {
    pub slots: [Process; NPROC],
    pub next_pid: u32,
}

/// The process list. Only touched with interrupts off (all kernel paths except idle run so).
pub static mut PROCS: ProcessTable = ProcessTable {
    slots: [Process::EMPTY; NPROC],
    next_pid: 1,
};

#[inline(always)]
pub fn table() -> &'static mut ProcessTable {
    // SAFETY: one CPU; every caller runs with interrupts off (trap handlers, boot), and no caller
    // keeps the reference across a context switch.
    unsafe { &mut *core::ptr::addr_of_mut!(PROCS) }
}

#[derive(Debug)]
pub enum SpawnError {
    NoSlot,
    OutOfMemory,
}

impl ProcessTable {
    /// A fresh slot with a pid, an empty address space and a mapped kernel stack.
    pub fn alloc(&mut self, name: &str, parent: u32) -> Result<usize, SpawnError> {
        let slot = self
            .slots
            .iter()
            .position(|p| p.state == State::Unused)
            .ok_or(SpawnError::NoSlot)?;
        let pml4 = paging::new_address_space().map_err(|_| SpawnError::OutOfMemory)?;
        let p = &mut self.slots[slot];
        if !p.kstack_mapped {
            let base = KERNEL_STACKS + slot as u64 * KSTACK_SLOT + PAGE_SIZE;
            for i in 0..KSTACK_PAGES {
                let f = FRAMES.lock().alloc_dirty().ok_or(SpawnError::OutOfMemory)?;
                paging::map(
                    paging::kernel_pml4(),
                    base + i * PAGE_SIZE,
                    f,
                    paging::WRITABLE | paging::nx(),
                )
                .map_err(|_| SpawnError::OutOfMemory)?;
            }
            p.kstack_top = base + KSTACK_PAGES * PAGE_SIZE;
            p.kstack_mapped = true;
        }
        p.pid = self.next_pid;
        self.next_pid += 1;
        p.parent = parent;
        p.state = State::Blocked(Wait::Child); // not runnable until the loader is done
        p.name = [0; NAME_LEN];
        let n = name.len().min(NAME_LEN - 1);
        p.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        p.pml4 = pml4;
        p.fpu = FpuState::initial();
        p.fs_base = 0;
        p.wait_status = 0;
        p.sleep_until = 0;
        p.heap_start = 0;
        p.brk = 0;
        p.ticks_used = 0;
        p.stats = Stats::default();
        Ok(slot)
    }

    pub fn find_pid(&self, pid: u32) -> Option<usize> {
        self.slots
            .iter()
            .position(|p| p.state != State::Unused && p.pid == pid)
    }
}

/// Ends the running process with Linux wait status `wait_status` (exit code << 8, or a signal):
/// frees its memory, hands its children to nobody, wakes a waiting parent, and runs something
/// else. When pid 1 ends, the machine powers off with its status, as init's death would.
pub fn exit_current(wait_status: u32) {
    let s = crate::scheduler::sched();
    let me = s.current;
    let table = table();
    let (pid, parent, pml4) = {
        let p = &mut table.slots[me];
        p.wait_status = wait_status;
        p.state = State::Zombie;
        (p.pid, p.parent, p.pml4)
    };
    crate::scheduler::enter_kernel_address_space();
    paging::free_address_space(pml4);
    table.slots[me].pml4 = paging::kernel_pml4();
    if pid == 1 {
        crate::scheduler::charge_running();
        let status = table.slots[me].shell_status();
        crate::report::print();
        crate::power::power_off(status as u8);
    }
    // Orphans are reaped as they exit; the ones already dead are reaped now.
    for slot in 0..NPROC {
        if table.slots[slot].state != State::Unused && table.slots[slot].parent == pid {
            table.slots[slot].parent = 0;
            if table.slots[slot].state == State::Zombie {
                reap(slot);
            }
        }
    }
    match table.find_pid(parent) {
        Some(ps) if parent != 0 => crate::scheduler::wake(ps, Wait::Child),
        _ => reap(me),
    }
    crate::scheduler::exit_current()
}

/// Frees the slot of a dead process (its memory is already gone), keeping it for the report.
pub fn reap(slot: usize) {
    let p = &mut table().slots[slot];
    crate::report::remember(p);
    p.state = State::Unused;
}
