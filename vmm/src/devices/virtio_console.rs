//! The virtio console (virtio 1.2 section 5.3; contract in `abi::virtio`) on the MMIO transport
//! of virtio_mmio.rs: 4 KiB at 0xd000_0000, GSI 5 (an irqfd), one port, no multiport.
//!
//! Transmit (queue 1): a QueueNotify is served on the vCPU exit that made it: every available
//! chain's device-readable bytes go to COM1's `ConsoleOut` in one write(2), so UART and virtio
//! output stay in order, and the chains are used with length 0; the used-buffer interrupt only
//! if the driver did not suppress it. Receive (queue 0): the event loop hands stdin over with
//! `receive`, which fills the buffers the driver posted; a notify of queue 0 (buffers posted)
//! wakes the event loop through `rx_kick`. The window size is the configuration space (cols,
//! rows) with a generation bump and a config-change interrupt when it changes.
//!
//! The device sits behind a mutex (the vCPU thread and the event loop both use it). Lock order:
//! this device, then COM1's.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use abi::virtio::{console, feature, mmio, CONSOLE_IRQ};
use kvm_ioctls::VmFd;
use log::{debug, warn};
use virtio_queue::QueueT;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::serial::SerialDevice;
use super::virtio_mmio::{needs_interrupt, next_chain, Buffer, MmioTransport, QueueError, Written};
use crate::error::{ioctl, Error, Result};

const RX: u32 = console::RECEIVE_QUEUE;
const TX: u32 = console::TRANSMIT_QUEUE;
/// Configuration space: cols u16, rows u16, max_nr_ports u32, emerg_wr u32 (5.3.4).
const CONFIG_LEN: usize = 12;
const CONFIG_EMERG_WR: u64 = 8;
/// Transmitted bytes gather up to this much before a write: a hostile chain of RAM-sized
/// buffers must not become a RAM-sized copy.
const GATHER_MAX: usize = 64 * 1024;

/// Where the console's output goes: COM1's `ConsoleOut` in the VMM, a recorder in tests.
pub trait ConsoleSink: Send {
    /// Writes `bytes` at once (one write(2) if it can).
    fn write_out(&mut self, bytes: &[u8]) -> std::io::Result<()>;
}

impl ConsoleSink for Arc<Mutex<SerialDevice>> {
    fn write_out(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut serial = self.lock().unwrap_or_else(|e| e.into_inner());
        serial.writer_mut().write_through(bytes)
    }
}

/// Where stdin goes (console_input.rs asks before each delivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputRoute {
    /// COM1: no virtio driver is live (none yet, or it reset the device).
    Uart,
    /// The virtio receive queue: the driver set DRIVER_OK with queue 0 ready. Input waits in
    /// the event loop while no buffer is posted or the device needs a reset.
    Virtio,
}

pub struct VirtioConsole {
    transport: MmioTransport,
    mem: GuestMemoryMmap,
    out: Box<dyn ConsoleSink>,
    /// rows | cols << 16, as `ConsoleStatus` keeps it; a snapshot, so that the generation
    /// changes with it under this device's lock.
    winsize: u32,
    /// Written when input may flow anew: buffers posted on queue 0, DRIVER_OK, a reset.
    rx_kick: EventFd,
    /// Reused for each notify's bytes and each chain's buffers.
    gathered: Vec<u8>,
    chain: Vec<Buffer>,
    out_broken: bool,
}

/// The console as `create` makes it.
pub struct VirtioConsoleParts {
    pub device: Arc<Mutex<VirtioConsole>>,
    /// What the device writes when the event loop should deliver input again.
    pub rx_kick: EventFd,
}

/// Creates the console with its interrupt wired to GSI 5 of the in-kernel irqchip and its
/// output to COM1's.
pub fn create(
    vm: &VmFd,
    mem: GuestMemoryMmap,
    serial: Arc<Mutex<SerialDevice>>,
    winsize: u32,
) -> Result<VirtioConsoleParts> {
    let internal = |e: std::io::Error| Error::Internal(format!("virtio-console eventfd: {e}"));
    let irq = EventFd::new(libc::EFD_NONBLOCK).map_err(internal)?;
    vm.register_irqfd(&irq, u32::from(CONSOLE_IRQ))
        .map_err(ioctl("KVM_IRQFD (virtio-console)"))?;
    let rx_kick = EventFd::new(libc::EFD_NONBLOCK).map_err(internal)?;
    let device = VirtioConsole::new(
        mem,
        Box::new(serial),
        irq,
        rx_kick.try_clone().map_err(internal)?,
        winsize,
    );
    Ok(VirtioConsoleParts {
        device: Arc::new(Mutex::new(device)),
        rx_kick,
    })
}

