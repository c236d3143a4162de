//! `trace=events`: the kernel's event records, as it hands them to the VMM (`vmm --trace`).
//! The kernel keeps them in a buffer in its own memory (a `Header`, then `CAPACITY` records),
//! tells the VMM the buffer's physical address once (a 4-byte write to
//! `machine::port::TRACE_BUFFER`), and when the buffer is full writes `machine::port::TRACE_FLUSH`:
//! the VMM takes `head` records from guest memory during that exit, and the kernel starts again
//! at 0. At the end (power-off, crash, timeout) the VMM takes the `head` records still there. One
//! VM exit per `CAPACITY` events. All fields little-endian.

/// Records in the buffer.
pub const CAPACITY: usize = 1024;
/// `Header::magic`: "LDETRACE".
pub const MAGIC: u64 = u64::from_le_bytes(*b"LDETRACE");

/// The buffer's first `RECORD_BYTES` bytes; the records follow.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Header {
    pub magic: u64,
    /// Records written since the last flush.
    pub head: u64,
    /// `CAPACITY`, for the VMM to check.
    pub capacity: u64,
    pub _reserved: [u64; 3],
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

/// `SYSCALL_EXIT`'s flag: the call returned.
pub const RETURNED: u64 = 0;
/// The call blocked: it ends here for now and runs again (a new ENTER) when the task does.
pub const BLOCKED: u64 = 1;
/// The call does not return to its caller (exit, exit_group).
pub const NO_RETURN: u64 = 2;

/// The switch reasons, as `trace=sched` names them.
pub const WHY_NAMES: [&str; 6] = ["start", "yield", "preempt", "sleep", "wait", "exit"];

/// `WHY_NAMES`' index of `why`, or `WHY_NAMES.len()` for a reason not listed.
pub fn why_code(why: &str) -> u64 {
    WHY_NAMES
        .iter()
        .position(|w| *w == why)
        .unwrap_or(WHY_NAMES.len()) as u64
}

/// One event: nanoseconds since boot (the guest's TSC), kind, the running task's pid, and four
/// arguments whose meaning depends on the kind.
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
    }
}
