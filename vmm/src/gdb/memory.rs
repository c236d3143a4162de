//! Guest memory at the addresses gdb uses: guest-virtual ones, translated through the page
//! tables the vCPU is using now (CR3, and CR0/CR4/EFER for the paging mode), so the same code
//! serves the 32-bit entry with paging off, the kernel's higher half and the current process's
//! user pages. One translation per 4 KiB page: a range may cross into pages mapped elsewhere,
//! or not at all.
//!
//! The walk is ours rather than KVM_TRANSLATE's: on kvm_pvm, KVM_TRANSLATE fails for user
//! addresses the guest has mapped (docs/gdb.md), and a walk of the guest's own tables in its
//! RAM works the same on every KVM.

use kvm_bindings::kvm_sregs;
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

const PAGE: u64 = 4096;
const CR0_PG: u64 = 1 << 31;
const CR4_PSE: u64 = 1 << 4;
const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;
const EFER_LMA: u64 = 1 << 10;
const PRESENT: u64 = 1;
const USER: u64 = 1 << 2;
const HUGE: u64 = 1 << 7;
/// Physical address bits 12-51 of a 64-bit (PAE or long mode) entry.
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// The paging mode of the vCPU and the root of its tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    Off,
    /// 32-bit paging, two levels of 4-byte entries (4 MiB pages with CR4.PSE).
    Legacy {
        cr3: u64,
        pse: bool,
    },
    /// 32-bit PAE: a 4-entry PDPT, then two levels of 8-byte entries.
    Pae {
        cr3: u64,
    },
    /// Long mode with four (or, with CR4.LA57, five) levels.
    Long {
        cr3: u64,
        levels: u32,
    },
}

impl Paging {
    pub fn of(s: &kvm_sregs) -> Paging {
        if s.cr0 & CR0_PG == 0 {
            Paging::Off
        } else if s.efer & EFER_LMA != 0 {
            let levels = if s.cr4 & CR4_LA57 != 0 { 5 } else { 4 };
            Paging::Long { cr3: s.cr3, levels }
        } else if s.cr4 & CR4_PAE != 0 {
            Paging::Pae { cr3: s.cr3 }
        } else {
            Paging::Legacy {
                cr3: s.cr3,
                pse: s.cr4 & CR4_PSE != 0,
            }
        }
    }

    /// The guest-physical address behind `gva`, if a present mapping exists, and whether ring 3
    /// may use the page (U/S set at every level). The access rights are not checked otherwise:
    /// a debugger may read what the guest may not. `read` reads a page-table entry of `size`
    /// bytes (4 or 8) at a guest-physical address.
    pub fn lookup(self, gva: u64, read: impl Fn(u64, usize) -> Option<u64>) -> Option<(u64, bool)> {
        match self {
            Paging::Off => Some((gva, true)),
            Paging::Legacy { cr3, pse } => {
                let gva = u32::try_from(gva).ok()? as u64;
                let pde = read((cr3 & 0xffff_f000) + (gva >> 22) * 4, 4)?;
                if pde & PRESENT == 0 {
                    return None;
                }
                if pse && pde & HUGE != 0 {
                    return Some(((pde & 0xffc0_0000) | (gva & 0x3f_ffff), pde & USER != 0));
                }
                let pte = read((pde & 0xffff_f000) + ((gva >> 12) & 0x3ff) * 4, 4)?;
                let user = pde & pte & USER != 0;
                (pte & PRESENT != 0).then_some(((pte & 0xffff_f000) | (gva & 0xfff), user))
            }
            Paging::Pae { cr3 } => {
                let gva = u32::try_from(gva).ok()? as u64;
                let pdpte = read((cr3 & 0xffff_ffe0) + (gva >> 30) * 8, 8)?;
                if pdpte & PRESENT == 0 {
                    return None;
                }
                walk(pdpte & ADDR_MASK, gva, 2, read)
            }
            Paging::Long { cr3, levels } => {
                // Canonical: the bits above the top level's index copy the highest one.
                let bits = 12 + 9 * levels;
                let top = (gva as i64) >> (bits - 1);
                if top != 0 && top != -1 {
                    return None;
                }
                walk(cr3 & ADDR_MASK, gva, levels, read)
            }
        }
    }
}

