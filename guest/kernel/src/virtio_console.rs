//! The virtio console (virtio 1.2, sections 4.2 and 5.3), our fast console: a `write` hands
//! the user's own pages to the device as one descriptor chain and rings one doorbell, a
//! single VM exit for the whole buffer where the UART takes one per byte on kvm_pvm.
//!
//! Found as Linux finds it: a `virtio_mmio.device=SIZE@BASE:IRQ` word on the command line
//! (our VMM writes it; QEMU's microvm does with `acpi=off`). Only the modern (version 2)
//! interface; without a device, or with one we cannot use, the console stays on the UART
//! (console.rs routes it, uart.rs drives it), which also keeps every kernel message and the
//! panic path.
//!
//! Two split virtqueues, each in one page of its own (descriptors, then the available ring,
//! the used ring at 2 KiB):
//! - transmit (queue 1): each chain starts at descriptor 0, because a write waits for the
//!   device to use its chain before returning (the pages are the caller's: nothing may touch
//!   them after the call). Our VMM serves the doorbell synchronously, so the used index has
//!   moved when the `mov` to QUEUE_NOTIFY retires; QEMU serves it on another thread and we
//!   spin. The queue asks for no interrupts.
//! - receive (queue 0): sixteen 256-byte buffers in one page, posted at start and re-posted
//!   once the terminal has taken every byte of one (bytes it cannot take yet stay in the
//!   buffer: the host then runs out of buffers and waits, so nothing is lost).
//!
//! Its interrupt (input, or a new window size in the configuration space) shares the UART's
//! vector: trap.rs `trap_console` -> tty.rs `interrupt` -> console.rs -> `take_interrupt` here;
//! then the terminal reads what came.

use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{compiler_fence, AtomicBool, AtomicU64, Ordering};

use abi::termios::WinSize;
use abi::virtio::{console, feature, mmio, ring, status};

use crate::memory::frame::FRAMES;
use crate::memory::paging::{map_mmio, LeafTableCache, LAPIC_MMIO};
use crate::memory::{phys_to_virt, PAGE_SIZE};
use crate::sync::IrqLock;

/// Where the registers are mapped: after the local APIC's and the IOAPIC's pages.
const REGS_VA: u64 = LAPIC_MMIO + 0x2000;
/// The most descriptors a queue gets: with 64, both rings fit their page (1 KiB of
/// descriptors, 134 bytes of available ring, the used ring's 518 at 2 KiB).
const MAX_QUEUE: u32 = 64;
const AVAIL_OFFSET: u64 = MAX_QUEUE as u64 * ring::DESC_SIZE as u64;
const USED_OFFSET: u64 = 2048;
/// Physically contiguous user pages share a descriptor up to this length.
const MAX_DESC_LEN: u32 = 1 << 30;
const RX_BUFFERS: u16 = 16;
const RX_BUFFER_LEN: u32 = (PAGE_SIZE / RX_BUFFERS as u64) as u32;
/// Spins on a doorbell before looking whether the device gave up (DEVICE_NEEDS_RESET).
const SPINS_PER_STATUS_READ: u32 = 4096;

/// A split virtqueue in one page of RAM (physical `page`, reached through the direct map).
struct Queue {
    page: u64,
    size: u16,
    /// Our copy of the available index: the next slot we fill.
    avail_idx: u16,
    /// The used index up to which we have taken the device's results.
    last_used: u16,
}

impl Queue {
    fn base(&self) -> u64 {
        phys_to_virt(self.page)
    }

    fn set_desc(&self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let d = self.base() + i as u64 * ring::DESC_SIZE as u64;
        // SAFETY: descriptor `i` < size <= MAX_QUEUE lies in this queue's page, which is ours
        // (allocated in `Queue::new`, never freed while the device may use it).
        unsafe {
            write_volatile(d as *mut u64, addr);
            write_volatile((d + 8) as *mut u32, len);
            write_volatile((d + 12) as *mut u16, flags);
            write_volatile((d + 14) as *mut u16, next);
        }
    }