impl VirtioConsole {
    pub fn new(
        mem: GuestMemoryMmap,
        out: Box<dyn ConsoleSink>,
        irq: EventFd,
        rx_kick: EventFd,
        winsize: u32,
    ) -> VirtioConsole {
        VirtioConsole {
            transport: MmioTransport::new(
                "virtio-console",
                console::DEVICE_ID,
                1 << feature::CONSOLE_SIZE,
                2,
                irq,
            ),
            mem,
            out,
            winsize,
            rx_kick,
            gathered: Vec::new(),
            chain: Vec::new(),
            out_broken: false,
        }
    }

    pub fn transport(&self) -> &MmioTransport {
        &self.transport
    }

    fn config(&self) -> [u8; CONFIG_LEN] {
        let mut c = [0u8; CONFIG_LEN];
        let cols = (self.winsize >> 16) as u16;
        let rows = self.winsize as u16;
        c[console::CONFIG_COLS as usize..][..2].copy_from_slice(&cols.to_le_bytes());
        c[console::CONFIG_ROWS as usize..][..2].copy_from_slice(&rows.to_le_bytes());
        // max_nr_ports: meaningful only with MULTIPORT, which we do not offer; one port.
        c[4..8].copy_from_slice(&1u32.to_le_bytes());
        c
    }

    /// A guest read at `offset` in the window.
    pub fn mmio_read(&self, offset: u64, data: &mut [u8]) {
        self.transport.read(offset, data, &self.config());
    }

