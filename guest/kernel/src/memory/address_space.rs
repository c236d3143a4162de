//! A process's address space (xv6's vm.c, Linux's mm): its page table and its map of regions
//! (`kcore::regions`), and what makes pages appear: demand-zero pages, file pages mapped straight
//! from the boot archive, and copy-on-write.
//!
//! Pages are made lazily. A region says what belongs at an address; the page-table entry appears
//! on the first touch (`handle_fault`). `fork` copies the page table, not the pages: every
//! private writable page becomes read-only and marked COW in both processes, its frame gets one
//! more reference, and the first write to it copies the page (or, if that process holds the
//! last reference, just makes it writable again). Only mapped ranges are visited.
//!
//! An address space may be shared (a vfork child borrows its parent's until it execs), so it is
//! used through a `Karc` and its regions sit behind a lock.

use alloc::vec::Vec;
use kcore::pagetable::{self as pt, ADDR_MASK};
use kcore::regions::{Backing, Region, RegionError, Regions, PROT_EXEC, PROT_WRITE};

use super::frame::FRAMES;
use super::layout::{MMAP_MIN, MMAP_TOP, VDSO_CHUNK, VDSO_END};
use super::paging::{self, DirectMap, OutOfMemory, NO_EXECUTE, PRESENT, USER, WRITABLE};
use super::{phys_to_virt, PAGE_SIZE};
use crate::karc::Karc;
use crate::sync::IrqLock;

/// Software bit 9 of a page-table entry (the CPU ignores it): "read-only because shared;
/// copy on the first write".
pub const COW: u64 = 1 << 9;

/// The largest heap `brk` grants.
pub const HEAP_MAX: u64 = 1 << 30;

/// How a page fault ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The page is there now: run the instruction again.
    Resolved,
    /// No region allows this access: SIGSEGV.
    Segv,
    /// A page was needed and RAM is exhausted.
    OutOfMemory,
}

pub struct AddressSpace {
    /// Physical address of the PML4 (fixed for the address space's life).
    pub pml4: u64,
    state: IrqLock<State>,
}

struct State {
    regions: Regions,
    heap_start: u64,
    brk: u64,
    /// The lowest page ever made present at or above `STACK_FLOOR` (`u64::MAX`: none). The
    /// stack's region is 8 MiB but a program touches only its top pages: fork and teardown
    /// start their walks of it here instead of reading the empty table entries below.
    stack_low: u64,
}

impl AddressSpace {
    /// Bytes of its regions, and pages present in them (/proc/PID/stat's vsize and rss): a
    /// walk of its page tables, paid only by whoever reads that file.
    pub fn usage(&self) -> (u64, u64) {
        let s = self.state.lock();
        let m = DirectMap;
        let (mut bytes, mut pages) = (0, 0);
        for r in s.regions.iter() {
            bytes += r.end - r.start;
            let start = if r.start >= STACK_FLOOR {
                r.start.max(s.stack_low)
            } else {
                r.start
            };
            pt::for_each_leaf(&m, self.pml4, start, r.end, |_, _, _| pages += 1);
        }
        (bytes, pages)
    }

    /// Its regions in address order, with where the heap starts (/proc/PID/maps).
    pub fn regions(&self) -> Result<(Vec<Region>, u64), OutOfMemory> {
        let s = self.state.lock();
        let mut out = Vec::new();
        out.try_reserve_exact(s.regions.len())
            .map_err(|_| OutOfMemory)?;
        out.extend(s.regions.iter().copied());
        Ok((out, s.heap_start))
    }

    /// Whether `addr` lies in a MAP_SHARED region (a futex there is keyed by its frame).
    pub fn is_shared_at(&self, addr: u64) -> bool {
        self.state
            .lock()
            .regions
            .find(addr)
            .is_some_and(|r| r.shared)
    }

    /// An empty user half (the kernel half shared, as in every address space).
    pub fn new() -> Result<Karc<AddressSpace>, OutOfMemory> {
        let pml4 = paging::new_address_space()?;
        let mm = Karc::try_new(AddressSpace {
            pml4,
            state: IrqLock::new(
                "address space",
                State {
                    regions: Regions::new(),
                    heap_start: 0,
                    brk: 0,
                    stack_low: u64::MAX,
                },
            ),
        })
        .inspect_err(|_| paging::free_address_space(pml4))?;
        crate::vdso::install(pml4)?;
        Ok(mm)
    }

