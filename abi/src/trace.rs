//! `trace=events`: the kernel's event records, as it hands them to the VMM (`vmm --trace`).
//! The kernel keeps them in a buffer in its own memory (a `Header`, then `CAPACITY` records),
//! tells the VMM the buffer's physical address once (a 4-byte write to
//! `machine::port::TRACE_BUFFER`), and when the buffer is full writes `machine::port::TRACE_FLUSH`:
//! the VMM takes the `head` bytes of records from guest memory during that exit, and the kernel starts again
//! at 0. At the end (power-off, crash, timeout) the VMM takes the `head` records still there. One
//! VM exit per `CAPACITY` events. All fields little-endian.
//!
//! Records are stamped with the raw TSC (one `rdtsc`, no arithmetic on the kernel's path); the
//! header carries the kernel's clock (`boot_tsc`, `mult`: `ns_since_boot`), so the VMM turns
//! them into the nanoseconds of CLOCK_MONOTONIC. Before every write to either port the kernel
//! puts the TSC in `stamp_tsc`: the VMM reads its own clock in that exit, and the pairs put
//! its events (the VM exits) on the guest's time line.

/// Records in the buffer.
pub const CAPACITY: usize = 1024;
/// `Header::magic`: "LDETRACE".
pub const MAGIC: u64 = u64::from_le_bytes(*b"LDETRACE");

/// The buffer's first `RECORD_BYTES` bytes; the records follow.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Header {
    pub magic: u64,
    /// Bytes of records written since the last flush (a multiple of `RECORD_BYTES`: the
    /// kernel's path adds to it without multiplying).
    pub head: u64,
    /// `CAPACITY`, for the VMM to check.
    pub capacity: u64,
    /// The kernel's clock: TSC at boot, and nanoseconds per tick times 2^`NS_SHIFT`.
    pub boot_tsc: u64,
    pub mult: u64,
    /// The TSC just before the port write the VMM is handling now.
    pub stamp_tsc: u64,
}

/// `Header::mult`'s fixed point (the vDSO's too).
pub const NS_SHIFT: u32 = 32;

/// Nanoseconds since boot at `tsc`, as the kernel's CLOCK_MONOTONIC counts them.
pub fn ns_since_boot(tsc: u64, boot_tsc: u64, mult: u64) -> u64 {
    ((tsc.wrapping_sub(boot_tsc) as u128 * mult as u128) >> NS_SHIFT) as u64
}

/// A system call begins: `a` = number, first three arguments. Written by the kernel's
/// recording dispatcher (trap_entry.rs) without `pid`: it is the running task's (`Filler`).
pub const SYSCALL_ENTER: u32 = 1;
/// A system call ends: `a` = number, result (the raw rax), how it ended (`RETURNED`,
/// `BLOCKED`, `NO_RETURN`), 0. The kernel's dispatcher writes only the result and how far the
/// call moved its own return address back (0, or 2 for a call that blocked and runs again:
/// `BLOCKED`): the end is that of the `SYSCALL_ENTER` just before it, whose pid and number
/// `Filler` copies in, and exit and exit_group are known by number (`NO_RETURN`).
pub const SYSCALL_EXIT: u32 = 2;
/// A context switch from `pid` (0 at boot): `a` = the next pid, a `WHY_*` code, and the next
/// task's name (16 bytes, NUL-padded) in a[2..4].
pub const SWITCH: u32 = 3;
/// A signal is taken by `pid`: `a` = signal number, 0, 0, 0.
pub const SIGNAL: u32 = 4;

/// An exception caused by `pid` (the kernel answers with a signal: a handler, or a kill):
/// `a` = vector, rip, the faulting address (page faults; else 0), the signal.
pub const FAULT: u32 = 5;

/// The vector of the interrupt `TICK_BEGIN` records (the LAPIC timer's, in the kernel's trap
/// table).
pub const TIMER_VECTOR: u8 = 32;