    fn set_len(&self, i: u16, len: u32) {
        let d = self.base() + i as u64 * ring::DESC_SIZE as u64;
        // SAFETY: as in `set_desc`: descriptor `i` of this queue's own page.
        unsafe { write_volatile((d + 8) as *mut u32, len) };
    }

    fn set_flags(&self, i: u16, flags: u16) {
        let d = self.base() + i as u64 * ring::DESC_SIZE as u64;
        // SAFETY: as in `set_desc`: descriptor `i` of this queue's own page.
        unsafe { write_volatile((d + 12) as *mut u16, flags) };
    }

    /// Offers the chain that starts at descriptor `head` to the device.
    fn publish(&mut self, head: u16) {
        let avail = self.base() + AVAIL_OFFSET;
        // `size` is a power of two (`new_queue`): a mask, not a division (one emulated `div`
        // costs as much as a dozen other instructions).
        let slot = avail + 4 + 2 * (self.avail_idx & (self.size - 1)) as u64;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        // SAFETY: the available ring (flags, idx, ring[size]) lies in this queue's page. The
        // ring entry is written before the index that makes it visible; x86 keeps stores in
        // order, so only the compiler must be kept from swapping them.
        unsafe {
            write_volatile(slot as *mut u16, head);
            compiler_fence(Ordering::Release);
            write_volatile((avail + 2) as *mut u16, self.avail_idx);
        }
        compiler_fence(Ordering::SeqCst);
    }

    fn set_avail_flags(&self, flags: u16) {
        // SAFETY: the available ring's flags word, in this queue's page.
        unsafe { write_volatile((self.base() + AVAIL_OFFSET) as *mut u16, flags) };
    }

    fn used_idx(&self) -> u16 {
        // SAFETY: the used ring's index, in this queue's page; the device writes it.
        unsafe { read_volatile((self.base() + USED_OFFSET + 2) as *const u16) }
    }

    /// The used element at `i` (mod size): descriptor id and bytes written.
    fn used_elem(&self, i: u16) -> (u32, u32) {
        let e = self.base() + USED_OFFSET + 4 + 8 * (i & (self.size - 1)) as u64;
        // SAFETY: element i mod size of the used ring, in this queue's page.
        unsafe {
            (
                read_volatile(e as *const u32),
                read_volatile((e + 4) as *const u32),
            )
        }
    }
}

/// An input buffer the terminal is taking bytes from.
struct Current {
    id: u16,
    len: u32,
    taken: u32,
}

pub struct Driver {
    tx: Queue,
    rx: Queue,
    rx_buffers: u64,
    current: Option<Current>,
    /// Buffers handed back since the last receive doorbell.
    reposted: bool,
    /// One page for bytes that come from the kernel (echo, sendfile), not from a user buffer.
    bounce: u64,
    /// VIRTIO_CONSOLE_F_SIZE was agreed: the window size is in the configuration space.
    has_size: bool,
    /// A configuration change was signalled and not yet looked at.
    config_changed: bool,
    /// Its interrupt line is routed (else input must be polled).
    irq: bool,
    /// The page table of the last buffer written from (uaccess::PagesForRead).
    leaf: LeafTableCache,
}

static DRIVER: IrqLock<Option<Driver>> = IrqLock::new("virtio console", None);
/// Whether console output goes here, read without the lock on every console write.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The registers' virtual address: REGS_VA plus the window's offset in its page (QEMU's
/// transports are 512 bytes apart), set once by `init` before any access.
static REGS: AtomicU64 = AtomicU64::new(REGS_VA);
/// The registers and configuration space we use end before this offset.
const WINDOW_USED: u64 = 0x200;

fn reg(off: u64) -> u64 {
    REGS.load(Ordering::Relaxed) + off
}

fn read32(off: u64) -> u32 {
    // SAFETY: a register of the device, mapped uncached at REGS_VA by `init` before any
    // access (the window's used part lies in that page); reads of these registers have no
    // effect beyond the device's own.
    unsafe { read_volatile(reg(off) as *const u32) }
}

