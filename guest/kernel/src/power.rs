//! Powering off: a byte to port 0xf4 (our VMM's exit port, and QEMU's isa-debug-exit).

use x86_64::instructions::port::Port;

/// Exit statuses the kernel itself writes.
pub use abi::machine::exit_status::{
    BOOT_FAILURE as EXIT_BOOT_FAILURE, KERNEL_PANIC as EXIT_KERNEL_PANIC,
};

pub fn power_off(status: u8) -> ! {
    crate::trace_events::stamp();
    // SAFETY: port 0xf4 is the exit device; the write ends the VM.
    unsafe { Port::<u8>::new(abi::machine::port::EXIT).write(status) };
    // Without an exit device (another VMM), stop here for good.
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
