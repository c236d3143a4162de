//! Signals from C (tests/c/signals.c, with the register code in sigregs.h): on the host Linux
//! first, then in our guest under KVM and under QEMU TCG. What it checks is in
//! tests/c/README.md.

mod common;
use common::c::*;

#[test]
fn signals_keep_registers_mask_restart_and_refuse_forged_frames() {
    let run = host_then_kvm("signals", &["signals"]);
    for line in [
        "signals: ok registers and SSE state across a handler (kill)",
        "signals: ok registers and SSE state across a handler (timer)",
        "signals: ok masked signals stay pending, sigsuspend",
        "signals: ok SIGKILL and SIGSTOP cannot be caught, ignored or blocked",
        "signals: ok EINTR and SA_RESTART",
        "signals: ok faults in ring 3 reach their handlers",
        "signals: ok forged sigreturn frames never reach ring 0",
        "signals: ok one alarm per process, whichever thread sets it",
    ] {
        run.assert_line(line);
    }
    // Every process the kernel killed is one of the children that were meant to die, by
    // SIGSEGV; none of them the program itself (pid 1).
    for k in run.kill_lines() {
        let pid: u32 = k
            .strip_prefix("kernel: killed pid ")
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{k}"));
        assert!(pid > 1 && k.ends_with("[signal 11]"), "{k}\n{}", run.dump());
    }
}

#[test]
fn signals_under_qemu_tcg() {
    under_tcg("signals", &["signals"]);
}
