//! The console-status port (0xf6, `abi::machine::port::CONSOLE_STATUS`): one byte the guest
//! reads to learn whether the host's input has ended. `console_input.rs` sets `INPUT_ENDED`
//! once stdin is at its end (EOF, a hang-up, or no usable stdin at all, as in CI) and every
//! byte before it is in the UART's receive FIFO, then raises the UART's IRQ 4 so that a guest
//! blocked on an empty console looks again. Without this a guest cannot tell "no input yet"
//! from "no input ever", and a reader would wait forever.

use std::sync::atomic::{AtomicBool, Ordering};

use abi::machine::console_status::INPUT_ENDED;

pub const CONSOLE_STATUS_PORT: u16 = abi::machine::port::CONSOLE_STATUS;

#[derive(Debug, Default)]
pub struct ConsoleStatus {
    input_ended: AtomicBool,
}

impl ConsoleStatus {
    /// The byte a guest read of the port returns.
    pub fn read(&self) -> u8 {
        // Release/Acquire: the bytes enqueued before `set_input_ended` are visible to the vCPU
        // thread that sees the bit (the serial mutex orders them too; this says so locally).
        if self.input_ended.load(Ordering::Acquire) {
            INPUT_ENDED
        } else {
            0
        }
    }

    /// Records the end of the host's input; true the first time.
    pub fn set_input_ended(&self) -> bool {
        !self.input_ended.swap(true, Ordering::Release)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_is_reported_once_set_and_never_0xff() {
        let s = ConsoleStatus::default();
        assert_eq!(s.read(), 0);
        assert!(s.set_input_ended());
        assert!(!s.set_input_ended());
        assert_eq!(s.read(), INPUT_ENDED);
        assert_ne!(s.read(), 0xff, "0xff means no status port");
    }
}
