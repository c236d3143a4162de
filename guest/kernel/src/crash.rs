//! `crash=` on the command line: the kernel fails on purpose, to show (and test) what a kernel
//! bug looks like and that the VMM still saves what it can (its trace, the console). `ring0`
//! faults at boot, `exit` faults when the first process ends, `triple` shuts the CPU down
//! then (no trap table, then an exception: a triple fault).

use crate::sync::CpuCell;
use kcore::cmdline::Crash;

static AT_EXIT: CpuCell<Option<Crash>> = CpuCell::new(None);

/// At boot, with the trap table in place: crash now, or arm the crash at the first exit.
pub fn at_boot(crash: Option<Crash>) {
    match crash {
        Some(Crash::Ring0AtBoot) => fault_in_ring0(),
        other => AT_EXIT.set(other),
    }
}

/// A process ended (exit.rs, after its trace record).
pub fn at_exit() {
    match AT_EXIT.get() {
        Some(Crash::TripleAtExit) => triple_fault(),
        Some(_) => fault_in_ring0(),
        None => {}
    }
}

#[cold]
fn fault_in_ring0() {
    // SAFETY: deliberately not safe: a read of the unmapped guard page below the first
    // kernel stack, so the page-fault handler finds a fault in ring 0 and panics.
    unsafe { core::ptr::read_volatile(crate::memory::paging::KERNEL_STACKS as *const u64) };
}

#[cold]
fn triple_fault() -> ! {
    // An IDT limit of 0: no gate for the `ud2`, nor for the #GP and the double fault it
    // brings, so the CPU shuts down (a VM exit for the VMM).
    static EMPTY_IDT: [u8; 10] = [0; 10];
    // SAFETY: deliberately not safe: this ends the machine; nothing runs after it.
    unsafe { core::arch::asm!("lidt [{}]", "ud2", in(reg) EMPTY_IDT.as_ptr(), options(noreturn)) }
}
