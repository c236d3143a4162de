//! The same kernel and ring-3 programs under QEMU with `-accel tcg`, through scripts/qemu.sh.
//! TCG emulates the whole CPU, so `syscall` and `int 0x80` take their ordinary paths there (on
//! this machine's kvm_pvm they arrive as #PF and #UD), the timer is the LAPIC's periodic mode
//! calibrated with the PIT, and there is no SMEP/SMAP: a cross-check of what users with hardware
//! KVM get. The script turns QEMU's exit status (v << 1) | 1 back into v, so the statuses
//! asserted here are vmm's.
//!
//! QEMU is required (Debian's qemu-system-x86, which .ci/run installs): without it these tests
//! fail, saying how to install it.

mod common;
use common::lde;

use common::scratch_dir;
use lde::*;
use std::process::Command;

const INSTALL: &str = "qemu-system-x86_64 is required for these tests: \
                       sudo apt-get install qemu-system-x86";

#[track_caller]
fn require_qemu() {
    require_tool("qemu-system-x86_64", INSTALL);
    assert!(
        kernel_path().is_file(),
        "no kernel at {}: `cargo build -p vmm` builds it",
        kernel_path().display()
    );
}

fn script() -> Command {
    let mut c = Command::new(repo_root().join("scripts/qemu.sh"));
    c.env("ACCEL", "tcg").env_remove("QEMU");
    c
}

/// scripts/qemu.sh ARGS with a generous --timeout.
fn run_qemu(args: &[&str]) -> Run {
    require_qemu();
    let mut c = script();
    c.args(["--timeout", &TIMEOUT_SECS.to_string()]).args(args);
    run(c)
}

/// Our kernel's banner under TCG names QEMU's hypervisor signature: the run was not on KVM.
#[track_caller]
fn assert_tcg(run: &Run) {
    run.assert_line("TCGTCGTCGTCG");
}

/// `-cpu max`: TCG then offers SMEP and SMAP (and enforces them, which kvm_pvm's emulation may
/// not), so the kernel runs with both on along the ordinary `syscall`/`int 0x80` paths, as on a
/// hardware CPU that has them.
#[test]
fn syscalls_and_the_demo_pass_under_tcg_with_smep_and_smap() {
    let run = run_qemu(&["--user", &user("syscalls", ""), "--", "-cpu", "max"]);
    assert_tcg(&run);
    let protect = run.assert_line("  protect ");
    assert!(protect.contains("SMEP on, SMAP on"), "{protect}");
    run.assert_status(0);
    let run = run_qemu(&["--", "-cpu", "max"]);
    run.assert_status(0);
    run.assert_line("init: all 11 checks passed");
}

#[test]
fn default_demo_passes_under_qemu_tcg() {
    let run = run_qemu(&[]);
    run.assert_status(0);
    assert_tcg(&run);
    run.assert_line("init: all 11 checks passed");
    let report = run.report();
    assert_eq!(report.rows.len(), 12, "\n{}", run.dump());
    for (pid, status) in [
        (5, "killed (136)"),
        (6, "killed (139)"),
        (7, "killed (139)"),
    ] {
        assert_eq!(report.row(pid).status, status, "\n{}", run.dump());
    }
    assert_eq!(run.kill_line(5).what, "divide error");
    assert_eq!(run.kill_line(7).what, "page fault");
}

#[test]
fn syscalls_pass_under_qemu_tcg_through_the_ordinary_syscall_and_int_0x80_paths() {
    let run = run_qemu(&["--user", &user("syscalls", "")]);
    run.assert_no_failed_checks();
    run.assert_status(0);
    assert_tcg(&run);
    run.assert_line("passed, 0 failed");
    run.assert_line("syscalls: int 0x80 getpid: ok");
    run.assert_line("syscalls: int 0x80 write: ok");
}

