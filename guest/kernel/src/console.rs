//! The console: a 16550 UART at COM1 (0x3f8), and the `print!`/`println!` macros.
//!
//! Output is polled. Every port access is a VM exit (~22k cycles on kvm_pvm), so we enable the
//! 16-byte FIFO and ask the line status register only once per 16 bytes: when it says the
//! transmitter is empty, the next 16 bytes fit without asking again.
//!
//! Input comes by interrupt: the UART raises IRQ 4 when bytes arrive (routed through the
//! IOAPIC, ioapic.rs), the handler moves them into a ring buffer, and readers blocked on an
//! empty console wake up. When the host's input has ended (our VMM's console-status port says
//! so, docs/conventions.md), reads past the last byte return 0: end-of-file.

use crate::sync::IrqLock;
use core::fmt;
use kcore::ring::Ring;
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
    fn enable_rx_interrupt(&mut self) {
        // SAFETY: COM1's registers; this only changes which interrupts the UART raises.
        unsafe {
            Port::<u8>::new(COM1 + 4).write(0x0b);
            Port::<u8>::new(COM1 + 1).write(0x01);
        }
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

/// Console input: what has arrived and not been read, who waits for it, whether more can come.
struct Input {
    ring: Option<Ring>,
    /// The host's input has ended (after the bytes in the ring).
    ended: bool,
    /// The wait queue of blocked readers (the scheduler's).
    queue: u32,
    /// Interrupts work (the IOAPIC is there): else reads poll.
    irq: bool,
    /// The ring filled up with bytes still in the UART: a read that makes room fetches them.
    stalled: bool,
}

static INPUT: IrqLock<Input> = IrqLock::new(
    "console input",
    Input {
        ring: None,
        ended: false,
        queue: u32::MAX,
        irq: false,
        stalled: false,
    },
);

const INPUT_SIZE: usize = 4096;

/// Sets up console input: its buffer, its wait queue, the UART's interrupt through the IOAPIC.
/// Without an IOAPIC (or out of memory, which cannot happen this early) reads poll instead.
pub fn enable_input() {
    let Some(ring) = Ring::try_new(INPUT_SIZE) else {
        return;
    };
    let Ok(queue) = crate::process::TASKS.lock().alloc_queue() else {
        return;
    };
    let irq = crate::ioapic::route(
        abi::machine::port::COM1_IRQ,
        crate::trap_frame::CONSOLE_VECTOR,
    );
    {
        let mut i = INPUT.lock();
        i.ring = Some(ring);
        i.queue = queue;
        i.irq = irq;
    }
    if irq {
        CONSOLE.lock().enable_rx_interrupt();
    }
    poll_input();
}

/// Whether the host says its input has ended (our VMM's status port; absent elsewhere, where
/// the port reads all ones and input never ends).
fn host_input_ended() -> bool {
    // SAFETY: reading the status port has no side effect (a VMM without it returns 0xff).
    let v = unsafe { Port::<u8>::new(abi::machine::port::CONSOLE_STATUS).read() };
    v != 0xff && v & abi::machine::console_status::INPUT_ENDED != 0
}

/// Moves what the UART has into the ring, as far as it has room: what does not fit stays in
/// the UART's FIFO (the VMM sends no more until it is drained), so no byte is lost to a slow
/// reader; `read` pulls the rest in as it makes room. Notes the end of the host's input, once
/// the UART is empty; wakes readers.
fn poll_input() {
    let mut i = INPUT.lock();
    let mut got = false;
    let mut stalled = false;
    {
        let mut c = CONSOLE.lock();
        loop {
            if i.ring.as_ref().is_some_and(|r| r.space() == 0) {
                stalled = true;
                break;
            }
            let Some(b) = c.try_read_byte() else { break };
            if let Some(r) = i.ring.as_mut() {
                r.write(&[b]);
            }
            got = true;
        }
    }
    i.stalled = stalled;
    if !i.ended && !stalled && host_input_ended() {
        // The status is set only after the last byte reached the UART: drain it once more.
        let mut c = CONSOLE.lock();
        loop {
            if i.ring.as_ref().is_some_and(|r| r.space() == 0) {
                i.stalled = true;
                break;
            }
            let Some(b) = c.try_read_byte() else { break };
            if let Some(r) = i.ring.as_mut() {
                r.write(&[b]);
            }
        }
        i.ended = !i.stalled;
        got = true;
    }
    if got && i.queue != u32::MAX {
        let mut t = crate::process::TASKS.lock();
        crate::scheduler::wake_all(&mut t, i.queue);
        crate::sys::poll::wake_pollers(&mut t);
    }
}

/// The UART's interrupt.
pub fn interrupt() {
    poll_input();
}

/// Bytes waiting to be read.
pub fn available() -> usize {
    if !INPUT.lock().irq {
        poll_input();
    }
    INPUT.lock().ring.as_ref().map_or(0, |r| r.len())
}

/// poll's view of the console: input to read (or its end: a read would return at once)?
pub fn poll_readable() -> bool {
    if !INPUT.lock().irq {
        poll_input();
    }
    let i = INPUT.lock();
    i.ring.as_ref().is_some_and(|r| !r.is_empty()) || i.ended || i.ring.is_none() || !i.irq
}

/// read(2) of the console: what has arrived, or wait for some; 0 once the host's input ended.
pub fn read(
    f: &mut crate::trap_frame::TrapFrame,
    buf: u64,
    count: u64,
    nonblock: bool,
) -> crate::sys::SysResult {
    let pml4 = crate::percpu::current().pml4();
    // The whole buffer must be writable user memory, even if less arrives (as on Linux).
    crate::uaccess::check(pml4, buf, count, true)?;
    if count == 0 {
        return Ok(0);
    }
    if !INPUT.lock().irq {
        poll_input();
    }
    let mut i = INPUT.lock();
    if let Some(r) = i.ring.as_mut().filter(|r| !r.is_empty()) {
        let mut tmp = [0u8; 256];
        let n = r.read(&mut tmp[..(count as usize).min(256)]);
        let stalled = i.stalled;
        drop(i);
        if stalled {
            poll_input();
        }
        crate::uaccess::copy_to_user(pml4, buf, &tmp[..n])?;
        return Ok(n as u64);
    }
    if i.ended || i.ring.is_none() || !i.irq {
        // End of input; or no way to wait for more (no IOAPIC): nothing now is end-of-file.
        return Ok(0);
    }
    if nonblock {
        return Err(abi::Errno::EAGAIN);
    }
    let q = i.queue;
    drop(i);
    crate::scheduler::wait_in(
        crate::process::TASKS.lock(),
        f,
        q,
        crate::signal::RESTART_SYSCALL,
    );
    Ok(f.rax)
}

/// write(2) of `len` bytes at user address `buf` to the console; a bad buffer writes nothing.
pub fn write_user(buf: u64, len: u64) -> crate::sys::SysResult {
    let pml4 = crate::percpu::current().pml4();
    crate::uaccess::read_user_chunks::<256>(pml4, buf, len, |chunk| {
        CONSOLE.lock().write_bytes(chunk)
    })?;
    Ok(len)
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
