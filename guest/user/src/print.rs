//! `print!` and `println!`: formatted output to fd 1.
//!
//! Each call formats into a small buffer on the stack and writes it with as few `write` system
//! calls as possible (usually one), so lines from concurrent programs do not get cut up.

use core::fmt::{self, Write};

const BUF: usize = 256;

struct LineWriter {
    fd: i32,
    buf: [u8; BUF],
    len: usize,
}

impl LineWriter {
    fn flush(&mut self) {
        // Errors are ignored: there is nowhere else to report them.
        let _ = crate::sys::write_all(self.fd, &self.buf[..self.len]);
        self.len = 0;
    }
}

impl Write for LineWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == BUF {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Format `args` and write them to `fd` (used by the macros).
pub fn print_to(fd: i32, args: fmt::Arguments) {
    let mut w = LineWriter {
        fd,
        buf: [0; BUF],
        len: 0,
    };
    let _ = w.write_fmt(args);
    w.flush();
}

/// Print to standard output (fd 1).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::print::print_to(1, format_args!($($arg)*)) };
}

/// Print to standard output (fd 1), with a newline.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::print::print_to(1, format_args!("{}\n", format_args!($($arg)*))) };
}

/// Print to standard error (fd 2).
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::print::print_to(2, format_args!($($arg)*)) };
}

/// Print to standard error (fd 2), with a newline.
#[macro_export]
macro_rules! eprintln {
    () => { $crate::eprint!("\n") };
    ($($arg:tt)*) => { $crate::print::print_to(2, format_args!("{}\n", format_args!($($arg)*))) };
}