    /// Adds a region; the pages come on demand. The vDSO's 2 MiB is not for regions: its page
    /// table is shared by every process.
    pub fn add_region(&self, r: Region) -> Result<(), RegionError> {
        if r.start < VDSO_END && VDSO_CHUNK < r.end {
            return Err(RegionError::Overlap);
        }
        self.state.lock().regions.insert(r)
    }

    /// Maps `frame` at `va` now (the loader fills pages it must write itself, such as the
    /// argument page of the stack); `va` must lie in a region.
    pub fn map_now(
        &self,
        va: u64,
        frame: u64,
        writable: bool,
        exec: bool,
    ) -> Result<(), OutOfMemory> {
        let mut flags = USER;
        if writable {
            flags |= WRITABLE;
        }
        if !exec {
            flags |= paging::nx();
        }
        let mut s = self.state.lock();
        if va >= STACK_FLOOR && va < s.stack_low {
            s.stack_low = va & !(PAGE_SIZE - 1);
        }
        paging::map(self.pml4, va, frame, flags)
    }

    /// Sets the heap's start (the page after the program image) for `brk`.
    pub fn set_heap(&self, start: u64) {
        let mut s = self.state.lock();
        s.heap_start = start;
        s.brk = start;
    }

    /// brk(2): moves the break to `want` if it stays within `HEAP_MAX` of the start and clear of
    /// other regions; returns the break (the old one when refused, as Linux does). Pages freed
    /// by shrinking are unmapped at once.
    pub fn brk(&self, want: u64) -> u64 {
        let mut s = self.state.lock();
        let (start, old) = (s.heap_start, s.brk);
        if want < start || want > start + HEAP_MAX {
            return old;
        }
        let old_end = old.next_multiple_of(PAGE_SIZE);
        let new_end = want.next_multiple_of(PAGE_SIZE);
        if start < VDSO_END && VDSO_CHUNK < new_end {
            return old;
        }
        let ok = if new_end == old_end {
            Ok(())
        } else if old_end == start {
            s.regions.insert(Region {
                start,
                end: new_end,
                prot: kcore::regions::PROT_READ | PROT_WRITE,
                backing: Backing::Anon,
                shared: false,
            })
        } else if new_end == start {
            let pml4 = self.pml4;
            s.regions
                .remove_range(start, old_end, |r| unmap_range(pml4, r.start, r.end))
        } else if new_end > old_end {
            s.regions.resize_end(old_end, new_end)
        } else {
            let pml4 = self.pml4;
            s.regions
                .remove_range(new_end, old_end, |r| unmap_range(pml4, r.start, r.end))
        };
        if ok.is_ok() {
            s.brk = want;
        }
        s.brk
    }

    /// mmap: a new region of `len` bytes (a multiple of the page size) at `addr` if `fixed`
    /// (replacing what was there, unless `noreplace`: then EEXIST), else where there is room
    /// (near `addr` if it is free, else the highest gap below the stack). Returns its start.
    pub fn map_region(
        &self,
        addr: u64,
        len: u64,
        prot: u8,
        backing: Backing,
        shared: bool,
        placement: Placement,
    ) -> Result<u64, MapError> {
        let mut s = self.state.lock();
        let start = match placement {
            Placement::Fixed | Placement::FixedNoReplace => {
                if addr.checked_add(len).is_none_or(|e| e > MMAP_TOP) || addr < MMAP_MIN {
                    return Err(MapError::Invalid);
                }
                if s.regions.overlaps(addr, addr + len) {
                    if placement == Placement::FixedNoReplace {
                        return Err(MapError::Exists);
                    }
                    let pml4 = self.pml4;
                    s.regions
                        .remove_range(addr, addr + len, |r| unmap_range(pml4, r.start, r.end))
                        .map_err(MapError::from)?;
                }
                addr
            }
            Placement::Hint => {
                let fits = addr >= MMAP_MIN
                    && addr.is_multiple_of(PAGE_SIZE)
                    && addr.checked_add(len).is_some_and(|e| e <= MMAP_TOP)
                    && !s.regions.overlaps(addr, addr + len);
                if fits {
                    addr
                } else {
                    s.regions
                        .find_gap(len, MMAP_MIN, MMAP_TOP)
                        .ok_or(MapError::NoMemory)?
                }
            }
        };
        s.regions
            .insert(Region {
                start,
                end: start + len,
                prot,
                backing,
                shared,
            })
            .map_err(MapError::from)?;
        Ok(start)
    }

