//! Port I/O and MMIO dispatch: which device a VM exit's address belongs to (the one MMIO
//! device is the virtio console's window). Accesses to no device are counted and logged at
//! debug level; reads of them return all-ones, as an empty ISA bus does, and the guest goes on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use log::{debug, warn};

use super::bench_port::BENCH_PORT;
use super::console_status::ConsoleStatus;
use super::entropy_port::{self, ENTROPY_PORT};
use super::exit_port::{self, EXIT_PORT};
use super::rtc_cmos::RtcCmos;
use super::serial::{SerialDevice, COM1_BASE, COM1_LEN};
use super::virtio_console::VirtioConsole;
use crate::trace_json::TraceSink;

/// What a guest write asked the VMM to do beyond the device's own effect.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteEffect {
    None,
    /// The guest wrote to the exit port: power off with this status.
    PowerOff(u8),
}

pub struct IoBus {
    serial: Arc<Mutex<SerialDevice>>,
    console: Arc<ConsoleStatus>,
    /// Accesses that hit no device, for the debug log and a summary at exit.
    pub unhandled_pio: AtomicU64,
    pub unhandled_mmio: AtomicU64,
    /// `--trace`: where the kernel's event records go.
    pub trace: Option<Arc<TraceSink>>,
    /// The virtio console (absent with `--no-virtio-console`).
    pub virtio: Option<Arc<Mutex<VirtioConsole>>>,
    /// Set after the first failed console write (say, stdout closed): warn once, not per byte.
    console_broken: AtomicBool,
    /// The date, for the kernel at boot.
    rtc: RtcCmos,
}

impl IoBus {
    pub fn new(serial: Arc<Mutex<SerialDevice>>, console: Arc<ConsoleStatus>) -> IoBus {
        IoBus {
            serial,
            console,
            trace: None,
            virtio: None,
            unhandled_pio: AtomicU64::new(0),
            unhandled_mmio: AtomicU64::new(0),
            console_broken: AtomicBool::new(false),
            rtc: RtcCmos::default(),
        }
    }

    fn com1_offset(port: u16) -> Option<u8> {
        port.checked_sub(COM1_BASE)
            .filter(|&o| o < COM1_LEN)
            .map(|o| o as u8)
    }

    pub fn pio_read(&self, port: u16, data: &mut [u8]) {
        if port == BENCH_PORT {
            data.fill(0);
            return;
        }
        if port == abi::machine::port::CONSOLE_STATUS {
            data.fill(self.console.status());
            return;
        }
        if port == abi::machine::port::CONSOLE_WINSIZE {
            let v = self.console.read_winsize().to_le_bytes();
            for (i, b) in data.iter_mut().enumerate() {
                *b = v[i % 4];
            }
            return;
        }
        if let Some(off) = Self::com1_offset(port) {
            // `data` holds size * count bytes: `rep insb` reads the register count times.
            let mut serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
            for b in data.iter_mut() {
                *b = serial.read(off);
            }
            return;
        }
        if port == ENTROPY_PORT {
            return entropy_port::read(data);
        }
        if port == abi::rtc::DATA_PORT {
            data.fill(self.rtc.read_data());
            return;
        }
        self.unhandled_pio.fetch_add(1, Ordering::Relaxed);
        debug!("unhandled port read {port:#x} ({} bytes)", data.len());
        data.fill(0xff);
    }