fn write32(off: u64, v: u32) {
    // SAFETY: as in `read32`; the writes are the driver's protocol with the device.
    unsafe { write_volatile(reg(off) as *mut u32, v) }
}

fn read16(off: u64) -> u16 {
    // SAFETY: as in `read32` (the configuration space allows 16-bit reads).
    unsafe { read_volatile(reg(off) as *const u16) }
}

/// What the boot banner says about the console.
pub enum Found {
    /// Nothing announced on the command line.
    None,
    /// In use: its base, its interrupt line (`None`: it could not be routed, no IOAPIC, and
    /// input is polled), whether it reports the window size.
    Ready {
        base: u64,
        irq: Option<u32>,
        size: bool,
    },
    /// Announced but not usable, and why.
    Unusable(&'static str),
}

/// Finds, resets and starts the device the command line announces, if any.
pub fn init(cmdline: &str) -> Found {
    let Some(dev) = abi::virtio::parse_device(cmdline) else {
        return Found::None;
    };
    let off = dev.base & (PAGE_SIZE - 1);
    if off + WINDOW_USED > PAGE_SIZE || dev.size < WINDOW_USED {
        return Found::Unusable("its registers do not fit one page");
    }
    if map_mmio(REGS_VA, dev.base & !(PAGE_SIZE - 1)).is_err() {
        return Found::Unusable("out of memory mapping it");
    }
    REGS.store(REGS_VA + off, Ordering::Relaxed);
    match start() {
        Ok(mut driver) => {
            let size = driver.has_size;
            let irq_ok = u8::try_from(dev.irq)
                .is_ok_and(|irq| crate::ioapic::route(irq, crate::trap_frame::CONSOLE_VECTOR));
            driver.irq = irq_ok;
            *DRIVER.lock() = Some(driver);
            ACTIVE.store(true, Ordering::Release);
            Found::Ready {
                base: dev.base,
                irq: irq_ok.then_some(dev.irq),
                size,
            }
        }
        Err(why) => {
            // Reset (no queue stays ready on pages we gave back), then say we gave up.
            if read32(mmio::MAGIC_VALUE) == mmio::MAGIC {
                write32(mmio::STATUS, 0);
                write32(mmio::STATUS, status::FAILED);
            }
            Found::Unusable(why)
        }
    }
}

/// The initialisation of specification 3.1.1.
fn start() -> Result<Driver, &'static str> {
    if read32(mmio::MAGIC_VALUE) != mmio::MAGIC {
        return Err("no virtio-mmio device there");
    }
    match read32(mmio::VERSION) {
        mmio::VERSION_MODERN => {}
        1 => return Err("legacy virtio-mmio (QEMU: -global virtio-mmio.force-legacy=false)"),
        _ => return Err("unknown virtio-mmio version"),
    }
    if read32(mmio::DEVICE_ID) != console::DEVICE_ID {
        return Err("not a console");
    }
    write32(mmio::STATUS, 0);
    if read32(mmio::STATUS) != 0 {
        return Err("the device does not reset");
    }
    write32(mmio::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    write32(mmio::DEVICE_FEATURES_SEL, 1);
    let high = read32(mmio::DEVICE_FEATURES);
    write32(mmio::DEVICE_FEATURES_SEL, 0);
    let low = read32(mmio::DEVICE_FEATURES);
    if high & (1 << (feature::VERSION_1 - 32)) == 0 {
        return Err("no VIRTIO_F_VERSION_1");
    }
    let has_size = low & (1 << feature::CONSOLE_SIZE) != 0;
    write32(mmio::DRIVER_FEATURES_SEL, 0);
    write32(
        mmio::DRIVER_FEATURES,
        (has_size as u32) << feature::CONSOLE_SIZE,
    );
    write32(mmio::DRIVER_FEATURES_SEL, 1);
    write32(mmio::DRIVER_FEATURES, 1 << (feature::VERSION_1 - 32));
    let agreed = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
    write32(mmio::STATUS, agreed);
    if read32(mmio::STATUS) & status::FEATURES_OK == 0 {
        return Err("the device refused our features");
    }
    let rx = new_queue(console::RECEIVE_QUEUE)?;
    let tx = match new_queue(console::TRANSMIT_QUEUE) {
        Ok(q) => q,
        Err(e) => {
            FRAMES.lock().free(rx.page);
            return Err(e);
        }
    };
    // Each allocation through a temporary guard, as everywhere else: LLVM then still sees
    // one allocator and passes it no argument (a bound guard costs every page fault an
    // instruction).
    let a = FRAMES.lock().alloc_zeroed();
    let b = FRAMES.lock().alloc_zeroed();
    let pages = match (a, b) {
        (Some(a), Some(b)) => Some((a, b)),
        (a, b) => {
            for p in [a, b].into_iter().flatten().chain([rx.page, tx.page]) {
                FRAMES.lock().free(p);
            }
            None
        }
    };
    let (rx_buffers, bounce) = pages.ok_or("out of memory for its buffers")?;
    let mut d = Driver {
        tx,
        rx,
        rx_buffers,
        current: None,
        reposted: false,
        bounce,
        has_size,
        config_changed: false,
        irq: false,
        leaf: LeafTableCache::new(),
    };
    d.tx.set_avail_flags(ring::AVAIL_F_NO_INTERRUPT);
    for id in 0..RX_BUFFERS.min(d.rx.size) {
        d.post_rx(id);
    }
    write32(mmio::STATUS, agreed | status::DRIVER_OK);
    write32(mmio::QUEUE_NOTIFY, console::RECEIVE_QUEUE);
    Ok(d)
}

/// Sets up queue `index` in a page of its own.
fn new_queue(index: u32) -> Result<Queue, &'static str> {
    write32(mmio::QUEUE_SEL, index);
    if read32(mmio::QUEUE_READY) != 0 {
        return Err("a queue is already in use");
    }
    let max = read32(mmio::QUEUE_NUM_MAX);
    if max < 2 {
        return Err("a queue is missing");
    }
    // A power of two, as split queues need, no larger than the page holds.
    let size = 1u32 << (31 - max.min(MAX_QUEUE).leading_zeros());
    let page = FRAMES
        .lock()
        .alloc_zeroed()
        .ok_or("out of memory for its queues")?;
    write32(mmio::QUEUE_NUM, size);
    let split = |a: u64| (a as u32, (a >> 32) as u32);
    for (reg, addr) in [
        (mmio::QUEUE_DESC_LOW, page),
        (mmio::QUEUE_DRIVER_LOW, page + AVAIL_OFFSET),
        (mmio::QUEUE_DEVICE_LOW, page + USED_OFFSET),
    ] {
        let (lo, hi) = split(addr);
        write32(reg, lo);
        write32(reg + 4, hi);
    }
    write32(mmio::QUEUE_READY, 1);
    Ok(Queue {
        page,
        size: size as u16,
        avail_idx: 0,
        last_used: 0,
    })
}