/// A timer interrupt begins: `a` = 1 if it came from user mode (0: the CPU was idle), 0, 0, 0.
pub const TICK_BEGIN: u32 = 6;
/// The timer interrupt's handler is done (a switch it asked for follows): `a` all 0.
pub const TICK_END: u32 = 7;
/// A page fault from user mode begins: `a` = address, error code, rip, 0.
pub const PAGE_FAULT_BEGIN: u32 = 8;
/// The page fault is handled: `a` = a `FAULT_*` outcome, 0, 0, 0.
pub const PAGE_FAULT_END: u32 = 9;
/// The CPU halts with nothing to run (`pid` is the task that blocked): `a` all 0.
pub const IDLE_BEGIN: u32 = 10;
/// An interrupt woke the halted CPU: `a` all 0.
pub const IDLE_END: u32 = 11;
/// `pid` made a new task: `a` = its pid, the clone flags, 0, 0.
pub const START: u32 = 12;
/// `pid` now runs a new program: its name (16 bytes) in a[0..2].
pub const EXEC: u32 = 13;
/// The task `pid` ended: `a` = its Linux wait status (exit code << 8, or the signal), 0, 0, 0.
pub const EXIT: u32 = 14;
/// The end of a call that the kernel's slow exit ran later (fork, execve, rt_sigreturn...;
/// others' records may lie between it and its ENTER): `pid` and `a` as `SYSCALL_EXIT` gives
/// them, all written. `Filler` turns it into a `SYSCALL_EXIT`.
pub const SYSCALL_LATE_EXIT: u32 = 15;
/// A device interrupt (or the LAPIC's spurious vector) begins: `a` = its vector. Written
/// without `pid`, as the timer's records are.
pub const INTERRUPT_BEGIN: u32 = 16;
/// It ends: no arguments.
pub const INTERRUPT_END: u32 = 17;
/// The vectors `INTERRUPT_BEGIN` names: the console's (the UART's and the virtio console's
/// interrupt), and the LAPIC's spurious one.
pub const CONSOLE_VECTOR: u8 = 36;
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// `PAGE_FAULT_END`'s outcomes: the page was mapped; the task gets SIGSEGV; out of memory.
pub const FAULT_RESOLVED: u64 = 0;
pub const FAULT_SEGV: u64 = 1;
pub const FAULT_OOM: u64 = 2;

/// `SYSCALL_EXIT`'s flag: the call returned.
pub const RETURNED: u64 = 0;
/// The call blocked: it ends here for now and runs again (a new ENTER) when the task does, or
/// another completes it. 2: the length of `syscall` and `int 0x80`, by which the kernel moves
/// the return address back so that the call runs again.
pub const BLOCKED: u64 = 2;
/// The call does not return to its caller (exit, exit_group).
pub const NO_RETURN: u64 = 3;

/// The switch reasons, as `trace=sched` names them (new ones go at the end: the codes stay).
pub const WHY_NAMES: [&str; 11] = [
    "start", "yield", "preempt", "sleep", "wait", "exit", "block", "pause", "vfork", "dethread",
    "stop",
];

/// `WHY_NAMES`' index of `why`, or `WHY_NAMES.len()` for a reason not listed.
pub fn why_code(why: &str) -> u64 {
    WHY_NAMES
        .iter()
        .position(|w| *w == why)
        .unwrap_or(WHY_NAMES.len()) as u64
}

/// One event: when (in the kernel's buffer the TSC, after the VMM's drain nanoseconds since
/// boot), kind, the running task's pid, and four arguments whose meaning depends on the kind.
/// Arguments a kind does not name are not written (they hold an older record's): readers
/// look only at the ones its kind lists. The records of the running task's own traps (system
/// calls, ticks, page faults) are written without their pid, to keep each to a few
/// instructions: `Filler` gives them the pid of the task the last `SWITCH` ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Record {
    pub ns: u64,
    pub kind: u32,
    pub pid: u32,
    pub a: [u64; 4],
}

pub const RECORD_BYTES: usize = core::mem::size_of::<Record>();

impl Record {
    pub fn to_bytes(&self) -> [u8; RECORD_BYTES] {
        let mut b = [0u8; RECORD_BYTES];
        b[0..8].copy_from_slice(&self.ns.to_le_bytes());
        b[8..12].copy_from_slice(&self.kind.to_le_bytes());
        b[12..16].copy_from_slice(&self.pid.to_le_bytes());
        for (i, v) in self.a.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// None unless `b` is exactly one record.
    pub fn from_bytes(b: &[u8]) -> Option<Record> {
        if b.len() != RECORD_BYTES {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
        Some(Record {
            ns: u64_at(0),
            kind: u32_at(8),
            pid: u32_at(12),
            a: [u64_at(16), u64_at(24), u64_at(32), u64_at(40)],
        })
    }
}

/// Completes the records the kernel writes short (see `SYSCALL_EXIT` and `Record`), in the
/// order the kernel wrote them: every reader of the buffer passes each record through `fill`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filler {
    /// The task the last SWITCH ran (0 before the first).
    running: u32,
    /// The last SYSCALL_ENTER not yet ended: its pid and number.
    open_call: Option<(u32, u64)>,
}

impl Filler {
    pub fn fill(&mut self, r: &mut Record) {
        match r.kind {
            SWITCH => self.running = r.a[0] as u32,
            SYSCALL_ENTER => {
                r.pid = self.running;
                self.open_call = Some((r.pid, r.a[0]));
            }
            SYSCALL_EXIT => {
                // Without an ENTER before it (the buffer's first records were dropped), the
                // number is unknown: u64::MAX names no call.
                let (pid, n) = self.open_call.take().unwrap_or((self.running, u64::MAX));
                r.pid = pid;
                r.a[0] = n;
                r.a[2] = match r.a[2] {
                    0 if is_no_return(n) => NO_RETURN,
                    0 => RETURNED,
                    _ => BLOCKED,
                };
            }
            SYSCALL_LATE_EXIT => {
                r.kind = SYSCALL_EXIT;
                self.open_call = None;
            }
            TICK_BEGIN | TICK_END | PAGE_FAULT_BEGIN | PAGE_FAULT_END | INTERRUPT_BEGIN
            | INTERRUPT_END => r.pid = self.running,
            _ => {}
        }
    }
}

fn is_no_return(n: u64) -> bool {
    n == crate::syscall::nr::EXIT as u64 || n == crate::syscall::nr::EXIT_GROUP as u64
}

/// A name packed into two u64s (SWITCH's a[2..4]), and back.
pub fn pack_name(name: &[u8]) -> [u64; 2] {
    let mut b = [0u8; 16];
    let n = name.len().min(16);
    b[..n].copy_from_slice(&name[..n]);
    [
        u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])),
        u64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8])),
    ]
}

