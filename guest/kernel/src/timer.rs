//! The timer: when the next interrupt should come, and nothing more (policy is in scheduler.rs).
//!
//! The kernel is tickless: the LAPIC timer is armed only when someone needs it, for the next
//! scheduler tick while more than one task wants the CPU, or for the earliest sleeper's deadline.
//! A single CPU-bound task runs with no timer interrupt at all. TSC-deadline mode when the CPU
//! has it (KVM does); otherwise the LAPIC's periodic mode at HZ, started and stopped on demand.

use crate::sync::CpuCell;

use crate::cpu::Features;
use crate::lapic;
use crate::time::Clock;

/// `repr(C)`, and the fields the timer tick's leaf (trap_entry.rs) reads and writes have their
/// offsets below.
#[repr(C)]
pub struct Timer {
    tsc_deadline: CpuCell<bool>,
    pub hz: CpuCell<u64>,
    /// Cycles between scheduler ticks.
    pub tick_cycles: CpuCell<u64>,
    periodic_count: CpuCell<u32>,
    periodic_running: CpuCell<bool>,
    /// The TSC value the timer is armed for (0: not armed).
    armed: CpuCell<u64>,
    /// When the next scheduler tick is due (0: no tick pending).
    pub next_tick: CpuCell<u64>,
    pub interrupts: CpuCell<u64>,
    /// `bench` can make the timer tick even with one task, to measure what a tick costs.
    forced_tick_cycles: CpuCell<u64>,
}

pub const ARMED: usize = core::mem::offset_of!(Timer, armed);
pub const NEXT_TICK: usize = core::mem::offset_of!(Timer, next_tick);
pub const INTERRUPTS: usize = core::mem::offset_of!(Timer, interrupts);
pub const TICK_CYCLES: usize = core::mem::offset_of!(Timer, tick_cycles);
pub const FORCED_TICK_CYCLES: usize = core::mem::offset_of!(Timer, forced_tick_cycles);

/// The timer's state: this CPU's (a second CPU gets its own), single values the tick path
/// reads and writes without a lock, interrupts off.
pub static TIMER: Timer = Timer {
    tsc_deadline: CpuCell::new(false),
    hz: CpuCell::new(100),
    tick_cycles: CpuCell::new(0),
    periodic_count: CpuCell::new(0),
    periodic_running: CpuCell::new(false),
    armed: CpuCell::new(0),
    next_tick: CpuCell::new(0),
    interrupts: CpuCell::new(0),
    forced_tick_cycles: CpuCell::new(0),
};

/// Returns a line describing the mode, for the boot banner.
pub fn init(features: &Features, clock: &Clock, hz: u64) -> &'static str {
    let t = &TIMER;
    t.hz.set(hz);
    t.tick_cycles.set(clock.tsc_hz / hz);
    // The tick's leaf (trap_entry.rs) knows only the TSC deadline and the x2APIC's EOI.
    let cpu = crate::percpu::this();
    if !lapic::x2apic() {
        cpu.tick_slow
            .set(cpu.tick_slow.get() | crate::percpu::TICK_SLOW_XAPIC);
    }
    if !features.tsc_deadline {
        cpu.tick_slow
            .set(cpu.tick_slow.get() | crate::percpu::TICK_SLOW_PERIODIC);
    }
    if features.tsc_deadline {
        t.tsc_deadline.set(true);
        lapic::timer_tsc_deadline_mode();
        "TSC-deadline, tickless"
    } else {
        let apic_hz = if clock.apic_hz != 0 {
            clock.apic_hz
        } else {
            lapic::measure_timer_hz()
        };
        let count = (apic_hz / hz).clamp(1, u32::MAX as u64) as u32;
        t.periodic_count.set(count);
        "periodic, stopped while not needed"
    }
}