impl Driver {
    fn post_rx(&mut self, id: u16) {
        let addr = self.rx_buffers + id as u64 * RX_BUFFER_LEN as u64;
        self.rx
            .set_desc(id, addr, RX_BUFFER_LEN, ring::DESC_F_WRITE, 0);
        self.rx.publish(id);
        self.reposted = true;
    }

    /// Sends the chain in transmit descriptors 0..n (linked by the caller) and waits until
    /// the device has used it. False if the device gave up (it set DEVICE_NEEDS_RESET):
    /// nothing more is sent.
    fn send(&mut self, n: u16) -> bool {
        debug_assert!(n > 0 && n <= self.tx.size);
        self.tx.publish(0);
        write32(mmio::QUEUE_NOTIFY, console::TRANSMIT_QUEUE);
        let mut spins = 0u32;
        while self.tx.used_idx() != self.tx.avail_idx {
            core::hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(SPINS_PER_STATUS_READ)
                && read32(mmio::STATUS) & status::DEVICE_NEEDS_RESET != 0
            {
                return false;
            }
        }
        self.tx.last_used = self.tx.avail_idx;
        true
    }

    /// Input bytes into `out`; how many.
    fn read(&mut self, out: &mut [u8]) -> usize {
        let mut n = 0;
        while n < out.len() {
            let cur = match &mut self.current {
                Some(c) => c,
                None => {
                    if self.rx.used_idx() == self.rx.last_used {
                        break;
                    }
                    let (id, len) = self.rx.used_elem(self.rx.last_used);
                    self.rx.last_used = self.rx.last_used.wrapping_add(1);
                    // A device that names a buffer we did not post is believed for nothing
                    // (the element is skipped); one that claims more than a buffer holds is
                    // taken at the buffer's length.
                    if id >= RX_BUFFERS as u32 {
                        continue;
                    }
                    self.current.insert(Current {
                        id: id as u16,
                        len: len.min(RX_BUFFER_LEN),
                        taken: 0,
                    })
                }
            };
            let k = ((cur.len - cur.taken) as usize).min(out.len() - n);
            let src = phys_to_virt(self.rx_buffers + cur.id as u64 * RX_BUFFER_LEN as u64)
                + cur.taken as u64;
            // SAFETY: `k` bytes inside receive buffer `cur.id` (len was clamped to the
            // buffer), which the device has handed back to us; `out` has room for them.
            unsafe { core::ptr::copy_nonoverlapping(src as *const u8, out[n..].as_mut_ptr(), k) };
            cur.taken += k as u32;
            n += k;
            if cur.taken == cur.len {
                let id = cur.id;
                self.current = None;
                self.post_rx(id);
            }
        }
        if core::mem::take(&mut self.reposted) {
            write32(mmio::QUEUE_NOTIFY, console::RECEIVE_QUEUE);
        }
        n
    }
}

