//! The console: a 16550 UART at COM1 (0x3f8), and the `print!`/`println!` macros.
//!
//! Output is polled. Every port access is a VM exit (~22k cycles on kvm_pvm), so we enable the
//! 16-byte FIFO and ask the line status register only once per 16 bytes: when it says the
//! transmitter is empty, the next 16 bytes fit without asking again.
//!
//! When the command line announces a virtio console (virtio_console.rs), program output and
//! input go through it instead: one VM exit per write rather than one per byte. Kernel
//! messages and panics stay on the UART, which needs no set-up and cannot break.
//!
//! Input, by interrupt, is the terminal's: tty.rs, with the line discipline.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
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

// Console input is the terminal's (tty.rs); these are its entry points as sys/ and the trap
// handlers know them.
pub use crate::tty::{enable_input, read, readable, readable as poll_readable};

/// write(2) of `len` bytes at user address `buf` to the console. Through the UART a bad
/// buffer writes nothing; through virtio, nothing of a chain with a bad page is sent
/// (virtio_console.rs says what a long write does).
pub fn write_user(buf: u64, len: u64) -> crate::sys::SysResult {
    let pml4 = crate::percpu::current().pml4();
    if let Some(r) = crate::virtio_console::write_user(pml4, buf, len) {
        return r;
    }
    crate::uaccess::read_user_chunks::<256>(pml4, buf, len, |chunk| {
        CONSOLE.lock().write_bytes(chunk)
    })?;
    Ok(len)
}

/// Bytes of the kernel's own for the console's output stream (the terminal's echo,
/// sendfile): where program output goes, so that they stay in order with it.
pub fn write_kernel(bytes: &[u8]) {
    if !(crate::virtio_console::active() && crate::virtio_console::write_kernel(bytes)) {
        CONSOLE.lock().write_bytes(bytes);
    }
}

/// Whether the UART may hold input. With the virtio console in use the host sends there
/// only what came before our driver started, so once it reads empty we stop asking (each
/// question is a VM exit) until the next interrupt, which may be the UART's.
static UART_MAY_HAVE_INPUT: AtomicBool = AtomicBool::new(true);

/// Input bytes waiting in the UART, then in the virtio console's buffers; how many went to
/// `out`.
pub fn read_input(out: &mut [u8]) -> usize {
    let mut n = 0;
    let virtio = crate::virtio_console::active();
    if !virtio || UART_MAY_HAVE_INPUT.load(Relaxed) {
        let mut c = CONSOLE.lock();
        while n < out.len() {
            match c.try_read_byte() {
                Some(b) => out[n] = b,
                None => break,
            }
            n += 1;
        }
        if n < out.len() && virtio {
            UART_MAY_HAVE_INPUT.store(false, Relaxed);
        }
    }
    if n < out.len() && virtio {
        n += crate::virtio_console::read_input(&mut out[n..]);
    }
    n
}

/// The console's interrupt (the UART's or the virtio console's line: one vector).
pub fn interrupt() {
    UART_MAY_HAVE_INPUT.store(true, Relaxed);
    crate::virtio_console::take_interrupt();
    crate::tty::interrupt();
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
