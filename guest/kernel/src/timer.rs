//! The timer: when the next interrupt should come, and nothing more (policy is in scheduler.rs).
//!
//! The kernel is tickless: the LAPIC timer is armed only when someone needs it, for the next
//! scheduler tick while more than one task wants the CPU, or for the earliest sleeper's deadline.
//! A single CPU-bound task runs with no timer interrupt at all. TSC-deadline mode when the CPU
//! has it (KVM does); otherwise the LAPIC's periodic mode at HZ, started and stopped on demand.

use crate::cpu::Features;
use crate::lapic;
use crate::time::Clock;

pub struct Timer {
    tsc_deadline: bool,
    pub hz: u64,
    /// Cycles between scheduler ticks.
    pub tick_cycles: u64,
    periodic_count: u32,
    periodic_running: bool,
    /// The TSC value the timer is armed for (0: not armed).
    armed: u64,
    /// When the next scheduler tick is due (0: no tick pending).
    pub next_tick: u64,
    pub interrupts: u64,
    /// `bench` can make the timer tick even with one task, to measure what a tick costs.
    forced_tick_cycles: u64,
}

static mut TIMER: Timer = Timer {
    tsc_deadline: false,
    hz: 100,
    tick_cycles: 0,
    periodic_count: 0,
    periodic_running: false,
    armed: 0,
    next_tick: 0,
    interrupts: 0,
    forced_tick_cycles: 0,
};

#[inline(always)]
pub fn timer() -> &'static mut Timer {
    // SAFETY: one CPU, interrupts off on every path that touches it.
    unsafe { &mut *core::ptr::addr_of_mut!(TIMER) }
}

/// Returns a line describing the mode, for the boot banner.
pub fn init(features: &Features, clock: &Clock, hz: u64) -> &'static str {
    let t = timer();
    t.hz = hz;
    t.tick_cycles = clock.tsc_hz / hz;
    if features.tsc_deadline {
        t.tsc_deadline = true;
        lapic::timer_tsc_deadline_mode();
        "TSC-deadline, tickless"
    } else {
        let apic_hz = if clock.apic_hz != 0 {
            clock.apic_hz
        } else {
            lapic::measure_timer_hz()
        };
        t.periodic_count = (apic_hz / hz).clamp(1, u32::MAX as u64) as u32;
        "periodic, stopped while not needed"
    }
}

/// For `bench`: tick at `hz` whether or not tasks compete (0: back to normal).
pub fn force_hz(hz: u64) {
    let t = timer();
    let tsc_hz = crate::time::tsc_hz();
    t.forced_tick_cycles = tsc_hz.checked_div(hz).unwrap_or(0);
    t.next_tick = 0;
    if !t.tsc_deadline {
        let apic_per_tsc = t.periodic_count as u64 * t.hz; // APIC timer Hz
        let count = apic_per_tsc.checked_div(hz).map_or(0, |c| c.max(1) as u32);
        lapic::set_periodic(count);
        t.periodic_running = hz != 0;
    }
}

/// Arms the timer for the earliest of: the next tick (if `contended`), `sleep_deadline`.
#[inline]
pub fn program(now: u64, contended: bool, sleep_deadline: Option<u64>) {
    let t = timer();
    if t.forced_tick_cycles != 0 {
        if t.next_tick <= now {
            t.next_tick = now + t.forced_tick_cycles;
        }
        if t.tsc_deadline && t.next_tick != t.armed {
            lapic::set_tsc_deadline(t.next_tick);
            t.armed = t.next_tick;
        }
        return;
    }
    if contended {
        if t.next_tick <= now {
            t.next_tick = now + t.tick_cycles;
        }
    } else {
        t.next_tick = 0;
    }
    if t.tsc_deadline {
        let mut d = if contended { t.next_tick } else { u64::MAX };
        if let Some(s) = sleep_deadline {
            d = d.min(s);
        }
        let d = if d == u64::MAX { 0 } else { d };
        if d != t.armed {
            lapic::set_tsc_deadline(d);
            t.armed = d;
        }
    } else {
        let need = contended || sleep_deadline.is_some();
        if need != t.periodic_running {
            lapic::set_periodic(if need { t.periodic_count } else { 0 });
            t.periodic_running = need;
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
    let t = timer();
    t.interrupts += 1;
    let at = t.armed;
    t.armed = 0; // a TSC-deadline timer disarms itself when it fires
    if !t.tsc_deadline {
        Fired::Tick { at: 0 }
    } else if t.next_tick != 0 && at >= t.next_tick {
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
    let t = timer();
    let period = if t.forced_tick_cycles != 0 {
        t.forced_tick_cycles
    } else if contended {
        t.tick_cycles
    } else {
        0
    };
    if period == 0 {
        t.next_tick = 0; // tickless again: the fired deadline already cleared itself
        return;
    }
    t.next_tick = at + period;
    t.armed = t.next_tick;
    lapic::set_tsc_deadline(t.next_tick);
}
