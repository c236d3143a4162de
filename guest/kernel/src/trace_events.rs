//! `trace=events` (added by `vmm --trace`, `--timeline` and `--stats`): system calls, timer
//! interrupts, page faults, idle periods, context switches, signals, faults, and tasks'
//! start, exec and exit, as records (abi::trace) in a buffer the VMM reads from guest memory:
//! one VM exit per `CAPACITY` events, none per event. Off, the system calls and the timer
//! tick pay nothing: on, the trap table points at the recording twins of their entry stubs
//! (trap_entry.rs; trap_table.rs `use_recording_twins` points it there at boot), which
//! write their records in a few instructions each, without the pid (the VMM knows who runs: `abi::trace::Filler`); their slow ways
//! record in Rust (trap.rs `timer_traced`, syscall.rs `traced`). The rest test the flag where
//! they are slow already (the switch path's `trace=sched` test covers it). A record is one
//! `rdtsc` and a few stores: the VMM turns the TSC into nanoseconds.
//!
//! The twins check for room once for both records of a system call or tick (`LAST_PAIR`),
//! and write the second without a check. So every other writer leaves one record free
//! (`emit`): a page fault or an exec inside a system call never takes its end's place.
//!
//! One buffer, as there is one CPU: the twins address `RING` at its link-time place, as they
//! address `CPU0`. A second CPU gets a buffer of its own beside its `PerCpu` (both found
//! through GS then), so that no record needs a lock or an atomic, and the VMM merges the
//! buffers by their TSC stamps.

use core::cell::UnsafeCell;

use crate::cpu::rdtsc;
use crate::percpu::current;
use crate::sync::CpuCell;
use abi::trace::{self, Header, Record, CAPACITY, RECORD_BYTES};
use x86_64::instructions::port::Port;

static ON: CpuCell<bool> = CpuCell::new(false);
/// `trace=sched` too: the switch lines on the console as well as the records.
static SCHED_LINES: CpuCell<bool> = CpuCell::new(false);

#[repr(C, align(4096))]
pub(crate) struct Buffer {
    header: Header,
    records: [Record; CAPACITY],
}

pub(crate) struct Ring(UnsafeCell<Buffer>);

// SAFETY: one CPU, and the kernel runs with interrupts off (only the idle loop's `sti; hlt`
// opens them, and no event is recorded between the two), so no two uses of the buffer overlap. The VMM
// reads it only while the vCPU is stopped in an exit (a flush) or gone (the end).
unsafe impl Sync for Ring {}

const EMPTY: Record = Record {
    ns: 0,
    kind: 0,
    pid: 0,
    a: [0; 4],
};

// All zeros, so in .bss rather than the image: `enable` fills the header in.
/// The buffer; the entry stubs' recording twins (trap_entry.rs) write it by its symbol.
pub(crate) static RING: Ring = Ring(UnsafeCell::new(Buffer {
    header: Header {
        magic: 0,
        head: 0,
        capacity: 0,
        boot_tsc: 0,
        mult: 0,
        stamp_tsc: 0,
    },
    records: [EMPTY; CAPACITY],
}));

pub fn on() -> bool {
    ON.get()
}

pub fn sched_lines() -> bool {
    SCHED_LINES.get()
}

/// Tells the VMM where the buffer is and starts recording.
pub fn enable(sched_lines: bool) {
    // SAFETY: see `Ring`; recording has not started.
    let b = unsafe { &mut *RING.0.get() };
    b.header.magic = trace::MAGIC;
    b.header.capacity = CAPACITY as u64;
    let clock = crate::time::clock();
    b.header.boot_tsc = clock.boot_tsc;
    b.header.mult = clock.mult;
    b.header.stamp_tsc = rdtsc();
    let phys = crate::memory::kernel_virt_to_phys(RING.0.get() as u64);
    // SAFETY: a 4-byte write to the VMM's trace port; the kernel image lies below 4 GiB.
    unsafe { Port::<u32>::new(abi::machine::port::TRACE_BUFFER).write(phys as u32) };
    ON.set(true);
    SCHED_LINES.set(sched_lines);
}

/// The byte offsets the entry stubs' recording twins (trap_entry.rs) write at: `RING`'s
/// `head` and first record, and the last `head` that leaves room for two records.
pub const HEAD: usize = core::mem::offset_of!(Buffer, header) + core::mem::offset_of!(Header, head);
pub const RECORDS: usize = core::mem::offset_of!(Buffer, records);
pub const LAST_PAIR: usize = (CAPACITY - 2) * RECORD_BYTES;

/// A twin found the buffer without room for its two records (trap_entry.rs): the VMM takes
/// them now. Called from assembly with the trap frame below; clobbers only what the C ABI
/// lets it.
#[no_mangle]
#[cold]
extern "C" fn trace_flush_from_entry() {
    // SAFETY: see `Ring`: nothing else uses the buffer now.
    flush(unsafe { &mut (*RING.0.get()).header });
}

/// The slow exit is about to run a deferred call (trap_slow.rs): the end the recording
/// dispatcher wrote for it (the return of `sys_defer`) is taken back, since the real one
/// comes when the call has run (`deferred_result`). It is the last record: nothing records
/// between the dispatcher and the slow exit.
pub fn take_back_deferred_end() {
    // SAFETY: see `Ring`.
    let b = unsafe { &mut *RING.0.get() };
    let at = b.header.head as usize;
    if at >= RECORD_BYTES && b.records[at / RECORD_BYTES - 1].kind == trace::SYSCALL_EXIT {
        b.header.head -= RECORD_BYTES as u64;
    }
}

