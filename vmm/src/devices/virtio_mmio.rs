//! The virtio-mmio transport, modern interface only (virtio 1.2 section 4.2.2, registers in
//! `abi::virtio::mmio`): the register window a driver probes and configures, the device and
//! driver feature words, the split virtqueues (rust-vmm's `virtio-queue`), the interrupt
//! status and the device status with its reset. The device behind it (virtio_console.rs)
//! gives its id, features and configuration space and serves the queues; everything a device
//! of any kind would share lives here, including the answer to a guest that breaks a queue
//! (`MmioTransport::fail`: DEVICE_NEEDS_RESET, a config-change interrupt, one warning) and the
//! walk of a descriptor chain (`next_chain`) that checks every index and buffer first.

use std::num::Wrapping;
use std::sync::atomic::Ordering;

use abi::virtio::{feature, mmio, ring, status};
use log::{debug, warn};
use virtio_queue::desc::split::Descriptor;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryMmap, Permissions};
use vmm_sys_util::eventfd::EventFd;

/// The most entries a queue may have (QueueNumMax).
pub const QUEUE_SIZE_MAX: u16 = 256;
/// Ours, "LDEV" read as a little-endian word; drivers do not look at it.
pub const VENDOR_ID: u32 = 0x4c44_4556;

/// Why a queue cannot be served: what the guest did wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("queue size {0} is not a power of two from 1 to {max}", max = QUEUE_SIZE_MAX)]
    BadSize(u32),
    #[error("the {0} at {1:#x} is not aligned")]
    Misaligned(&'static str, u64),
    #[error("its rings are not all inside guest RAM")]
    RingsOutsideRam,
    #[error("the available index went from {from} to {to}, more than the queue's {size} entries")]
    AvailJump { from: u16, to: u16, size: u16 },
    #[error("a chain starts at descriptor {0}, past the queue's {1} entries")]
    HeadOutOfRange(u16, u16),
    #[error("descriptor {0} chains to {1}, past the queue's {2} entries")]
    NextOutOfRange(u16, u16, u16),
    #[error("the chain at descriptor {0} is longer than the queue's {1} entries (a loop)")]
    ChainTooLong(u16, u16),
    #[error("descriptor {index}'s buffer {addr:#x}+{len:#x} is not inside guest RAM")]
    BufferOutsideRam { index: u16, addr: u64, len: u32 },
    #[error("descriptor {0} is indirect, which the device does not offer")]
    Indirect(u16),
    #[error("guest memory: {0}")]
    Memory(String),
}

impl From<vm_memory::GuestMemoryError> for QueueError {
    fn from(e: vm_memory::GuestMemoryError) -> QueueError {
        QueueError::Memory(e.to_string())
    }
}

impl From<virtio_queue::Error> for QueueError {
    fn from(e: virtio_queue::Error) -> QueueError {
        QueueError::Memory(e.to_string())
    }
}

/// What a register write asks of the device beyond the transport's own bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Nothing,
    /// QueueNotify: the driver has made buffers available on this queue.
    Notify(u32),
    /// A write into the configuration space at this offset (the data is the caller's).
    Config(u64),
    /// DRIVER_OK was set: the device is live.
    DriverOk,
    /// Status 0: everything is back to its power-on state.
    Reset,
}

/// The queue registers as the driver wrote them; they reach the `Queue` when it is made ready,
/// so that a bad size or alignment is refused then, once, instead of being half-applied.
#[derive(Debug, Clone, Copy, Default)]
struct QueueRegs {
    num: u32,
    desc: u64,
    driver: u64,
    device: u64,
}

pub struct MmioTransport {
    /// "virtio-console": the messages' prefix.
    name: &'static str,
    device_id: u32,
    device_features: u64,
    driver_features: u64,
    device_features_sel: u32,
    driver_features_sel: u32,
    queue_sel: u32,
    queues: Vec<Queue>,
    regs: Vec<QueueRegs>,
    status: u32,
    interrupt_status: u32,
    config_generation: u32,
    /// The interrupt line (an irqfd).
    irq: EventFd,
    /// How many times the guest broke a queue, how many warnings that made (at most one), and
    /// the last breakage (queue, reason).
    pub broken: u64,
    pub warnings: u64,
    pub last_break: Option<(u32, QueueError)>,
}

fn set_low(v: &mut u64, low: u32) {
    *v = (*v & !0xffff_ffff) | u64::from(low);
}

fn set_high(v: &mut u64, high: u32) {
    *v = (*v & 0xffff_ffff) | u64::from(high) << 32;
}

