//! COM1: a 16550 UART (vm-superio) at 0x3f8, IRQ 4. Output goes to stdout, flushed at once so
//! the console shows what the guest printed even if the VM dies next. Its interrupt line is an
//! EventFd registered with KVM as an irqfd for GSI 4. The device sits behind a mutex so that a
//! stdin handler on the event-manager thread can feed it with `enqueue_raw_bytes` later.

use std::io::Write;
use std::sync::{Arc, Mutex};

use kvm_ioctls::VmFd;
use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use crate::error::{ioctl, Error, Result};

pub const COM1_BASE: u16 = 0x3f8;
pub const COM1_LEN: u16 = 8;
pub const COM1_GSI: u32 = 4;

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

pub type SerialDevice = Serial<IrqLine, vm_superio::serial::NoEvents, ConsoleOut>;

/// Creates COM1 and wires its interrupt to GSI 4 of the in-kernel irqchip.
pub fn create_com1(vm: &VmFd) -> Result<Arc<Mutex<SerialDevice>>> {
    let evt = EventFd::new(libc::EFD_NONBLOCK)
        .map_err(|e| Error::Internal(format!("serial eventfd: {e}")))?;
    vm.register_irqfd(&evt, COM1_GSI)
        .map_err(ioctl("KVM_IRQFD (serial)"))?;
    Ok(Arc::new(Mutex::new(Serial::new(IrqLine(evt), ConsoleOut))))
}
