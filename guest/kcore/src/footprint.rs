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

    /// Adds `[start, end)`.
    pub fn add(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let mut all = [(0u64, 0u64); MAX + 1];
        let mut n = 0;
        let mut placed = false;
        for &r in self.ranges() {
            if !placed && start < r.0 {
                all[n] = (start, end);
                n += 1;
                placed = true;
            }
            all[n] = r;
            n += 1;
        }
        if !placed {
            all[n] = (start, end);
            n += 1;
        }
        // Coalesce what overlaps or touches.
        let mut out = [(0u64, 0u64); MAX + 1];
        let mut m = 0;
        for &(s, e) in &all[..n] {
            if m > 0 && s <= out[m - 1].1 {
                out[m - 1].1 = out[m - 1].1.max(e);
            } else {
                out[m] = (s, e);
                m += 1;
            }
        }
        if m > MAX {
            // Bridge the smallest gap.
            let i = (0..m - 1)
                .min_by_key(|&i| out[i + 1].0 - out[i].1)
                .unwrap_or(0);
            out[i].1 = out[i + 1].1;
            out.copy_within(i + 2..m, i + 1);
            m -= 1;
        }
        self.ranges[..m].copy_from_slice(&out[..m]);
        self.len = m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