impl MmioTransport {
    pub fn new(
        name: &'static str,
        device_id: u32,
        device_features: u64,
        queues: usize,
        irq: EventFd,
    ) -> MmioTransport {
        MmioTransport {
            name,
            device_id,
            // Modern devices must offer VERSION_1; the transport is nothing else.
            device_features: device_features | 1 << feature::VERSION_1,
            driver_features: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            queue_sel: 0,
            queues: (0..queues)
                .map(|_| Queue::new(QUEUE_SIZE_MAX).expect("256 is a valid queue size"))
                .collect(),
            regs: vec![QueueRegs::default(); queues],
            status: 0,
            interrupt_status: 0,
            config_generation: 0,
            irq,
            broken: 0,
            warnings: 0,
            last_break: None,
        }
    }

    pub fn status(&self) -> u32 {
        self.status
    }

    pub fn driver_ok(&self) -> bool {
        self.status & status::DRIVER_OK != 0
    }

    pub fn needs_reset(&self) -> bool {
        self.status & status::DEVICE_NEEDS_RESET != 0
    }

    pub fn queue_ready(&self, q: u32) -> bool {
        self.queues.get(q as usize).is_some_and(|q| q.ready())
    }

    pub fn interrupt_status(&self) -> u32 {
        self.interrupt_status
    }

    pub fn queue_mut(&mut self, q: u32) -> &mut Queue {
        &mut self.queues[q as usize]
    }

    /// Raises the interrupt line with these INTERRUPT_STATUS bits.
    pub fn interrupt(&mut self, bits: u32) {
        self.interrupt_status |= bits;
        if let Err(e) = self.irq.write(1) {
            debug!("{}: interrupt not raised: {e}", self.name);
        }
    }

    /// The configuration space changed: a driver reading it across the change sees a new
    /// generation and reads again; a live one is told at once.
    pub fn config_changed(&mut self) {
        self.config_generation = self.config_generation.wrapping_add(1);
        if self.driver_ok() {
            self.interrupt(mmio::INT_CONFIG_CHANGE);
        }
    }

    /// Whether queue `q` may be served now: the driver is done setting up, the device is not
    /// waiting for a reset, and the queue is ready. Its rings were found in RAM when it was
    /// made ready (`make_ready`; else the device needs a reset), and a ready queue's registers
    /// cannot change.
    pub fn usable(&self, q: u32) -> bool {
        self.driver_ok() && !self.needs_reset() && self.queue_ready(q)
    }

    /// The guest broke queue `q`: the device stops (DEVICE_NEEDS_RESET, no queue is served
    /// until the driver writes status 0) and says so with a config-change interrupt, as the
    /// specification has it (2.1.2). Warned once per run: a guest that breaks it in a loop
    /// must not flood the host's stderr.
    pub fn fail(&mut self, q: u32, why: &QueueError) {
        self.broken += 1;
        debug!(
            "{}: queue {q} broken ({why}), {} time(s) so far",
            self.name, self.broken
        );
        if self.warnings == 0 {
            self.warnings += 1;
            warn!(
                "{}: the guest broke queue {q} ({why}); the device stops until the guest \
                 resets it",
                self.name
            );
        }
        self.last_break = Some((q, why.clone()));
        if !self.needs_reset() {
            self.status |= status::DEVICE_NEEDS_RESET;
            self.interrupt(mmio::INT_CONFIG_CHANGE);
        }
    }

    fn reset(&mut self) {
        self.driver_features = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.queue_sel = 0;
        for q in &mut self.queues {
            q.reset();
        }
        self.regs.fill(QueueRegs::default());
        self.status = 0;
        self.interrupt_status = 0;
    }

    /// A read in the window; `config` is the device's configuration space.
    pub fn read(&self, offset: u64, data: &mut [u8], config: &[u8]) {
        data.fill(0);
        if offset >= mmio::CONFIG {
            // Any width the driver likes (the console's fields are 16 and 32 bits); bytes past
            // the end of the space read 0.
            let start = (offset - mmio::CONFIG) as usize;
            for (i, b) in data.iter_mut().enumerate() {
                *b = config.get(start + i).copied().unwrap_or(0);
            }
            return;
        }
        if data.len() != 4 {
            debug!(
                "{}: {}-byte read of register {offset:#x} (they are 32-bit): 0",
                self.name,
                data.len()
            );
            return;
        }
        let sel = self.queue_sel as usize;
        let v = match offset {
            mmio::MAGIC_VALUE => mmio::MAGIC,
            mmio::VERSION => mmio::VERSION_MODERN,
            mmio::DEVICE_ID => self.device_id,
            mmio::VENDOR_ID => VENDOR_ID,
            mmio::DEVICE_FEATURES => match self.device_features_sel {
                0 => self.device_features as u32,
                1 => (self.device_features >> 32) as u32,
                _ => 0,
            },
            mmio::QUEUE_NUM_MAX => {
                if sel < self.queues.len() {
                    u32::from(QUEUE_SIZE_MAX)
                } else {
                    0
                }
            }
            mmio::QUEUE_READY => u32::from(self.queue_ready(self.queue_sel)),
            mmio::INTERRUPT_STATUS => self.interrupt_status,
            mmio::STATUS => self.status,
            mmio::CONFIG_GENERATION => self.config_generation,
            _ => {
                debug!(
                    "{}: read of register {offset:#x}, not one we have: 0",
                    self.name
                );
                0
            }
        };
        data.copy_from_slice(&v.to_le_bytes());
    }

