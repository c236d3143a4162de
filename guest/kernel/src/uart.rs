//! The 16550 UART at COM1 (0x3f8), and the kernel's `print!`/`println!`, which always write
//! here: kernel messages and panics need no set-up and cannot break.
//!
//! Output is polled. Every port access is a VM exit (~22k cycles on kvm_pvm), so we enable the
//! 16-byte FIFO and ask the line status register only once per 16 bytes: when it says the
//! transmitter is empty, the next 16 bytes fit without asking again.
//!
//! Program output and input go through console.rs, which picks the virtio console when there
//! is one; input, by interrupt, is the terminal's (tty.rs).

use core::fmt;

use x86_64::instructions::port::Port;

const COM1: u16 = abi::machine::port::COM1;
const FIFO_DEPTH: u32 = 16;
const LSR_THR_EMPTY: u8 = 1 << 5;
const LSR_DATA_READY: u8 = 1 << 0;

pub struct Serial {
    room: u32,
}

pub static UART: crate::sync::IrqLock<Serial> =
    crate::sync::IrqLock::new("uart", Serial { room: 0 });

impl Serial {
    /// 8N1, FIFO on, no UART interrupts yet (`enable_input` turns on the receive interrupt).
    pub fn init(&mut self) {
        // SAFETY: COM1's registers; writing them only configures the UART.
        unsafe {
            Port::<u8>::new(COM1 + 1).write(0x00); // IER: no interrupts
            Port::<u8>::new(COM1 + 3).write(0x03); // LCR: 8 bits, no parity, 1 stop bit
            Port::<u8>::new(COM1 + 2).write(0x07); // FCR: enable and clear both FIFOs
        }
        self.room = 0;
    }

    /// The receive interrupt: IER bit 0, and MCR's OUT2, which gates the UART's interrupt line
    /// on a PC (DTR and RTS on too, as drivers do).
    pub fn enable_rx_interrupt(&mut self) {
        // SAFETY: COM1's registers; this only changes which interrupts the UART raises.
        unsafe {
            Port::<u8>::new(COM1 + 4).write(0x0b);
            Port::<u8>::new(COM1 + 1).write(0x01);
        }
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

    /// Writes `bytes` as they are, with `rep outsb` in runs as long as the FIFO has room for:
    /// hardware KVM hands a string port write to the VMM as one exit, not one per byte
    /// (kvm_pvm still exits once a byte, as `vmm --stats` shows). No byte is
    /// looked at (no `\n` to `\r\n`): in emulated ring 0 that would cost instructions per
    /// byte, and the host terminal does it.
    pub fn write_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            self.wait_for_room();
            let n = bytes.len().min(self.room as usize);
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
    let _ = UART.lock().write_fmt(args);
    crate::klog::write(args);
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::uart::_print(format_args!($($arg)*)));
}

#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::uart::_print(format_args!("{}\n", format_args!($($arg)*))));
}
