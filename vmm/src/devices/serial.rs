//! COM1: a 16550 UART (vm-superio) at 0x3f8, IRQ 4. Output goes to stdout at the end of each
//! port exit (one write(2) for a whole `rep outsb` string, see `ConsoleOut`), so the console
//! shows what the guest printed even if the VM dies next. Its interrupt line is an
//! EventFd registered with KVM as an irqfd for GSI 4. The device sits behind a mutex because
//! two threads use it: the vCPU (guest port I/O) and the event loop, which feeds it stdin
//! (`console_input.rs`) and learns through `FifoDrained` when the guest has read it all.

use std::io::Write;
use std::sync::{Arc, Mutex};

use kvm_ioctls::VmFd;
use vm_superio::serial::SerialEvents;
use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use crate::error::{ioctl, Error, Result};

pub const COM1_BASE: u16 = abi::machine::port::COM1;
pub const COM1_LEN: u16 = 8;
pub const COM1_GSI: u32 = abi::machine::port::COM1_IRQ as u32;

/// The UART's interrupt output: a write to the EventFd raises GSI 4 inside KVM.
pub struct IrqLine(EventFd);

impl Trigger for IrqLine {
    type E = std::io::Error;
    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}

/// The console's output: what the guest sends reaches stdout by the end of the port exit that
/// sent it. vm-superio writes and flushes each byte on its own; while a string exit is fed in
/// (`hold`), its bytes gather here and `release` writes them with one write(2) (on hardware
/// KVM one `rep outsb` exit carries a whole string; kvm_pvm exits once per byte anyway).
pub struct ConsoleOut {
    sink: Box<dyn Write + Send>,
    pending: Vec<u8>,
    held: bool,
}

impl ConsoleOut {
    /// Output to the process's stdout.
    pub fn stdout() -> ConsoleOut {
        ConsoleOut::to(Box::new(RawStdout))
    }

    /// Output to `sink`, which sees one `write` call per flush.
    pub fn to(sink: Box<dyn Write + Send>) -> ConsoleOut {
        ConsoleOut {
            sink,
            pending: Vec::new(),
            held: false,
        }
    }

    /// Gathers what is written until `release`.
    pub fn hold(&mut self) {
        self.held = true;
    }

    /// Writes what was gathered since `hold`.
    pub fn release(&mut self) -> std::io::Result<()> {
        self.held = false;
        self.flush()
    }

    /// Writes `bytes` straight to the sink, after what is pending (so that the order stays):
    /// for output that comes whole (the virtio console's), without a copy into `pending`.
    pub fn write_through(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.flush()?;
        self.sink.write_all(bytes)?;
        self.sink.flush()
    }
}

impl Write for ConsoleOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.held || self.pending.is_empty() {
            return Ok(());
        }
        // Taken even if the write fails: lost output is reported once, never resent forever.
        let bytes = std::mem::take(&mut self.pending);
        self.sink.write_all(&bytes)?;
        self.sink.flush()
    }
}

/// fd 1 without Rust's line buffering, which would split a string at its last newline.
struct RawStdout;

impl Write for RawStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // SAFETY: `buf` is valid for `buf.len()` bytes for the whole call; fd 1 stays open for
        // the life of the process (main.rs opens /dev/null there if it was closed).
        let n = unsafe { libc::write(1, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Signals the event loop (an EventFd) when the guest has emptied the receive FIFO, so that
/// more stdin can be queued without polling.
pub struct FifoDrained(EventFd);

impl SerialEvents for FifoDrained {
    fn buffer_read(&self) {}
    fn out_byte(&self) {}
    fn tx_lost_byte(&self) {}
    fn in_buffer_empty(&self) {
        let _ = self.0.write(1);
    }
}

pub type SerialDevice = Serial<IrqLine, FifoDrained, ConsoleOut>;

/// COM1 as `create_com1` makes it.
pub struct Com1 {
    pub serial: Arc<Mutex<SerialDevice>>,
    /// What `FifoDrained` writes.
    pub fifo_drained: EventFd,
    /// The UART's interrupt line itself, for the console's other news (a new window size).
    pub irq: EventFd,
}

/// Creates COM1 and wires its interrupt to GSI 4 of the in-kernel irqchip.
pub fn create_com1(vm: &VmFd) -> Result<Com1> {
    let new_evt = || {
        EventFd::new(libc::EFD_NONBLOCK)
            .map_err(|e| Error::Internal(format!("serial eventfd: {e}")))
    };
    let irq = new_evt()?;
    vm.register_irqfd(&irq, COM1_GSI)
        .map_err(ioctl("KVM_IRQFD (serial)"))?;
    let drained = new_evt()?;
    let drained_clone = drained
        .try_clone()
        .map_err(|e| Error::Internal(format!("serial eventfd: {e}")))?;
    let irq_clone = irq
        .try_clone()
        .map_err(|e| Error::Internal(format!("serial eventfd: {e}")))?;
    let serial = Serial::with_events(
        IrqLine(irq),
        FifoDrained(drained_clone),
        ConsoleOut::stdout(),
    );
    Ok(Com1 {
        serial: Arc::new(Mutex::new(serial)),
        fifo_drained: drained,
        irq: irq_clone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records each write call it gets.
    struct Calls(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Calls {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_held_string_is_one_write_and_a_lone_byte_goes_at_once() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut out = ConsoleOut::to(Box::new(Calls(calls.clone())));
        out.hold();
        for b in b"hello\nworld" {
            out.write_all(&[*b]).unwrap();
            out.flush().unwrap(); // as vm-superio does after every byte
        }
        assert!(calls.lock().unwrap().is_empty());
        out.release().unwrap();
        out.write_all(b"!").unwrap();
        out.flush().unwrap();
        assert_eq!(
            *calls.lock().unwrap(),
            [b"hello\nworld".to_vec(), b"!".to_vec()]
        );
    }
}
