//! The local APIC: our timer and the end-of-interrupt register. x2APIC (MSRs) when the CPU has
//! it, as KVM always offers; otherwise xAPIC through MMIO (QEMU's TCG).

use crate::memory::paging::{map_mmio, LAPIC_MMIO};
use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

use crate::trap_frame::{SPURIOUS_VECTOR, TIMER_VECTOR};
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

const APIC_BASE_MSR: u32 = 0x1b;
/// IA32_TSC_DEADLINE (also written by the timer tick's leaf, trap_entry.rs).
pub const TSC_DEADLINE_MSR: u32 = 0x6e0;
/// The EOI register in x2APIC mode: MSR 0x800 + REG_EOI / 16 (the tick's leaf writes it).
pub const X2APIC_EOI_MSR: u32 = 0x800 + (REG_EOI >> 4);
const REG_TPR: u32 = 0x80;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_LINT0: u32 = 0x350;
const REG_INITIAL_COUNT: u32 = 0x380;
const REG_CURRENT_COUNT: u32 = 0x390;
const REG_DIVIDE: u32 = 0x3e0;
const MASKED: u32 = 1 << 16;
const MODE_PERIODIC: u32 = 0b01 << 17;
const MODE_TSC_DEADLINE: u32 = 0b10 << 17;

/// x2APIC (MSRs) rather than xAPIC (MMIO); set once by `init`.
static X2APIC: AtomicBool = AtomicBool::new(false);

fn write(reg: u32, value: u32) {
    // SAFETY: `reg` is a LAPIC register offset from the SDM; x2APIC maps offset/16 to MSR
    // 0x800 + offset/16, xAPIC maps it at LAPIC_MMIO + offset (mapped in `init`).
    unsafe {
        if X2APIC.load(Relaxed) {
            Msr::new(0x800 + (reg >> 4)).write(value as u64);
        } else {
            core::ptr::write_volatile((LAPIC_MMIO + reg as u64) as *mut u32, value);
        }
    }
}

fn read(reg: u32) -> u32 {
    // SAFETY: as in `write`.
    unsafe {
        if X2APIC.load(Relaxed) {
            Msr::new(0x800 + (reg >> 4)).read() as u32
        } else {
            core::ptr::read_volatile((LAPIC_MMIO + reg as u64) as *const u32)
        }
    }
}

pub fn init(x2apic: bool) -> Result<(), crate::memory::paging::OutOfMemory> {
    // SAFETY: masks every line of both 8259 PICs (KVM's irqchip and QEMU have them), so the PIT
    // cannot raise an interrupt on a vector we use for exceptions. Then enables the LAPIC in the
    // chosen mode through IA32_APIC_BASE, keeping its base address.
    unsafe {
        Port::<u8>::new(0x21).write(0xff);
        Port::<u8>::new(0xa1).write(0xff);
        let mut base = Msr::new(APIC_BASE_MSR);
        let mut v = base.read() | (1 << 11);
        if x2apic {
            v |= 1 << 10;
            X2APIC.store(true, Relaxed);
        }
        base.write(v);
        if !x2apic {
            map_mmio(LAPIC_MMIO, v & 0xf_ffff_f000)?;
        }
    }
    write(REG_SVR, 0x100 | SPURIOUS_VECTOR as u32);
    write(REG_LVT_LINT0, MASKED);
    write(REG_TPR, 0);
    write(REG_LVT_TIMER, MASKED);
    Ok(())
}

/// Whether the LAPIC is in x2APIC mode (after `init`).
pub fn x2apic() -> bool {
    X2APIC.load(Relaxed)
}

#[inline(always)]
pub fn eoi() {
    write(REG_EOI, 0);
}

pub fn timer_tsc_deadline_mode() {
    write(REG_LVT_TIMER, TIMER_VECTOR as u32 | MODE_TSC_DEADLINE);
}

/// Fires once when the TSC reaches `tsc` (0 disarms).
#[inline(always)]
pub fn set_tsc_deadline(tsc: u64) {
    // SAFETY: IA32_TSC_DEADLINE exists when CPUID says TSC-deadline mode does (checked by caller).
    unsafe { Msr::new(TSC_DEADLINE_MSR).write(tsc) };
}

/// Periodic mode: an interrupt every `count` timer ticks (divide-by-1); 0 stops it.
pub fn set_periodic(count: u32) {
    write(REG_DIVIDE, 0b1011);
    write(REG_LVT_TIMER, TIMER_VECTOR as u32 | MODE_PERIODIC);
    write(REG_INITIAL_COUNT, count);
}

/// How fast the LAPIC timer counts (divide-by-1), measured against the PIT.
pub fn measure_timer_hz() -> u64 {
    write(REG_DIVIDE, 0b1011);
    write(REG_LVT_TIMER, MASKED);
    write(REG_INITIAL_COUNT, u32::MAX);
    let hz = crate::pit::measure_hz(|| (u32::MAX - read(REG_CURRENT_COUNT)) as u64);
    write(REG_INITIAL_COUNT, 0);
    hz
}
