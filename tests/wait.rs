//! wait4 and waitid, process groups and sessions, stop and continue, from C (tests/c/wait.c):
//! on the host Linux first, then in our guest (as pid 1, so orphans come to it) under KVM and
//! under QEMU TCG. What it checks is in tests/c/README.md.

mod common;
use common::c::*;

#[test]
fn wait_reports_children_groups_zombies_orphans_and_stops_as_linux() {
    let run = host_then_kvm("wait", &["wait"]);
    for line in [
        "wait: ok ECHILD and EINVAL",
        "wait: ok zombies until reaped",
        "wait: ok process groups",
        "wait: ok orphans re-parented to pid 1, which reaps them",
        "wait: ok stop and continue",
        "wait: ok a stop stops every thread of the process",
        "wait: ok a newly orphaned group with a stopped member gets SIGHUP",
    ] {
        run.assert_line(line);
    }
    // The one fault is the child that writes to address 8 on purpose.
    let kills = run.kill_lines();
    assert_eq!(kills.len(), 1, "\n{}", run.dump());
    assert!(kills[0].contains("(wait): page fault"), "{}", kills[0]);
}

#[test]
fn wait_under_qemu_tcg() {
    under_tcg("wait", &["wait"]);
}
