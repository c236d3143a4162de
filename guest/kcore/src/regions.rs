//! A process's map of memory regions (Linux's VMAs): which ranges of its address space exist,
//! with what permissions and what backs them. The page-fault handler asks it what a faulting
//! address should be; fork copies it; exec replaces it; mmap, munmap and mprotect edit it.
//!
//! Regions are kept sorted and never overlap. Every operation that can grow the list reserves
//! room first and reports running out of memory instead of panicking.

use alloc::vec::Vec;

use crate::footprint::Footprint;
use crate::pagetable::PAGE;

pub const PROT_READ: u8 = 1;
pub const PROT_WRITE: u8 = 2;
pub const PROT_EXEC: u8 = 4;

/// What the pages of a region are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Zero-filled on first touch.
    Anon,
    /// File bytes at physical address `phys` (page-aligned) map the region's first page;
    /// `len` bytes of file follow it, and pages past them are zero-filled. Never written
    /// through: a writable private mapping copies a page on its first write.
    File { phys: u64, len: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub prot: u8,
    pub backing: Backing,
    /// Shared between the processes that map it (MAP_SHARED): fork does not copy on write.
    pub shared: bool,
}

impl Region {
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
    pub fn writable(&self) -> bool {
        self.prot & PROT_WRITE != 0
    }
    /// The part of `self` within `[start, end)`, with a File backing moved along.
    fn slice(&self, start: u64, end: u64) -> Region {
        let mut r = *self;
        r.start = start.max(self.start);
        r.end = end.min(self.end);
        if let Backing::File { phys, len } = self.backing {
            let skip = r.start - self.start;
            r.backing = Backing::File {
                phys: phys + skip,
                len: len.saturating_sub(skip),
            };
        }
        r
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// Not page-aligned, empty, or wrapping.
    Invalid,
    /// Overlaps an existing region.
    Overlap,
    /// Part of the range is not mapped.
    Unmapped,
    OutOfMemory,
}

#[derive(Default, Debug)]
pub struct Regions {
    list: Vec<Region>,
    /// Every range a region has covered (where page tables may be).
    footprint: Footprint,
}

impl Regions {
    pub const fn new() -> Regions {
        Regions {
            list: Vec::new(),
            footprint: Footprint::new(),
        }
    }

    /// Where page tables may have been made for these regions: every range a region has
    /// covered since this map was made (or copied), sorted.
    pub fn footprint(&self) -> &[(u64, u64)] {
        self.footprint.ranges()
    }

    /// See `Footprint::clip_above`.
    pub fn clip_footprint_above(&mut self, floor: u64, low: u64) {
        self.footprint.clip_above(floor, low);
    }

    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The region holding `addr`.
    pub fn find(&self, addr: u64) -> Option<&Region> {
        // A program has a handful of regions (its segments, heap, stack) until it maps more: a
        // scan from the top (the stack, where most faults are) beats a binary search then.
        if self.list.len() <= 8 {
            return self.list.iter().rev().find(|r| r.contains(addr));
        }
        let i = self.list.partition_point(|r| r.end <= addr);
        self.list.get(i).filter(|r| r.contains(addr))
    }

    /// Whether any region meets `[start, end)`.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        let i = self.list.partition_point(|r| r.end <= start);
        self.list.get(i).is_some_and(|r| r.start < end)
    }

    /// Adds `r`, which must not overlap another region.
    pub fn insert(&mut self, r: Region) -> Result<(), RegionError> {
        if r.start >= r.end || !r.start.is_multiple_of(PAGE) || !r.end.is_multiple_of(PAGE) {
            return Err(RegionError::Invalid);
        }
        if self.overlaps(r.start, r.end) {
            return Err(RegionError::Overlap);
        }
        self.list
            .try_reserve(1)
            .map_err(|_| RegionError::OutOfMemory)?;
        let i = self.list.partition_point(|x| x.end <= r.start);
        self.list.insert(i, r);
        self.footprint.add(r.start, r.end);
        self.merge_around(i);
        Ok(())
    }

    /// Whether `b` continues `a` seamlessly: adjacent, the same permissions and sharing, and
    /// the same kind of backing (a file's pages in a row). Such neighbours become one region,
    /// as Linux merges VMAs (mremap of a range made by several mmaps relies on it).
    fn continues(a: &Region, b: &Region) -> bool {
        a.end == b.start
            && a.prot == b.prot
            && a.shared == b.shared
            && match (a.backing, b.backing) {
                (Backing::Anon, Backing::Anon) => true,
                (Backing::File { phys: pa, len: la }, Backing::File { phys: pb, .. }) => {
                    la == a.end - a.start && pb == pa + la
                }
                _ => false,
            }
    }

