//! The console: a polled 16550 UART at COM1 (0x3f8), and the `print!`/`println!` macros.
//!
//! Every port access is a VM exit (~22k cycles on kvm_pvm), so we enable the 16-byte FIFO and ask
//! the line status register only once per 16 bytes: when it says the transmitter is empty, the
//! next 16 bytes fit without asking again.

use core::fmt;
use x86_64::instructions::port::Port;

const COM1: u16 = abi::machine::port::COM1;
const FIFO_DEPTH: u32 = 16;
const LSR_THR_EMPTY: u8 = 1 << 5;
const LSR_DATA_READY: u8 = 1 << 0;

pub struct Serial {
    room: u32,
}

pub static CONSOLE: crate::sync::IrqLock<Serial> =
    crate::sync::IrqLock::new("console", Serial { room: 0 });

impl Serial {
    /// 8N1, FIFO on, no UART interrupts (output is polled).
    pub fn init(&mut self) {
        // SAFETY: COM1's registers; writing them only configures the UART.
        unsafe {
            Port::<u8>::new(COM1 + 1).write(0x00); // IER: no interrupts
            Port::<u8>::new(COM1 + 3).write(0x03); // LCR: 8 bits, no parity, 1 stop bit
            Port::<u8>::new(COM1 + 2).write(0x07); // FCR: enable and clear both FIFOs
        }
        self.room = 0;
    }

    pub fn write_byte(&mut self, b: u8) {
        self.wait_for_room();
        // SAFETY: the transmit holding register has room (checked above).
        unsafe { Port::<u8>::new(COM1).write(b) };
        self.room -= 1;
    }

    /// A byte from the receiver, if one is waiting.
    pub fn try_read_byte(&mut self) -> Option<u8> {
        // SAFETY: reading LSR, then RBR only when data is ready, as the 16550 expects.
        unsafe {
            if Port::<u8>::new(COM1 + 5).read() & LSR_DATA_READY != 0 {
                Some(Port::<u8>::new(COM1).read())
            } else {
                None
            }
        }
    }

    /// Writes `bytes`, "\n" as "\r\n". Runs of bytes go out with `rep outsb`, as many as the
    /// FIFO has room for: KVM hands a string port write to the VMM as one exit, not one per byte.
    pub fn write_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if bytes[0] == b'\n' {
                self.write_byte(b'\r');
                self.write_byte(b'\n');
                bytes = &bytes[1..];
                continue;
            }
            self.wait_for_room();
            let run = bytes
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(bytes.len());
            let n = run.min(self.room as usize);
            // SAFETY: sends `n` bytes of `bytes` to the transmit register, which has room for
            // them (checked by `wait_for_room`); DF is clear (the ABI's and SFMASK's promise).
            unsafe {
                core::arch::asm!("rep outsb", in("dx") COM1, inout("rsi") bytes.as_ptr() => _,
                    inout("rcx") n => _, options(nostack, preserves_flags, readonly));
            }
            self.room -= n as u32;
            bytes = &bytes[n..];
        }
    }

    fn wait_for_room(&mut self) {
        while self.room == 0 {
            // SAFETY: reading the line status register has no side effect.
            let lsr = unsafe { Port::<u8>::new(COM1 + 5).read() };
            if lsr & LSR_THR_EMPTY != 0 {
                self.room = FIFO_DEPTH;
            }
        }
    }
}

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

pub fn _print(args: fmt::Arguments) {
    use fmt::Write;
    let _ = CONSOLE.lock().write_fmt(args);
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::_print(format_args!($($arg)*)));
}

#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::console::_print(format_args!("{}\n", format_args!($($arg)*))));
}
