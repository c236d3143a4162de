//! Breakpoints and watchpoints, as gdb sets them and as KVM_SET_GUEST_DEBUG arms them.
//!
//! - Hardware: the four debug registers DR0-DR3 and DR7, shared by execution breakpoints
//!   (`hbreak`, and `break` where int3 cannot be planted) and watchpoints. A watched range that
//!   is not one aligned 1/2/4/8-byte piece takes several registers.
//! - Software: an int3 (0xcc) written into guest memory where gdb asks, the original byte kept.
//!   Each is remembered by guest-*physical* address, so it is restored into the page it was
//!   planted in even when another process (another page table) is current by then.
//!
//! This file only keeps the tables and computes DR7; `target.rs` does the memory and KVM work.

use gdbstub::target::ext::breakpoints::WatchKind;

pub const INT3: u8 = 0xcc;
pub const SLOTS: usize = 4;

/// What one debug register is doing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    #[default]
    Free,
    /// An instruction breakpoint; `as_sw` when it stands in for a software breakpoint (so the
    /// stop is reported as the kind gdb asked for).
    Exec { addr: u64, as_sw: bool },
    /// An instruction breakpoint of our own, not gdb's (kvm_pvm: a kernel entry, pvm.rs).
    Internal { addr: u64, what: Internal },
    /// One aligned piece of gdb's watchpoint `watch` (address, length, kind).
    Data {
        addr: u64,
        len: u64,
        watch: (u64, u64, WatchKind),
    },
}

/// Which kernel entry (IDT vector) one of our own breakpoints watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Internal {
    /// The kernel's #BP entry, where an int3 planted in ring 3 arrives.
    Breakpoint,
    /// The kernel's #PF entry (a system call on kvm_pvm), where breakpoints in a program that
    /// was not mapped yet get planted.
    PageFault,
    /// The kernel's #DB entry, where a single step in ring 3 arrives.
    Debug,
}

/// A planted int3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwBreakpoint {
    pub gva: u64,
    pub gpa: u64,
    pub original: u8,
}

#[derive(Debug, Default)]
pub struct Breakpoints {
    pub slots: [Slot; SLOTS],
    pub sw: Vec<SwBreakpoint>,
}

/// DR7: bit 9 (GE, exact data breakpoints) and bit 10 (reserved, reads as 1).
const DR7_BASE: u64 = 0x600;

impl Breakpoints {
    pub fn any_hw(&self) -> bool {
        self.slots.iter().any(|s| *s != Slot::Free)
    }

    /// Takes a free register for an instruction breakpoint at `addr`.
    pub fn add_exec(&mut self, addr: u64, as_sw: bool) -> bool {
        self.take_slots(&[Slot::Exec { addr, as_sw }])
    }

    pub fn remove_exec(&mut self, addr: u64, as_sw: bool) -> bool {
        self.free_where(|s| *s == Slot::Exec { addr, as_sw })
    }

    pub fn add_watch(&mut self, addr: u64, len: u64, kind: WatchKind) -> bool {
        let Some(pieces) = aligned_pieces(addr, len) else {
            return false;
        };
        let slots: Vec<Slot> = pieces
            .into_iter()
            .map(|(a, l)| Slot::Data {
                addr: a,
                len: l,
                watch: (addr, len, kind),
            })
            .collect();
        self.take_slots(&slots)
    }

    pub fn remove_watch(&mut self, addr: u64, len: u64, kind: WatchKind) -> bool {
        self.free_where(|s| matches!(s, Slot::Data { watch, .. } if *watch == (addr, len, kind)))
    }

    /// Takes a free register for each of `wanted`, or none at all.
    fn take_slots(&mut self, wanted: &[Slot]) -> bool {
        let free: Vec<usize> = (0..SLOTS)
            .filter(|&i| self.slots[i] == Slot::Free)
            .collect();
        if free.len() < wanted.len() {
            return false;
        }
        for (&i, slot) in free.iter().zip(wanted) {
            self.slots[i] = *slot;
        }
        true
    }

    fn free_where(&mut self, pred: impl Fn(&Slot) -> bool) -> bool {
        let mut found = false;
        for s in self.slots.iter_mut().filter(|s| pred(s)) {
            *s = Slot::Free;
            found = true;
        }
        found
    }

