//! A hostile program stays contained (tests/c/forkbomb.c): a fork bomb fills the process
//! table, fork fails with EAGAIN, one kill(-pgid, SIGKILL) ends it, pid 1 reaps every orphan
//! and the kernel goes on. Destructive, so only in our guest, never on the host (where tests
//! run as root; the program also refuses to run unless it is pid 1). Under KVM and QEMU TCG,
//! with a small process table (nproc=64) so that filling it takes moments.

mod common;
use common::c::*;

#[track_caller]
fn assert_contained(run: &common::lde::Run) {
    assert_all_passed(run, "forkbomb");
    let count = |which: &str| -> u32 {
        run.assert_line(&format!("forkbomb: {which} bomb: "))
            .split_whitespace()
            .nth(3)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("\n{}", run.dump()))
    };
    // The table has 64 slots: pid 1 and the bomb share them.
    let first = count("first");
    assert!((50..64).contains(&first), "{first}\n{}", run.dump());
    assert!(run.kill_lines().is_empty(), "\n{}", run.dump());
}

#[test]
fn a_fork_bomb_gets_eagain_and_the_kernel_goes_on() {
    let initrd = guest_archive("forkbomb", &["forkbomb"], "");
    assert_contained(&run_kvm(&initrd, "nproc=64"));
}

#[test]
fn a_fork_bomb_under_qemu_tcg() {
    let initrd = guest_archive("forkbomb-tcg", &["forkbomb"], "");
    assert_contained(&run_tcg(&initrd, "nproc=64"));
}
