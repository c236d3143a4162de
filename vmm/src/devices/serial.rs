//! COM1: a 16550 UART (vm-superio) at 0x3f8, IRQ 4. Output goes to stdout, flushed at once so
//! the console shows what the guest printed even if the VM dies next. Its interrupt line is an
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

/// Unbuffered stdout: every byte the guest sends reaches the terminal (or pipe) immediately.
pub struct ConsoleOut;

impl Write for ConsoleOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut out = std::io::stdout().lock();
        out.write_all(buf)?;
        out.flush()?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
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

/// Creates COM1 and wires its interrupt to GSI 4 of the in-kernel irqchip. Also returns the
/// EventFd that `FifoDrained` writes.
pub fn create_com1(vm: &VmFd) -> Result<(Arc<Mutex<SerialDevice>>, EventFd)> {
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
    let serial = Serial::with_events(IrqLine(irq), FifoDrained(drained_clone), ConsoleOut);
    Ok((Arc::new(Mutex::new(serial)), drained))
}
