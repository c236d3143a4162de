//! The timer: when the next interrupt should come, and nothing more (policy is in scheduler.rs).
//!
//! The kernel is tickless: the LAPIC timer is armed only when someone needs it, for the next
//! scheduler tick while more than one task wants the CPU, or for the earliest sleeper's deadline.
//! A single CPU-bound task runs with no timer interrupt at all. TSC-deadline mode when the CPU
//! has it (KVM does); otherwise the LAPIC's periodic mode at HZ, started and stopped on demand.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::cpu::Features;
use crate::lapic;
use crate::time::Clock;

pub struct Timer {
    tsc_deadline: AtomicBool,
    pub hz: AtomicU64,
    /// Cycles between scheduler ticks.
    pub tick_cycles: AtomicU64,
    periodic_count: AtomicU32,
    periodic_running: AtomicBool,
    /// The TSC value the timer is armed for (0: not armed).
    armed: AtomicU64,
    /// When the next scheduler tick is due (0: no tick pending).
    pub next_tick: AtomicU64,
    pub interrupts: AtomicU64,
    /// `bench` can make the timer tick even with one task, to measure what a tick costs.
    forced_tick_cycles: AtomicU64,
}

/// The timer's state. Single values, each an atomic: the tick path reads and writes them
/// without a lock, and only this CPU touches them (interrupts off).
pub static TIMER: Timer = Timer {
    tsc_deadline: AtomicBool::new(false),
    hz: AtomicU64::new(100),
    tick_cycles: AtomicU64::new(0),
    periodic_count: AtomicU32::new(0),
    periodic_running: AtomicBool::new(false),
    armed: AtomicU64::new(0),
    next_tick: AtomicU64::new(0),
    interrupts: AtomicU64::new(0),
    forced_tick_cycles: AtomicU64::new(0),
};

/// Returns a line describing the mode, for the boot banner.
pub fn init(features: &Features, clock: &Clock, hz: u64) -> &'static str {
    let t = &TIMER;
    t.hz.store(hz, Relaxed);
    t.tick_cycles.store(clock.tsc_hz / hz, Relaxed);
    if features.tsc_deadline {
        t.tsc_deadline.store(true, Relaxed);
        lapic::timer_tsc_deadline_mode();
        "TSC-deadline, tickless"
    } else {
        let apic_hz = if clock.apic_hz != 0 {
            clock.apic_hz
        } else {
            lapic::measure_timer_hz()
        };
        let count = (apic_hz / hz).clamp(1, u32::MAX as u64) as u32;
        t.periodic_count.store(count, Relaxed);
        "periodic, stopped while not needed"
    }
}

/// For `bench`: tick at `hz` whether or not tasks compete (0: back to normal).
pub fn force_hz(hz: u64) {
    let t = &TIMER;
    let tsc_hz = crate::time::tsc_hz();
    t.forced_tick_cycles
        .store(tsc_hz.checked_div(hz).unwrap_or(0), Relaxed);
    t.next_tick.store(0, Relaxed);
    if !t.tsc_deadline.load(Relaxed) {
        let apic_hz = t.periodic_count.load(Relaxed) as u64 * t.hz.load(Relaxed);
        let count = apic_hz.checked_div(hz).map_or(0, |c| c.max(1) as u32);
        lapic::set_periodic(count);
        t.periodic_running.store(hz != 0, Relaxed);
    }
}

/// Timer interrupts since boot.
pub fn interrupts() -> u64 {
    TIMER.interrupts.load(Relaxed)
}

/// The new task's slice starts now, not at the old task's tick.
pub fn restart_slice() {
    TIMER.next_tick.store(0, Relaxed);
}

/// Arms the timer for the earliest of: the next tick (if `contended`), `sleep_deadline`.
#[inline]
pub fn program(now: u64, contended: bool, sleep_deadline: Option<u64>) {
    let t = &TIMER;
    let forced = t.forced_tick_cycles.load(Relaxed);
    if forced != 0 {
        let mut next = t.next_tick.load(Relaxed);
        if next <= now {
            next = now + forced;
            t.next_tick.store(next, Relaxed);
        }
        if t.tsc_deadline.load(Relaxed) && next != t.armed.load(Relaxed) {
            lapic::set_tsc_deadline(next);
            t.armed.store(next, Relaxed);
        }
        return;
    }
    let mut next = t.next_tick.load(Relaxed);
    if contended {
        if next <= now {
            next = now + t.tick_cycles.load(Relaxed);
        }
    } else {
        next = 0;
    }
    t.next_tick.store(next, Relaxed);
    if t.tsc_deadline.load(Relaxed) {
        let mut d = if contended { next } else { u64::MAX };
        if let Some(s) = sleep_deadline {
            d = d.min(s);
        }
        let d = if d == u64::MAX { 0 } else { d };
        if d != t.armed.load(Relaxed) {
            lapic::set_tsc_deadline(d);
            t.armed.store(d, Relaxed);
        }
    } else {
        let need = contended || sleep_deadline.is_some();
        if need != t.periodic_running.load(Relaxed) {
            let count = if need {
                t.periodic_count.load(Relaxed)
            } else {
                0
            };
            lapic::set_periodic(count);
            t.periodic_running.store(need, Relaxed);
        }
    }
}

/// What a timer interrupt was for.
pub enum Fired {
    /// A scheduler tick; `at` is the TSC deadline that fired (0 in periodic mode).
    Tick { at: u64 },
    /// Only a sleeper's deadline (or a stale interrupt).
    Other,
}

/// Called first thing on a timer interrupt: sends the EOI and says what fired.
#[inline(always)]
pub fn acknowledge() -> Fired {
    lapic::eoi();
    let t = &TIMER;
    t.interrupts.fetch_add(1, Relaxed);
    let at = t.armed.load(Relaxed);
    t.armed.store(0, Relaxed); // a TSC-deadline timer disarms itself when it fires
    let next = t.next_tick.load(Relaxed);
    if !t.tsc_deadline.load(Relaxed) {
        Fired::Tick { at: 0 }
    } else if next != 0 && at >= next {
        Fired::Tick { at }
    } else {
        Fired::Other
    }
}

/// Arms the next tick one period after the tick that fired at `at` (TSC-deadline mode), or lets
/// the timer stay off if nobody needs a tick. The deadline that fired tells the time well enough
/// for this, which saves an `rdtsc` on the tick path.
#[inline(always)]
pub fn rearm_tick(at: u64, contended: bool) {
    let t = &TIMER;
    let forced = t.forced_tick_cycles.load(Relaxed);
    let period = if forced != 0 {
        forced
    } else if contended {
        t.tick_cycles.load(Relaxed)
    } else {
        0
    };
    if period == 0 {
        t.next_tick.store(0, Relaxed); // tickless again: the fired deadline cleared itself
        return;
    }
    let next = at + period;
    t.next_tick.store(next, Relaxed);
    t.armed.store(next, Relaxed);
    lapic::set_tsc_deadline(next);
}