    /// Makes every page of `[start, start + len)` present now (MAP_POPULATE, and shared
    /// anonymous memory, whose pages must exist before a fork shares them).
    pub fn populate(&self, start: u64, len: u64, write: bool) -> Result<(), OutOfMemory> {
        let mut page = start;
        while page < start + len {
            if self.handle_fault(page, write, false) == Fault::OutOfMemory {
                return Err(OutOfMemory);
            }
            page += PAGE_SIZE;
        }
        Ok(())
    }

    /// munmap: no region and no page in `[start, end)` any more (holes are fine).
    pub fn unmap(&self, start: u64, end: u64) -> Result<(), MapError> {
        let mut s = self.state.lock();
        let pml4 = self.pml4;
        s.regions
            .remove_range(start, end, |r| unmap_range(pml4, r.start, r.end))
            .map_err(MapError::from)
    }

    /// mprotect: new permissions for `[start, end)` (all of it mapped, else ENOMEM), and for
    /// the pages already there. Writable private pages stay copy-on-write where they were (the
    /// first write decides); PROT_NONE pages lose their user bit, keeping their contents.
    pub fn protect(&self, start: u64, end: u64, prot: u8) -> Result<(), MapError> {
        let mut s = self.state.lock();
        let pml4 = self.pml4;
        s.regions
            .protect_range(start, end, prot, |r, new| reprotect(pml4, r, new))
            .map_err(MapError::from)?;
        flush_tlb();
        Ok(())
    }

    /// madvise(MADV_DONTNEED): the pages go; the next touch finds zeros (or the file's bytes).
    pub fn discard(&self, start: u64, end: u64) {
        let _s = self.state.lock();
        // Around the vDSO's shared table, never in it.
        unmap_range(self.pml4, start, end.min(VDSO_CHUNK));
        unmap_range(self.pml4, start.max(VDSO_END), end);
    }

    /// mremap: resizes the region at `[old, old + old_len)`, in place when it can, else (if
    /// `may_move`) moving its pages to a new place. Returns the new start.
    pub fn remap(
        &self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
    ) -> Result<u64, MapError> {
        let mut s = self.state.lock();
        let pml4 = self.pml4;
        let Some(r) = s
            .regions
            .find(old)
            .copied()
            .filter(|r| r.start <= old && old + old_len <= r.end)
        else {
            return Err(MapError::Fault);
        };
        if new_len <= old_len {
            if new_len < old_len {
                s.regions
                    .remove_range(old + new_len, old + old_len, |x| {
                        unmap_range(pml4, x.start, x.end)
                    })
                    .map_err(MapError::from)?;
            }
            return Ok(old);
        }
        let grow_end = old + new_len;
        // In place: the region ends where the old range does, and the space after it is free.
        if r.end == old + old_len && grow_end <= MMAP_TOP && !s.regions.overlaps(r.end, grow_end) {
            s.regions
                .resize_end(r.end, grow_end)
                .map_err(MapError::from)?;
            return Ok(old);
        }
        if !may_move {
            return Err(MapError::NoMemory);
        }
        let to = s
            .regions
            .find_gap(new_len, MMAP_MIN, MMAP_TOP)
            .ok_or(MapError::NoMemory)?;
        let mut moved = r;
        moved.start = to;
        moved.end = to + new_len;
        if let Backing::File { phys, len } = r.backing {
            let skip = old - r.start;
            moved.backing = Backing::File {
                phys: phys + skip,
                len: len.saturating_sub(skip),
            };
        }
        s.regions.insert(moved).map_err(MapError::from)?;
        // Move the page-table entries (the frames stay where they are).
        let m = DirectMap;
        let mut result = Ok(());
        pt::for_each_leaf(&m, pml4, old, old + old_len, |va, slot, e| {
            if result.is_err() {
                return;
            }
            match pt::walk_create(
                &m,
                pml4,
                pt::PML4_LEVEL,
                to + (va - old),
                PRESENT | WRITABLE | USER,
            ) {
                Ok(dst) => {
                    dst.write(&m, e);
                    slot.write(&m, 0);
                }
                Err(e) => result = Err(e),
            }
        });
        // The old range goes (its remaining entries, if the move failed midway, with it).
        s.regions
            .remove_range(old, old + old_len, |x| unmap_range(pml4, x.start, x.end))
            .map_err(MapError::from)?;
        flush_tlb();
        result.map_err(|_| MapError::NoMemory)?;
        Ok(to)
    }