    /// A write in the window. Writes to the configuration space are the device's (returned as
    /// `Written::Config`); the rest are 32-bit registers.
    pub fn write(&mut self, offset: u64, data: &[u8], mem: &GuestMemoryMmap) -> Written {
        if offset >= mmio::CONFIG {
            return Written::Config(offset - mmio::CONFIG);
        }
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            debug!(
                "{}: {}-byte write of register {offset:#x} (they are 32-bit) ignored",
                self.name,
                data.len()
            );
            return Written::Nothing;
        };
        let v = u32::from_le_bytes(bytes);
        let sel = self.queue_sel as usize;
        match offset {
            mmio::DEVICE_FEATURES_SEL => self.device_features_sel = v,
            mmio::DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            mmio::DRIVER_FEATURES => {
                if self.status & status::FEATURES_OK != 0 {
                    debug!(
                        "{}: driver features written after FEATURES_OK, ignored",
                        self.name
                    );
                } else {
                    match self.driver_features_sel {
                        0 => set_low(&mut self.driver_features, v),
                        1 => set_high(&mut self.driver_features, v),
                        s => debug!("{}: driver feature word {s} does not exist", self.name),
                    }
                }
            }
            mmio::QUEUE_SEL => self.queue_sel = v,
            mmio::QUEUE_NUM
            | mmio::QUEUE_DESC_LOW
            | mmio::QUEUE_DESC_HIGH
            | mmio::QUEUE_DRIVER_LOW
            | mmio::QUEUE_DRIVER_HIGH
            | mmio::QUEUE_DEVICE_LOW
            | mmio::QUEUE_DEVICE_HIGH => {
                if sel >= self.queues.len() || self.queues[sel].ready() {
                    debug!(
                        "{}: write of {offset:#x} for queue {sel}, absent or ready: ignored",
                        self.name
                    );
                    return Written::Nothing;
                }
                let r = &mut self.regs[sel];
                match offset {
                    mmio::QUEUE_NUM => r.num = v,
                    mmio::QUEUE_DESC_LOW => set_low(&mut r.desc, v),
                    mmio::QUEUE_DESC_HIGH => set_high(&mut r.desc, v),
                    mmio::QUEUE_DRIVER_LOW => set_low(&mut r.driver, v),
                    mmio::QUEUE_DRIVER_HIGH => set_high(&mut r.driver, v),
                    mmio::QUEUE_DEVICE_LOW => set_low(&mut r.device, v),
                    _ => set_high(&mut r.device, v),
                }
            }
            mmio::QUEUE_READY => {
                if sel >= self.queues.len() {
                    debug!("{}: QueueReady for absent queue {sel} ignored", self.name);
                } else if v == 0 {
                    self.queues[sel].set_ready(false);
                } else if !self.queues[sel].ready() {
                    self.make_ready(sel as u32, mem);
                }
            }
            mmio::QUEUE_NOTIFY => return Written::Notify(v),
            mmio::INTERRUPT_ACK => self.interrupt_status &= !v,
            mmio::STATUS => return self.set_status(v),
            _ => debug!(
                "{}: write of {v:#x} to register {offset:#x}, not one we write: ignored",
                self.name
            ),
        }
        Written::Nothing
    }

    /// Moves the driver's queue registers into the `Queue`, refusing what virtio-queue would
    /// only log and skip (leaving a queue other than the one the driver laid out).
    fn make_ready(&mut self, q: u32, mem: &GuestMemoryMmap) {
        let r = self.regs[q as usize];
        let queue = &mut self.queues[q as usize];
        let result = u16::try_from(r.num)
            .map_err(|_| QueueError::BadSize(r.num))
            .and_then(|n| {
                queue
                    .try_set_size(n)
                    .map_err(|_| QueueError::BadSize(r.num))
            })
            .and_then(|()| {
                queue
                    .try_set_desc_table_address(GuestAddress(r.desc))
                    .map_err(|_| QueueError::Misaligned("descriptor table", r.desc))
            })
            .and_then(|()| {
                queue
                    .try_set_avail_ring_address(GuestAddress(r.driver))
                    .map_err(|_| QueueError::Misaligned("available ring", r.driver))
            })
            .and_then(|()| {
                queue
                    .try_set_used_ring_address(GuestAddress(r.device))
                    .map_err(|_| QueueError::Misaligned("used ring", r.device))
            });
        if let Err(e) = result {
            self.fail(q, &e);
            return;
        }
        // We do not offer VIRTIO_F_EVENT_IDX.
        queue.set_event_idx(false);
        queue.set_ready(true);
        if !queue.is_valid(mem) {
            self.fail(q, &QueueError::RingsOutsideRam);
        }
    }

    fn set_status(&mut self, v: u32) -> Written {
        if v == 0 {
            self.reset();
            return Written::Reset;
        }
        // DEVICE_NEEDS_RESET is the device's to set and clear (by a reset).
        let mut new = v & !status::DEVICE_NEEDS_RESET;
        let was = self.status;
        if new & status::FEATURES_OK != 0 && was & status::FEATURES_OK == 0 {
            let unknown = self.driver_features & !self.device_features;
            let modern = self.driver_features & 1 << feature::VERSION_1 != 0;
            if unknown != 0 || !modern {
                // The driver reads the status back and sees FEATURES_OK missing (3.1.1).
                debug!(
                    "{}: FEATURES_OK refused: the driver wants {:#x}, we offer {:#x}",
                    self.name, self.driver_features, self.device_features
                );
                new &= !status::FEATURES_OK;
            }
        }
        let going_live = new & status::DRIVER_OK != 0 && was & status::DRIVER_OK == 0;
        if going_live && new & status::FEATURES_OK == 0 {
            debug!("{}: DRIVER_OK without FEATURES_OK ignored", self.name);
            new &= !status::DRIVER_OK;
        }
        self.status = new | (was & status::DEVICE_NEEDS_RESET);
        if going_live && self.driver_ok() {
            return Written::DriverOk;
        }
        Written::Nothing
    }
}

