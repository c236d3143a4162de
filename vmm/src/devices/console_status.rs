//! The console's two side ports (`abi::machine::port`, docs/conventions.md), what the guest
//! learns of the host's side of its console besides the bytes: the status port (0xf6: input
//! ended, window size changed, host input is a terminal) and the window-size port (0xf8:
//! rows | cols << 16, a 4-byte read). The event loop writes this state (console_input.rs),
//! the vCPU thread reads it for the guest.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use abi::machine::console_status;

#[derive(Default)]
pub struct ConsoleStatus {
    input_ended: AtomicBool,
    winsize_changed: AtomicBool,
    host_terminal: AtomicBool,
    winsize: AtomicU32,
}

impl ConsoleStatus {
    pub fn new(host_terminal: bool, winsize: u32) -> ConsoleStatus {
        ConsoleStatus {
            host_terminal: AtomicBool::new(host_terminal),
            winsize: AtomicU32::new(winsize),
            ..ConsoleStatus::default()
        }
    }

    /// The host's input has ended and every byte of it is in the UART; true the first time.
    pub fn set_input_ended(&self) -> bool {
        !self.input_ended.swap(true, Ordering::SeqCst)
    }

    /// A new window size; whether it differs from the last (the guest is then told).
    pub fn set_winsize(&self, v: u32) -> bool {
        if self.winsize.swap(v, Ordering::SeqCst) == v {
            return false;
        }
        self.winsize_changed.store(true, Ordering::SeqCst);
        true
    }

    /// The status port's byte.
    pub fn status(&self) -> u8 {
        let mut v = 0;
        if self.input_ended.load(Ordering::SeqCst) {
            v |= console_status::INPUT_ENDED;
        }
        if self.winsize_changed.load(Ordering::SeqCst) {
            v |= console_status::WINSIZE_CHANGED;
        }
        if self.host_terminal.load(Ordering::SeqCst) {
            v |= console_status::HOST_TERMINAL;
        }
        v
    }

    /// The window size as the guest would read it, without clearing "changed".
    pub fn winsize(&self) -> u32 {
        self.winsize.load(Ordering::SeqCst)
    }

    /// The window-size port's value; reading it clears "changed".
    pub fn read_winsize(&self) -> u32 {
        self.winsize_changed.store(false, Ordering::SeqCst);
        self.winsize.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_size_is_flagged_until_the_guest_reads_it() {
        let s = ConsoleStatus::new(true, 24 | 80 << 16);
        assert_eq!(s.status(), console_status::HOST_TERMINAL);
        assert!(!s.set_winsize(24 | 80 << 16));
        assert!(s.set_winsize(50 | 132 << 16));
        assert_ne!(s.status() & console_status::WINSIZE_CHANGED, 0);
        assert_eq!(s.read_winsize(), 50 | 132 << 16);
        assert_eq!(s.status() & console_status::WINSIZE_CHANGED, 0);
        assert!(s.set_input_ended());
        assert!(!s.set_input_ended());
        assert_ne!(s.status() & console_status::INPUT_ENDED, 0);
    }
}