    pub fn pio_write(&self, port: u16, data: &[u8]) -> WriteEffect {
        if port == BENCH_PORT {
            return WriteEffect::None; // the null device: the exit round trip is the point
        }
        if port == abi::rtc::INDEX_PORT {
            if let Some(&v) = data.last() {
                self.rtc.write_index(v);
            }
            return WriteEffect::None;
        }
        if port == abi::rtc::DATA_PORT {
            return WriteEffect::None; // the guest does not set the host's clock
        }
        if port == EXIT_PORT {
            if let Some(t) = &self.trace {
                t.power_off();
            }
            return WriteEffect::PowerOff(exit_port::exit_status(data));
        }
        if port == abi::machine::port::TRACE_BUFFER || port == abi::machine::port::TRACE_FLUSH {
            // Without --trace the kernel was not asked to trace: anything here is dropped.
            if let Some(t) = &self.trace {
                if port == abi::machine::port::TRACE_BUFFER {
                    t.set_buffer(data);
                } else {
                    t.flush();
                }
            }
            return WriteEffect::None;
        }
        if let Some(off) = Self::com1_offset(port) {
            // `data` holds size * count bytes: on hardware KVM `rep outsb` sends a whole string
            // in one exit, which reaches stdout with one write(2) (kvm_pvm exits once a byte).
            let mut serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
            serial.writer_mut().hold();
            let mut failed = None;
            for &b in data {
                if let Err(e) = serial.write(off, b) {
                    failed = Some(format!("{e:?}"));
                }
            }
            if let Err(e) = serial.writer_mut().release() {
                failed = Some(e.to_string());
            }
            // Lost console output is worth a warning, not the guest's life.
            if let Some(e) = failed {
                if !self.console_broken.swap(true, Ordering::Relaxed) {
                    warn!("serial output lost (further failures not reported): {e}");
                }
            }
            return WriteEffect::None;
        }
        self.unhandled_pio.fetch_add(1, Ordering::Relaxed);
        debug!("unhandled port write {port:#x} <- {data:02x?}");
        WriteEffect::None
    }

    /// The virtio console and the offset in its window, if `addr` is in it.
    fn virtio_at(&self, addr: u64) -> Option<(&Mutex<VirtioConsole>, u64)> {
        let offset = addr.checked_sub(abi::virtio::CONSOLE_MMIO_BASE)?;
        let device = self.virtio.as_deref()?;
        (offset < abi::virtio::CONSOLE_MMIO_SIZE).then_some((device, offset))
    }

    pub fn mmio_read(&self, addr: u64, data: &mut [u8]) {
        if let Some((device, offset)) = self.virtio_at(addr) {
            let device = device.lock().unwrap_or_else(|e| e.into_inner());
            return device.mmio_read(offset, data);
        }
        self.unhandled_mmio.fetch_add(1, Ordering::Relaxed);
        debug!("unhandled MMIO read {addr:#x} ({} bytes)", data.len());
        data.fill(0xff);
    }

    pub fn mmio_write(&self, addr: u64, data: &[u8]) -> WriteEffect {
        if let Some((device, offset)) = self.virtio_at(addr) {
            let mut device = device.lock().unwrap_or_else(|e| e.into_inner());
            device.mmio_write(offset, data);
            return WriteEffect::None;
        }
        self.unhandled_mmio.fetch_add(1, Ordering::Relaxed);
        debug!("unhandled MMIO write {addr:#x} <- {data:02x?}");
        WriteEffect::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{serial, virtio_console};

    /// The virtio console's window, and only it, reaches the device (needs /dev/kvm for the
    /// irqfds; skipped without it).
    #[test]
    fn the_virtio_window_is_routed_and_its_neighbours_are_not() {
        let Ok(vm) = crate::vm::Vm::new(16) else {
            eprintln!("no usable /dev/kvm: skipped");
            return;
        };
        let com1 = serial::create_com1(&vm.fd).unwrap();
        let console = Arc::new(ConsoleStatus::new(false, 0));
        let v = virtio_console::create(&vm.fd, vm.memory.clone(), com1.serial.clone(), 0).unwrap();
        let mut io = IoBus::new(com1.serial, console);
        io.virtio = Some(v.device);
        let base = abi::virtio::CONSOLE_MMIO_BASE;
        let read = |addr: u64| {
            let mut d = [0u8; 4];
            io.mmio_read(addr, &mut d);
            u32::from_le_bytes(d)
        };
        assert_eq!(read(base), abi::virtio::mmio::MAGIC);
        assert_eq!(read(base + abi::virtio::mmio::DEVICE_ID), 3);
        assert_eq!(read(base + abi::virtio::CONSOLE_MMIO_SIZE), u32::MAX);
        assert_eq!(read(base - 4), u32::MAX);
        assert_eq!(io.unhandled_mmio.load(Ordering::Relaxed), 2);
        let w = io.mmio_write(base + abi::virtio::mmio::STATUS, &1u32.to_le_bytes());
        assert_eq!(w, WriteEffect::None);
        assert_eq!(read(base + abi::virtio::mmio::STATUS), 1);
    }
}
