//! Free RAM at boot: each RAM range of the memory map, page-aligned inward, minus the reserved
//! ranges (the low MiB and kernel image, the boot modules) aligned outward.

pub const PAGE: u64 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
    pub fn pages(&self) -> u64 {
        self.end.saturating_sub(self.start) / PAGE
    }
}

/// `[start, end)` without the `reserved` ranges, as at most `N` page-aligned pieces in address
/// order (pieces beyond `N` are dropped: with one RAM range and a few reservations, `N` = 8 is
/// far more than enough). Returns the pieces and how many there are.
pub fn subtract<const N: usize>(
    start: u64,
    end: u64,
    reserved: &[(u64, u64)],
) -> ([Range; N], usize) {
    let mut todo = [Range::default(); N];
    let mut ntodo = 0;
    let first = Range {
        start: start.saturating_add(PAGE - 1) & !(PAGE - 1),
        end: end & !(PAGE - 1),
    };
    if !first.is_empty() && N > 0 {
        todo[0] = first;
        ntodo = 1;
    }
    for &(rs, re) in reserved {
        let (rs, re) = (rs & !(PAGE - 1), re.saturating_add(PAGE - 1) & !(PAGE - 1));
        let mut next = [Range::default(); N];
        let mut nnext = 0;
        for r in &todo[..ntodo] {
            let pieces = if re <= r.start || rs >= r.end {
                [*r, Range::default()]
            } else {
                [
                    Range {
                        start: r.start,
                        end: rs,
                    },
                    Range {
                        start: re,
                        end: r.end,
                    },
                ]
            };
            for p in pieces {
                if !p.is_empty() && nnext < N {
                    next[nnext] = p;
                    nnext += 1;
                }
            }
        }
        todo = next;
        ntodo = nnext;
    }
    (todo, ntodo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_holes_and_aligns() {
        let (r, n) = subtract::<8>(0x1000, 0x10_0000, &[(0x3000, 0x4001), (0x8000, 0x9000)]);
        assert_eq!(
            &r[..n],
            &[
                Range {
                    start: 0x1000,
                    end: 0x3000
                },
                Range {
                    start: 0x5000,
                    end: 0x8000
                },
                Range {
                    start: 0x9000,
                    end: 0x10_0000
                },
            ]
        );
        assert_eq!(r[..n].iter().map(Range::pages).sum::<u64>(), 2 + 3 + 0xf7);
    }

    #[test]
    fn reservations_covering_everything_leave_nothing() {
        assert_eq!(subtract::<8>(0x1001, 0x1fff, &[]).1, 0);
        assert_eq!(subtract::<8>(0, 0x10_0000, &[(0, 0x20_0000)]).1, 0);
        assert_eq!(subtract::<8>(0, u64::MAX, &[(u64::MAX - 5, u64::MAX)]).1, 1);
    }
}