pub fn unpack_name(words: [u64; 2]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&words[0].to_le_bytes());
    b[8..].copy_from_slice(&words[1].to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_its_bytes() {
        let r = Record {
            ns: 123_456,
            kind: SWITCH,
            pid: 3,
            a: [4, why_code("preempt"), 0x1122, u64::MAX],
        };
        assert_eq!(RECORD_BYTES, 48);
        assert_eq!(Record::from_bytes(&r.to_bytes()), Some(r));
        assert_eq!(Record::from_bytes(&[0; 47]), None);
        assert_eq!(why_code("preempt"), 2);
        assert_eq!(&unpack_name(pack_name(b"spin"))[..5], b"spin\0");
        assert_eq!(core::mem::size_of::<Header>(), RECORD_BYTES);
        // 1 GHz: mult = 2^32, so ns = ticks.
        assert_eq!(ns_since_boot(1_500, 500, 1 << NS_SHIFT), 1_000);
    }

    fn rec(kind: u32, pid: u32, a: [u64; 4]) -> Record {
        Record {
            ns: 0,
            kind,
            pid,
            a,
        }
    }

    #[test]
    fn the_filler_gives_short_records_their_task_and_call() {
        let read = crate::syscall::nr::READ as u64;
        let write = crate::syscall::nr::WRITE as u64;
        let exit = crate::syscall::nr::EXIT_GROUP as u64;
        const JUNK: u32 = 77;
        let mut f = Filler::default();
        let mut run = |r: Record| {
            let mut r = r;
            f.fill(&mut r);
            r
        };
        // pid 2 blocks in read: inside the call the kernel already switched to 3.
        run(rec(SWITCH, 0, [2, why_code("start"), 0, 0]));
        assert_eq!(run(rec(SYSCALL_ENTER, JUNK, [read, 0, 1, 2])).pid, 2);
        assert_eq!(run(rec(PAGE_FAULT_BEGIN, JUNK, [0x1000, 6, 0, 0])).pid, 2);
        run(rec(SWITCH, 2, [3, why_code("wait"), 0, 0]));
        let end = run(rec(SYSCALL_EXIT, JUNK, [9, 0, BLOCKED, 9]));
        assert_eq!(
            (end.pid, end.a[0], end.a[1], end.a[2]),
            (2, read, 0, BLOCKED)
        );
        // pid 3 writes (returned), then a fork of its ends late; a tick comes between.
        run(rec(SYSCALL_ENTER, JUNK, [write, 1, 0, 5]));
        let end = run(rec(SYSCALL_EXIT, JUNK, [0, 5, 0, 0]));
        assert_eq!(
            (end.pid, end.a[0], end.a[1], end.a[2]),
            (3, write, 5, RETURNED)
        );
        assert_eq!(run(rec(TICK_BEGIN, JUNK, [1, 0, 0, 0])).pid, 3);
        run(rec(SYSCALL_ENTER, JUNK, [57, 0, 0, 0]));
        let late = run(rec(SYSCALL_LATE_EXIT, 3, [57, 4, RETURNED, 0]));
        assert_eq!((late.kind, late.pid, late.a[0]), (SYSCALL_EXIT, 3, 57));
        assert_eq!(run(rec(INTERRUPT_BEGIN, JUNK, [36, 0, 0, 0])).pid, 3);
        // The late end closed the fork: an end after it has no call of its own.
        assert_eq!(run(rec(SYSCALL_EXIT, JUNK, [0; 4])).a[0], u64::MAX);
        // exit_group ends without returning; an end without a beginning names no call.
        run(rec(SYSCALL_ENTER, JUNK, [exit, 0, 0, 0]));
        assert_eq!(run(rec(SYSCALL_EXIT, JUNK, [0; 4])).a[2], NO_RETURN);
        let orphan = run(rec(SYSCALL_EXIT, JUNK, [0; 4]));
        assert_eq!((orphan.pid, orphan.a[0]), (3, u64::MAX));
        // Records that name their task keep it.
        assert_eq!(run(rec(EXIT, 3, [0; 4])).pid, 3);
    }
}
