//! The C programs of the process tests (tests/c/*.c): built static with musl-gcc, run first on
//! the host (so a test checks the kernel, not the program), then in our guest under KVM (`vmm`)
//! and under QEMU TCG (scripts/qemu.sh, the only place the hardware `syscall` path runs).
//! In the guest the programs of an archive are at /bin/NAME and start with PATH=/bin; on the
//! host the same files go into a scratch directory named as the program's argument and PATH.

#![allow(dead_code)]

use super::lde::{archive, repo_root, require_tool, run, Run, TIMEOUT_SECS};
use super::{scratch_dir, write_file};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const INSTALL: &str = "musl-gcc is required for these tests: sudo apt-get install musl-tools";

/// The text file every archive carries as `notes`: something execve must refuse (ENOEXEC).
pub const NOTES: &[u8] = b"not a program\n";

/// Per test binary, so that two binaries never write the same file.
fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(concat!("c-", env!("CARGO_CRATE_NAME")))
}

/// tests/c/NAME.c built with `musl-gcc -static -O2` (once per test binary).
#[track_caller]
pub fn c_prog(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let exe = out_dir().join(name);
    if !built.iter().any(|b| b == name) {
        require_tool("musl-gcc", INSTALL);
        std::fs::create_dir_all(out_dir()).unwrap();
        let src = repo_root().join("tests/c").join(format!("{name}.c"));
        let out = Command::new("musl-gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&exe)
            .arg(&src)
            .output()
            .unwrap_or_else(|e| panic!("{INSTALL} (cannot run musl-gcc: {e})"));
        assert!(
            out.status.success(),
            "musl-gcc {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        built.push(name.to_string());
    }
    exe
}

/// A directory standing for /bin on the host: the programs and `notes` (executable, as
/// Linux wants it before it can say ENOEXEC).
///
/// The programs are hard links to musl-gcc's output, not copies: a copy opens the file for
/// writing in this process, and a child that another test thread forks meanwhile inherits that
/// descriptor until it execs, so running the copy can fail with ETXTBSY ("Text file busy").
/// A link writes nothing; musl-gcc, which wrote the file, has exited.
fn host_bin(test: &str, progs: &[&str]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir(&format!("{test}-host-bin"));
    for p in progs {
        let to = dir.join(p);
        let _ = std::fs::remove_file(&to);
        std::fs::hard_link(c_prog(p), &to)
            .unwrap_or_else(|e| panic!("cannot link {} into {}: {e}", p, dir.display()));
    }
    let notes = write_file(&dir, "notes", NOTES);
    std::fs::set_permissions(&notes, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Runs `progs[0]` on the host with the scratch /bin as its first argument and as PATH, with
/// `args` after it, killed after TIMEOUT_SECS.
pub fn run_host(test: &str, progs: &[&str], args: &[&str]) -> Run {
    let bin = host_bin(test, progs);
    let mut cmd = Command::new(bin.join(progs[0]));
    cmd.arg(&bin)
        .args(args)
        .env_clear()
        .env("PATH", &bin)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let command = format!("{cmd:?}");
    let start = Instant::now();
    let mut child =
        spawn_past_etxtbsy(&mut cmd).unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    // Read both pipes on threads so that a chatty program never blocks on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if start.elapsed() > Duration::from_secs(TIMEOUT_SECS.into()) {
            let _ = child.kill();
            let _ = child.wait();
            break Some(124);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        wall: start.elapsed(),
        command,
    }
}

/// `cmd.spawn()`, tried again for a moment while it fails with ETXTBSY: a second guard, for any
/// file this process wrote that another test thread's child still holds open before its exec.
fn spawn_past_etxtbsy(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// An archive (in a scratch file) of the programs and `notes`, starting `progs[0] ARGS`.
pub fn guest_archive(test: &str, progs: &[&str], args: &str) -> PathBuf {
    let dir = scratch_dir(&format!("{test}-guest"));
    let notes = write_file(&dir, "notes", NOTES);
    let paths: Vec<PathBuf> = progs.iter().map(|p| c_prog(p)).collect();
    let mut files: Vec<(&str, &Path)> = progs
        .iter()
        .zip(&paths)
        .map(|(n, p)| (*n, p.as_path()))
        .collect();
    files.push(("notes", &notes));
    let start = if args.is_empty() {
        progs[0].to_string()
    } else {
        format!("{} {args}", progs[0])
    };
    let cpio = archive(&files, &[&start]);
    write_file(&dir, "archive.cpio", &cpio)
}

/// Boots the archive under KVM (`vmm`), with a kernel command line.
pub fn run_kvm(initrd: &Path, cmdline: &str) -> Run {
    let mut cmd = super::vmm();
    cmd.args(["--timeout", &TIMEOUT_SECS.to_string()])
        .arg("--initrd")
        .arg(initrd)
        .args(["--cmdline", cmdline]);
    run(cmd)
}

/// Boots the archive under QEMU with the CPU emulated in full (scripts/qemu.sh, ACCEL=tcg).
pub fn run_tcg(initrd: &Path, cmdline: &str) -> Run {
    require_tool(
        "qemu-system-x86_64",
        "qemu-system-x86_64 is required: sudo apt-get install qemu-system-x86",
    );
    let mut cmd = Command::new(repo_root().join("scripts/qemu.sh"));
    cmd.env("ACCEL", "tcg")
        .env_remove("QEMU")
        .args(["--timeout", &TIMEOUT_SECS.to_string()])
        .arg("--initrd")
        .arg(initrd)
        .args(["--cmdline", cmdline]);
    let run = run(cmd);
    run.assert_line("TCGTCGTCGTCG");
    run
}

/// The program printed "PROG: all passed", no "PROG: FAIL", and exited 0; the kernel killed
/// nothing it was not asked to and did not panic.
#[track_caller]
pub fn assert_all_passed(run: &Run, prog: &str) {
    run.assert_no_failed_checks();
    run.assert_no_line("kernel panic");
    run.assert_line(&format!("{prog}: all passed"));
    run.assert_status(0);
}

/// A well-behaved program: on the host first, then under KVM; each must pass. Returns the
/// KVM run for further checks.
#[track_caller]
pub fn host_then_kvm(test: &str, progs: &[&str]) -> Run {
    let host = run_host(test, progs, &[]);
    assert!(
        host.status == Some(0) && host.stdout.contains(&format!("{}: all passed", progs[0])),
        "on the host Linux first:\n{}",
        host.dump()
    );
    let kvm = run_kvm(&guest_archive(test, progs, ""), "");
    assert_all_passed(&kvm, progs[0]);
    kvm
}

/// The same program under QEMU TCG.
#[track_caller]
pub fn under_tcg(test: &str, progs: &[&str]) -> Run {
    let tcg = run_tcg(&guest_archive(&format!("{test}-tcg"), progs, ""), "");
    assert_all_passed(&tcg, progs[0]);
    tcg
}