/// For `bench`: tick at `hz` whether or not tasks compete (0: back to normal).
pub fn force_hz(hz: u64) {
    let t = &TIMER;
    let tsc_hz = crate::time::tsc_hz();
    t.forced_tick_cycles
        .set(tsc_hz.checked_div(hz).unwrap_or(0));
    t.next_tick.set(0);
    if !t.tsc_deadline.get() {
        let apic_hz = t.periodic_count.get() as u64 * t.hz.get();
        let count = apic_hz.checked_div(hz).map_or(0, |c| c.max(1) as u32);
        lapic::set_periodic(count);
        t.periodic_running.set(hz != 0);
    }
}

/// Timer interrupts since boot.
pub fn interrupts() -> u64 {
    TIMER.interrupts.get()
}

/// The new task's slice starts now, not at the old task's tick.
pub fn restart_slice() {
    TIMER.next_tick.set(0);
}

/// Arms the timer for the earliest of: the next tick (if `contended`), `sleep_deadline`.
#[inline]
pub fn program(now: u64, contended: bool, sleep_deadline: Option<u64>) {
    let t = &TIMER;
    let forced = t.forced_tick_cycles.get();
    if forced != 0 {
        let mut next = t.next_tick.get();
        if next <= now {
            next = now + forced;
            t.next_tick.set(next);
        }
        if t.tsc_deadline.get() && next != t.armed.get() {
            lapic::set_tsc_deadline(next);
            t.armed.set(next);
        }
        return;
    }
    let mut next = t.next_tick.get();
    if contended {
        if next <= now {
            next = now + t.tick_cycles.get();
        }
    } else {
        next = 0;
    }
    t.next_tick.set(next);
    if t.tsc_deadline.get() {
        let mut d = if contended { next } else { u64::MAX };
        if let Some(s) = sleep_deadline {
            d = d.min(s);
        }
        // Nothing to wait for: a deadline still armed is left to fire (at most one interrupt,
        // which finds no tick due and goes the slow way, `acknowledge`), since disarming is a
        // timer write, and a task that blocks as another wakes (a pipe's ping-pong) would pay
        // one on every switch.
        if d != u64::MAX && d != t.armed.get() {
            lapic::set_tsc_deadline(d);
            t.armed.set(d);
        }
    } else {
        let need = contended || sleep_deadline.is_some();
        if need != t.periodic_running.get() {
            let count = if need { t.periodic_count.get() } else { 0 };
            lapic::set_periodic(count);
            t.periodic_running.set(need);
        }
    }
}

/// Called first thing on a timer interrupt: sends the EOI and says whether it was the
/// scheduler's tick in TSC-deadline mode: the deadline that fired, or 0 (a sleeper's deadline,
/// a stale interrupt, or periodic mode, where `armed` is always 0: see `is_periodic`).
#[inline(always)]
pub fn acknowledge() -> u64 {
    lapic::eoi();
    let t = &TIMER;
    t.interrupts.set(t.interrupts.get() + 1);
    let at = t.armed.get();
    t.armed.set(0); // a TSC-deadline timer disarms itself when it fires
    let next = t.next_tick.get();
    if next != 0 && at >= next {
        at
    } else {
        0
    }
}

/// Periodic mode: every interrupt is a scheduler tick.
pub fn is_periodic() -> bool {
    !TIMER.tsc_deadline.get()
}

/// Arms the next tick one period after the tick that fired at `at` (TSC-deadline mode), or lets
/// the timer stay off if nobody needs a tick. The deadline that fired tells the time well enough
/// for this, which saves an `rdtsc` on the tick path.
#[inline(always)]
pub fn rearm_tick(at: u64, contended: bool) {
    let t = &TIMER;
    let forced = t.forced_tick_cycles.get();
    let period = if forced != 0 {
        forced
    } else if contended {
        t.tick_cycles.get()
    } else {
        0
    };
    if period == 0 {
        t.next_tick.set(0); // tickless again: the fired deadline cleared itself
        return;
    }
    let next = at + period;
    t.next_tick.set(next);
    t.armed.set(next);
    lapic::set_tsc_deadline(next);
}