    /// The registers for KVM_SET_GUEST_DEBUG: DR0-DR3 and DR7, without the slots in `skip`
    /// (a breakpoint being stepped over).
    pub fn debugregs(&self, skip: Option<usize>) -> [u64; 8] {
        let mut dr = [0u64; 8];
        let mut dr7 = DR7_BASE;
        for (i, slot) in self.slots.iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            let (addr, rw, len) = match *slot {
                Slot::Free => continue,
                Slot::Exec { addr, .. } | Slot::Internal { addr, .. } => (addr, 0b00, 1),
                Slot::Data { addr, len, watch } => {
                    // x86 has no read-only data breakpoint: a read watchpoint fires on writes
                    // too, and gdb tells the two apart by whether the value changed.
                    let rw = if watch.2 == WatchKind::Write {
                        0b01
                    } else {
                        0b11
                    };
                    (addr, rw, len)
                }
            };
            let len_bits = match len {
                1 => 0b00,
                2 => 0b01,
                8 => 0b10,
                _ => 0b11, // 4
            };
            dr[i] = addr;
            // G_i: enabled (global, so the guest's task switches cannot clear it).
            dr7 |= 2 << (2 * i);
            dr7 |= (rw | len_bits << 2) << (16 + 4 * i);
        }
        dr[7] = dr7;
        dr
    }

    /// The slot an execution breakpoint at `rip` occupies, if any.
    pub fn exec_slot_at(&self, rip: u64) -> Option<usize> {
        self.slots.iter().position(
            |s| matches!(s, Slot::Exec { addr, .. } | Slot::Internal { addr, .. } if *addr == rip),
        )
    }

    /// Puts our own breakpoint `what` at `addr` (or nowhere); false if no register was free.
    pub fn set_internal(&mut self, what: Internal, addr: Option<u64>) -> bool {
        let current = self
            .slots
            .iter()
            .position(|s| matches!(s, Slot::Internal { what: w, .. } if *w == what));
        match (current, addr) {
            (Some(i), Some(a)) => {
                self.slots[i] = Slot::Internal { addr: a, what };
                true
            }
            (Some(i), None) => {
                self.slots[i] = Slot::Free;
                true
            }
            (None, Some(a)) => self.take_slots(&[Slot::Internal { addr: a, what }]),
            (None, None) => true,
        }
    }

    pub fn sw_at(&self, gva: u64) -> Option<&SwBreakpoint> {
        self.sw.iter().find(|b| b.gva == gva)
    }
}

/// `len` bytes from `addr` as the aligned 1/2/4/8-byte pieces debug registers can watch, at
/// most four of them.
fn aligned_pieces(addr: u64, len: u64) -> Option<Vec<(u64, u64)>> {
    let mut pieces = Vec::new();
    let (mut a, end) = (addr, addr.checked_add(len)?);
    while a < end {
        let size = [8u64, 4, 2, 1]
            .into_iter()
            .find(|&s| a % s == 0 && a + s <= end)?;
        pieces.push((a, size));
        a += size;
        if pieces.len() > SLOTS {
            return None;
        }
    }
    (!pieces.is_empty()).then_some(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dr7_encodes_each_slot() {
        let mut b = Breakpoints::default();
        assert!(b.add_exec(0xffff_ffff_8010_0000, false));
        assert!(b.add_watch(0x1000, 4, WatchKind::Write));
        let dr = b.debugregs(None);
        assert_eq!(dr[0], 0xffff_ffff_8010_0000);
        assert_eq!(dr[1], 0x1000);
        // slot 0: G0, RW=00 LEN=00; slot 1: G1, RW=01 LEN=11.
        assert_eq!(dr[7], 0x600 | 0b10 | 0b1000 | (0b1101 << 20));
        // Stepping over slot 0 leaves it out.
        assert_eq!(b.debugregs(Some(0))[7] & 0b11, 0);
        assert!(b.remove_exec(0xffff_ffff_8010_0000, false));
        assert!(!b.remove_exec(0xffff_ffff_8010_0000, false));
        assert_eq!(b.debugregs(None)[0], 0);
    }

    #[test]
    fn watch_ranges_split_into_aligned_pieces() {
        assert_eq!(aligned_pieces(0x1000, 8), Some(vec![(0x1000, 8)]));
        assert_eq!(
            aligned_pieces(0x1003, 6),
            Some(vec![(0x1003, 1), (0x1004, 4), (0x1008, 1)])
        );
        assert_eq!(aligned_pieces(0x1000, 64), None, "more than four registers");
        assert_eq!(aligned_pieces(0x1000, 0), None);
        let mut b = Breakpoints::default();
        assert!(b.add_watch(0x1003, 6, WatchKind::ReadWrite));
        assert!(b.add_exec(0x2000, true));
        assert!(!b.add_exec(0x3000, true), "all four registers taken");
        assert!(b.remove_watch(0x1003, 6, WatchKind::ReadWrite));
        assert!(b.add_exec(0x3000, true));
    }
}