const _: () = assert!(trace::NS_SHIFT == crate::vdso::SHIFT);
// The layout `emit` writes by hand.
const _: () = assert!(
    core::mem::offset_of!(Record, ns) == 0
        && core::mem::offset_of!(Record, kind) == 8
        && core::mem::offset_of!(Record, pid) == 12
        && core::mem::offset_of!(Record, a) == 16
        && RECORD_BYTES == 48
);

/// Records one event; a buffer that would be full is handed to the VMM first (one record is
/// always left free: see the top). Kept to the few instructions the issue allows (`vmm bench`
/// counts them: its traced rows): the stamp is the raw TSC (no `lfence`: a record's order is
/// its place in the buffer), kind and pid go in one store, and only the `N` arguments the kind
/// uses are written (the others keep old values; abi::trace).
#[inline(always)]
pub fn emit<const N: usize>(kind: u32, pid: u32, a: [u64; N]) {
    write(kind, Some(pid), a)
}

/// As `emit`, for the running task's own traps (the kinds `abi::trace::Filler` gives a pid).
#[inline(always)]
pub fn emit_own<const N: usize>(kind: u32, a: [u64; N]) {
    write(kind, None, a)
}

#[inline(always)]
fn write<const N: usize>(kind: u32, pid: Option<u32>, a: [u64; N]) {
    const { assert!(N <= 4) };
    const END: usize = (CAPACITY - 1) * RECORD_BYTES;
    let (lo, hi): (u32, u32);
    // SAFETY: reads the time-stamp counter; no memory is touched.
    unsafe { core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    let ring = RING.0.get();
    // SAFETY: see `Ring`: nothing else uses the buffer now.
    let mut at = unsafe { (*ring).header.head } as usize;
    if at >= END {
        // SAFETY: as above.
        flush(unsafe { &mut (*ring).header });
        at = 0;
    }
    // SAFETY: `at` is a multiple of RECORD_BYTES below END (the kernel alone writes `head`,
    // always so), so the record at `at` lies inside `records`, 8-aligned, and is ours to
    // write (see `Ring`). The fields are stored as abi::trace::Record lays them out: the TSC
    // as its two halves, kind and pid (adjacent u32s) in one u64, then the arguments.
    unsafe {
        let r = ((*ring).records.as_mut_ptr() as *mut u8).add(at);
        (r as *mut u32).write(lo);
        (r.add(4) as *mut u32).write(hi);
        match pid {
            Some(pid) => (r.add(8) as *mut u64).write(kind as u64 | (pid as u64) << 32),
            None => (r.add(8) as *mut u32).write(kind),
        }
        for (i, v) in a.iter().enumerate() {
            (r.add(16 + 8 * i) as *mut u64).write(*v);
        }
        (*ring).header.head = (at + RECORD_BYTES) as u64;
    }
}

#[cold]
#[inline(never)]
fn flush(h: &mut Header) {
    h.stamp_tsc = rdtsc();
    // SAFETY: a write to the VMM's trace port: the VMM takes the records during this exit (the
    // asm has no `nomem`, so the stores before it are in memory by then).
    unsafe { Port::<u8>::new(abi::machine::port::TRACE_FLUSH).write(0) };
    h.head = 0;
}

/// The TSC in the header before a port write the VMM will see (power-off): one more pair of
/// clock readings for its time line.
pub fn stamp() {
    if on() {
        // SAFETY: see `Ring`.
        unsafe { (*RING.0.get()).header.stamp_tsc = rdtsc() };
    }
}

#[cold]
#[inline(never)]
pub fn idle_begin() {
    emit(trace::IDLE_BEGIN, current().pid(), []);
}

#[cold]
#[inline(never)]
pub fn idle_end() {
    emit(trace::IDLE_END, current().pid(), []);
}

/// The running task made `child` with clone `flags`.
#[cold]
#[inline(never)]
pub fn start(child: u32, flags: u64) {
    emit(trace::START, current().pid(), [child as u64, flags]);
}

/// The running task now runs `name`.
#[cold]
#[inline(never)]
pub fn exec(name: &[u8]) {
    let n = trace::pack_name(name);
    emit(trace::EXEC, current().pid(), [n[0], n[1]]);
}

/// The running task ends with `wait_status`.
#[cold]
#[inline(never)]
pub fn exit(wait_status: u32) {
    emit(trace::EXIT, current().pid(), [wait_status as u64]);
}

/// The end of a call the slow exit ran (fork, execve, rt_sigreturn...).
pub fn deferred_result(n: u64, rax: u64) {
    emit(
        trace::SYSCALL_LATE_EXIT,
        current().pid(),
        [n, rax, trace::RETURNED],
    );
}

/// A switch from `prev` (0 at boot) to `next`, named, for the trace's tracks.
pub fn switch(prev: u32, next: u32, next_name: &[u8], why: &str) {
    let name = trace::pack_name(next_name);
    emit(
        trace::SWITCH,
        prev,
        [next as u64, trace::why_code(why), name[0], name[1]],
    );
}
