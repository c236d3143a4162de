//! The TSC-to-nanoseconds scale that the kernel and the vDSO share: `ns = (cycles * mult) >>
//! shift`, signed here so that a reading from before boot (a file time set into the past)
//! reads back as the past, and its inverse, which must give back exactly the nanoseconds it was
//! handed (utimensat's times are read back by stat to the nanosecond).

/// Nanoseconds in `cycles` (negative: before the reference), the floor of `cycles * mult /
/// 2^shift`.
pub fn cycles_to_ns(cycles: i64, mult: u64, shift: u32) -> i128 {
    (cycles as i128 * mult as i128) >> shift
}

/// The fewest cycles whose `cycles_to_ns` is `ns`: the ceiling of `ns * 2^shift / mult`.
/// Exact when a cycle is shorter than a nanosecond (`mult < 2^shift`, a TSC above 1 GHz):
/// consecutive cycle counts then never skip a nanosecond. Saturates at the ends of i64.
pub fn ns_to_cycles(ns: i128, mult: u64, shift: u32) -> i64 {
    let scaled = ns.saturating_mul(1 << shift);
    let cycles = -((-scaled).div_euclid(mult.max(1) as i128));
    cycles.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// mult for a TSC of `hz`, as time.rs computes it.
    fn mult(hz: u64, shift: u32) -> u64 {
        ((1_000_000_000u128 << shift) / hz as u128) as u64
    }

    #[test]
    fn the_floor_also_before_the_reference() {
        let m = mult(2_000_000_000, 32); // half a nanosecond a cycle
        assert_eq!(cycles_to_ns(3, m, 32), 1);
        assert_eq!(cycles_to_ns(-3, m, 32), -2);
        assert_eq!(ns_to_cycles(1, m, 32), 2);
        assert_eq!(ns_to_cycles(-1, m, 32), -2);
    }

    proptest! {
        /// Any time whose cycles fit in an i64 (here within 47 years of boot, at up to 6 GHz;
        /// 112 years at 2.6 GHz), before or after, comes back to the nanosecond.
        #[test]
        fn nanoseconds_come_back_exactly(
            hz in 1_000_000_001u64..6_000_000_000,
            ns in -1_500_000_000_000_000_000i128..1_500_000_000_000_000_000,
        ) {
            let m = mult(hz, 32);
            prop_assert_eq!(cycles_to_ns(ns_to_cycles(ns, m, 32), m, 32), ns);
        }
    }
}