/// `trace=events` points the trap table and LSTAR at the recording twins of the system-call
/// entries (trap_entry.rs): under TCG the CPU delivers `syscall` and `int 0x80` itself, so the
/// twins of those two entries run here, as they would on hardware KVM. (QEMU has no trace
/// port: the kernel records and hands the full buffer to nobody.)
#[test]
fn syscalls_pass_under_qemu_tcg_through_the_recording_entries() {
    let run = run_qemu(&["--cmdline", "trace=events", "--user", &user("syscalls", "")]);
    run.assert_no_failed_checks();
    run.assert_status(0);
    assert_tcg(&run);
    run.assert_line("cmdline   \"trace=events\"");
    // QEMU's MC146818 gives the date, as our VMM's CMOS clock does.
    run.assert_line("(from the CMOS clock)");
    run.assert_line("passed, 0 failed");
    run.assert_line("syscalls: int 0x80 getpid: ok");
    run.assert_line("syscalls: int 0x80 write: ok");
}

#[test]
fn exit_statuses_above_127_survive_qemus_exit_code() {
    // QEMU exits with (v << 1) | 1 truncated to 8 bits: 136 would come out as 17, i.e. 8.
    let run = run_qemu(&["--user", &user("divzero", "")]);
    run.assert_status(136);
    assert_eq!(run.kill_line(1).what, "divide error");
    let run = run_qemu(&["--user", &user("privileged", "out")]);
    run.assert_status(139);
    let run = run_qemu(&["--user", &user("args", "a b c")]);
    run.assert_status(4);
    run.assert_line("argv[3]=c");
}

#[test]
fn preemption_under_qemu_tcg_lets_the_sleeper_finish() {
    let run = run_qemu(&[
        "--user",
        &user("sleeper", ""),
        "--user",
        &user("spinforever", ""),
    ]);
    run.assert_status(0);
    assert_tcg(&run);
    run.assert_line("sleeper: woke after");
}

#[test]
fn the_scripts_archive_is_the_one_vmm_would_pack() {
    // No QEMU needed: scripts/qemu.sh --pack writes the archive in bash; it must be byte for
    // byte what vmm's own writer (vmm/src/initrd/cpio.rs) makes of the same --user values.
    let dir = scratch_dir("qemu_pack");
    let out = dir.join("packed.cpio");
    let mut c = script();
    c.arg("--pack")
        .arg(&out)
        .args(["--user", &user("args", "one  two\tthree")])
        .args(["--user", &user("hello", "")]);
    let r = run(c);
    r.assert_status(0);
    let got = std::fs::read(&out).unwrap();
    let want = archive(
        &[("args", &prog("args")), ("hello", &prog("hello"))],
        &["args one two three", "hello"],
    );
    assert!(
        got == want,
        "scripts/qemu.sh --pack differs from CpioWriter"
    );
}

#[test]
fn the_script_says_what_is_missing() {
    let r = run({
        let mut c = script();
        c.env("QEMU", "no-such-qemu-binary");
        c
    });
    assert_eq!(r.status, Some(4), "\n{}", r.dump());
    assert!(
        r.stderr.contains("apt-get install qemu-system-x86"),
        "\n{}",
        r.dump()
    );

    let dir = scratch_dir("qemu_missing_kernel");
    let r = run({
        let mut c = script();
        c.arg("--kernel").arg(dir.join("no-kernel"));
        c
    });
    assert_eq!(r.status, Some(3), "\n{}", r.dump());
    assert!(
        r.stderr.contains("cargo build --release -p vmm"),
        "\n{}",
        r.dump()
    );

    let notelf = common::write_file(&dir, "notelf", b"text\n");
    let r = run({
        let mut c = script();
        c.arg("--user").arg(&notelf);
        c
    });
    assert_eq!(r.status, Some(3), "\n{}", r.dump());
    assert!(r.stderr.contains("not an ELF"), "\n{}", r.dump());
}

#[test]
fn the_scripts_timeout_is_status_124() {
    require_qemu();
    let mut c = script();
    c.args(["--timeout", "2", "--user", &user("spinforever", "")]);
    let r = run(c);
    assert_eq!(r.status, Some(124), "\n{}", r.dump());
}