/// Walks `levels` levels of 512-entry tables from `table`; levels 2 and 3 may map 2 MiB and
/// 1 GiB pages.
fn walk(
    mut table: u64,
    gva: u64,
    levels: u32,
    read: impl Fn(u64, usize) -> Option<u64>,
) -> Option<(u64, bool)> {
    let mut user = true;
    for level in (1..=levels).rev() {
        let shift = 12 + 9 * (level - 1);
        let entry = read(table + ((gva >> shift) & 0x1ff) * 8, 8)?;
        if entry & PRESENT == 0 {
            return None;
        }
        user &= entry & USER != 0;
        if level == 1 || (level <= 3 && entry & HUGE != 0) {
            let page_mask = (1u64 << shift) - 1;
            return Some(((entry & ADDR_MASK & !page_mask) | (gva & page_mask), user));
        }
        table = entry & ADDR_MASK;
    }
    None
}

pub fn paging_on(vcpu: &VcpuFd) -> bool {
    vcpu.get_sregs()
        .is_ok_and(|s| Paging::of(&s) != Paging::Off)
}

/// The guest-physical address behind `gva` in the vCPU's current address space.
pub fn translate(vcpu: &VcpuFd, mem: &GuestMemoryMmap, gva: u64) -> Option<u64> {
    lookup(vcpu, mem, gva).map(|(gpa, _)| gpa)
}

/// As `translate`, and whether ring 3 may use the page.
pub fn lookup(vcpu: &VcpuFd, mem: &GuestMemoryMmap, gva: u64) -> Option<(u64, bool)> {
    let sregs = vcpu.get_sregs().ok()?;
    Paging::of(&sregs).lookup(gva, |gpa, size| {
        let mut b = [0u8; 8];
        mem.read_slice(&mut b[..size], GuestAddress(gpa)).ok()?;
        Some(u64::from_le_bytes(b))
    })
}

/// Reads as much of `buf` as is mapped from `gva` on; returns how many bytes that was (0 when
/// the first byte is not readable).
pub fn read_virt(vcpu: &VcpuFd, mem: &GuestMemoryMmap, gva: u64, buf: &mut [u8]) -> usize {
    let mut done = 0;
    for (addr, chunk) in page_chunks(gva, buf.len()) {
        let Some(gpa) = translate(vcpu, mem, addr) else {
            break;
        };
        if mem
            .read_slice(&mut buf[done..done + chunk], GuestAddress(gpa))
            .is_err()
        {
            break;
        }
        done += chunk;
    }
    done
}

/// Writes all of `data` at `gva`, or nothing if any page of the range is unmapped.
pub fn write_virt(vcpu: &VcpuFd, mem: &GuestMemoryMmap, gva: u64, data: &[u8]) -> bool {
    let mut targets = Vec::new();
    for (addr, chunk) in page_chunks(gva, data.len()) {
        match translate(vcpu, mem, addr) {
            Some(gpa) if mem.check_range(GuestAddress(gpa), chunk) => targets.push((gpa, chunk)),
            _ => return false,
        }
    }
    let mut done = 0;
    for (gpa, chunk) in targets {
        if mem
            .write_slice(&data[done..done + chunk], GuestAddress(gpa))
            .is_err()
        {
            return false;
        }
        done += chunk;
    }
    true
}