/// One buffer of a descriptor chain, inside guest RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffer {
    pub addr: GuestAddress,
    pub len: u32,
    /// Device-writable (VIRTQ_DESC_F_WRITE).
    pub writable: bool,
}

/// The next chain the driver made available on `queue`, its head index and its buffers (in
/// `buffers`), every index and buffer checked first; None when there is none. virtio-queue's
/// own iterator stops quietly at a loop or a bad index and its `pop_descriptor_chain` hides an
/// available index that jumps: both must break the queue, not be mistaken for its end.
/// `queue` must be usable (its rings in RAM).
pub fn next_chain(
    queue: &mut Queue,
    mem: &GuestMemoryMmap,
    buffers: &mut Vec<Buffer>,
) -> Result<Option<u16>, QueueError> {
    buffers.clear();
    let size = queue.size();
    let avail = queue.avail_idx(mem, Ordering::Acquire)?;
    let next = Wrapping(queue.next_avail());
    if (avail - next).0 > size {
        return Err(QueueError::AvailJump {
            from: next.0,
            to: avail.0,
            size,
        });
    }
    if avail == next {
        return Ok(None);
    }
    let chain = queue
        .pop_descriptor_chain(mem)
        .ok_or_else(|| QueueError::Memory("the available ring cannot be read".into()))?;
    let head = chain.head_index();
    if head >= size {
        return Err(QueueError::HeadOutOfRange(head, size));
    }
    let table = GuestAddress(queue.desc_table());
    let mut index = head;
    for _ in 0..size {
        // The table's place was checked (is_valid) and index < size: this read is in RAM.
        let desc: Descriptor = mem.read_obj(GuestAddress(table.0 + u64::from(index) * 16))?;
        if desc.refers_to_indirect_table() {
            return Err(QueueError::Indirect(index));
        }
        let len = desc.len();
        if len > 0 && !mem.check_range(desc.addr(), len as usize, Permissions::Read) {
            return Err(QueueError::BufferOutsideRam {
                index,
                addr: desc.addr().0,
                len,
            });
        }
        buffers.push(Buffer {
            addr: desc.addr(),
            len,
            writable: desc.flags() & ring::DESC_F_WRITE != 0,
        });
        if desc.flags() & ring::DESC_F_NEXT == 0 {
            return Ok(Some(head));
        }
        if desc.next() >= size {
            return Err(QueueError::NextOutOfRange(index, desc.next(), size));
        }
        index = desc.next();
    }
    Err(QueueError::ChainTooLong(head, size))
}

/// Whether the driver wants an interrupt for the buffers just used. virtio-queue's
/// `needs_notification` decides only with VIRTIO_F_EVENT_IDX, which we do not offer (it is
/// always true without); the driver's wish is then the available ring's NO_INTERRUPT flag.
pub fn needs_interrupt(queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<bool, QueueError> {
    if !queue.needs_notification(mem)? {
        return Ok(false);
    }
    let flags: u16 = mem.load(GuestAddress(queue.avail_ring()), Ordering::Acquire)?;
    Ok(u16::from_le(flags) & ring::AVAIL_F_NO_INTERRUPT == 0)
}
