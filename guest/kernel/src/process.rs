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

use crate::file::Files;
use crate::karc::Karc;
use crate::memory::address_space::AddressSpace;
use crate::memory::frame::FRAMES;
use crate::memory::heap::try_box;
use crate::memory::paging::{self, OutOfMemory, TranslationCache, KERNEL_STACKS};
use crate::memory::PAGE_SIZE;
use crate::signal::state::SigHandlers;
use crate::sync::IrqLock;
use crate::trap_frame::TrapFrame;
use kcore::runqueue::{Links, RunQueue, NIL};

const KSTACK_PAGES: u64 = 4;
/// One slot of the kernel-stack area: an unmapped guard page, then the stack.
const KSTACK_SLOT: u64 = (KSTACK_PAGES + 1) * PAGE_SIZE;
pub const NAME_LEN: usize = 16;

/// What a blocked task waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wait {
    /// A deadline (nanosleep): in the sleepers' list.
    Sleep,
    /// A child to exit, stop or continue (wait4, waitid).
    Child,
    /// A wait queue: a pipe, the console (`waiting_in` says which).
    Queue,
    /// Only a signal (pause, sigsuspend).
    Signal,
    /// A vfork child to exec or exit.
    Vfork,
    /// The other threads of its group to exit (execve in a multithreaded process).
    Group,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Unused,
    /// Being built by the loader: not runnable yet.
    Embryo,
    Ready,
    Running,
    Blocked(Wait),
    /// Stopped by a signal (SIGSTOP, SIGTSTP...) until SIGCONT.
    Stopped,
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
            State::Blocked(Wait::Queue) => 6,
            State::Blocked(Wait::Signal) => 7,
            State::Blocked(Wait::Vfork) => 8,
            State::Stopped => 9,
            State::Zombie => 10,
            State::Blocked(Wait::Group) => 11,
        }
    }
    const fn from_u8(v: u8) -> State {
        match v {
            1 => State::Embryo,
            2 => State::Ready,
            3 => State::Running,
            4 => State::Blocked(Wait::Sleep),
            5 => State::Blocked(Wait::Child),
            6 => State::Blocked(Wait::Queue),
            7 => State::Blocked(Wait::Signal),
            8 => State::Blocked(Wait::Vfork),
            9 => State::Stopped,
            10 => State::Zombie,
            11 => State::Blocked(Wait::Group),
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

/// Where `stats.syscalls` is in a `Process`: the system-call dispatcher (trap_entry.rs) counts
/// each call there.
pub const STATS_SYSCALLS: usize = core::mem::offset_of!(Process, stats.syscalls);

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
    /// Adds a finished thread's counters to its process's (the leader's).
    pub fn absorb(&self, other: &Stats) {
        let s = other.snapshot();
        self.cpu_cycles.fetch_add(s.cpu_cycles, Relaxed);
        self.syscalls.fetch_add(s.syscalls, Relaxed);
        self.preempted.fetch_add(s.preempted, Relaxed);
        self.yielded.fetch_add(s.yielded, Relaxed);
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
    /// Whether the stack's pages are mapped. Always, while the slot is in use; an unused
    /// slot's stack may be given back (`Tasks::trim_spare_stacks`) and mapped again on reuse.
    stack_mapped: core::sync::atomic::AtomicBool,
    /// The task's own id (Linux's tid); for a single-threaded process, its pid.
    pub pid: AtomicU32,
    /// The thread group (the process) it belongs to: its leader's pid, which getpid returns.
    pub tgid: AtomicU32,
    /// In a group leader: its threads that have not exited yet, itself included. The leader
    /// is reported to its parent only when this reaches 0 (thread.rs).
    pub threads: AtomicU32,
    /// In a group leader: how the whole group ends once exit_group or a fatal signal started
    /// it (`GROUP_EXIT` | wait status), or 0; `GROUP_EXEC` while one thread execs.
    pub group_exit: AtomicU32,
    /// The parent's pid (0 for pid 1; orphans are handed to pid 1).
    pub parent: AtomicU32,
    /// Process group and session (job control).
    pub pgid: AtomicU32,
    pub sid: AtomicU32,
    state: AtomicU8,
    name: IrqLock<Name>,
    /// The program it runs: its inode (for /proc/self/exe, held), NO_EXE if none.
    pub exe: AtomicU32,
    /// Where its argument strings are in its memory, and their length (/proc/PID/cmdline):
    /// set by execve, inherited by fork.
    pub args_at: AtomicU64,
    pub args_len: AtomicU64,
    /// The working directory's inode (held: it lives while some process is in it).
    pub cwd: AtomicU32,
    /// The file-mode creation mask.
    pub umask: AtomicU32,
    /// Physical address of the PML4 of `res.mm`, for the hot paths.
    pml4: AtomicU64,
    /// What the process holds, and may share with others (a vfork child borrows the parent's
    /// address space): memory, open files, signal handlers.
    pub res: IrqLock<Resources>,
    /// The FXSAVE area: touched by `context_switch` when this task is switched out or in, and
    /// by the loader before the task first runs; never while another context uses it.
    fpu: UnsafeCell<FpuState>,
    pub fs_base: AtomicU64,
    /// Linux wait status: `code << 8` after exit, or the signal number when killed.
    pub wait_status: AtomicU32,
    /// A stop or continue the parent has not been told of yet (its wait status), or 0. For a
    /// process, the leader's is the one wait reports.
    pub stop_report: AtomicU32,
    /// Another thread of the process stopped it (a group stop): this one stops too, quietly.
    pub group_stop: core::sync::atomic::AtomicBool,
    pub sleep_until: AtomicU64,
    pub stats: Stats,
    /// The next slot in the ready queue or a wait queue (under `TASKS`).
    run_next: AtomicU32,
    /// The next slot in the sleepers' list (a task may wait in a queue with a deadline too).
    sleep_next: AtomicU32,
    /// What a wait with a deadline returns when the deadline comes first (-ETIMEDOUT, 0).
    pub timeout_rax: AtomicU64,
    /// The wait queue this task is in (`Tasks::queue`), or NIL.
    pub waiting_in: AtomicU32,
    /// Signals (signal/): pending and blocked sets, one bit per signal (bit n-1 for n).
    pub sig_pending: AtomicU64,
    pub sig_blocked: AtomicU64,
    pub sig: IrqLock<crate::signal::state::TaskSignals>,
    /// setrlimit/prlimit64: the limits set, by resource (None: the default; sys/info.rs).
    pub rlimits: IrqLock<[Option<(u64, u64)>; 16]>,
    /// prctl(PR_SET_NO_NEW_PRIVS): kept so it reads back (there are no privileges to gain).
    pub no_new_privs: core::sync::atomic::AtomicBool,
    /// How a blocked system call ends if a signal handler interrupts it (signal/deliver.rs).
    pub restart: AtomicU8,
    /// nanosleep's `rem` pointer and deadline, for an interrupted sleep.
    pub sleep_rem: AtomicU64,
    pub sleep_deadline: AtomicU64,
    /// Bytes a blocked write has already written (it restarts for the rest).
    pub io_progress: AtomicU64,
    /// The descriptor table's generation (`FdTable::generation`) that its /proc/PID/fd links
    /// were made from (u64::MAX: none yet): procfs remakes them only when it changed.
    pub fd_links_gen: AtomicU64,
    /// A blocked pipe read: where and how much, so that a writer can complete it directly.
    pub read_buf: AtomicU64,
    pub read_len: AtomicU64,
    /// The translations of the pipe hand-over: of its own buffer when it writes, and of its
    /// read's buffer when a writer completes it.
    pub write_src_tlb: TranslationCache,
    pub read_dst_tlb: TranslationCache,
    /// SIGALRM: when (TSC, 0 = not armed) and how often after that (setitimer).
    pub alarm_at: AtomicU64,
    pub alarm_interval: AtomicU64,
    /// The vfork parent waiting for this child to exec or exit (its slot), or NIL.
    pub vfork_parent: AtomicU32,
    /// CLONE_CHILD_CLEARTID / set_tid_address: zeroed at exit, and its futex woken.
    pub clear_tid: AtomicU64,
    /// A blocked poll or select: its deadline (TSC) and the address of its system call, so
    /// that the call, run again when something changes, keeps its first deadline (0: none).
    pub poll_deadline: AtomicU64,
    pub poll_rip: AtomicU64,
    /// set_robust_list: the head of the thread's list of held robust mutexes, or 0.
    pub robust_list: AtomicU64,
    /// The futex this task waits on (futex.rs): its key (address space, address) and bitset.
    pub futex_space: AtomicU64,
    pub futex_addr: AtomicU64,
    pub futex_bitset: AtomicU32,
}

/// `exe` of a process that runs no program of the tree.
pub const NO_EXE: u32 = u32::MAX;
/// Linux's umask for init.
pub const DEFAULT_UMASK: u32 = 0o022;

/// What a process holds, possibly shared with others.
#[derive(Default)]
pub struct Resources {
    pub mm: Option<Karc<AddressSpace>>,
    pub files: Option<Karc<Files>>,
    pub handlers: Option<Karc<SigHandlers>>,
}

// SAFETY: every field is an atomic, a lock, or immutable, except `fpu`, whose accesses are
// exclusive by the scheduling discipline documented on it (one CPU; a task's FPU area is used
// only while it is being switched out or in, or before it first runs).
unsafe impl Sync for Process {}

impl Process {
    /// The process of `slot`; its kernel stack is not mapped yet (`map_stack`).
    fn new(slot: u32) -> Process {
        Process::with_stack(slot, stack_base(slot) + KSTACK_PAGES * PAGE_SIZE)
    }

    pub const fn with_stack(slot: u32, kstack_top: u64) -> Process {
        Process {
            slot,
            kstack_top,
            stack_mapped: core::sync::atomic::AtomicBool::new(false),
            pid: AtomicU32::new(0),
            tgid: AtomicU32::new(0),
            threads: AtomicU32::new(0),
            group_exit: AtomicU32::new(0),
            parent: AtomicU32::new(0),
            pgid: AtomicU32::new(0),
            sid: AtomicU32::new(0),
            state: AtomicU8::new(State::Unused.to_u8()),
            name: IrqLock::new("process name", Name([0; NAME_LEN])),
            exe: AtomicU32::new(NO_EXE),
            args_at: AtomicU64::new(0),
            args_len: AtomicU64::new(0),
            cwd: AtomicU32::new(kcore::fs::ROOT),
            umask: AtomicU32::new(DEFAULT_UMASK),
            pml4: AtomicU64::new(0),
            res: IrqLock::new(
                "process resources",
                Resources {
                    mm: None,
                    files: None,
                    handlers: None,
                },
            ),
            fpu: UnsafeCell::new(FpuState::initial()),
            fs_base: AtomicU64::new(0),
            wait_status: AtomicU32::new(0),
            stop_report: AtomicU32::new(0),
            group_stop: core::sync::atomic::AtomicBool::new(false),
            sleep_until: AtomicU64::new(0),
            stats: Stats {
                cpu_cycles: AtomicU64::new(0),
                syscalls: AtomicU64::new(0),
                preempted: AtomicU64::new(0),
                yielded: AtomicU64::new(0),
            },
            run_next: AtomicU32::new(NIL),
            sleep_next: AtomicU32::new(NIL),
            timeout_rax: AtomicU64::new(0),
            waiting_in: AtomicU32::new(NIL),
            sig_pending: AtomicU64::new(0),
            sig_blocked: AtomicU64::new(0),
            sig: IrqLock::new("signal state", crate::signal::state::TaskSignals::new()),
            rlimits: IrqLock::new("rlimits", [None; 16]),
            no_new_privs: core::sync::atomic::AtomicBool::new(false),
            restart: AtomicU8::new(0),
            sleep_rem: AtomicU64::new(0),
            sleep_deadline: AtomicU64::new(0),
            io_progress: AtomicU64::new(0),
            fd_links_gen: AtomicU64::new(u64::MAX),
            read_buf: AtomicU64::new(0),
            write_src_tlb: TranslationCache::new(),
            read_dst_tlb: TranslationCache::new(),
            read_len: AtomicU64::new(0),
            alarm_at: AtomicU64::new(0),
            alarm_interval: AtomicU64::new(0),
            vfork_parent: AtomicU32::new(NIL),
            clear_tid: AtomicU64::new(0),
            poll_deadline: AtomicU64::new(0),
            poll_rip: AtomicU64::new(0),
            robust_list: AtomicU64::new(0),
            futex_space: AtomicU64::new(0),
            futex_addr: AtomicU64::new(0),
            futex_bitset: AtomicU32::new(0),
        }
    }

    #[inline]
    pub fn pid(&self) -> u32 {
        self.pid.load(Relaxed)
    }

    /// The process (thread group) id: what getpid returns.
    #[inline]
    pub fn tgid(&self) -> u32 {
        self.tgid.load(Relaxed)
    }

    /// Whether this task leads its thread group (every single-threaded process does).
    #[inline]
    pub fn is_leader(&self) -> bool {
        self.tgid() == self.pid()
    }

    #[inline]
    pub fn pml4(&self) -> u64 {
        self.pml4.load(Relaxed)
    }

    /// The address space (None only for a dead process).
    pub fn mm(&self) -> Option<Karc<AddressSpace>> {
        self.res.lock().mm.clone()
    }

    /// Replaces the address space (exec, fork's child, exit); returns the old one, which the
    /// caller drops after leaving it (dropping the last reference frees it).
    pub fn set_mm(&self, mm: Option<Karc<AddressSpace>>) -> Option<Karc<AddressSpace>> {
        let pml4 = mm.as_ref().map_or(paging::kernel_pml4(), |m| m.pml4);
        self.pml4.store(pml4, Relaxed);
        core::mem::replace(&mut self.res.lock().mm, mm)
    }

    pub fn files(&self) -> Option<Karc<Files>> {
        self.res.lock().files.clone()
    }

    pub fn handlers(&self) -> Option<Karc<SigHandlers>> {
        self.res.lock().handlers.clone()
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

    /// The trap frame of a task that is not running (switched out, or being built): complete,
    /// with all sixteen registers.
    ///
    /// # Safety
    /// The task must not be running, and nothing else may use its frame meanwhile (callers
    /// hold `TASKS`, under which a task's state cannot change).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn frame_mut(&self) -> &mut TrapFrame {
        // SAFETY: per the contract; the frame slot is mapped for the slot's whole life.
        unsafe { &mut *self.frame_ptr() }
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

/// The lowest address of `slot`'s kernel stack (above its guard page).
fn stack_base(slot: u32) -> u64 {
    KERNEL_STACKS + slot as u64 * KSTACK_SLOT + PAGE_SIZE
}

/// Maps fresh frames for `slot`'s kernel stack; on OutOfMemory nothing stays mapped.
fn map_stack(slot: u32) -> Result<(), OutOfMemory> {
    let base = stack_base(slot);
    for i in 0..KSTACK_PAGES {
        // The frame lock is dropped before `map`, which takes it again for a new table.
        let frame = FRAMES.lock().alloc_dirty();
        let mapped = frame.ok_or(OutOfMemory).and_then(|f| {
            let flags = paging::WRITABLE | paging::nx();
            paging::map(paging::kernel_pml4(), base + i * PAGE_SIZE, f, flags).inspect_err(|_| {
                FRAMES.lock().free(f);
            })
        });
        if let Err(e) = mapped {
            unmap_stack_pages(slot, i);
            return Err(e);
        }
    }
    Ok(())
}

/// Unmaps the first `pages` pages of `slot`'s kernel stack and frees their frames. Only for a
/// stack no context runs on.
fn unmap_stack_pages(slot: u32, pages: u64) {
    let base = stack_base(slot);
    for i in 0..pages {
        if let Some(f) = paging::unmap_kernel(base + i * PAGE_SIZE) {
            FRAMES.lock().free(f);
        }
    }
}

/// Unused slots that keep their kernel stack mapped, so that a burst of forks after exits
/// maps nothing; past these, a reaped slot gives its 16 KiB back.
const SPARE_STACKS: u32 = 16;

/// Every process slot, the pids, and the scheduler's queues. Behind `TASKS`.
pub struct Tasks {
    slots: Vec<&'static Process>,
    /// The most slots there may be (`nproc=` on the command line, or one per 128 KiB of RAM).
    pub max: u32,
    pub next_pid: u32,
    /// Changes whenever a task is made or released (/proc's directories follow it).
    pub generation: u64,
    /// Runnable tasks, oldest first (scheduler.rs).
    pub ready: RunQueue,
    /// Tasks waiting for a deadline (nanosleep, or a wait with a timeout), linked through
    /// `sleep_next`; `sleep_until` is nonzero exactly while a task is in this list.
    pub sleepers: u32,
    pub nsleepers: u32,
    /// Processes with an alarm armed.
    pub nalarms: u32,
    /// Wait queues (a pipe's readers, the console's): FIFOs of blocked tasks, linked like the
    /// ready queue. An object that can be waited on holds a queue id.
    queues: Vec<RunQueue>,
    free_queues: Vec<u32>,
    /// The futex hash's buckets (futex.rs): a wait queue id each, made on first use, or NIL.
    pub futex_buckets: [u32; FUTEX_BUCKETS],
    /// Unused slots whose kernel stack is still mapped.
    spare_stacks: u32,
}

/// Buckets of the futex hash: waiters of one bucket share a wait queue.
pub const FUTEX_BUCKETS: usize = 64;

pub static TASKS: IrqLock<Tasks> = IrqLock::new(
    "tasks",
    Tasks {
        slots: Vec::new(),
        max: 64,
        next_pid: 1,
        generation: 0,
        ready: RunQueue::new(),
        sleepers: NIL,
        nsleepers: 0,
        nalarms: 0,
        queues: Vec::new(),
        free_queues: Vec::new(),
        futex_buckets: [NIL; FUTEX_BUCKETS],
        spare_stacks: 0,
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

/// The sleepers' list's links live in the processes too (`sleep_next`).
pub struct SleepLinks<'a>(pub &'a [&'static Process]);

impl Links for SleepLinks<'_> {
    #[inline]
    fn next(&self, slot: u32) -> u32 {
        slot_of(self.0, slot).sleep_next.load(Relaxed)
    }
    #[inline]
    fn set_next(&mut self, slot: u32, next: u32) {
        slot_of(self.0, slot).sleep_next.store(next, Relaxed);
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
    /// A fresh slot in state Embryo with a pid, a name and a mapped kernel stack, holding
    /// nothing yet; the caller gives it resources and a trap frame, then makes it ready.
    pub fn alloc(&mut self, name: &str, parent: u32) -> Result<&'static Process, SpawnError> {
        let p = match self.unused_slot() {
            Some(p) => p,
            None => self.grow()?,
        };
        if p.stack_mapped.load(Relaxed) {
            self.spare_stacks -= 1;
        } else {
            map_stack(p.slot)?;
            p.stack_mapped.store(true, Relaxed);
        }
        p.set_state(self, State::Embryo);
        let pid = self.next_pid;
        self.next_pid += 1;
        self.generation += 1;
        p.pid.store(pid, Relaxed);
        p.tgid.store(pid, Relaxed);
        p.threads.store(1, Relaxed);
        p.group_exit.store(0, Relaxed);
        *p.rlimits.lock() = [None; 16];
        p.no_new_privs.store(false, Relaxed);
        p.parent.store(parent, Relaxed);
        p.pgid.store(pid, Relaxed);
        p.sid.store(pid, Relaxed);
        p.set_name(name);
        p.exe.store(NO_EXE, Relaxed);
        p.args_len.store(0, Relaxed);
        p.cwd.store(kcore::fs::ROOT, Relaxed);
        p.umask.store(DEFAULT_UMASK, Relaxed);
        p.pml4.store(paging::kernel_pml4(), Relaxed);
        // SAFETY: the slot was Unused: no context uses its FPU area.
        unsafe { *p.fpu.get() = FpuState::initial() };
        for v in [
            &p.fs_base,
            &p.sleep_until,
            &p.sig_pending,
            &p.sig_blocked,
            &p.sleep_rem,
            &p.io_progress,
            &p.read_buf,
            &p.read_len,
            &p.alarm_at,
            &p.alarm_interval,
            &p.clear_tid,
            &p.poll_deadline,
            &p.poll_rip,
            &p.robust_list,
            &p.futex_space,
            &p.futex_addr,
        ] {
            v.store(0, Relaxed);
        }
        p.wait_status.store(0, Relaxed);
        p.stop_report.store(0, Relaxed);
        p.group_stop.store(false, Relaxed);
        p.restart.store(0, Relaxed);
        p.waiting_in.store(NIL, Relaxed);
        p.vfork_parent.store(NIL, Relaxed);
        {
            // Not the per-signal details (2 KiB): each is written whenever its signal becomes
            // pending, and read only while it is, so a fresh pending mask is enough.
            let mut sig = p.sig.lock();
            sig.altstack = const { crate::signal::state::TaskSignals::new() }.altstack;
            sig.saved_mask = None;
        }
        p.stats.reset();
        Ok(p)
    }

    /// An unused slot, one that still has its stack if there is such.
    fn unused_slot(&self) -> Option<&'static Process> {
        let mut unused = self.slots.iter().filter(|p| p.state() == State::Unused);
        if self.spare_stacks == 0 {
            return unused.next().copied();
        }
        unused.find(|p| p.stack_mapped.load(Relaxed)).copied()
    }

    /// A new slot at the end of the table, its stack not mapped yet.
    fn grow(&mut self) -> Result<&'static Process, SpawnError> {
        if self.slots.len() >= self.max as usize {
            return Err(SpawnError::NoSlot);
        }
        self.slots
            .try_reserve(1)
            .map_err(|_| SpawnError::OutOfMemory)?;
        let slot = self.slots.len() as u32;
        let p: &'static Process = alloc::boxed::Box::leak(try_box(Process::new(slot))?);
        self.slots.push(p);
        Ok(p)
    }

    /// Gives a slot back (a dead process reaped, or a failed start). Its resources must be
    /// gone already (they are dropped outside this lock). Its stack stays mapped: a thread
    /// that exits releases its own slot while still running on that stack.
    pub fn release(&mut self, p: &'static Process) {
        self.generation += 1;
        p.set_state(self, State::Unused);
        if p.stack_mapped.load(Relaxed) {
            self.spare_stacks += 1;
        }
    }

    /// Gives back the kernel stacks of unused slots beyond `SPARE_STACKS`, so that the
    /// memory a burst of processes took returns once they are reaped. `running` is the slot
    /// of the task calling (its own stack is in use, whatever its state says); on one CPU no
    /// other unused slot has a context on its stack.
    pub fn trim_spare_stacks(&mut self, running: u32) {
        if self.spare_stacks <= SPARE_STACKS {
            return;
        }
        for p in self.slots.iter().rev() {
            if self.spare_stacks <= SPARE_STACKS {
                break;
            }
            if p.slot != running && p.state() == State::Unused && p.stack_mapped.load(Relaxed) {
                unmap_stack_pages(p.slot, KSTACK_PAGES);
                p.stack_mapped.store(false, Relaxed);
                self.spare_stacks -= 1;
            }
        }
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

    /// The task with id `pid` (a process's leader, or any thread by its tid).
    pub fn find_pid(&self, pid: u32) -> Option<&'static Process> {
        self.live().find(|p| p.pid() == pid)
    }

    /// The leader of process `pid` (not a thread's tid).
    pub fn find_process(&self, pid: u32) -> Option<&'static Process> {
        self.live().find(|p| p.pid() == pid && p.tgid() == pid)
    }

    /// Every live task of thread group `tgid`, the leader included (even a zombie one).
    pub fn group(&self, tgid: u32) -> impl Iterator<Item = &'static Process> + '_ {
        self.live().filter(move |p| p.tgid() == tgid)
    }

    pub fn sleep_links(&self) -> SleepLinks<'_> {
        SleepLinks(&self.slots)
    }

    /// The ready queue together with its links (they are borrowed from different fields).
    pub fn ready_queue(&mut self) -> (&mut RunQueue, SlotLinks<'_>) {
        (&mut self.ready, SlotLinks(&self.slots))
    }

    /// Wait queue `id` together with the links.
    /// Takes the tasks of wait queue `q` that `pick` chooses (in queue order) into a queue of
    /// their own, still blocked: see `pop_taken`.
    pub fn take_from_queue(
        &mut self,
        q: u32,
        mut pick: impl FnMut(&'static Process) -> bool,
    ) -> RunQueue {
        let slots = &self.slots;
        let mut links = SlotLinks(slots);
        self.queues[q as usize].split_off_where(&mut links, |s| pick(slot_of(slots, s)))
    }

    /// The first task of a queue made by `take_from_queue`.
    pub fn pop_taken(&self, taken: &mut RunQueue) -> Option<&'static Process> {
        let mut links = SlotLinks(&self.slots);
        taken.pop_front(&mut links).map(|s| slot_of(&self.slots, s))
    }

    pub fn queue(&mut self, id: u32) -> (&mut RunQueue, SlotLinks<'_>) {
        (&mut self.queues[id as usize], SlotLinks(&self.slots))
    }

    /// A new, empty wait queue.
    pub fn alloc_queue(&mut self) -> Result<u32, OutOfMemory> {
        if let Some(id) = self.free_queues.pop() {
            return Ok(id);
        }
        self.queues.try_reserve(1).map_err(|_| OutOfMemory)?;
        self.free_queues
            .try_reserve(self.queues.len() + 1)
            .map_err(|_| OutOfMemory)?;
        self.queues.push(RunQueue::new());
        Ok(self.queues.len() as u32 - 1)
    }

    /// Gives back a wait queue nobody waits in any more (its owner is gone).
    pub fn free_queue(&mut self, id: u32) {
        // Room was reserved when the queue was made, so this push cannot allocate.
        self.free_queues.push(id);
    }
}
