//! The I/O APIC: where device interrupt lines (the UART's IRQ 4) become vectors on a CPU's local
//! APIC. KVM's in-kernel irqchip and QEMU's microvm both have one at the PC's usual address.
//! We program one redirection entry per device we take interrupts from; the rest stay masked.

use crate::memory::paging::{map_mmio, LAPIC_MMIO};

/// Its registers' physical address (the PC default; the VMM's and QEMU's).
const IOAPIC_PHYS: u64 = 0xfec0_0000;
/// Where we map them: the page after the local APIC's, in the kernel's MMIO slot.
const IOAPIC_MMIO: u64 = LAPIC_MMIO + 0x1000;
const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const REG_VERSION: u32 = 0x01;
const REG_REDIRECTION: u32 = 0x10;

fn write(reg: u32, value: u32) {
    // SAFETY: the IOAPIC's index and data registers, mapped uncached by `route`; selecting a
    // register and writing it only configures interrupt delivery.
    unsafe {
        core::ptr::write_volatile((IOAPIC_MMIO + IOREGSEL) as *mut u32, reg);
        core::ptr::write_volatile((IOAPIC_MMIO + IOWIN) as *mut u32, value);
    }
}

fn read(reg: u32) -> u32 {
    // SAFETY: as in `write`; reading a register has no side effect.
    unsafe {
        core::ptr::write_volatile((IOAPIC_MMIO + IOREGSEL) as *mut u32, reg);
        core::ptr::read_volatile((IOAPIC_MMIO + IOWIN) as *const u32)
    }
}

static MAPPED: crate::sync::IrqLock<Option<bool>> = crate::sync::IrqLock::new("ioapic", None);

/// Delivers interrupt line `irq` as `vector` to CPU 0 (edge-triggered, active high, as ISA
/// lines are). Returns false when there is no IOAPIC (its version register reads all ones).
pub fn route(irq: u8, vector: u8) -> bool {
    let mut mapped = MAPPED.lock();
    if mapped.is_none() {
        let ok = map_mmio(IOAPIC_MMIO, IOAPIC_PHYS).is_ok() && {
            let v = read(REG_VERSION);
            v != 0xffff_ffff && v != 0 && (v >> 16) & 0xff >= irq as u32
        };
        *mapped = Some(ok);
    }
    if *mapped != Some(true) {
        return false;
    }
    let entry = REG_REDIRECTION + 2 * irq as u32;
    write(entry + 1, 0); // destination: APIC id 0
    write(entry, vector as u32); // fixed delivery, physical, edge, active high, unmasked
    true
}
