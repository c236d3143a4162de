//! Hostile programs stay contained. A fork bomb (tests/c/forkbomb.c) fills the process
//! table, fork fails with EAGAIN, one kill(-pgid, SIGKILL) ends it, pid 1 reaps every orphan
//! and the kernel goes on. Destructive, so only in our guest, never on the host (where tests
//! run as root; the program also refuses to run unless it is pid 1). Under KVM and QEMU TCG,
//! with a small process table (nproc=64) so that filling it takes moments; and under KVM with
//! little memory (16 MiB) and a large table, so that memory runs out first. And hostile system
//! calls (tests/c/sysfuzz.c), below.

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

fn vmm_with_memory(initrd: &std::path::Path, mib: u32, cmdline: &str) -> common::lde::Run {
    let mut cmd = common::vmm();
    cmd.args(["--timeout", &common::lde::TIMEOUT_SECS.to_string()])
        .args(["--memory", &mib.to_string()])
        .arg("--initrd")
        .arg(initrd)
        .args(["--cmdline", cmdline]);
    common::lde::run(cmd)
}

#[test]
fn a_fork_bomb_that_exhausts_memory_gets_enomem_or_oom_kills_and_pid_1_goes_on() {
    let initrd = guest_archive("forkbomb-memory", &["forkbomb"], "memory");
    let run = vmm_with_memory(&initrd, 16, "nproc=1024");
    assert_all_passed(&run, "forkbomb");
    // Memory, not the table, ran out: fork said ENOMEM, or a copy-on-write fault found no
    // frame and the kernel killed that process (with a console line). Never pid 1.
    let oom: Vec<&str> = run
        .kill_lines()
        .into_iter()
        .filter(|l| l.contains("out of memory for a page"))
        .collect();
    assert!(
        run.find_line("forkbomb: fork failed with ENOMEM").is_some() || !oom.is_empty(),
        "\n{}",
        run.dump()
    );
    for k in run.kill_lines() {
        assert!(
            k.contains("out of memory") && k.ends_with("[signal 9]") && !k.contains("pid 1 "),
            "{k}\n{}",
            run.dump()
        );
    }
    // Once the bomb is reaped its memory is back, but for what the kernel keeps on purpose:
    // the process slots it grew (a few KiB each, ~120 here), 16 spare kernel stacks (256 KiB)
    // and heap it grew. Kernel stacks of every other slot are given back; when they were not,
    // 2.5 MiB stayed out.
    let free_kib = |line: &str| -> u64 {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| *w == "KiB")
            .expect("a KiB figure");
        words[at - 1].parse().unwrap_or_else(|_| panic!("{line}"))
    };
    let at_boot = free_kib(run.assert_line("RAM range(s),"));
    let at_end = free_kib(run.assert_line("memory: "));
    assert!(
        at_end + 1536 >= at_boot,
        "{} KiB free at boot, {} KiB at the end\n{}",
        at_boot,
        at_end,
        run.dump()
    );
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

/// tests/c/sysfuzz.c: rounds of children making hostile system calls (every number, arguments
/// that break kernels); each child ends however it ends, one still running is killed, and the
/// kernel must go on: no panic, no kill of anything but the children, and a fork, a pipe and
/// a wait that still work at the end (all_passed also means no kernel panic). The seeds are
/// fixed, so that a failure replays: `vmm --user "sysfuzz ROUNDS SEED"`.
#[track_caller]
fn assert_fuzz_contained(run: &common::lde::Run, rounds: u32) {
    assert_all_passed(run, "sysfuzz");
    run.assert_line(&format!("sysfuzz: {rounds} rounds: "));
}

#[test]
fn hostile_system_calls_leave_the_kernel_running() {
    let initrd = guest_archive("sysfuzz", &["sysfuzz"], "300 0x5eed");
    let run = run_kvm(&initrd, "");
    assert_fuzz_contained(&run, 300);
}

#[test]
fn hostile_system_calls_under_qemu_tcg() {
    // The hardware `syscall` path, with its own checks of RIP and RCX.
    let initrd = guest_archive("sysfuzz-tcg", &["sysfuzz"], "100 0x7c9");
    let run = run_tcg(&initrd, "");
    assert_fuzz_contained(&run, 100);
}