    /// A guest write at `offset` in the window.
    pub fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        match self.transport.write(offset, data, &self.mem) {
            Written::Notify(TX) => self.transmit(),
            Written::Notify(RX) | Written::DriverOk | Written::Reset => self.kick(),
            Written::Notify(q) => debug!("virtio-console: notify of absent queue {q} ignored"),
            Written::Config(CONFIG_EMERG_WR) if !data.is_empty() => {
                // The emergency write is one character, the word's low byte (5.3.4).
                self.gathered.push(data[0]);
                Self::put_gathered(&mut *self.out, &mut self.gathered, &mut self.out_broken);
            }
            Written::Config(off) => {
                debug!("virtio-console: write of config byte {off:#x} ignored (read-only)")
            }
            Written::Nothing => {}
        }
    }

    fn kick(&self) {
        let _ = self.rx_kick.write(1);
    }

    /// Writes what was gathered and empties the buffer for more; the first failure is
    /// reported, the others not. Fields, not `self`, so that it can run while a queue of the
    /// transport is borrowed.
    fn put_gathered(out: &mut dyn ConsoleSink, gathered: &mut Vec<u8>, broken: &mut bool) {
        if gathered.is_empty() {
            return;
        }
        if let Err(e) = out.write_out(gathered) {
            if !std::mem::replace(broken, true) {
                warn!("virtio-console output lost (further failures not reported): {e}");
            }
        }
        gathered.clear();
    }

    /// Serves the transmit queue: every chain available now, as one write.
    fn transmit(&mut self) {
        if !self.transport.usable(TX) {
            return;
        }
        let served = self.serve_transmit();
        // What was gathered before a broken chain is still the guest's output.
        Self::put_gathered(&mut *self.out, &mut self.gathered, &mut self.out_broken);
        self.finish(TX, served);
    }

    fn serve_transmit(&mut self) -> std::result::Result<bool, QueueError> {
        let mut used = false;
        let queue = self.transport.queue_mut(TX);
        while let Some(head) = next_chain(queue, &self.mem, &mut self.chain)? {
            for b in self.chain.iter().filter(|b| !b.writable) {
                let mut done = 0usize;
                while done < b.len as usize {
                    if self.gathered.len() >= GATHER_MAX {
                        Self::put_gathered(
                            &mut *self.out,
                            &mut self.gathered,
                            &mut self.out_broken,
                        );
                    }
                    let n = (b.len as usize - done).min(GATHER_MAX);
                    let start = self.gathered.len();
                    self.gathered.resize(start + n, 0);
                    self.mem.read_slice(
                        &mut self.gathered[start..],
                        GuestAddress(b.addr.0 + done as u64),
                    )?;
                    done += n;
                }
            }
            // The driver learns nothing from a transmit buffer's length (5.3.6.2).
            queue.add_used(&self.mem, head, 0)?;
            used = true;
        }
        Ok(used)
    }

    /// After serving queue `q`: the interrupt the driver asked for, or the queue broken.
    fn finish(&mut self, q: u32, served: std::result::Result<bool, QueueError>) {
        let wanted = served
            .and_then(|used| Ok(used && needs_interrupt(self.transport.queue_mut(q), &self.mem)?));
        match wanted {
            Ok(true) => self.transport.interrupt(mmio::INT_USED_BUFFER),
            Ok(false) => {}
            Err(e) => self.transport.fail(q, &e),
        }
    }

    /// Where stdin goes now.
    pub fn input_route(&self) -> InputRoute {
        if self.transport.driver_ok() && self.transport.queue_ready(RX) {
            InputRoute::Virtio
        } else {
            InputRoute::Uart
        }
    }

    /// Moves what fits of `pending` into the receive buffers the driver posted; the number of
    /// bytes moved. The rest waits for the next notify of queue 0.
    pub fn receive(&mut self, pending: &mut VecDeque<u8>) -> usize {
        if pending.is_empty() || !self.transport.usable(RX) {
            return 0;
        }
        let mut moved = 0;
        let served = self.serve_receive(pending, &mut moved);
        self.finish(RX, served);
        moved
    }

    fn serve_receive(
        &mut self,
        pending: &mut VecDeque<u8>,
        moved: &mut usize,
    ) -> std::result::Result<bool, QueueError> {
        let mut used = false;
        let queue = self.transport.queue_mut(RX);
        while !pending.is_empty() {
            let Some(head) = next_chain(queue, &self.mem, &mut self.chain)? else {
                break;
            };
            let mut len = 0u32;
            for b in self.chain.iter().filter(|b| b.writable) {
                let n = (b.len as usize).min(pending.len());
                // Written, then taken: bytes leave `pending` only once they are in the guest.
                self.mem
                    .write_slice(&pending.make_contiguous()[..n], b.addr)?;
                pending.drain(..n);
                len += n as u32;
                if pending.is_empty() {
                    break;
                }
            }
            queue.add_used(&self.mem, head, len)?;
            *moved += len as usize;
            used = true;
        }
        Ok(used)
    }

    /// A new window size (rows | cols << 16).
    pub fn set_winsize(&mut self, winsize: u32) {
        if winsize != self.winsize {
            self.winsize = winsize;
            self.transport.config_changed();
        }
    }

    /// The host's input has ended and every byte of it is in the guest's buffers: a reader
    /// waiting on the receive queue is woken to look at the console-status port.
    pub fn input_ended(&mut self) {
        if self.input_route() == InputRoute::Virtio && !self.transport.needs_reset() {
            self.transport.interrupt(mmio::INT_USED_BUFFER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::virtio::{ring, status};

    use crate::devices::virtio_mmio::QUEUE_SIZE_MAX;

    const RAM: u64 = 1 << 20;
    /// The rings' size in these tests.
    const N: u16 = 8;

    /// Records each write it gets.
    struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

    impl ConsoleSink for Recorder {
        fn write_out(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            self.0.lock().unwrap().push(bytes.to_vec());
            Ok(())
        }
    }

    /// The device and a driver's side of it: rings laid out by hand in a 1 MiB guest.
    struct Rig {
        dev: VirtioConsole,
        mem: GuestMemoryMmap,
        irq: EventFd,
        kick: EventFd,
        out: Arc<Mutex<Vec<Vec<u8>>>>,
        /// The driver's next available index, per queue.
        avail: [u16; 2],
    }

    /// Queue q's descriptor table, available ring and used ring.
    fn rings(q: u32) -> (u64, u64, u64) {
        let base = 0x1000 * (u64::from(q) + 1);
        (base, base + 0x100, base + 0x200)
    }

    fn count(e: &EventFd) -> u64 {
        e.read().unwrap_or(0)
    }

    impl Rig {
        fn new() -> Rig {
            let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap();
            let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
            let kick = EventFd::new(libc::EFD_NONBLOCK).unwrap();
            let out = Arc::new(Mutex::new(Vec::new()));
            let dev = VirtioConsole::new(
                mem.clone(),
                Box::new(Recorder(out.clone())),
                irq.try_clone().unwrap(),
                kick.try_clone().unwrap(),
                24 | 80 << 16,
            );
            Rig {
                dev,
                mem,
                irq,
                kick,
                out,
                avail: [0; 2],
            }
        }

        fn r32(&self, off: u64) -> u32 {
            let mut d = [0u8; 4];
            self.dev.mmio_read(off, &mut d);
            u32::from_le_bytes(d)
        }

        fn w32(&mut self, off: u64, v: u32) {
            self.dev.mmio_write(off, &v.to_le_bytes());
        }

        fn features(&mut self, f: u64) -> u32 {
            self.w32(mmio::STATUS, status::ACKNOWLEDGE | status::DRIVER);
            self.w32(mmio::DRIVER_FEATURES_SEL, 0);
            self.w32(mmio::DRIVER_FEATURES, f as u32);
            self.w32(mmio::DRIVER_FEATURES_SEL, 1);
            self.w32(mmio::DRIVER_FEATURES, (f >> 32) as u32);
            self.w32(
                mmio::STATUS,
                status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
            );
            self.r32(mmio::STATUS)
        }

        fn setup_queue(&mut self, q: u32, (desc, driver, device): (u64, u64, u64), num: u32) {
            self.w32(mmio::QUEUE_SEL, q);
            self.w32(mmio::QUEUE_NUM, num);
            self.w32(mmio::QUEUE_DESC_LOW, desc as u32);
            self.w32(mmio::QUEUE_DESC_HIGH, (desc >> 32) as u32);
            self.w32(mmio::QUEUE_DRIVER_LOW, driver as u32);
            self.w32(mmio::QUEUE_DRIVER_HIGH, (driver >> 32) as u32);
            self.w32(mmio::QUEUE_DEVICE_LOW, device as u32);
            self.w32(mmio::QUEUE_DEVICE_HIGH, (device >> 32) as u32);
            self.w32(mmio::QUEUE_READY, 1);
        }

        fn driver_ok(&mut self) {
            self.w32(
                mmio::STATUS,
                status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK,
            );
        }

        /// The whole bring-up, as Linux's driver does it.
        fn init(&mut self) {
            let st = self.features(1 << feature::VERSION_1 | 1 << feature::CONSOLE_SIZE);
            assert_ne!(st & status::FEATURES_OK, 0);
            self.setup_queue(RX, rings(RX), u32::from(N));
            self.setup_queue(TX, rings(TX), u32::from(N));
            self.driver_ok();
            assert_eq!(
                self.r32(mmio::STATUS) & status::DRIVER_OK,
                status::DRIVER_OK
            );
            self.avail = [0; 2];
            count(&self.irq);
            count(&self.kick);
        }

        fn desc(&self, q: u32, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
            let a = rings(q).0 + u64::from(i) * 16;
            self.mem.write_obj(addr, GuestAddress(a)).unwrap();
            self.mem.write_obj(len, GuestAddress(a + 8)).unwrap();
            self.mem.write_obj(flags, GuestAddress(a + 12)).unwrap();
            self.mem.write_obj(next, GuestAddress(a + 14)).unwrap();
        }

        /// Makes the chain at `head` available (without a notify).
        fn offer(&mut self, q: u32, head: u16) {
            let avail = rings(q).1;
            let idx = self.avail[q as usize];
            let slot = avail + 4 + 2 * u64::from(idx % N);
            self.mem.write_obj(head, GuestAddress(slot)).unwrap();
            self.avail[q as usize] = idx.wrapping_add(1);
            self.set_avail_idx(q, idx.wrapping_add(1));
        }

        fn set_avail_idx(&self, q: u32, idx: u16) {
            self.mem
                .write_obj(idx, GuestAddress(rings(q).1 + 2))
                .unwrap();
        }

        fn set_avail_flags(&self, q: u32, flags: u16) {
            self.mem.write_obj(flags, GuestAddress(rings(q).1)).unwrap();
        }

        fn used_idx(&self, q: u32) -> u16 {
            self.mem.read_obj(GuestAddress(rings(q).2 + 2)).unwrap()
        }

        /// The used ring's entry `i`: (id, len).
        fn used(&self, q: u32, i: u16) -> (u32, u32) {
            let e = rings(q).2 + 4 + 8 * u64::from(i % N);
            (
                self.mem.read_obj(GuestAddress(e)).unwrap(),
                self.mem.read_obj(GuestAddress(e + 4)).unwrap(),
            )
        }

        fn text(&self, addr: u64, len: usize) -> Vec<u8> {
            let mut v = vec![0; len];
            self.mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
            v
        }

        fn put(&self, addr: u64, bytes: &[u8]) {
            self.mem.write_slice(bytes, GuestAddress(addr)).unwrap();
        }

        fn writes(&self) -> Vec<Vec<u8>> {
            self.out.lock().unwrap().clone()
        }

        fn broken(&self) -> Option<QueueError> {
            let t = self.dev.transport();
            assert_ne!(t.status() & status::DEVICE_NEEDS_RESET, 0, "not broken");
            assert_ne!(t.interrupt_status() & mmio::INT_CONFIG_CHANGE, 0);
            t.last_break.clone().map(|(_, e)| e)
        }
    }

    const DATA: u64 = 0x8_0000;

    #[test]
    fn transmitted_chains_arrive_in_order_in_one_write() {
        let mut r = Rig::new();
        r.init();
        r.put(DATA, b"hello, ");
        r.put(DATA + 0x100, b"virtio");
        r.put(DATA + 0x200, b"XXXX");
        r.put(DATA + 0x300, b" world\n");
        // Two buffers in one chain, a device-writable one skipped, a third chain.
        r.desc(TX, 0, DATA, 7, ring::DESC_F_NEXT, 1);
        r.desc(TX, 1, DATA + 0x100, 6, 0, 0);
        r.desc(
            TX,
            2,
            DATA + 0x200,
            4,
            ring::DESC_F_WRITE | ring::DESC_F_NEXT,
            3,
        );
        r.desc(TX, 3, DATA + 0x300, 7, 0, 0);
        r.offer(TX, 0);
        r.offer(TX, 2);
        r.w32(mmio::QUEUE_NOTIFY, TX);
        assert_eq!(r.writes(), [b"hello, virtio world\n".to_vec()]);
        assert_eq!(r.used_idx(TX), 2);
        assert_eq!(r.used(TX, 0), (0, 0));
        assert_eq!(r.used(TX, 1), (2, 0));
        assert_eq!(count(&r.irq), 1);
        assert_eq!(r.r32(mmio::INTERRUPT_STATUS), mmio::INT_USED_BUFFER);
        r.w32(mmio::INTERRUPT_ACK, mmio::INT_USED_BUFFER);
        assert_eq!(r.r32(mmio::INTERRUPT_STATUS), 0);

        // A driver that polls the used ring asks for no interrupt: none comes.
        r.set_avail_flags(TX, ring::AVAIL_F_NO_INTERRUPT);
        r.desc(TX, 4, DATA, 5, 0, 0);
        r.offer(TX, 4);
        r.w32(mmio::QUEUE_NOTIFY, TX);
        assert_eq!(r.writes().last().unwrap(), b"hello");
        assert_eq!(r.used_idx(TX), 3);
        assert_eq!(count(&r.irq), 0);
        assert_eq!(r.r32(mmio::INTERRUPT_STATUS), 0);
        // A notify with nothing new writes nothing.
        r.w32(mmio::QUEUE_NOTIFY, TX);
        assert_eq!(r.writes().len(), 2);
        assert!(r.dev.transport().last_break.is_none());
    }

    #[test]
    fn the_emergency_write_is_output_too() {
        let mut r = Rig::new();
        r.init();
        r.w32(mmio::CONFIG + CONFIG_EMERG_WR, u32::from(b'!'));
        assert_eq!(r.writes(), [b"!".to_vec()]);
    }

    #[test]
    fn received_bytes_fill_posted_buffers_and_the_rest_waits() {
        let mut r = Rig::new();
        assert_eq!(r.dev.input_route(), InputRoute::Uart);
        r.init();
        assert_eq!(r.dev.input_route(), InputRoute::Virtio);
        // No buffer yet: everything waits.
        let mut pending: VecDeque<u8> = b"abcdefghij".iter().copied().collect();
        assert_eq!(r.dev.receive(&mut pending), 0);
        assert_eq!(pending.len(), 10);

        r.desc(RX, 0, DATA, 4, ring::DESC_F_WRITE, 0);
        // A chain of two buffers.
        r.desc(
            RX,
            1,
            DATA + 0x100,
            2,
            ring::DESC_F_WRITE | ring::DESC_F_NEXT,
            2,
        );
        r.desc(RX, 2, DATA + 0x200, 2, ring::DESC_F_WRITE, 0);
        r.offer(RX, 0);
        r.offer(RX, 1);
        r.w32(mmio::QUEUE_NOTIFY, RX);
        assert_eq!(count(&r.kick), 1, "posting buffers wakes the event loop");
        assert_eq!(r.dev.receive(&mut pending), 8);
        assert_eq!(r.text(DATA, 4), b"abcd");
        assert_eq!(r.text(DATA + 0x100, 2), b"ef");
        assert_eq!(r.text(DATA + 0x200, 2), b"gh");
        assert_eq!(r.used_idx(RX), 2);
        assert_eq!(r.used(RX, 0), (0, 4));
        assert_eq!(r.used(RX, 1), (1, 4));
        assert_eq!(count(&r.irq), 1);
        assert_eq!(pending, b"ij");

        // The driver re-posts a buffer larger than what is left: the used length says how
        // much is in it.
        r.desc(RX, 3, DATA + 0x300, 16, ring::DESC_F_WRITE, 0);
        r.offer(RX, 3);
        assert_eq!(r.dev.receive(&mut pending), 2);
        assert_eq!(r.used(RX, 2), (3, 2));
        assert_eq!(r.text(DATA + 0x300, 2), b"ij");
        assert!(pending.is_empty());

        // After a reset, input goes back to the UART.
        r.w32(mmio::STATUS, 0);
        assert_eq!(r.dev.input_route(), InputRoute::Uart);
    }

    #[test]
    fn config_space_has_the_window_size_and_a_generation() {
        let mut r = Rig::new();
        r.init();
        assert_eq!(r.r32(mmio::CONFIG), 80 | 24 << 16);
        let mut two = [0u8; 2];
        r.dev
            .mmio_read(mmio::CONFIG + console::CONFIG_ROWS, &mut two);
        assert_eq!(u16::from_le_bytes(two), 24);
        let mut one = [0u8; 1];
        r.dev
            .mmio_read(mmio::CONFIG + console::CONFIG_COLS, &mut one);
        assert_eq!(one[0], 80);
        assert_eq!(r.r32(mmio::CONFIG + 4), 1, "max_nr_ports");
        assert_eq!(r.r32(mmio::CONFIG + 0x40), 0, "past the config space");

        let generation = r.r32(mmio::CONFIG_GENERATION);
        r.dev.set_winsize(24 | 80 << 16);
        assert_eq!(
            r.r32(mmio::CONFIG_GENERATION),
            generation,
            "no change, no bump"
        );
        assert_eq!(count(&r.irq), 0);
        r.dev.set_winsize(50 | 132 << 16);
        assert_ne!(r.r32(mmio::CONFIG_GENERATION), generation);
        assert_eq!(r.r32(mmio::CONFIG), 132 | 50 << 16);
        assert_eq!(count(&r.irq), 1);
        assert_eq!(r.r32(mmio::INTERRUPT_STATUS), mmio::INT_CONFIG_CHANGE);
    }

    #[test]
    fn the_identity_registers_and_unknown_ones() {
        let mut r = Rig::new();
        assert_eq!(r.r32(mmio::MAGIC_VALUE), mmio::MAGIC);
        assert_eq!(r.r32(mmio::VERSION), 2);
        assert_eq!(r.r32(mmio::DEVICE_ID), 3);
        assert_ne!(r.r32(mmio::VENDOR_ID), 0);
        r.w32(mmio::QUEUE_SEL, TX);
        assert_eq!(r.r32(mmio::QUEUE_NUM_MAX), u32::from(QUEUE_SIZE_MAX));
        r.w32(mmio::QUEUE_SEL, 2);
        assert_eq!(r.r32(mmio::QUEUE_NUM_MAX), 0, "no third queue");
        assert_eq!(r.r32(0x0b0), 0);
        r.w32(0x0b0, 0xdead);
        r.w32(mmio::MAGIC_VALUE, 0);
        assert_eq!(r.r32(mmio::MAGIC_VALUE), mmio::MAGIC);
        let mut two = [0u8; 2];
        r.dev.mmio_read(mmio::MAGIC_VALUE, &mut two);
        assert_eq!(two, [0, 0], "registers are 32-bit");
    }

    #[test]
    fn features_the_device_does_not_offer_are_refused() {
        let mut r = Rig::new();
        r.w32(mmio::DEVICE_FEATURES_SEL, 0);
        assert_eq!(r.r32(mmio::DEVICE_FEATURES), 1 << feature::CONSOLE_SIZE);
        r.w32(mmio::DEVICE_FEATURES_SEL, 1);
        assert_eq!(r.r32(mmio::DEVICE_FEATURES), 1 << (feature::VERSION_1 - 32));
        // MULTIPORT (bit 1) is not ours.
        let st = r.features(1 << feature::VERSION_1 | 1 << 1);
        assert_eq!(st & status::FEATURES_OK, 0);
        // Nor is the legacy interface.
        r.w32(mmio::STATUS, 0);
        assert_eq!(
            r.features(1 << feature::CONSOLE_SIZE) & status::FEATURES_OK,
            0
        );
        // DRIVER_OK without FEATURES_OK does not make the device live.
        r.driver_ok();
        assert_eq!(r.r32(mmio::STATUS) & status::DRIVER_OK, 0);
        r.w32(mmio::STATUS, 0);
        let st = r.features(1 << feature::VERSION_1);
        assert_ne!(st & status::FEATURES_OK, 0, "a subset is fine");
    }

    #[test]
    fn a_reset_starts_everything_again() {
        let mut r = Rig::new();
        r.init();
        r.put(DATA, b"one");
        r.desc(TX, 0, DATA, 3, 0, 0);
        r.offer(TX, 0);
        r.w32(mmio::QUEUE_NOTIFY, TX);
        r.w32(mmio::STATUS, 0);
        assert_eq!(r.r32(mmio::STATUS), 0);
        assert_eq!(r.r32(mmio::INTERRUPT_STATUS), 0);
        r.w32(mmio::QUEUE_SEL, TX);
        assert_eq!(r.r32(mmio::QUEUE_READY), 0);
        // A notify on a reset device does nothing.
        r.w32(mmio::QUEUE_NOTIFY, TX);
        assert_eq!(r.writes().len(), 1);
        // The driver lays the rings out again from index 0.
        r.mem
            .write_slice(&[0; 0x300], GuestAddress(rings(TX).0))
            .unwrap();
        r.init();
        r.put(DATA, b"two");
        r.desc(TX, 0, DATA, 3, 0, 0);
        r.offer(TX, 0);
        r.w32(mmio::QUEUE_NOTIFY, TX);
        assert_eq!(r.writes(), [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(r.used_idx(TX), 1);
    }

    /// Runs one hostile transmit setup on a fresh device: it must end broken, reported once,
    /// and serve nothing more until reset.
    fn hostile(setup: impl Fn(&mut Rig)) -> QueueError {
        let mut r = Rig::new();
        r.init();
        r.put(DATA, b"ok");
        setup(&mut r);
        r.w32(mmio::QUEUE_NOTIFY, TX);
        let why = r.broken().expect("a reason");
        assert_eq!(r.dev.transport().broken, 1);
        assert_eq!(r.dev.transport().warnings, 1);
        assert_eq!(count(&r.irq), 1, "one config-change interrupt");
        // Stopped: a second notify is not served (and not counted again).
        let used = r.used_idx(TX);
        r.w32(mmio::QUEUE_NOTIFY, TX);
        assert_eq!(r.used_idx(TX), used);
        assert_eq!(r.dev.transport().broken, 1);
        // Input waits rather than going anywhere.
        let mut pending: VecDeque<u8> = b"x".iter().copied().collect();
        assert_eq!(r.dev.receive(&mut pending), 0);
        why
    }

    #[test]
    fn a_buffer_outside_ram_breaks_the_queue() {
        let why = hostile(|r| {
            r.desc(TX, 0, 0x1000_0000, 4, 0, 0);
            r.offer(TX, 0);
        });
        assert!(matches!(why, QueueError::BufferOutsideRam { .. }), "{why}");
    }

    #[test]
    fn a_length_past_the_end_of_ram_breaks_the_queue() {
        let why = hostile(|r| {
            r.desc(TX, 0, RAM - 2, 16, 0, 0);
            r.offer(TX, 0);
        });
        assert!(matches!(why, QueueError::BufferOutsideRam { .. }), "{why}");
        let why = hostile(|r| {
            r.desc(TX, 0, u64::MAX - 1, u32::MAX, 0, 0);
            r.offer(TX, 0);
        });
        assert!(matches!(why, QueueError::BufferOutsideRam { .. }), "{why}");
    }

    #[test]
    fn a_loop_in_a_chain_breaks_the_queue() {
        let why = hostile(|r| {
            r.desc(TX, 0, DATA, 2, ring::DESC_F_NEXT, 1);
            r.desc(TX, 1, DATA, 2, ring::DESC_F_NEXT, 0);
            r.offer(TX, 0);
        });
        assert_eq!(why, QueueError::ChainTooLong(0, N));
    }

    #[test]
    fn a_chain_longer_than_the_queue_breaks_it() {
        // Every descriptor chained, the last one onward past the table.
        let why = hostile(|r| {
            for i in 0..N {
                r.desc(TX, i, DATA, 2, ring::DESC_F_NEXT, i + 1);
            }
            r.offer(TX, 0);
        });
        assert_eq!(why, QueueError::NextOutOfRange(N - 1, N, N));
        // And all of them in a ring.
        let why = hostile(|r| {
            for i in 0..N {
                r.desc(TX, i, DATA, 2, ring::DESC_F_NEXT, (i + 1) % N);
            }
            r.offer(TX, 3);
        });
        assert_eq!(why, QueueError::ChainTooLong(3, N));
    }

    #[test]
    fn a_head_past_the_table_breaks_the_queue() {
        let why = hostile(|r| r.offer(TX, N + 1));
        assert_eq!(why, QueueError::HeadOutOfRange(N + 1, N));
    }

    #[test]
    fn an_avail_index_that_jumps_breaks_the_queue() {
        let why = hostile(|r| r.set_avail_idx(TX, N + 1));
        assert_eq!(
            why,
            QueueError::AvailJump {
                from: 0,
                to: N + 1,
                size: N
            }
        );
    }

    #[test]
    fn an_indirect_descriptor_breaks_the_queue() {
        let why = hostile(|r| {
            r.desc(TX, 0, DATA, 16, 4, 0);
            r.offer(TX, 0);
        });
        assert_eq!(why, QueueError::Indirect(0));
    }

    #[test]
    fn bad_chains_on_the_receive_queue_break_it_too() {
        let mut r = Rig::new();
        r.init();
        r.desc(RX, 0, RAM, 8, ring::DESC_F_WRITE, 0);
        r.offer(RX, 0);
        let mut pending: VecDeque<u8> = b"abc".iter().copied().collect();
        assert_eq!(r.dev.receive(&mut pending), 0);
        assert_eq!(pending.len(), 3, "nothing taken");
        assert!(matches!(
            r.broken(),
            Some(QueueError::BufferOutsideRam { .. })
        ));
        assert_eq!(r.dev.transport().last_break.as_ref().unwrap().0, RX);
    }

    #[test]
    fn rings_outside_ram_or_misplaced_are_refused_at_setup() {
        for (rings, num, want) in [
            (
                (0x1000_0000, 0x1100, 0x1200),
                8,
                QueueError::RingsOutsideRam,
            ),
            ((RAM - 0x40, 0x1100, 0x1200), 8, QueueError::RingsOutsideRam),
            ((0x1000, 0x1100, RAM), 8, QueueError::RingsOutsideRam),
            (
                (0x1008, 0x1100, 0x1200),
                8,
                QueueError::Misaligned("descriptor table", 0x1008),
            ),
            (
                (0x1000, 0x1101, 0x1200),
                8,
                QueueError::Misaligned("available ring", 0x1101),
            ),
            (
                (0x1000, 0x1100, 0x1202),
                8,
                QueueError::Misaligned("used ring", 0x1202),
            ),
            ((0x1000, 0x1100, 0x1200), 3, QueueError::BadSize(3)),
            ((0x1000, 0x1100, 0x1200), 512, QueueError::BadSize(512)),
            ((0x1000, 0x1100, 0x1200), 0, QueueError::BadSize(0)),
        ] {
            let mut r = Rig::new();
            r.features(1 << feature::VERSION_1);
            r.setup_queue(TX, rings, num);
            assert_eq!(r.broken(), Some(want));
            // A broken device takes no notify and stays broken until it is reset.
            r.driver_ok();
            r.w32(mmio::QUEUE_NOTIFY, TX);
            assert_ne!(r.r32(mmio::STATUS) & status::DEVICE_NEEDS_RESET, 0);
            r.w32(mmio::STATUS, 0);
            assert_eq!(r.r32(mmio::STATUS), 0);
        }
    }

    #[test]
    fn a_queue_broken_again_after_a_reset_is_counted_not_warned_again() {
        let mut r = Rig::new();
        for round in 1..=2 {
            r.mem
                .write_slice(&[0; 0x300], GuestAddress(rings(TX).0))
                .unwrap();
            r.init();
            r.desc(TX, 0, 0x1000_0000, 4, 0, 0);
            r.offer(TX, 0);
            r.w32(mmio::QUEUE_NOTIFY, TX);
            assert!(r.broken().is_some());
            assert_eq!(r.dev.transport().broken, round);
            assert_eq!(r.dev.transport().warnings, 1);
            r.w32(mmio::STATUS, 0);
        }
    }
}