    /// Merges region `i` with its neighbours where they continue each other.
    fn merge_around(&mut self, i: usize) {
        let mut i = i;
        if i > 0 && Self::continues(&self.list[i - 1], &self.list[i]) {
            let r = self.list.remove(i);
            Self::absorb(&mut self.list[i - 1], &r);
            i -= 1;
        }
        if i + 1 < self.list.len() && Self::continues(&self.list[i], &self.list[i + 1]) {
            let r = self.list.remove(i + 1);
            Self::absorb(&mut self.list[i], &r);
        }
    }

    fn absorb(a: &mut Region, b: &Region) {
        if let (Backing::File { len, .. }, Backing::File { len: lb, .. }) =
            (&mut a.backing, b.backing)
        {
            *len += lb;
        }
        a.end = b.end;
    }

    /// Removes every part of every region within `[start, end)`, splitting the regions that
    /// straddle its ends. Calls `removed` for each piece taken out (to unmap its pages).
    pub fn remove_range(
        &mut self,
        start: u64,
        end: u64,
        mut removed: impl FnMut(&Region),
    ) -> Result<(), RegionError> {
        if start >= end || !start.is_multiple_of(PAGE) || !end.is_multiple_of(PAGE) {
            return Err(RegionError::Invalid);
        }
        // A region that contains the whole range becomes two: room for one more.
        self.list
            .try_reserve(1)
            .map_err(|_| RegionError::OutOfMemory)?;
        let mut i = self.list.partition_point(|r| r.end <= start);
        while i < self.list.len() && self.list[i].start < end {
            let r = self.list[i];
            removed(&r.slice(start, end));
            let below = (r.start < start).then(|| r.slice(r.start, start));
            let above = (r.end > end).then(|| r.slice(end, r.end));
            match (below, above) {
                (Some(b), Some(a)) => {
                    self.list[i] = b;
                    self.list.insert(i + 1, a);
                    i += 2;
                }
                (Some(b), None) => {
                    self.list[i] = b;
                    i += 1;
                }
                (None, Some(a)) => {
                    self.list[i] = a;
                    i += 1;
                }
                (None, None) => {
                    self.list.remove(i);
                }
            }
        }
        Ok(())
    }

    /// Sets the permissions of every page of `[start, end)`, splitting regions at its ends; the
    /// whole range must be mapped (Unmapped otherwise, and nothing changes). Calls `changed`
    /// for each piece whose permissions changed, with the old region and the new protection.
    pub fn protect_range(
        &mut self,
        start: u64,
        end: u64,
        prot: u8,
        mut changed: impl FnMut(&Region, u8),
    ) -> Result<(), RegionError> {
        if start >= end || !start.is_multiple_of(PAGE) || !end.is_multiple_of(PAGE) {
            return Err(RegionError::Invalid);
        }
        // Check first: a hole anywhere leaves everything as it was.
        let mut at = start;
        let mut i = self.list.partition_point(|r| r.end <= start);
        while at < end {
            match self.list.get(i) {
                Some(r) if r.start <= at => {
                    at = r.end;
                    i += 1;
                }
                _ => return Err(RegionError::Unmapped),
            }
        }
        // Splitting can add two regions per end.
        self.list
            .try_reserve(2)
            .map_err(|_| RegionError::OutOfMemory)?;
        let mut i = self.list.partition_point(|r| r.end <= start);
        while i < self.list.len() && self.list[i].start < end {
            let r = self.list[i];
            if r.prot == prot {
                i += 1;
                continue;
            }
            let mid = {
                let mut m = r.slice(start, end);
                changed(&m, prot);
                m.prot = prot;
                m
            };
            let below = (r.start < start).then(|| r.slice(r.start, start));
            let above = (r.end > end).then(|| r.slice(end, r.end));
            self.list[i] = mid;
            if let Some(b) = below {
                self.list.insert(i, b);
                i += 1;
            }
            if let Some(a) = above {
                self.list.insert(i + 1, a);
                i += 1;
            }
            i += 1;
        }
        // Pieces that now match their neighbours join them again.
        let mut j = self
            .list
            .partition_point(|r| r.end < start)
            .saturating_sub(1);
        while j < self.list.len() && self.list[j].start <= end {
            let before = self.list.len();
            self.merge_around(j);
            if self.list.len() == before {
                j += 1;
            }
        }
        Ok(())
    }

    /// The highest free range of `len` bytes lying within `[bottom, top)` (mmap without an
    /// address, as Linux's top-down layout places it).
    pub fn find_gap(&self, len: u64, bottom: u64, top: u64) -> Option<u64> {
        let mut hi = top;
        for r in self.list.iter().rev() {
            if r.start >= hi {
                continue;
            }
            if r.end <= hi && hi - r.end.max(bottom) >= len && r.end.max(bottom) + len <= hi {
                return Some(hi - len);
            }
            hi = hi.min(r.start);
            if hi < bottom + len {
                return None;
            }
        }
        (hi >= bottom + len).then(|| hi - len)
    }

