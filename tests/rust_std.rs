//! An ordinary Rust std program (tests/rust-std, its own crate), built with cargo as a user
//! would and run unmodified in our guest: for x86_64-unknown-linux-musl as the default static
//! PIE and with `-C relocation-model=static`, and by a plain `cargo build` (the host's own
//! target, x86_64-unknown-linux-gnu: a PIE linked dynamically against glibc, started by glibc's
//! dynamic linker with libc.so.6 and libgcc_s.so.1, which the VMM packs). It checks itself
//! (collections, formatting, std::thread with channels, std::time, std::process::Command,
//! std::fs in /tmp) and must pass on the host first.
//!
//! The Rust target is installed by the test command (scripts/test); without it these fail,
//! saying how to install it.

mod common;
use common::lde::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const TARGET: &str = "x86_64-unknown-linux-musl";

/// Builds tests/rust-std once per flavour ("pie", "static": for musl; "gnu": `cargo build`
/// for the host's target); returns the executable.
fn build(flavour: &'static str) -> PathBuf {
    static PIE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static FIXED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static GNU: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let cell = match flavour {
        "pie" => &PIE,
        "gnu" => &GNU,
        _ => &FIXED,
    };
    let built = cell.get_or_init(|| {
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rust-std-{flavour}"));
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--release", "--quiet"]);
        if flavour != "gnu" {
            cmd.args(["--target", TARGET]);
        }
        cmd.arg("--manifest-path")
            .arg(repo_root().join("tests/rust-std/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS");
        if flavour == "static" {
            cmd.env("RUSTFLAGS", "-C relocation-model=static");
        }
        let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "building tests/rust-std ({flavour}) failed (for musl: rustup target add {TARGET}):\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if flavour == "gnu" {
            return Ok(target_dir.join("release/stdcheck"));
        }
        Ok(target_dir.join(TARGET).join("release/stdcheck"))
    });
    match built {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// The ELF type of `exe`: 2 fixed-address, 3 position-independent.
fn elf_type(exe: &Path) -> u16 {
    let b = std::fs::read(exe).unwrap();
    u16::from_le_bytes([b[16], b[17]])
}

fn check(flavour: &'static str, want_type: u16) {
    let exe = build(flavour);
    assert_eq!(elf_type(&exe), want_type, "{}", exe.display());
    let run = passes_on_host_then_guest(&exe, &[]);
    for line in [
        "HashMap counts: ok",
        "channel from 4 threads: ok",
        "sleep 30 ms: ok",
        "Command output: ok",
        "Command of a missing program: ok",
        "std::fs in /tmp: ok",
    ] {
        run.assert_line(line);
    }
}

#[test]
fn rust_std_as_a_static_pie() {
    check("pie", 3);
}

#[test]
fn rust_std_with_fixed_addresses() {
    check("static", 2);
}

#[test]
fn rust_std_built_by_plain_cargo_build_runs_with_glibc() {
    let exe = build("gnu");
    let bytes = std::fs::read(&exe).unwrap();
    let elf = abi::elf::Elf::parse(&bytes).unwrap();
    assert_eq!(
        elf.interpreter(),
        Some(&b"/lib64/ld-linux-x86-64.so.2"[..]),
        "cargo's default target links with glibc's dynamic linker"
    );
    check("gnu", 3);
}

#[test]
fn rust_std_reads_the_clock_without_a_trap() {
    // std::time::Instant and SystemTime go through musl's clock_gettime to the vDSO: 101,000
    // reads, and the kernel counts only the start-up's and the output's system calls.
    for flavour in ["pie", "static"] {
        let exe = build(flavour);
        let run = run_user(&[format!("{} clock", exe.display())]);
        assert!(!run.stdout.contains("FAIL"), "\n{}", run.dump());
        run.assert_status(0);
        run.assert_line("100000 Instant::now in order: ok");
        let r = run.report();
        let row = r.row(1);
        assert!(row.syscalls < 100, "{flavour}: {row:?}\n{}", run.dump());
    }
}

#[test]
fn rust_std_under_qemu_tcg() {
    let exe = build("pie");
    let mut cmd = Command::new(repo_root().join("scripts/qemu.sh"));
    cmd.env("ACCEL", "tcg")
        .args(["--timeout", &TIMEOUT_SECS.to_string()])
        .args(["--user", &format!("{} threads", exe.display())]);
    let run = run(cmd);
    assert!(!run.stdout.contains("FAIL"), "\n{}", run.dump());
    run.assert_status(0);
    run.assert_line("channel from 4 threads: ok");
}
