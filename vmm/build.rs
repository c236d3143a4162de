//! Builds the guest (guest/, its own workspace for x86_64-unknown-none) with a nested
//! `cargo build --release`, and embeds its results in the vmm binary:
//!   OUT_DIR/kernel.elf    the kernel (target/guest/x86_64-unknown-none/release/kernel)
//!   OUT_DIR/default.cpio  every program of guest/user, with START from guest/user/default-set
//!   OUT_DIR/floor.elf     the floor guest of `vmm bench` (guest/floor), empty if absent
//! The archive is also written to target/guest/default.cpio, for QEMU's -initrd.
//! When guest/kernel does not exist yet, or VMM_NO_GUEST=1 is set (to work on the host while
//! the guest does not build), empty files are embedded and `vmm` asks for a KERNEL.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use abi::cpio;

const GUEST_TARGET: &str = "x86_64-unknown-none";

/// Environment the outer cargo sets for this build script that would leak into the nested
/// build and change it (host flags, target, wrappers such as clippy-driver, jobserver).
const LEAKY_VARS: &[&str] = &[
    "CARGO_TARGET_DIR",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_MAKEFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "TARGET",
    "HOST",
    "OUT_DIR",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
    "RUSTC_LINKER",
];
const LEAKY_PREFIXES: &[&str] = &["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_"];

fn fail(msg: &str) -> ! {
    // Cargo shows a failed build script's stderr under "--- stderr"; keep the cause last.
    eprintln!("\nerror: {msg}");
    std::process::exit(1);
}

fn ensure_target_installed() {
    let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return; // No rustup: the toolchain is managed otherwise; the build will say if not.
    };
    let installed = String::from_utf8_lossy(&out.stdout);
    if installed.lines().any(|l| l.trim() == GUEST_TARGET) {
        return;
    }
    println!("cargo:warning=installing the {GUEST_TARGET} target with rustup");
    let ok = Command::new("rustup")
        .args(["target", "add", GUEST_TARGET])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        fail(&format!(
            "`rustup target add {GUEST_TARGET}` failed; run it by hand"
        ));
    }
}

/// The guest's executables, from the nested build's JSON messages: (manifest, name, path).
fn build_guest(guest: &Path, target_dir: &Path) -> Vec<(PathBuf, String, PathBuf)> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(guest)
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in LEAKY_VARS {
        cmd.env_remove(var);
    }
    for (key, _) in env::vars_os() {
        let k = key.to_string_lossy();
        if LEAKY_PREFIXES.iter().any(|p| k.starts_with(p)) {
            cmd.env_remove(&key);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run cargo for the guest: {e}")));
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        fail(&format!(
            "building the guest (cd {} && cargo build --release) failed; its output is above",
            guest.display()
        ));
    }
    let mut exes = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        if let (Some(exe), Some(manifest), Some(name)) = (
            msg["executable"].as_str(),
            msg["manifest_path"].as_str(),
            msg["target"]["name"].as_str(),
        ) {
            exes.push((
                PathBuf::from(manifest),
                name.to_string(),
                PathBuf::from(exe),
            ));
        }
    }
    exes
}

/// The START manifest from guest/user/default-set: one line per program, `#` comments skipped.
fn default_start(user_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(user_dir.join("default-set")).ok()?;
    let mut start = String::new();
    for line in text.lines().map(str::trim) {
        if !line.is_empty() && !line.starts_with('#') {
            start.push_str(line);
            start.push('\n');
        }
    }
    Some(start)
}

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let guest = root.join("guest");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let target_dir = root.join("target").join("guest");

    for p in [
        "guest/Cargo.toml",
        "guest/Cargo.lock",
        "guest/.cargo/config.toml",
        "guest/kernel",
        "guest/user",
        "guest/floor",
        "guest/kcore",
        "rust-toolchain.toml",
        "abi/src",
        "abi/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }

    let kernel_out = out_dir.join("kernel.elf");
    let archive_out = out_dir.join("default.cpio");
    let floor_out = out_dir.join("floor.elf");
    std::fs::write(&floor_out, b"").unwrap();
    println!("cargo:rerun-if-env-changed=VMM_NO_GUEST");
    let skip = env::var_os("VMM_NO_GUEST").is_some_and(|v| !v.is_empty() && v != "0");
    if skip || !guest.join("kernel/Cargo.toml").exists() {
        let why = if skip {
            "VMM_NO_GUEST is set"
        } else {
            "guest/kernel does not exist yet"
        };
        println!("cargo:warning={why}: no guest kernel or programs embedded");
        std::fs::write(&kernel_out, b"").unwrap();
        std::fs::write(&archive_out, cpio::CpioWriter::new().finish()).unwrap();
        return;
    }

    ensure_target_installed();
    let exes = build_guest(&guest, &target_dir);

    let kernel = exes
        .iter()
        .find(|(m, name, _)| m.starts_with(guest.join("kernel")) && name == "kernel")
        .map(|(_, _, p)| p.clone())
        .unwrap_or_else(|| target_dir.join(GUEST_TARGET).join("release").join("kernel"));
    let kernel_bytes = std::fs::read(&kernel).unwrap_or_else(|e| {
        fail(&format!(
            "guest built, but its kernel {} cannot be read: {e}",
            kernel.display()
        ))
    });
    std::fs::write(&kernel_out, kernel_bytes).unwrap();

    // The floor guest of `vmm bench`, when the guest workspace has it.
    if let Some((_, _, floor)) = exes
        .iter()
        .find(|(m, name, _)| m.starts_with(guest.join("floor")) && name == "floor")
    {
        let bytes = std::fs::read(floor)
            .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", floor.display())));
        std::fs::write(&floor_out, bytes).unwrap();
    }

    // Every binary of guest/user, sorted by name so the archive is reproducible.
    let user_dir = guest.join("user");
    let mut programs: Vec<(String, PathBuf)> = exes
        .iter()
        .filter(|(m, _, _)| m.starts_with(&user_dir))
        .map(|(_, name, path)| (name.clone(), path.clone()))
        .collect();
    programs.sort();
    // Page-aligned: the kernel maps each program's pages instead of copying them.
    let mut archive = cpio::CpioWriter::page_aligned();
    if !programs.is_empty() {
        match default_start(&user_dir) {
            Some(start) => archive.add_file("START", start.as_bytes()),
            None => println!(
                "cargo:warning=guest/user/default-set is missing: every program will start"
            ),
        }
    }
    for (name, path) in &programs {
        let bytes = std::fs::read(path)
            .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())));
        archive.add_file(name, &bytes);
    }
    if !programs.is_empty() {
        add_etc(&mut archive, &user_dir.join("etc"));
    }
    let archive = archive.finish();
    std::fs::write(&archive_out, &archive).unwrap();
    std::fs::write(target_dir.join("default.cpio"), &archive).unwrap();
}

/// guest/user/etc's files at /etc (read-only there, as every archive file), and root's home:
/// `whoami`, `ls -l` and `id` name users from /etc/passwd and /etc/group.
fn add_etc(archive: &mut cpio::CpioWriter, etc: &Path) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(etc)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    archive.add_dir("/root");
    for f in files.iter().filter(|f| f.is_file()) {
        let bytes =
            std::fs::read(f).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", f.display())));
        let name = f.file_name().unwrap().to_string_lossy();
        archive.add_file_mode(&format!("/etc/{name}"), 0o644, &bytes);
    }
}
