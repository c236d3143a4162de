//! The virtio console as both sides see it: where our VMM puts the device, and the parts of
//! the virtio 1.2 specification (OASIS, sections 2, 4.2 and 5.3) that our kernel's driver
//! (guest/kernel/src/virtio_console.rs) and the VMM's device (vmm/src/devices/virtio_*.rs)
//! use. Only the modern (version 2) MMIO interface; QEMU's microvm offers it with
//! `-global virtio-mmio.force-legacy=false`.

/// Our VMM's console transport: one 4 KiB MMIO window in the 32-bit gap, interrupt line 5.
/// The kernel learns it as Linux does, from `virtio_mmio.device=4K@0xd0000000:5` on its
/// command line ([`parse_device`]); `vmm --no-virtio-console` leaves it out.
pub const CONSOLE_MMIO_BASE: u64 = 0xd000_0000;
pub const CONSOLE_MMIO_SIZE: u64 = 0x1000;
pub const CONSOLE_IRQ: u8 = 5;

/// The MMIO registers (offsets in the window; all 32-bit accesses except the config space).
pub mod mmio {
    pub const MAGIC_VALUE: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    /// The device's configuration space starts here.
    pub const CONFIG: u64 = 0x100;

    /// "virt", little-endian.
    pub const MAGIC: u32 = 0x7472_6976;
    /// The modern interface; 1 is the legacy one.
    pub const VERSION_MODERN: u32 = 2;

    /// INTERRUPT_STATUS bits.
    pub const INT_USED_BUFFER: u32 = 1;
    pub const INT_CONFIG_CHANGE: u32 = 2;
}

/// The device status register's bits (specification 2.1).
pub mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    /// Set by the device when it can no longer work (a broken queue); the driver must reset.
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
    pub const FAILED: u32 = 0x80;
}

/// Feature bits (bit numbers).
pub mod feature {
    /// The console reports its window size in the configuration space.
    pub const CONSOLE_SIZE: u32 = 0;
    /// Modern virtio (required of version-2 devices).
    pub const VERSION_1: u32 = 32;
}

/// The console device (specification 5.3).
pub mod console {
    pub const DEVICE_ID: u32 = 3;
    /// Queue 0 carries input to the driver, queue 1 output from it (port 0, no multiport).
    pub const RECEIVE_QUEUE: u32 = 0;
    pub const TRANSMIT_QUEUE: u32 = 1;
    /// Configuration space: columns (u16) at 0, rows (u16) at 2.
    pub const CONFIG_COLS: u64 = 0;
    pub const CONFIG_ROWS: u64 = 2;
}

/// Split-virtqueue layout (specification 2.7).
pub mod ring {
    /// A descriptor: addr u64, len u32, flags u16, next u16.
    pub const DESC_SIZE: usize = 16;
    pub const DESC_F_NEXT: u16 = 1;
    pub const DESC_F_WRITE: u16 = 2;
    /// In the available ring's flags: do not interrupt when this queue's buffers are used.
    pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
}

/// A device announced on the kernel command line as Linux's `virtio_mmio.device=` parameter
/// spells it: `SIZE@BASE:IRQ`, SIZE and BASE in C notation (0x.. or decimal), SIZE with an
/// optional K, M or G suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioDevice {
    pub base: u64,
    pub size: u64,
    pub irq: u32,
}

impl MmioDevice {
    /// The command-line word for this device.
    #[cfg(any(test, feature = "std"))]
    pub fn cmdline_word(&self) -> std::string::String {
        std::format!(
            "virtio_mmio.device={}K@{:#x}:{}",
            self.size >> 10,
            self.base,
            self.irq
        )
    }
}

/// The first `virtio_mmio.device=` word of `cmdline` that parses, if any.
pub fn parse_device(cmdline: &str) -> Option<MmioDevice> {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix("virtio_mmio.device="))
        .find_map(parse_spec)
}

fn parse_spec(spec: &str) -> Option<MmioDevice> {
    let (size, rest) = spec.split_once('@')?;
    let (base, irq) = rest.split_once(':')?;
    // Linux allows a fourth field (the device id) after the IRQ; we have no use for it.
    let irq = irq.split(':').next()?;
    let (digits, shift) = match size.as_bytes().last()? {
        b'K' | b'k' => (&size[..size.len() - 1], 10),
        b'M' | b'm' => (&size[..size.len() - 1], 20),
        b'G' | b'g' => (&size[..size.len() - 1], 30),
        _ => (size, 0),
    };
    let size = number(digits)?.checked_mul(1 << shift)?;
    let device = MmioDevice {
        base: number(base)?,
        size,
        irq: u32::try_from(number(irq)?).ok()?,
    };
    (size != 0 && device.base.checked_add(size).is_some()).then_some(device)
}

fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_linux_accepts() {
        let d = parse_device("console=ttyS0 virtio_mmio.device=4K@0xd0000000:5 quiet").unwrap();
        assert_eq!(
            d,
            MmioDevice {
                base: 0xd000_0000,
                size: 4096,
                irq: 5
            }
        );
        // QEMU microvm's own spelling: decimal size, a hex base.
        let d = parse_device("virtio_mmio.device=512@0xfeb00e00:19").unwrap();
        assert_eq!((d.base, d.size, d.irq), (0xfeb0_0e00, 512, 19));
        assert_eq!(
            parse_device("virtio_mmio.device=1M@4096:3:7").unwrap().size,
            1 << 20
        );
    }

    #[test]
    fn refuses_what_does_not_parse() {
        for bad in [
            "",
            "virtio_mmio.device=",
            "virtio_mmio.device=4K",
            "virtio_mmio.device=4K@0xd0000000",
            "virtio_mmio.device=0@0x1000:5",
            "virtio_mmio.device=4K@0xfffffffffffff000:5",
            "virtio_mmio.device=4Q@0x1000:5",
            "virtio_mmio.device=4K@0x1000:99999999999",
        ] {
            assert_eq!(parse_device(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_word_we_write_is_the_word_we_read() {
        let d = MmioDevice {
            base: CONSOLE_MMIO_BASE,
            size: CONSOLE_MMIO_SIZE,
            irq: CONSOLE_IRQ as u32,
        };
        assert_eq!(d.cmdline_word(), "virtio_mmio.device=4K@0xd0000000:5");
        assert_eq!(parse_device(&d.cmdline_word()), Some(d));
    }
}
