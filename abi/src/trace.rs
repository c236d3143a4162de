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

/// A system call begins: `a` = number, first three arguments.
pub const SYSCALL_ENTER: u32 = 1;
/// A system call ends: `a` = number, result (the raw rax), `SYSCALL_*` flag, 0.
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

/// `PAGE_FAULT_END`'s outcomes: the page was mapped; the task gets SIGSEGV; out of memory.
pub const FAULT_RESOLVED: u64 = 0;
pub const FAULT_SEGV: u64 = 1;
pub const FAULT_OOM: u64 = 2;

/// `SYSCALL_EXIT`'s flag: the call returned.
pub const RETURNED: u64 = 0;
/// The call blocked: it ends here for now and runs again (a new ENTER) when the task does.
pub const BLOCKED: u64 = 1;
/// The call does not return to its caller (exit, exit_group).
pub const NO_RETURN: u64 = 2;

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
/// look only at the ones its kind lists.
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
}
