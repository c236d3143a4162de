//! The guest's clock as the VMM sees it, so that the VMM's events (its VM exits) and the kernel's
//! records share one time line in a trace. The kernel stamps its records with the raw TSC and
//! says how it turns a TSC into nanoseconds (abi::trace's header: `boot_tsc`, `mult`). Before each
//! write to a trace port (the handshake, every flush, power-off) it also stores the TSC of that
//! moment; the VMM reads its own clock while handling the exit. Each such pair bounds the offset
//! between the clocks from one side: the host reading comes after the guest's by the exit's
//! latency, never before. The smallest `host - guest` seen is therefore the best estimate of the
//! offset, and the spread of the others says how good it is. This needs no KVM support (on
//! kvm_pvm the guest's TSC is not the host's, and KVM_VCPU_TSC_OFFSET says nothing about it),
//! and the first and last pairs also measure whether the two clocks run at the same rate.

use std::time::Instant;

use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct GuestClock {
    boot_tsc: u64,
    mult: u64,
    /// The host's zero: all host readings are nanoseconds since this.
    base: Instant,
    /// (guest ns since boot, host ns since `base`), in the order taken.
    pairs: Vec<(u64, u64)>,
}

/// Pairs kept: one per flush of 1,024 records, so this covers runs of millions of events.
const MAX_PAIRS: usize = 4096;

impl GuestClock {
    pub fn new(boot_tsc: u64, mult: u64, base: Instant) -> GuestClock {
        GuestClock {
            boot_tsc,
            mult,
            base,
            pairs: Vec::new(),
        }
    }

    /// The guest's nanoseconds since boot at `tsc`.
    pub fn ns(&self, tsc: u64) -> u64 {
        abi::trace::ns_since_boot(tsc, self.boot_tsc, self.mult)
    }

    /// The guest stamped `stamp_tsc` just before the exit the VMM is handling at `at`.
    pub fn sample(&mut self, stamp_tsc: u64, at: Instant) {
        if self.pairs.len() < MAX_PAIRS {
            let host = at.saturating_duration_since(self.base).as_nanos() as u64;
            self.pairs.push((self.ns(stamp_tsc), host));
        }
    }

    fn offsets(&self) -> impl Iterator<Item = i128> + '_ {
        self.pairs.iter().map(|&(g, h)| h as i128 - g as i128)
    }

    /// Host ns minus guest ns, at its smallest: None before the first pair.
    pub fn offset(&self) -> Option<i128> {
        self.offsets().min()
    }

    /// The guest's time (ns since its boot) of the host's moment `at`.
    pub fn guest_ns(&self, at: Instant) -> Option<u64> {
        let host = at.saturating_duration_since(self.base).as_nanos() as i128;
        self.offset().map(|o| (host - o).max(0) as u64)
    }

    /// How good the mapping is, for the trace's `otherData`.
    pub fn summary(&self) -> Value {
        let (Some(lo), Some(hi)) = (self.offsets().min(), self.offsets().max()) else {
            return json!({"pairs": 0});
        };
        let rate_ppm = match (self.pairs.first(), self.pairs.last()) {
            (Some(a), Some(b)) if b.0 > a.0 + 1_000_000 => {
                let (guest, host) = ((b.0 - a.0) as f64, b.1 as f64 - a.1 as f64);
                Some((host / guest - 1.0) * 1e6)
            }
            _ => None,
        };
        json!({
            "method": "guest TSC stamped before a port write, host clock read in that exit; \
                       offset = the smallest host - guest",
            "pairs": self.pairs.len(),
            "offset_spread_us": (hi - lo) as f64 / 1000.0,
            "host_rate_vs_guest_ppm": rate_ppm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_offset_is_the_smallest_pair_and_maps_host_moments_back() {
        let base = Instant::now();
        // 1 GHz: mult = 2^32 makes a tick a nanosecond; the guest booted at TSC 1,000.
        let mut c = GuestClock::new(1_000, 1 << abi::trace::NS_SHIFT, base);
        assert_eq!(c.guest_ns(base), None);
        // Guest 5 µs after boot, host 105 µs after base: the exit took 3 µs here, 1 µs there.
        c.sample(1_000 + 5_000, base + Duration::from_micros(103));
        c.sample(1_000 + 50_000, base + Duration::from_micros(146));
        assert_eq!(c.offset(), Some(96_000));
        assert_eq!(c.guest_ns(base + Duration::from_micros(200)), Some(104_000));
        assert_eq!(c.summary()["pairs"], 2);
        assert_eq!(c.summary()["offset_spread_us"], 2.0);
    }
}