    /// Makes the page at `addr` present for the access the error code describes (bit 0: the
    /// page was present; bit 1: a write; bit 4: an instruction fetch), if a region allows it.
    pub fn handle_fault(&self, addr: u64, write: bool, exec: bool) -> Fault {
        let mut s = self.state.lock();
        let Some(r) = s.regions.find(addr).copied() else {
            return Fault::Segv;
        };
        if (write && !r.writable()) || (exec && r.prot & PROT_EXEC == 0) || r.prot == 0 {
            return Fault::Segv;
        }
        let page = addr & !(PAGE_SIZE - 1);
        let m = DirectMap;
        // One walk, making the tables on the way if missing (the region says the page belongs).
        let table_flags = PRESENT | WRITABLE | USER;
        let Ok(slot) = pt::walk_create(&m, self.pml4, pt::PML4_LEVEL, page, table_flags) else {
            return Fault::OutOfMemory;
        };
        let entry = slot.read(&m);
        if entry & PRESENT != 0 {
            if write && entry & WRITABLE == 0 && entry & COW != 0 {
                return break_cow(page, slot, entry);
            }
            // Already as the access needs (another path mapped it meanwhile).
            let ok = (!write || entry & WRITABLE != 0) && (!exec || entry & NO_EXECUTE == 0);
            return if ok { Fault::Resolved } else { Fault::Segv };
        }
        match fill_page(&r, page) {
            Ok(e) => {
                slot.write(&m, e);
                if page >= STACK_FLOOR && page < s.stack_low {
                    s.stack_low = page;
                }
                Fault::Resolved
            }
            Err(OutOfMemory) => Fault::OutOfMemory,
        }
    }

    /// A copy for a forked child: the same regions, and every mapped page shared — private
    /// writable ones copy-on-write in both.
    pub fn fork(&self) -> Result<Karc<AddressSpace>, OutOfMemory> {
        let s = self.state.lock();
        let child = AddressSpace::new()?;
        let regions = s.regions.try_clone().map_err(|_| OutOfMemory)?;
        {
            let mut cs = child.state.lock();
            cs.regions = regions;
            cs.heap_start = s.heap_start;
            cs.brk = s.brk;
            cs.stack_low = s.stack_low;
        }
        let m = DirectMap;
        // The child's last-level table for the 2 MiB the previous leaf was in: leaves come in
        // address order, so most need no walk of the child's tables.
        let mut child_pt: Option<(u64, u64)> = None;
        for r in s.regions.iter() {
            let start = if r.start >= STACK_FLOOR {
                r.start.max(s.stack_low)
            } else {
                r.start
            };
            let mut result = Ok(());
            pt::for_each_leaf(&m, self.pml4, start, r.end, |va, slot, e| {
                if result.is_err() {
                    return;
                }
                let mut e = e;
                if !r.shared && e & WRITABLE != 0 {
                    e = (e & !WRITABLE) | COW;
                    slot.write(&m, e);
                }
                FRAMES.lock().share(e & ADDR_MASK);
                let table = match child_pt {
                    Some((base, t)) if base == va >> 21 => Ok(t),
                    _ => pt::walk_create(
                        &m,
                        child.pml4,
                        pt::PML4_LEVEL,
                        va,
                        PRESENT | WRITABLE | USER,
                    )
                    .map(|c| c.table),
                };
                result = table.map(|t| {
                    child_pt = Some((va >> 21, t));
                    pt::Slot {
                        table: t,
                        index: slot.index,
                    }
                    .write(&m, e);
                });
                if result.is_err() {
                    FRAMES.lock().release(e & ADDR_MASK);
                }
            });
            result?;
        }
        // The parent's entries lost their write permission: drop the stale TLB entries.
        flush_tlb();
        Ok(child)
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        // Tables exist only where regions have been: the teardown reads only those entries.
        let mut s = self.state.lock();
        let low = s.stack_low;
        s.regions.clip_footprint_above(STACK_FLOOR, low);
        crate::vdso::uninstall(self.pml4);
        paging::free_user_space(self.pml4, s.regions.footprint(), (VDSO_CHUNK, VDSO_END));
    }
}

