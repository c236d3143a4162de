//! Pipes and descriptors from C (tests/c/pipes.c): on the host Linux first, then in our guest
//! under KVM and under QEMU TCG. What it checks is in tests/c/README.md.

mod common;
use common::c::*;

#[test]
fn pipes_end_block_and_carry_a_mib_intact() {
    let run = host_then_kvm("pipes", &["pipes"]);
    for line in [
        "pipes: ok EOF after the last writer",
        "pipes: ok EPIPE and SIGPIPE after the last reader",
        "pipes: ok blocking both ways",
        "pipes: ok 1 MiB intact",
        "pipes: ok writes of PIPE_BUF bytes are atomic",
        "pipes: ok a reader's buffer mapped anew or made read-only between reads",
    ] {
        run.assert_line(line);
    }
    // The floor: at least 4 KiB.
    let cap: u64 = run
        .assert_line("pipes: capacity ")
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(cap >= 4096, "{cap}");
    assert!(run.kill_lines().is_empty(), "\n{}", run.dump());
}

#[test]
fn pipes_under_qemu_tcg() {
    under_tcg("pipes", &["pipes"]);
}
