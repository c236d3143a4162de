//! The CMOS real-time clock (ports 0x70 and 0x71, abi::rtc): a write to 0x70 picks a register,
//! a read of 0x71 answers it from the host's clock at that moment (UTC, BCD, 24-hour mode,
//! as PC firmware sets it). The guest cannot set the clock: writes of registers are dropped.
//! Nothing else of the MC146818 (its alarms, periodic interrupt, NVRAM) is there: our kernel
//! reads the date once at boot, as Linux does on a PC.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use abi::rtc::{self, to_bcd, DateTime};

#[derive(Default)]
pub struct RtcCmos {
    /// The register 0x70 picked (bit 7, NMI disable on a PC, is dropped).
    index: AtomicU8,
}

impl RtcCmos {
    pub fn write_index(&self, v: u8) {
        self.index.store(v & 0x7f, Ordering::Relaxed);
    }

    pub fn read_data(&self) -> u8 {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        register(
            self.index.load(Ordering::Relaxed),
            &DateTime::from_unix(secs),
        )
    }
}

/// Register `index` of a clock that reads `t`.
fn register(index: u8, t: &DateTime) -> u8 {
    match index {
        rtc::SECONDS => to_bcd(t.second),
        rtc::MINUTES => to_bcd(t.minute),
        rtc::HOURS => to_bcd(t.hour),
        rtc::WEEKDAY => to_bcd(t.weekday() + 1),
        rtc::DAY => to_bcd(t.day),
        rtc::MONTH => to_bcd(t.month),
        rtc::YEAR => to_bcd(t.year % 100),
        rtc::CENTURY => to_bcd(t.year / 100),
        rtc::STATUS_A => 0x26, // 32.768 kHz time base, 1,024 Hz rate; never updating
        rtc::STATUS_B => rtc::STATUS_B_24H,
        rtc::STATUS_D => rtc::STATUS_D_VALID,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_hold_the_time_in_bcd() {
        let t = DateTime::from_unix(951_827_696); // 2000-02-29 12:34:56, a Tuesday
        let r = |i| register(i, &t);
        assert_eq!(
            [r(0), r(2), r(4), r(6), r(7), r(8), r(9), r(0x32)],
            [0x56, 0x34, 0x12, 0x03, 0x29, 0x02, 0x00, 0x20]
        );
        assert_eq!(r(rtc::STATUS_B) & rtc::STATUS_B_BINARY, 0);
        assert_eq!(r(rtc::STATUS_D), rtc::STATUS_D_VALID);
        let c = RtcCmos::default();
        c.write_index(0x80 | rtc::STATUS_D);
        assert_eq!(
            c.read_data(),
            rtc::STATUS_D_VALID,
            "bit 7 of the index is dropped"
        );
    }
}
