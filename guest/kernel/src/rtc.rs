//! The CMOS real-time clock (abi::rtc), read once at boot for the wall-clock time: what
//! CLOCK_REALTIME, `date` and file times start from. Our VMM answers it from the host's clock,
//! QEMU emulates one; without it (an empty port reads all-ones) the time starts at 1970, as it
//! did before this driver. `epoch=SECONDS` on the command line still wins.
//!
//! The clock keeps seconds only, and it may tick between two of its registers: they are read
//! until two passes agree, never while its update flag is up.

use abi::rtc::{self, from_bcd, DateTime};
use x86_64::instructions::port::Port;

/// Seconds since 1970 the clock says, or None if there is no clock or its time is not valid.
pub fn read_unix() -> Option<u64> {
    let status_d = read(rtc::STATUS_D);
    if status_d == 0xff || status_d & rtc::STATUS_D_VALID == 0 {
        return None;
    }
    let status_b = read(rtc::STATUS_B);
    for _ in 0..5 {
        // An update takes under 2 ms; each read here is a VM exit (~10 us), so this bounds the
        // wait well past one.
        let mut waited = 0;
        while read(rtc::STATUS_A) & rtc::STATUS_A_UPDATING != 0 && waited < 1000 {
            waited += 1;
        }
        let first = fields();
        if fields() == first {
            return decode(first, status_b)?.to_unix();
        }
    }
    None
}

/// seconds, minutes, hours, day, month, year, century: as the registers hold them.
fn fields() -> [u8; 7] {
    [
        rtc::SECONDS,
        rtc::MINUTES,
        rtc::HOURS,
        rtc::DAY,
        rtc::MONTH,
        rtc::YEAR,
        rtc::CENTURY,
    ]
    .map(read)
}

/// The registers as a date: BCD unless status B says binary, 12-hour mode (bit 7 of the hour:
/// PM) unless it says 24; a century register that reads nonsense means the 2000s.
fn decode(r: [u8; 7], status_b: u8) -> Option<DateTime> {
    let binary = status_b & rtc::STATUS_B_BINARY != 0;
    let value = |b: u8| if binary { Some(b as u32) } else { from_bcd(b) };
    let mut hour = value(r[2] & 0x7f)?;
    if status_b & rtc::STATUS_B_24H == 0 {
        hour %= 12;
        if r[2] & 0x80 != 0 {
            hour += 12;
        }
    }
    let century = value(r[6]).filter(|c| (19..=99).contains(c)).unwrap_or(20);
    Some(DateTime {
        year: century * 100 + value(r[5])?,
        month: value(r[4])?,
        day: value(r[3])?,
        hour,
        minute: value(r[1])?,
        second: value(r[0])?,
    })
}

fn read(register: u8) -> u8 {
    // SAFETY: ports 0x70 and 0x71 are the CMOS clock's (an empty port on a machine without
    // one); picking a register and reading it changes nothing else. Bit 7 of the index (NMIs
    // masked on a PC) stays clear.
    unsafe {
        Port::<u8>::new(rtc::INDEX_PORT).write(register & 0x7f);
        Port::<u8>::new(rtc::DATA_PORT).read()
    }
}
