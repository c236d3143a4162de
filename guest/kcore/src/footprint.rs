//! Where an address space may have page tables: every range any of its regions has ever
//! covered, as a few sorted, disjoint ranges. Page tables are only ever made for an address
//! inside a region, and munmap or a shrinking heap leave the tables they emptied in place, so
//! tearing an address space down needs to read only the table entries inside its footprint
//! (`pagetable::free_ranges`), not all 512 of every table.
//!
//! It holds at most `MAX` ranges. When one more would not fit, the two closest are merged into
//! one that spans the gap between them: a footprint may be larger than the truth (the teardown
//! then reads a few entries more), never smaller.

/// The most ranges kept: a program's segments, heap and stack coalesce into two or three; its
/// mmaps add more.
pub const MAX: usize = 8;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    ranges: [(u64, u64); MAX],
    len: usize,
}

impl Footprint {
    pub const fn new() -> Footprint {
        Footprint {
            ranges: [(0, 0); MAX],
            len: 0,
        }
    }

    /// The ranges, sorted and disjoint (touching ranges are one).
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges[..self.len]
    }

    /// Narrows every range that lies at or above `floor` to begin at `low` at the earliest:
    /// for a caller that knows nothing was mapped in `[floor, low)` (the stack, which grows
    /// down from the top of its 8 MiB and is touched only near it). A range reaching below
    /// `floor` stays whole.
    pub fn clip_above(&mut self, floor: u64, low: u64) {
        for r in &mut self.ranges[..self.len] {
            if r.0 >= floor {
                r.0 = r.0.max(low).min(r.1);
            }
        }
    }

    /// Adds `[start, end)`. In place: exec adds a few ranges per program, and temporary
    /// arrays cost more than the merging.
    pub fn add(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let n = self.len;
        // The first range that ends at or after `start` (touching counts as meeting).
        let i = self.ranges[..n].partition_point(|r| r.1 < start);
        if i < n && self.ranges[i].0 <= end {
            // Meets range i: widen it, then swallow every later range it now meets.
            let r = &mut self.ranges[i];
            r.0 = r.0.min(start);
            r.1 = r.1.max(end);
            let mut j = i + 1;
            while j < n && self.ranges[j].0 <= self.ranges[i].1 {
                self.ranges[i].1 = self.ranges[i].1.max(self.ranges[j].1);
                j += 1;
            }
            self.ranges.copy_within(j..n, i + 1);
            self.len = n - (j - i - 1);
            return;
        }
        if n == MAX {
            // Full: bridge the smallest gap among the old ranges and the new one.
            let gap_before = (i > 0).then(|| start - self.ranges[i - 1].1);
            let gap_after = (i < n).then(|| self.ranges[i].0 - end);
            let inner = (0..n - 1).min_by_key(|&k| self.ranges[k + 1].0 - self.ranges[k].1);
            let inner_gap = inner.map(|k| self.ranges[k + 1].0 - self.ranges[k].1);
            let best_new = match (gap_before, gap_after) {
                (Some(b), Some(a)) => Some(b.min(a)),
                (b, a) => b.or(a),
            };
            match (inner, inner_gap, best_new) {
                (Some(k), Some(g), Some(b)) if g < b => {
                    // Merge ranges k and k + 1, then insert the new one where it goes.
                    self.ranges[k].1 = self.ranges[k + 1].1;
                    self.ranges.copy_within(k + 2..n, k + 1);
                    self.len = n - 1;
                    self.add(start, end);
                }
                _ if gap_before.is_some() && gap_before == best_new => {
                    self.ranges[i - 1].1 = end;
                }
                _ => self.ranges[i].0 = start,
            }
            return;
        }
        self.ranges.copy_within(i..n, i + 1);
        self.ranges[i] = (start, end);
        self.len = n + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_above_narrows_only_ranges_wholly_above_the_floor() {
        let mut f = Footprint::new();
        f.add(0x1000, 0x9000);
        f.add(0x10_0000, 0x90_0000);
        f.add(0xa0_0000, 0xb0_0000);
        f.clip_above(0x5000, 0x80_0000);
        // The first reaches below the floor: whole. The second starts at `low`; the third is
        // already above it.
        assert_eq!(
            f.ranges(),
            &[
                (0x1000, 0x9000),
                (0x80_0000, 0x90_0000),
                (0xa0_0000, 0xb0_0000)
            ]
        );
        // Nothing mapped above the floor: the ranges there become empty.
        f.clip_above(0x5000, u64::MAX);
        assert_eq!(
            f.ranges(),
            &[
                (0x1000, 0x9000),
                (0x90_0000, 0x90_0000),
                (0xb0_0000, 0xb0_0000)
            ]
        );
    }

    #[test]
    fn sorted_coalesced_and_bounded() {
        let mut f = Footprint::new();
        f.add(0x7000, 0x8000);
        f.add(0x1000, 0x2000);
        f.add(0x2000, 0x3000); // touches: one range
        f.add(0x5000, 0x5000); // empty: nothing
        assert_eq!(f.ranges(), [(0x1000, 0x3000), (0x7000, 0x8000)]);
        f.add(0x2800, 0x7800); // overlaps both
        assert_eq!(f.ranges(), [(0x1000, 0x8000)]);
        let mut f = Footprint::new();
        for i in 0..MAX as u64 {
            f.add(i * 0x10_0000, i * 0x10_0000 + 0x1000);
        }
        assert_eq!(f.ranges().len(), MAX);
        // One more: the closest two (the new one and its neighbour, 0x1000 apart) merge.
        f.add(0x10_2000, 0x10_3000);
        assert_eq!(f.ranges().len(), MAX);
        assert_eq!(f.ranges()[1], (0x10_0000, 0x10_3000));
        // Everything ever added is still covered.
        for i in 0..MAX as u64 {
            let a = i * 0x10_0000;
            assert!(f.ranges().iter().any(|&(s, e)| s <= a && a + 0x1000 <= e));
        }
        assert!(f.ranges().windows(2).all(|w| w[0].1 < w[1].0));
    }

    /// Against a plain model: whatever is added stays covered, the ranges stay sorted,
    /// disjoint and at most MAX, and nothing outside the hull of what was added is covered.
    #[test]
    fn covers_everything_added() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let mut f = Footprint::new();
            let mut added = std::vec::Vec::new();
            for _ in 0..20 {
                let s = (next() % 64) * 0x1000;
                let e = s + (next() % 8 + 1) * 0x1000;
                f.add(s, e);
                added.push((s, e));
                let r = f.ranges();
                assert!(r.len() <= MAX);
                assert!(r.windows(2).all(|w| w[0].1 < w[1].0), "{r:?}");
                for &(s, e) in &added {
                    assert!(
                        r.iter().any(|&(a, b)| a <= s && e <= b),
                        "{s:#x}..{e:#x} in {r:?}"
                    );
                }
                let lo = added.iter().map(|a| a.0).min().unwrap();
                let hi = added.iter().map(|a| a.1).max().unwrap();
                assert!(r[0].0 >= lo && r[r.len() - 1].1 <= hi);
            }
        }
    }
}
