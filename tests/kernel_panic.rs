//! An exception in ring 0 is a kernel bug: the kernel prints "kernel panic", the exception and a
//! register dump, and powers off with its own exit status (250). `crash=ring0` on the kernel
//! command line makes it fault on purpose, once its trap table is in place.

mod common;
use common::lde;

use lde::*;

#[test]
fn a_fault_in_ring_0_is_a_kernel_panic_with_a_register_dump() {
    let run = run_vmm_lde(["--cmdline", "crash=ring0"]);
    run.assert_status(KERNEL_PANIC as i32);
    run.assert_line("kernel panic");
    let fault = run.assert_line("page fault (vector 14");
    assert!(fault.contains("in ring 0"), "{fault}\n{}", run.dump());
    // The dump: where it happened (CR2 is the unmapped guard page it read) and the registers.
    let rip = run.assert_line("  rip 0xffffffff8");
    assert!(rip.contains("cs 0x8"), "ring-0 code segment: {rip}");
    assert!(rip.contains("cr2 0xffffff0000000000"), "{rip}");
    for reg in ["rax 0x", "rdx 0x", "r8  0x", "r11 0x"] {
        run.assert_line(reg);
    }
    // Nothing in ring 3 ran: the panic came before the first program.
    run.assert_no_line("init:");
    run.assert_no_line("--- process report");
}

#[test]
fn without_crash_the_same_boot_runs_programs() {
    // The control: the same command line minus crash=ring0 boots and runs pid 1 normally.
    let run = run_user(&[user("hello", "")]);
    run.assert_status(0);
    run.assert_no_line("kernel panic");
}
