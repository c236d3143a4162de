//! Time: the TSC frequency, and conversions. Where the frequency comes from matters (a VMM that
//! advertises it saves a calibration loop that costs ~10 ms of emulated ring 0 on kvm_pvm), so we
//! keep the source to print it.

use crate::cpu::{cpuid, rdtsc, Features};
use crate::sync::BootOnce;
use crate::vdso;
use abi::machine::cpuid as leaf;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FreqSource {
    /// CPUID 0x40000010 (the hypervisor timing leaf our VMM fills in).
    HypervisorLeaf,
    /// CPUID 0x15 (TSC / crystal ratio and crystal frequency).
    CpuidLeaf15,
    /// Counted against the 8254 PIT.
    PitCalibration,
}

impl FreqSource {
    pub fn name(self) -> &'static str {
        match self {
            FreqSource::HypervisorLeaf => "CPUID 0x40000010",
            FreqSource::CpuidLeaf15 => "CPUID 0x15",
            FreqSource::PitCalibration => "PIT calibration",
        }
    }
}

#[derive(Clone, Copy)]
pub struct Clock {
    pub tsc_hz: u64,
    pub source: FreqSource,
    /// The LAPIC timer's input clock in Hz when the hypervisor leaf gives it (else 0).
    pub apic_hz: u64,
    /// TSC at boot: CLOCK_MONOTONIC counts from here.
    pub boot_tsc: u64,
    /// Nanoseconds per TSC tick times 2^`vdso::SHIFT`: the clocks' scale, here and in the vDSO.
    pub mult: u64,
}

static CLOCK: BootOnce<Clock> = BootOnce::new();

pub fn init(features: &Features) -> Clock {
    let boot_tsc = rdtsc();
    let mut clock = Clock {
        tsc_hz: 0,
        source: FreqSource::HypervisorLeaf,
        apic_hz: 0,
        boot_tsc,
        mult: 0,
    };
    if features.max_hv_leaf >= leaf::TIMING {
        let l = cpuid(leaf::TIMING, 0);
        clock.tsc_hz = l.eax as u64 * 1000;
        clock.apic_hz = l.ebx as u64 * 1000;
    }
    if clock.tsc_hz == 0 && features.max_leaf >= leaf::TSC {
        let l = cpuid(leaf::TSC, 0);
        if l.eax != 0 && l.ebx != 0 && l.ecx != 0 {
            clock.tsc_hz = l.ecx as u64 * l.ebx as u64 / l.eax as u64;
            clock.source = FreqSource::CpuidLeaf15;
        }
    }
    if clock.tsc_hz == 0 {
        clock.tsc_hz = crate::pit::measure_hz(rdtsc);
        clock.source = FreqSource::PitCalibration;
    }
    clock.mult = ((1_000_000_000u128 << vdso::SHIFT) / clock.tsc_hz as u128) as u64;
    let clock = *CLOCK.init(clock);
    publish();
    clock
}

/// Tells the vDSO's data page how to read the clocks, so that ring 3 computes what
/// `monotonic_ns` and `realtime_ns` would.
fn publish() {
    let c = clock();
    vdso::publish(c.boot_tsc, c.mult, c.tsc_hz, EPOCH_NS.load(Relaxed));
}

#[inline]
pub fn clock() -> &'static Clock {
    CLOCK.get()
}

pub fn tsc_hz() -> u64 {
    clock().tsc_hz
}

pub fn ns_to_cycles(ns: u64) -> u64 {
    (ns as u128 * tsc_hz() as u128 / 1_000_000_000) as u64
}

pub fn cycles_to_ns(cycles: u64) -> u64 {
    (cycles as u128 * 1_000_000_000 / tsc_hz() as u128) as u64
}

/// Wall-clock time at boot, from the kernel command line (`epoch=SECONDS`); there is no RTC.
static EPOCH_NS: AtomicU64 = AtomicU64::new(0);

pub fn set_epoch(seconds: u64) {
    EPOCH_NS.store(seconds.saturating_mul(1_000_000_000), Relaxed);
    publish();
}

pub fn realtime_ns() -> u64 {
    EPOCH_NS.load(Relaxed).wrapping_add(monotonic_ns())
}

/// A TSC reading (the file tree's clock, kcore::fs::Fs::now) as wall-clock nanoseconds, by the
/// scale `monotonic_ns` and the vDSO use, so a file written now has the time clock_gettime
/// says. A reading is taken as within 2^63 cycles of boot either way (112 years at 2.6 GHz),
/// so one from before boot (a time set by utimensat), which has wrapped below 0, reads as the
/// past it is. Clamped at 1970.
pub fn tsc_to_realtime_ns(tsc: u64) -> u64 {
    let c = clock();
    let since_boot = tsc.wrapping_sub(c.boot_tsc) as i64;
    let ns = kcore::clock_scale::cycles_to_ns(since_boot, c.mult, vdso::SHIFT);
    (EPOCH_NS.load(Relaxed) as i128 + ns).clamp(0, u64::MAX as i128) as u64
}

/// Wall-clock nanoseconds as a TSC reading that `tsc_to_realtime_ns` turns back into exactly
/// them (the smallest such reading: a cycle is less than a nanosecond), for utimensat.
pub fn realtime_ns_to_tsc(ns: u64) -> u64 {
    let c = clock();
    let since_boot = ns as i128 - EPOCH_NS.load(Relaxed) as i128;
    let cycles = kcore::clock_scale::ns_to_cycles(since_boot, c.mult, vdso::SHIFT);
    c.boot_tsc.wrapping_add(cycles as u64)
}

/// `monotonic_ns`, or 0 before the clock is set up (the kernel log's first lines).
pub fn monotonic_ns_or_0() -> u64 {
    CLOCK.try_get().map_or(0, |_| monotonic_ns())
}

/// Nanoseconds since boot, by the scale the vDSO uses too (a multiply and a shift: the same
/// nanosecond in ring 0 and ring 3 for the same TSC).
pub fn monotonic_ns() -> u64 {
    let c = clock();
    ((rdtsc().wrapping_sub(c.boot_tsc) as u128 * c.mult as u128) >> vdso::SHIFT) as u64
}
