//! The kernel log: every line the kernel prints (its banner, a killed process, the report) is
//! kept here too, the last 16 KiB of them, each line stamped as Linux's are (`<6>[ secs.usecs]
//! `), for syslog(2) and so `dmesg`. Only the kernel's own lines: programs' output goes to the
//! console alone.

use core::fmt;

use crate::sync::IrqLock;

const SIZE: usize = 16 * 1024;

pub struct Log {
    bytes: [u8; SIZE],
    /// Bytes ever written (the ring holds the last SIZE of them).
    written: u64,
    /// Of those, where a destructive read (SYSLOG_ACTION_READ) has got to.
    read: u64,
    /// Nothing before this is read any more (SYSLOG_ACTION_CLEAR).
    cleared: u64,
    /// The next byte starts a line: it gets a stamp first.
    line_start: bool,
}

static LOG: IrqLock<Log> = IrqLock::new(
    "klog",
    Log {
        bytes: [0; SIZE],
        written: 0,
        read: 0,
        cleared: 0,
        line_start: true,
    },
);

impl Log {
    fn push(&mut self, b: u8) {
        self.bytes[(self.written % SIZE as u64) as usize] = b;
        self.written += 1;
    }

    /// The oldest byte a read can still give.
    fn first(&self) -> u64 {
        self.written.saturating_sub(SIZE as u64).max(self.cleared)
    }

    /// Bytes `from..` (clamped to what the ring still holds) into `out`; how many.
    fn copy(&self, from: u64, out: &mut [u8]) -> usize {
        let from = from.max(self.first());
        let n = ((self.written - from) as usize).min(out.len());
        for (i, o) in out[..n].iter_mut().enumerate() {
            *o = self.bytes[((from + i as u64) % SIZE as u64) as usize];
        }
        n
    }
}

impl fmt::Write for Log {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.line_start {
                self.line_start = false;
                let us = crate::time::monotonic_ns_or_0() / 1000;
                // A stamp of a known shape: written without recursing into this function.
                let mut stamp = [0u8; 24];
                let n = stamp_line(us, &mut stamp);
                for &c in &stamp[..n] {
                    self.push(c);
                }
            }
            self.push(b);
            if b == b'\n' {
                self.line_start = true;
            }
        }
        Ok(())
    }
}

/// `<6>[%5u.%06u] ` for `us` microseconds since boot, into `out`; its length.
fn stamp_line(us: u64, out: &mut [u8; 24]) -> usize {
    let mut secs = [b' '; 5];
    let mut s = us / 1_000_000;
    let mut i = secs.len();
    loop {
        i -= 1;
        secs[i] = b'0' + (s % 10) as u8;
        s /= 10;
        if s == 0 || i == 0 {
            break;
        }
    }
    let mut n = 0;
    for &c in b"<6>[".iter().chain(&secs).chain(b".") {
        out[n] = c;
        n += 1;
    }
    let mut frac = us % 1_000_000;
    for k in (0..6).rev() {
        out[n + k] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    n += 6;
    out[n] = b']';
    out[n + 1] = b' ';
    n + 2
}

/// Appends a printed line (uart.rs's `_print`). Dropped if the log is busy, as when the kernel
/// panics in the middle of an append: the console still shows it.
pub fn write(args: fmt::Arguments) {
    if let Some(mut log) = LOG.try_lock() {
        let _ = fmt::Write::write_fmt(&mut *log, args);
    }
}

/// The last `out.len()` bytes or fewer (SYSLOG_ACTION_READ_ALL); with `clear`, the log is
/// emptied after.
pub fn read_all(out: &mut [u8], clear: bool) -> usize {
    let mut log = LOG.lock();
    let from = log.written.saturating_sub(out.len() as u64);
    let n = log.copy(from, out);
    if clear {
        log.clear();
    }
    n
}

/// What a destructive read has not taken yet (SYSLOG_ACTION_READ), into `out`; how many.
pub fn read_unread(out: &mut [u8]) -> usize {
    let mut log = LOG.lock();
    let from = log.read.max(log.first());
    let n = log.copy(from, out);
    log.read = from + n as u64;
    n
}

/// Bytes a destructive read would find (SYSLOG_ACTION_SIZE_UNREAD).
pub fn unread() -> usize {
    let log = LOG.lock();
    (log.written - log.read.max(log.first())) as usize
}

/// SYSLOG_ACTION_CLEAR: what the log holds is forgotten, for every kind of read.
pub fn clear() {
    LOG.lock().clear();
}

impl Log {
    fn clear(&mut self) {
        self.read = self.written;
        self.cleared = self.written;
    }
}

pub const CAPACITY: usize = SIZE;