/// Whether console output goes through the device.
#[inline]
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Whether input from the device must be polled: it is in use but its line is not routed.
pub fn polled() -> bool {
    DRIVER.lock().as_ref().is_some_and(|d| !d.irq)
}

/// The device stopped working: back to the UART, said once. The device is reset, so that a
/// VMM that routes input by the driver's state (ours) sends it to the UART again.
#[cold]
fn give_up(d: &mut Option<Driver>) {
    ACTIVE.store(false, Ordering::Relaxed);
    write32(mmio::STATUS, 0);
    // Reset, the device no longer uses the rings and buffers: their pages go back.
    if let Some(old) = d.take() {
        for page in [old.rx.page, old.tx.page, old.rx_buffers, old.bounce] {
            FRAMES.lock().free(page);
        }
    }
    crate::println!(
        "kernel: the virtio console stopped working (the device needs a reset); back to the UART"
    );
}

/// write(2) of `len` bytes at user address `buf` of `pml4`, or `None` when the device is not
/// in use (the caller writes through the UART). The user's pages go to the device as they
/// are, physically contiguous pieces merged, up to a queue's worth of pieces (64, at least
/// 256 KiB) per doorbell. A bad address ends the write: the chains sent before it count, as
/// on Linux, the one it is in is not sent; none at all is EFAULT (so a write of up to 256 KiB
/// is all or nothing, as through the UART).
#[inline(never)]
pub fn write_user(pml4: u64, buf: u64, len: u64) -> Option<crate::sys_result::SysResult> {
    if !active() {
        return None;
    }
    let mut guard = DRIVER.lock();
    let d = guard.as_mut()?;
    let Some(mut pages) = crate::uaccess::PagesForRead::new(pml4, buf, len, &d.leaf) else {
        return Some(Err(abi::Errno::EFAULT));
    };
    // The chain is built in the descriptor table itself as the pages are found (no list on
    // the stack to fill and copy): descriptor n - 1 is its last, ending at `last_end`.
    let (mut n, mut last_end, mut last_len) = (0u16, u64::MAX, 0u32);
    let (mut queued, mut sent) = (0u64, 0u64);
    loop {
        let (pa, k) = match pages.next(MAX_DESC_LEN as u64) {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            // The chain being built is dropped: a write that fits one chain is all or nothing.
            Err(_) if sent == 0 => return Some(Err(abi::Errno::EFAULT)),
            Err(_) => return Some(Ok(sent)),
        };
        // A piece is at most MAX_DESC_LEN, so the sum fits a u32 with room.
        if n > 0 && pa == last_end && last_len as u64 + k <= MAX_DESC_LEN as u64 {
            last_len += k as u32;
            d.tx.set_len(n - 1, last_len);
        } else {
            if n == d.tx.size {
                if !d.send(n) {
                    give_up(&mut guard);
                    return gave_up_after(sent);
                }
                (sent, queued, n) = (sent + queued, 0, 0);
            }
            if n > 0 {
                d.tx.set_flags(n - 1, ring::DESC_F_NEXT);
            }
            d.tx.set_desc(n, pa, k as u32, 0, n + 1);
            n += 1;
            last_len = k as u32;
        }
        last_end = pa + k;
        queued += k;
    }
    pages.done(&mut d.leaf);
    if n > 0 && !d.send(n) {
        give_up(&mut guard);
        return gave_up_after(sent);
    }
    Some(Ok(sent + queued))
}