/// Splits `len` bytes from `start` at page boundaries: (address, length) pieces. Stops at the
/// top of the address space rather than wrapping.
fn page_chunks(start: u64, len: usize) -> impl Iterator<Item = (u64, usize)> {
    let mut addr = start;
    let mut left = len as u64;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let to_page_end = PAGE - (addr % PAGE);
        let n = to_page_end.min(left);
        let piece = (addr, n as usize);
        left -= n;
        match addr.checked_add(n) {
            Some(next) => addr = next,
            None => left = 0,
        }
        Some(piece)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    impl Paging {
        fn translate(self, gva: u64, read: impl Fn(u64, usize) -> Option<u64>) -> Option<u64> {
            self.lookup(gva, read).map(|(gpa, _)| gpa)
        }
    }

    /// Page-table entries by guest-physical address.
    fn reader(entries: &HashMap<u64, u64>) -> impl Fn(u64, usize) -> Option<u64> + '_ {
        |gpa, _| Some(*entries.get(&gpa).unwrap_or(&0))
    }

    #[test]
    fn long_mode_walk_4k_2m_and_unmapped() {
        // PML4 at 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000.
        let gva: u64 = 0xffff_ffff_8010_2345;
        let idx = |level: u32| (gva >> (12 + 9 * (level - 1))) & 0x1ff;
        let mut e = HashMap::new();
        e.insert(0x1000 + idx(4) * 8, 0x2000 | 3);
        e.insert(0x2000 + idx(3) * 8, 0x3000 | 3);
        e.insert(0x3000 + idx(2) * 8, 0x4000 | 3);
        e.insert(0x4000 + idx(1) * 8, 0x0050_2000 | 1 | (1 << 63)); // NX is not an address bit
        let long = Paging::Long {
            cr3: 0x1000,
            levels: 4,
        };
        assert_eq!(long.translate(gva, reader(&e)), Some(0x0050_2345));
        // A 2 MiB page at the PD level.
        e.insert(0x3000 + idx(2) * 8, 0x0060_0000 | HUGE | 1);
        assert_eq!(
            long.translate(gva, reader(&e)),
            Some(0x0060_0000 + (gva & 0x1f_ffff))
        );
        // Not present, and non-canonical.
        assert_eq!(long.translate(0x4000_0000, reader(&e)), None);
        assert_eq!(long.translate(0x0000_8000_0000_0000, reader(&e)), None);
        assert_eq!(Paging::Off.translate(0x1234, reader(&e)), Some(0x1234));
    }

    #[test]
    fn paging_mode_from_the_control_registers() {
        let mut s = kvm_sregs::default();
        assert_eq!(Paging::of(&s), Paging::Off);
        s.cr0 = CR0_PG | 1;
        s.cr3 = 0x5000;
        assert_eq!(
            Paging::of(&s),
            Paging::Legacy {
                cr3: 0x5000,
                pse: false
            }
        );
        s.cr4 = CR4_PAE;
        assert_eq!(Paging::of(&s), Paging::Pae { cr3: 0x5000 });
        s.efer = EFER_LMA;
        assert_eq!(
            Paging::of(&s),
            Paging::Long {
                cr3: 0x5000,
                levels: 4
            }
        );
    }

    #[test]
    fn thirty_two_bit_walks() {
        let mut e = HashMap::new();
        // Legacy: PDE 1 -> PT at 0x6000 -> page 0x7000; PDE 2 a 4 MiB page.
        e.insert(0x5000 + 4, 0x6000 | 1);
        e.insert(0x6000 + 3 * 4, 0x7000 | 1);
        e.insert(0x5000 + 8, 0x0080_0000 | HUGE | 1);
        let legacy = Paging::Legacy {
            cr3: 0x5000,
            pse: true,
        };
        assert_eq!(legacy.translate(0x0040_3010, reader(&e)), Some(0x7010));
        assert_eq!(legacy.translate(0x0080_1234, reader(&e)), Some(0x0080_1234));
        assert_eq!(legacy.translate(0x1_0000_0000, reader(&e)), None);
        // PAE: PDPTE 0 -> PD 0x8000 -> 2 MiB page.
        let mut e = HashMap::new();
        e.insert(0x5000, 0x8000 | 1);
        e.insert(0x8000 + 8, 0x0120_0000 | HUGE | 1);
        let pae = Paging::Pae { cr3: 0x5000 };
        assert_eq!(pae.translate(0x0020_0042, reader(&e)), Some(0x0120_0042));
    }

    #[test]
    fn chunks_split_at_pages() {
        let v: Vec<_> = page_chunks(0x1ffe, 6).collect();
        assert_eq!(v, vec![(0x1ffe, 2), (0x2000, 4)]);
        let v: Vec<_> = page_chunks(0x3000, 0x2000).collect();
        assert_eq!(v, vec![(0x3000, 0x1000), (0x4000, 0x1000)]);
        assert_eq!(page_chunks(5, 0).count(), 0);
        // The last page of the address space: no wrap to 0.
        let v: Vec<_> = page_chunks(u64::MAX - 1, 8).collect();
        assert_eq!(v, vec![(u64::MAX - 1, 2)]);
    }
}