/// Gives the page its contents on the first touch: zeros, or the file's page (mapped directly
/// when it is whole, read-only or copy-on-write; copied when the file ends inside it and the
/// rest must read as zeros). Returns the page-table entry.
fn fill_page(r: &Region, page: u64) -> Result<u64, OutOfMemory> {
    let mut flags = USER;
    if r.prot & PROT_EXEC == 0 {
        flags |= paging::nx();
    }
    let writable = r.writable();
    if writable {
        flags |= WRITABLE;
    }
    let frame = match r.backing {
        Backing::Anon => FRAMES.lock().alloc_zeroed().ok_or(OutOfMemory)?,
        Backing::File { phys, len } => {
            let off = page - r.start;
            let whole = off + PAGE_SIZE <= len;
            if off < len && whole && !(writable && r.shared) {
                // The file's own page. A private writable mapping gets it read-only and COW:
                // the first write copies it (its count is 0, "not ours", so it is never freed).
                if writable {
                    flags = (flags & !WRITABLE) | COW;
                }
                phys + off
            } else {
                let f = FRAMES.lock().alloc_zeroed().ok_or(OutOfMemory)?;
                if off < len {
                    let n = (len - off).min(PAGE_SIZE) as usize;
                    // SAFETY: `f` is a fresh frame of ours and `phys + off` the file's bytes in
                    // the boot module (reserved, never freed); both in the direct map; `n` fits
                    // in a page.
                    unsafe {
                        core::ptr::copy_nonoverlapping(
                            phys_to_virt(phys + off) as *const u8,
                            phys_to_virt(f) as *mut u8,
                            n,
                        )
                    };
                }
                f
            }
        }
    };
    Ok(frame | flags | PRESENT)
}

/// The first write to a copy-on-write page: take it over if nobody else has it, else copy it.
fn break_cow(page: u64, slot: pt::Slot, entry: u64) -> Fault {
    let old = entry & ADDR_MASK;
    let flags = (entry & !ADDR_MASK & !COW) | WRITABLE;
    let mut frames = FRAMES.lock();
    if frames.refcount(old) == 1 {
        slot.write(&DirectMap, old | flags);
    } else {
        let Some(new) = frames.alloc_dirty() else {
            return Fault::OutOfMemory;
        };
        // SAFETY: `new` is a fresh frame of ours, `old` the shared page; both in the direct map,
        // a page each.
        unsafe {
            core::ptr::copy_nonoverlapping(
                phys_to_virt(old) as *const u64,
                phys_to_virt(new) as *mut u64,
                512,
            )
        };
        slot.write(&DirectMap, new | flags);
        frames.release(old);
    }
    drop(frames);
    invlpg(page);
    Fault::Resolved
}

/// Where `stack_low` is kept: above the vDSO's 2 MiB, where only the stack can be (`add_region`,
/// `MMAP_TOP`). It is kept by address, for every page made present there.
const STACK_FLOOR: u64 = VDSO_END;

/// Where a new mapping goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Placement {
    /// Exactly there, replacing what was (MAP_FIXED).
    Fixed,
    /// Exactly there, or EEXIST (MAP_FIXED_NOREPLACE).
    FixedNoReplace,
    /// There if it is free, else anywhere.
    Hint,
}

/// Why a mapping call failed, as the system calls report it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MapError {
    Invalid,
    Exists,
    NoMemory,
    /// mprotect or mremap over an unmapped range.
    Fault,
}

impl From<RegionError> for MapError {
    fn from(e: RegionError) -> Self {
        match e {
            RegionError::Invalid => MapError::Invalid,
            RegionError::Overlap => MapError::Exists,
            RegionError::Unmapped => MapError::Fault,
            RegionError::OutOfMemory => MapError::NoMemory,
        }
    }
}

/// New permissions for the pages present in `r`'s range.
fn reprotect(pml4: u64, r: &Region, prot: u8) {
    let m = DirectMap;
    pt::for_each_leaf(&m, pml4, r.start, r.end, |_, slot, e| {
        let mut e = e & !(WRITABLE | NO_EXECUTE | USER);
        if prot != 0 {
            e |= USER;
        }
        if prot & PROT_EXEC == 0 {
            e |= paging::nx();
        }
        if prot & PROT_WRITE != 0 {
            if r.shared {
                e |= WRITABLE;
            } else {
                // Private: writable only through a write fault, which copies if shared.
                e |= COW;
            }
        }
        slot.write(&m, e);
    });
}

/// Unmaps the pages of `[start, end)` and drops their frames' references.
pub fn unmap_range(pml4: u64, start: u64, end: u64) {
    let m = DirectMap;
    pt::for_each_leaf(&m, pml4, start, end, |va, slot, e| {
        slot.write(&m, 0);
        FRAMES.lock().release(e & ADDR_MASK);
        invlpg(va);
    });
}

fn invlpg(va: u64) {
    // SAFETY: drops one TLB entry; no memory is touched.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) va, options(nostack)) };
}

fn flush_tlb() {
    // SAFETY: reloading CR3 with its own value drops the non-global TLB entries.
    unsafe {
        core::arch::asm!("mov {t}, cr3", "mov cr3, {t}", t = out(reg) _, options(nostack));
    }
}
