//! A tiny kernel that runs OSTEP chapter 6's Limited Direct Execution protocol for real.
//!
//! Boot order (each step in the file named for it): `boot` (PVH entry, long mode) → `kmain`:
//! console, boot info (`pvh`), CPU features (`cpu`), clock (`time`), then the banner.

#![no_std]
#![no_main]

mod boot;
mod console;
mod cpu;
mod memory;
mod pit;
mod power;
mod pvh;
mod sync;
mod time;

use core::panic::PanicInfo;

/// Entered from `boot.rs` on the boot stack, in the higher half, interrupts off.
#[no_mangle]
pub extern "C" fn kmain(start_info_paddr: u64) -> ! {
    console::CONSOLE.lock().init();
    let info = match pvh::read(start_info_paddr) {
        Ok(info) => info,
        Err(e) => {
            println!("kernel: unusable PVH start info at {start_info_paddr:#x}: {e:?}");
            power::power_off(power::EXIT_BOOT_FAILURE);
        }
    };
    let features = cpu::Features::detect();
    let clock = time::init(&features);

    println!("lde kernel: booted by PVH");
    println!(
        "  memory    {} MiB in {} RAM range(s)",
        info.ram_bytes() >> 20,
        info.ram().count()
    );
    println!("  cmdline   \"{}\"", info.cmdline);
    println!("  modules   {}", info.modules().len());
    println!("  cpu       {} (hypervisor: {})", features.vendor_str(), features.hypervisor_str());
    println!(
        "  tsc       {}.{:03} MHz (from {})",
        clock.tsc_hz / 1_000_000,
        clock.tsc_hz / 1000 % 1000,
        clock.source.name()
    );
    power::power_off(0);
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    x86_64::instructions::interrupts::disable();
    println!("kernel panic: {info}");
    power::power_off(power::EXIT_KERNEL_PANIC);
}