    /// The region that starts at `start` and ends at `end` exactly, if there is one.
    pub fn exact(&self, start: u64, end: u64) -> Option<Region> {
        self.find(start)
            .filter(|r| r.start == start && r.end == end)
            .copied()
    }

    /// Changes the end of the region that ends at `old_end` (the heap, growing or shrinking).
    pub fn resize_end(&mut self, old_end: u64, new_end: u64) -> Result<(), RegionError> {
        let i = self
            .list
            .iter()
            .position(|r| r.end == old_end)
            .ok_or(RegionError::Invalid)?;
        if new_end <= self.list[i].start || !new_end.is_multiple_of(PAGE) {
            return Err(RegionError::Invalid);
        }
        if self.list.get(i + 1).is_some_and(|n| n.start < new_end) {
            return Err(RegionError::Overlap);
        }
        self.list[i].end = new_end;
        self.footprint.add(old_end, new_end);
        self.merge_around(i);
        Ok(())
    }

    /// A copy, for fork.
    pub fn try_clone(&self) -> Result<Regions, RegionError> {
        let mut list = Vec::new();
        list.try_reserve(self.list.len())
            .map_err(|_| RegionError::OutOfMemory)?;
        list.extend_from_slice(&self.list);
        Ok(Regions {
            list,
            footprint: self.footprint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn anon(start: u64, end: u64) -> Region {
        Region {
            start,
            end,
            prot: PROT_READ | PROT_WRITE,
            backing: Backing::Anon,
            shared: false,
        }
    }

    #[test]
    fn find_and_overlap() {
        let mut r = Regions::new();
        r.insert(anon(0x40_0000, 0x40_2000)).unwrap();
        r.insert(anon(0x10_0000, 0x10_1000)).unwrap();
        assert_eq!(
            r.insert(anon(0x40_1000, 0x40_3000)),
            Err(RegionError::Overlap)
        );
        assert_eq!(r.insert(anon(0x1000, 0x1800)), Err(RegionError::Invalid));
        assert_eq!(r.find(0x40_1fff).unwrap().start, 0x40_0000);
        assert!(r.find(0x40_2000).is_none());
        assert!(r.find(0xfff).is_none());
        assert_eq!(
            r.iter().map(|x| x.start).collect::<std::vec::Vec<_>>(),
            [0x10_0000, 0x40_0000]
        );
    }

    #[test]
    fn removing_a_hole_splits_and_moves_file_offsets() {
        let mut r = Regions::new();
        let mut f = anon(0x40_0000, 0x40_5000);
        f.backing = Backing::File {
            phys: 0x100_0000,
            len: 0x3800,
        };
        r.insert(f).unwrap();
        let mut gone = vec![];
        r.remove_range(0x40_1000, 0x40_2000, |x| gone.push((x.start, x.end)))
            .unwrap();
        assert_eq!(gone, [(0x40_1000, 0x40_2000)]);
        let l: std::vec::Vec<_> = r.iter().copied().collect();
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].start, l[0].end), (0x40_0000, 0x40_1000));
        assert_eq!(l[1].start, 0x40_2000);
        assert_eq!(
            l[1].backing,
            Backing::File {
                phys: 0x100_2000,
                len: 0x1800
            }
        );
        // Removing across both pieces and a gap.
        r.remove_range(0x40_0000, 0x40_4000, |_| {}).unwrap();
        assert_eq!(
            r.iter()
                .map(|x| (x.start, x.end))
                .collect::<std::vec::Vec<_>>(),
            [(0x40_4000, 0x40_5000)]
        );
        // A hole where nothing is mapped is fine.
        r.remove_range(0x1000, 0x2000, |_| panic!("nothing there"))
            .unwrap();
    }

    #[test]
    fn find_in_a_long_list() {
        let mut r = Regions::new();
        for i in 0..40u64 {
            r.insert(anon(0x100_0000 + i * 0x2000, 0x100_1000 + i * 0x2000))
                .unwrap();
        }
        assert_eq!(
            r.find(0x100_0000 + 17 * 0x2000 + 5).unwrap().start,
            0x100_0000 + 17 * 0x2000
        );
        assert!(
            r.find(0x100_1000 + 17 * 0x2000).is_none(),
            "the gap after it"
        );
        assert!(r.find(0xfff_ffff).is_none());
    }