/// What a write returns when the device broke under it: what was sent, or, if nothing was,
/// `None`, so that the caller writes it all through the UART.
#[cold]
fn gave_up_after(sent: u64) -> Option<crate::sys_result::SysResult> {
    (sent > 0).then_some(Ok(sent))
}

/// Writes kernel bytes (the terminal's echo, sendfile's data) through the bounce page, a page
/// at a time; returns what it could not send (all of it when the device is not in use, the
/// rest from the page in progress when it breaks), for the UART.
pub fn write_kernel(mut bytes: &[u8]) -> &[u8] {
    let mut guard = DRIVER.lock();
    let Some(d) = guard.as_mut() else {
        return bytes;
    };
    while !bytes.is_empty() {
        let k = bytes.len().min(PAGE_SIZE as usize);
        // SAFETY: the bounce page is ours (allocated in `start`) and the device reads it only
        // between `send`'s doorbell and its return.
        unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), phys_to_virt(d.bounce) as *mut u8, k)
        };
        d.tx.set_desc(0, d.bounce, k as u32, 0, 0);
        if !d.send(1) {
            give_up(&mut guard);
            return bytes;
        }
        bytes = &bytes[k..];
    }
    bytes
}

/// Takes up to `out.len()` input bytes; 0 when none (or no device).
pub fn read_input(out: &mut [u8]) -> usize {
    DRIVER.lock().as_mut().map_or(0, |d| d.read(out))
}

/// The device's interrupt: acknowledges it and notes a configuration change.
pub fn take_interrupt() {
    let mut guard = DRIVER.lock();
    let Some(d) = guard.as_mut() else {
        return;
    };
    let why = read32(mmio::INTERRUPT_STATUS);
    if why != 0 {
        write32(mmio::INTERRUPT_ACK, why);
    }
    if why & mmio::INT_CONFIG_CHANGE != 0 {
        if read32(mmio::STATUS) & status::DEVICE_NEEDS_RESET != 0 {
            give_up(&mut guard);
            return;
        }
        d.config_changed = true;
    }
}

/// The window size from the configuration space, when the device reports one and (for
/// `only_if_changed`) a change was signalled since the last call.
pub fn window_size(only_if_changed: bool) -> Option<WinSize> {
    let mut guard = DRIVER.lock();
    let d = guard.as_mut()?;
    if !d.has_size || (only_if_changed && !core::mem::take(&mut d.config_changed)) {
        return None;
    }
    // Read until the generation holds still: the two fields then belong together.
    loop {
        let gen = read32(mmio::CONFIG_GENERATION);
        let cols = read16(mmio::CONFIG + console::CONFIG_COLS);
        let rows = read16(mmio::CONFIG + console::CONFIG_ROWS);
        if read32(mmio::CONFIG_GENERATION) == gen {
            return Some(WinSize {
                rows,
                cols,
                ..WinSize::default()
            });
        }
    }
}
