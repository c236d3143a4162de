//! The direct-execution workload of `vmm bench`: a fixed, deterministic, CPU-bound integer loop
//! with no memory traffic and no system calls. The very same source is compiled into the guest's
//! `bench` program (ring 3 on our kernel) and into the host's `vmm bench` (a native Linux
//! process, via `#[path]`), so the two runs execute the same instructions.

/// xorshift64* for `rounds` rounds from `seed`; returns a checksum of every output (so the
/// optimiser cannot skip any round). About six dependent ALU operations per round.
#[inline(never)]
pub fn work(seed: u64, rounds: u64) -> u64 {
    let mut x = seed | 1;
    let mut acc = 0u64;
    for _ in 0..rounds {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        acc = acc.wrapping_add(x.wrapping_mul(0x2545_f491_4f6c_dd1d));
    }
    acc
}

/// The checksum `work(WORK_SEED, n)` must give, for a cheap cross-check of both builds.
pub const WORK_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Watches the TSC for `span` cycles and records every gap longer than `threshold` cycles:
/// time this program did not run (an interrupt, a VM exit, being preempted). Gap sizes go into
/// `gaps` (as many as fit); returns how many gaps there were and their total cycles.
#[inline(never)]
pub fn scan_gaps(span: u64, threshold: u64, gaps: &mut [u64]) -> (usize, u64) {
    #[allow(unused_unsafe)]
    // SAFETY: rdtsc only reads the time-stamp counter.
    let now = || unsafe { core::arch::x86_64::_rdtsc() };
    let start = now();
    let mut prev = start;
    let (mut count, mut lost) = (0usize, 0u64);
    while prev - start < span {
        let t = now();
        let d = t - prev;
        if d > threshold {
            if let Some(slot) = gaps.get_mut(count) {
                *slot = d;
            }
            count += 1;
            lost += d;
        }
        prev = t;
    }
    (count, lost)
}