    #[test]
    fn protect_splits_and_refuses_holes() {
        let mut r = Regions::new();
        r.insert(anon(0x40_0000, 0x40_4000)).unwrap();
        r.insert(anon(0x40_5000, 0x40_6000)).unwrap();
        let mut seen = vec![];
        assert_eq!(
            r.protect_range(0x40_3000, 0x40_6000, PROT_READ, |_, _| panic!(
                "nothing changes"
            )),
            Err(RegionError::Unmapped),
            "0x404000 is a hole"
        );
        r.protect_range(0x40_1000, 0x40_2000, PROT_READ, |x, p| {
            seen.push((x.start, x.end, p))
        })
        .unwrap();
        assert_eq!(seen, [(0x40_1000, 0x40_2000, PROT_READ)]);
        let l: std::vec::Vec<_> = r.iter().map(|x| (x.start, x.end, x.prot)).collect();
        let rw = PROT_READ | PROT_WRITE;
        assert_eq!(
            l,
            [
                (0x40_0000, 0x40_1000, rw),
                (0x40_1000, 0x40_2000, PROT_READ),
                (0x40_2000, 0x40_4000, rw),
                (0x40_5000, 0x40_6000, rw)
            ]
        );
    }

    #[test]
    fn gaps_from_the_top() {
        let mut r = Regions::new();
        r.insert(anon(0x7000_0000, 0x7001_0000)).unwrap();
        r.insert(anon(0x6fff_0000, 0x6fff_f000)).unwrap();
        assert_eq!(
            r.find_gap(0x1000, 0x1000_0000, 0x8000_0000),
            Some(0x7fff_f000)
        );
        assert_eq!(
            r.find_gap(0x1000, 0x1000_0000, 0x7001_0000),
            Some(0x6fff_f000),
            "the page between"
        );
        assert_eq!(
            r.find_gap(0x2000, 0x1000_0000, 0x7001_0000),
            Some(0x6ffe_e000)
        );
        assert_eq!(r.find_gap(0x1000_0000, 0x6000_0000, 0x7000_0000), None);
        assert!(r.exact(0x7000_0000, 0x7001_0000).is_some());
        assert!(r.exact(0x7000_0000, 0x7000_8000).is_none());
    }

    #[test]
    fn neighbours_merge() {
        let mut r = Regions::new();
        r.insert(anon(0x40_0000, 0x40_1000)).unwrap();
        r.insert(anon(0x40_2000, 0x40_3000)).unwrap();
        r.insert(anon(0x40_1000, 0x40_2000)).unwrap();
        assert_eq!(
            r.len(),
            1,
            "three anonymous mappings in a row are one region"
        );
        r.protect_range(0x40_1000, 0x40_2000, PROT_READ, |_, _| {})
            .unwrap();
        assert_eq!(r.len(), 3);
        r.protect_range(0x40_1000, 0x40_2000, PROT_READ | PROT_WRITE, |_, _| {})
            .unwrap();
        assert_eq!(r.len(), 1, "and one again once their permissions agree");
        let mut f = anon(0x50_0000, 0x50_1000);
        f.backing = Backing::File {
            phys: 0x100_0000,
            len: 0x1000,
        };
        r.insert(f).unwrap();
        f.start = 0x50_1000;
        f.end = 0x50_2000;
        f.backing = Backing::File {
            phys: 0x200_0000,
            len: 0x1000,
        };
        r.insert(f).unwrap();
        assert_eq!(r.len(), 3, "file pages that are not in a row stay apart");
    }

    #[test]
    fn protect_unmap_refill_and_fix_is_one_region() {
        let p = 0x7fff_ff7f_b000u64;
        let mut r = Regions::new();
        r.insert(anon(p, p + 0x3000)).unwrap();
        r.protect_range(p + 0x1000, p + 0x2000, PROT_READ, |_, _| {})
            .unwrap();
        r.remove_range(p + 0x1000, p + 0x2000, |_| {}).unwrap();
        r.insert(anon(p + 0x1000, p + 0x2000)).unwrap();
        r.remove_range(p, p + 0x1000, |_| {}).unwrap();
        r.insert(anon(p, p + 0x1000)).unwrap();
        let l: std::vec::Vec<_> = r.iter().map(|x| (x.start, x.end)).collect();
        assert_eq!(l, [(p, p + 0x3000)]);
    }

    #[test]
    fn heap_end_moves() {
        let mut r = Regions::new();
        r.insert(anon(0x60_0000, 0x60_1000)).unwrap();
        r.insert(anon(0x70_0000, 0x70_1000)).unwrap();
        r.resize_end(0x60_1000, 0x68_0000).unwrap();
        assert_eq!(
            r.resize_end(0x68_0000, 0x70_2000),
            Err(RegionError::Overlap)
        );
        assert_eq!(r.find(0x67_ffff).unwrap().start, 0x60_0000);
        let c = r.try_clone().unwrap();
        assert_eq!(c.len(), 2);
    }
}
