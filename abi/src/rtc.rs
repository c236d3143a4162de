//! The PC's CMOS real-time clock (the MC146818's registers behind ports 0x70 and 0x71), as our
//! VMM answers it and QEMU emulates it: how the kernel learns the date at boot. The clock
//! keeps UTC to the second; the registers hold it in BCD, in 24-hour mode (status B), with the
//! century in register 0x32, as PC firmware leaves them.
//!
//! The calendar arithmetic (days from 1970 and back, proleptic Gregorian) is here, once, for
//! the VMM that fills the registers and the kernel that reads them.

/// Write a register's number here, then read its value from `DATA`.
pub const INDEX_PORT: u16 = 0x70;
pub const DATA_PORT: u16 = 0x71;

pub const SECONDS: u8 = 0x00;
pub const MINUTES: u8 = 0x02;
pub const HOURS: u8 = 0x04;
pub const WEEKDAY: u8 = 0x06;
pub const DAY: u8 = 0x07;
pub const MONTH: u8 = 0x08;
pub const YEAR: u8 = 0x09;
/// Status A: bit 7 set while the clock updates its registers (read again after).
pub const STATUS_A: u8 = 0x0a;
pub const STATUS_A_UPDATING: u8 = 0x80;
/// Status B: bit 1, 24-hour mode; bit 2, binary instead of BCD.
pub const STATUS_B: u8 = 0x0b;
pub const STATUS_B_24H: u8 = 0x02;
pub const STATUS_B_BINARY: u8 = 0x04;
/// Status D: bit 7, the clock's battery is good (its time is valid).
pub const STATUS_D: u8 = 0x0d;
pub const STATUS_D_VALID: u8 = 0x80;
pub const CENTURY: u8 = 0x32;

/// A UTC time to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: u32,
    /// 1-12.
    pub month: u32,
    /// 1-31.
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl DateTime {
    /// The time `secs` seconds after 1970-01-01 00:00:00 UTC.
    pub fn from_unix(secs: u64) -> DateTime {
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// Seconds since 1970, or None for a time before it or fields out of range.
    pub fn to_unix(&self) -> Option<u64> {
        let month_ok = (1..=12).contains(&self.month);
        if !month_ok
            || self.year < 1970
            || self.day == 0
            || self.day > days_in_month(self.year, self.month)
            || self.hour > 23
            || self.minute > 59
            || self.second > 59
        {
            return None;
        }
        let days = days_from_civil(self.year, self.month, self.day);
        Some(days * 86_400 + (self.hour * 3600 + self.minute * 60 + self.second) as u64)
    }

    /// 0 = Sunday, as the RTC's weekday register counts (it holds this plus one).
    pub fn weekday(&self) -> u32 {
        // 1970-01-01 was a Thursday.
        ((days_from_civil(self.year, self.month, self.day) + 4) % 7) as u32
    }
}

fn leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the date (which is on or after it). Counted in 400-year eras that
/// start on March 1st, so that a leap day ends its year.
fn days_from_civil(year: u32, month: u32, day: u32) -> u64 {
    let y = if month <= 2 { year - 1 } else { year } as u64;
    let era = y / 400;
    let yoe = y % 400;
    let mp = (month as u64 + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day as u64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 // 719,468: days from 0000-03-01 to 1970-01-01
}

/// The date `days` after 1970-01-01: days_from_civil undone.
fn civil_from_days(days: u64) -> (u32, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (era * 400 + yoe) as u32 + u32::from(month <= 2);
    (year, month, day)
}

/// `v` (0-99) in BCD.
pub fn to_bcd(v: u32) -> u8 {
    (((v / 10 % 10) << 4) | (v % 10)) as u8
}

/// A BCD byte's value, or None if a digit is not 0-9.
pub fn from_bcd(b: u8) -> Option<u32> {
    let (hi, lo) = (b >> 4, b & 0xf);
    (hi < 10 && lo < 10).then_some(hi as u32 * 10 + lo as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        let t = DateTime::from_unix(0);
        assert_eq!((t.year, t.month, t.day, t.hour), (1970, 1, 1, 0));
        assert_eq!(t.weekday(), 4);
        // 2000-02-29 12:34:56, a leap day of a year divisible by 400.
        let t = DateTime::from_unix(951_827_696);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (2000, 2, 29, 12, 34, 56)
        );
        assert_eq!(t.weekday(), 2); // a Tuesday
        assert_eq!(
            DateTime::from_unix(1_764_806_400).to_unix(),
            Some(1_764_806_400)
        );
        let bad = DateTime {
            year: 2100,
            month: 2,
            day: 29,
            hour: 0,
            minute: 0,
            second: 0,
        };
        assert_eq!(bad.to_unix(), None, "2100 is not a leap year");
        assert_eq!(
            (to_bcd(59), from_bcd(0x59), from_bcd(0x5a)),
            (0x59, Some(59), None)
        );
    }

    proptest! {
        /// Every second to the year 9999 becomes a date and comes back.
        #[test]
        fn dates_come_back(secs in 0u64..253_402_300_800) {
            prop_assert_eq!(DateTime::from_unix(secs).to_unix(), Some(secs));
        }

        #[test]
        fn bcd_comes_back(v in 0u32..100) {
            prop_assert_eq!(from_bcd(to_bcd(v)), Some(v));
        }
    }
}
