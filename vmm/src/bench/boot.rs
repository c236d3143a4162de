//! Booting to a program, whole process, from the outside (issue 10): `vmm --user
//! "/bin/busybox true"` from its start to its exit, beside QEMU (`-M microvm -accel kvm`)
//! booting the same kernel with the same archive. Runs alternate (ours, QEMU, ours...) so that a
//! noisy moment does not fall on one side only; wall time, given in TSC cycles like the other
//! rows.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::lines::Stat;
use crate::initrd::{build_program_archive, UserProgram};

/// The program booted: Debian's busybox-static (the test command installs it).
pub const BUSYBOX: &str = "/bin/busybox";
const RUNS: usize = 5;

/// `("boot_busybox", ours)` and `("boot_busybox_qemu", QEMU's)`, as far as they could be had;
/// what could not goes to `problems`.
pub fn measure(
    kernel: &Path,
    tmp: &Path,
    tsc_hz: f64,
    problems: &mut Vec<String>,
) -> Vec<(&'static str, Stat)> {
    let mut rows = Vec::new();
    if !Path::new(BUSYBOX).is_file() {
        problems.push(format!(
            "boot rows: no {BUSYBOX} (sudo apt-get install busybox-static)"
        ));
        return rows;
    }
    let program = UserProgram {
        path: BUSYBOX.into(),
        args: vec!["true".into()],
    };
    let archive = match build_program_archive(&[program]) {
        Ok(bytes) => {
            let p = tmp.join("busybox.cpio");
            if let Err(e) = std::fs::write(&p, bytes) {
                problems.push(format!("boot rows: cannot write {}: {e}", p.display()));
                return rows;
            }
            p
        }
        Err(e) => {
            problems.push(format!("boot rows: cannot pack {BUSYBOX}: {e}"));
            return rows;
        }
    };
    let Ok(vmm) = std::env::current_exe() else {
        problems.push("boot rows: cannot find the vmm binary".into());
        return rows;
    };
    let ours = || {
        let mut c = Command::new(&vmm);
        // The same machine as the trap rows (mod.rs's run_child): no virtio console.
        c.args(["-qq", "--timeout", "60", "--no-virtio-console", "--user"])
            .arg(format!("{BUSYBOX} true"));
        c
    };
    let qemu = || qemu_command(kernel, &archive);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut qemu_ok = true;
    for _ in 0..RUNS {
        match time(ours(), 0) {
            Ok(ns) => a.push(ns),
            Err(e) => {
                problems.push(format!("boot rows: vmm: {e}"));
                break;
            }
        }
        if qemu_ok {
            match time(qemu(), 1) {
                Ok(ns) => b.push(ns),
                Err(e) => {
                    problems.push(format!("boot rows: QEMU: {e}"));
                    qemu_ok = false;
                }
            }
        }
    }
    let cycles = |ns: &[u64]| -> Vec<u64> {
        ns.iter()
            .map(|&n| (n as f64 * tsc_hz / 1e9) as u64)
            .collect()
    };
    if let Some(s) = Stat::from_samples(&mut cycles(&a)) {
        rows.push(("boot_busybox", s));
    }
    if let Some(s) = Stat::from_samples(&mut cycles(&b)) {
        rows.push(("boot_busybox_qemu", s));
    }
    rows
}

/// QEMU as scripts/qemu.sh runs it, with KVM: the same machine model and devices we use.
fn qemu_command(kernel: &Path, archive: &PathBuf) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    c.args(["-M", "microvm", "-accel", "kvm", "-m", "512", "-kernel"])
        .arg(kernel)
        .arg("-initrd")
        .arg(archive)
        .args([
            "-serial",
            "null",
            "-display",
            "none",
            "-nodefaults",
            "-no-reboot",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ]);
    c
}

/// Runs `cmd` to its end, output thrown away; its wall time in nanoseconds. Its exit status
/// must say `busybox true` succeeded: `ok` (0 from vmm; (0 << 1) | 1 = 1 from QEMU's
/// isa-debug-exit).
fn time(mut cmd: Command, ok: i32) -> Result<u64, String> {
    let start = Instant::now();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run: {e}"))?;
    let ns = start.elapsed().as_nanos() as u64;
    if status.code() == Some(ok) {
        Ok(ns)
    } else {
        Err(format!("the guest ended with {status}"))
    }
}
