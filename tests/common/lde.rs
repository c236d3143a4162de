//! Helpers for the tests that run our own kernel and ring-3 programs (issue 3): where the build
//! left the guest, running `vmm` with a timeout, and reading what the guest printed (kill lines,
//! the shutdown report).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use abi::machine::exit_status::{BOOT_FAILURE, KERNEL_PANIC};

/// What the VMM exits with when pid 1 is killed by a divide error (SIGFPE) or a page or
/// protection fault (SIGSEGV): 128 + the signal, as a shell reports it.
pub const KILLED_FPE: i32 = abi::machine::exit_status::killed_by(abi::signal::SIGFPE) as i32;
pub const KILLED_SEGV: i32 = abi::machine::exit_status::killed_by(abi::signal::SIGSEGV) as i32;

/// The cpio "newc" writer `vmm` itself uses (one source of truth for the archive format).
pub use abi::cpio::CpioWriter;

/// Generous: a VM boot takes 1-3 s here, more when the two cores are busy with other tests.
pub const TIMEOUT_SECS: u32 = 120;

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where vmm/build.rs leaves the guest (always a release build, whatever the host profile).
pub fn guest_release_dir() -> PathBuf {
    repo_root().join("target/guest/x86_64-unknown-none/release")
}

/// A program of guest/user, as built by `cargo build -p vmm`.
pub fn prog(name: &str) -> PathBuf {
    let p = guest_release_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: vmm/build.rs builds guest/user along with vmm",
        p.display()
    );
    p
}

/// The `--user` value for a guest/user program with arguments: "PATH ARG...".
pub fn user(name: &str, args: &str) -> String {
    let p = prog(name);
    if args.is_empty() {
        p.display().to_string()
    } else {
        format!("{} {args}", p.display())
    }
}

pub fn kernel_path() -> PathBuf {
    guest_release_dir().join("kernel")
}

pub fn default_archive() -> PathBuf {
    repo_root().join("target/guest/default.cpio")
}

/// An archive of programs (name in the archive, file) with a START manifest (one line each).
pub fn archive(files: &[(&str, &Path)], start: &[&str]) -> Vec<u8> {
    let mut w = CpioWriter::new();
    let mut manifest = String::new();
    for line in start {
        manifest.push_str(line);
        manifest.push('\n');
    }
    w.add_file("START", manifest.as_bytes());
    for (name, path) in files {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        w.add_file(name, &bytes);
    }
    w.finish()
}

/// What one run of a guest produced.
pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub wall: Duration,
    pub command: String,
}

impl Run {
    /// Everything, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "command: {}\nstatus: {:?}, {:.2} s\n--- stdout\n{}--- stderr\n{}",
            self.command,
            self.status,
            self.wall.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }

    #[track_caller]
    pub fn assert_status(&self, status: i32) {
        assert_eq!(
            self.status,
            Some(status),
            "expected exit status {status}\n{}",
            self.dump()
        );
        assert!(
            !self.stderr.contains("panicked"),
            "the vmm panicked\n{}",
            self.dump()
        );
    }

    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.stdout.lines()
    }

    /// The first line that contains `needle`.
    pub fn find_line(&self, needle: &str) -> Option<&str> {
        self.lines().find(|l| l.contains(needle))
    }

    #[track_caller]
    pub fn assert_line(&self, needle: &str) -> &str {
        match self.find_line(needle) {
            Some(l) => l,
            None => panic!("no line contains {needle:?}\n{}", self.dump()),
        }
    }

    #[track_caller]
    pub fn assert_no_line(&self, needle: &str) {
        if let Some(l) = self.find_line(needle) {
            panic!("unexpected line {l:?}\n{}", self.dump());
        }
    }

    /// The lines that start with `prefix`, in order.
    pub fn lines_starting(&self, prefix: &str) -> Vec<&str> {
        self.lines()
            .map(str::trim)
            .filter(|l| l.starts_with(prefix))
            .collect()
    }

    /// The kernel's kill lines ("kernel: killed pid 5 (divzero): divide error at rip ...").
    pub fn kill_lines(&self) -> Vec<&str> {
        self.lines()
            .filter(|l| l.starts_with("kernel: killed pid "))
            .collect()
    }

    /// The kill line for `pid`.
    #[track_caller]
    pub fn kill_line(&self, pid: u32) -> KillLine {
        let prefix = format!("kernel: killed pid {pid} ");
        match self.lines().find(|l| l.starts_with(&prefix)) {
            Some(l) => KillLine::parse(l)
                .unwrap_or_else(|| panic!("kill line not as expected: {l:?}\n{}", self.dump())),
            None => panic!("no kill line for pid {pid}\n{}", self.dump()),
        }
    }

    /// No check program (syscalls, spawn, edges...) printed a "NAME: FAIL" line.
    #[track_caller]
    pub fn assert_no_failed_checks(&self) {
        let fails: Vec<&str> = self.lines().filter(|l| l.contains(": FAIL")).collect();
        assert!(
            fails.is_empty(),
            "failed checks: {fails:#?}\n{}",
            self.dump()
        );
    }

    /// The kill line for `pid`, checked to name this program, this fault and this signal.
    #[track_caller]
    pub fn assert_killed(&self, pid: u32, name: &str, what: &str, signal: u32) -> KillLine {
        let k = self.kill_line(pid);
        assert_eq!(
            (k.name.as_str(), k.what.as_str(), k.signal),
            (name, what, signal),
            "{k:?}"
        );
        k
    }

    /// The shutdown report's rows and its summary line.
    #[track_caller]
    pub fn report(&self) -> Report {
        Report::parse(&self.stdout)
            .unwrap_or_else(|e| panic!("shutdown report: {e}\n{}", self.dump()))
    }
}

/// "kernel: killed pid 7 (readkernel): page fault at rip 0x402546, reading 0xffffffff80100000
/// (an unmapped page) [signal 11]", taken apart.
#[derive(Debug)]
pub struct KillLine {
    pub line: String,
    pub pid: u32,
    pub name: String,
    /// "divide error", "general protection fault", "page fault", ...
    pub what: String,
    pub rip: u64,
    /// What follows "rip 0x...", before " [signal": for a page fault, the access and address.
    pub detail: String,
    pub signal: u32,
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

impl KillLine {
    pub fn parse(line: &str) -> Option<KillLine> {
        let rest = line.strip_prefix("kernel: killed pid ")?;
        let (pid, rest) = rest.split_once(" (")?;
        let (name, rest) = rest.split_once("): ")?;
        let (what, rest) = rest.split_once(" at rip ")?;
        let (rest, signal) = rest.rsplit_once(" [signal ")?;
        let signal = signal.strip_suffix(']')?.parse().ok()?;
        let (rip, detail) = match rest.split_once([',', ' ']) {
            Some((rip, detail)) => (rip, detail.trim().to_string()),
            None => (rest, String::new()),
        };
        Some(KillLine {
            line: line.to_string(),
            pid: pid.parse().ok()?,
            name: name.to_string(),
            what: what.to_string(),
            rip: hex(rip)?,
            detail,
            signal,
        })
    }
}

/// One row of the shutdown report.
#[derive(Debug, Clone)]
pub struct Row {
    pub pid: u32,
    pub name: String,
    /// "exit 0", "killed (136)", "ready", "blocked", ...
    pub status: String,
    pub cpu_ms: f64,
    pub syscalls: u64,
    pub preempted: u64,
    pub yielded: u64,
}

#[derive(Debug)]
pub struct Report {
    pub header: String,
    pub rows: Vec<Row>,
    /// "context switches 4129, timer interrupts 120, page faults 80, idle 0 ms"
    pub summary: String,
}

impl Report {
    pub fn parse(stdout: &str) -> Result<Report, String> {
        let mut lines = stdout
            .lines()
            .skip_while(|l| !l.starts_with("--- process report"));
        lines.next().ok_or("no '--- process report' line")?;
        let header = lines.next().ok_or("no header")?.to_string();
        let words: Vec<&str> = header.split_whitespace().collect();
        let want = [
            "pid",
            "name",
            "status",
            "cpu",
            "ms",
            "syscalls",
            "preempted",
            "yielded",
        ];
        if words != want {
            return Err(format!("header {header:?}, expected the columns {want:?}"));
        }
        let mut rows = Vec::new();
        let mut summary = String::new();
        for line in lines {
            let w: Vec<&str> = line.split_whitespace().collect();
            let Some(pid) = w.first().and_then(|p| p.parse().ok()) else {
                summary = line.trim().to_string();
                break;
            };
            if w.len() < 7 {
                return Err(format!("short row {line:?}"));
            }
            let n = w.len();
            let num = |i: usize| {
                w[i].parse::<u64>()
                    .map_err(|_| format!("column {i} of {line:?}"))
            };
            rows.push(Row {
                pid,
                name: w[1].to_string(),
                status: w[2..n - 4].join(" "),
                cpu_ms: w[n - 4]
                    .parse()
                    .map_err(|_| format!("cpu ms of {line:?}"))?,
                syscalls: num(n - 3)?,
                preempted: num(n - 2)?,
                yielded: num(n - 1)?,
            });
        }
        if rows.is_empty() {
            return Err("no rows".into());
        }
        Ok(Report {
            header,
            rows,
            summary,
        })
    }

    #[track_caller]
    pub fn row(&self, pid: u32) -> &Row {
        self.rows
            .iter()
            .find(|r| r.pid == pid)
            .unwrap_or_else(|| panic!("no row for pid {pid} in {:#?}", self.rows))
    }

    /// A number in the summary line, after `label` ("timer interrupts", "idle").
    pub fn summary_number(&self, label: &str) -> Option<u64> {
        let rest = &self.summary[self.summary.find(label)? + label.len()..];
        rest.split_whitespace()
            .next()?
            .trim_matches(',')
            .parse()
            .ok()
    }
}

/// Runs `vmm ARGS` (with `--timeout TIMEOUT_SECS` unless ARGS has a `--timeout`) and collects
/// what happened.
pub fn run_vmm_lde<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().into()).collect();
    let mut cmd = crate::common::vmm();
    cmd.args(&args);
    if !args.iter().any(|a| a == "--timeout") {
        cmd.arg("--timeout").arg(TIMEOUT_SECS.to_string());
    }
    run(cmd)
}

/// Runs `vmm --user SPEC...` (each a "PATH ARG..." string).
pub fn run_user(specs: &[String]) -> Run {
    let mut args = Vec::new();
    for s in specs {
        args.push("--user".to_string());
        args.push(s.clone());
    }
    run_vmm_lde(args)
}

pub fn run(mut cmd: Command) -> Run {
    let command = format!("{cmd:?}");
    let start = Instant::now();
    let out: Output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    Run {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        wall: start.elapsed(),
        command,
    }
}

/// Fails (never skips) unless `tool --version` runs, naming the package to install.
#[track_caller]
pub fn require_tool(tool: &str, install: &str) {
    match Command::new(tool).arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "{install} ({tool} --version failed: {})",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("{install} (cannot run {tool}: {e})"),
    }
}

/// A program that checks itself (one "...: ok" or "...: FAIL" line per check, exit 0 iff all
/// passed): run on the host Linux first, which must pass it, so that the test checks our
/// kernel and not the program; then in our guest, which must pass it too. Returns the guest's run.
pub fn passes_on_host_then_guest(prog: &Path, args: &[&str]) -> Run {
    let host = std::process::Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", prog.display()));
    assert!(
        host.status.success(),
        "the host disagrees with the test itself:\n{}",
        String::from_utf8_lossy(&host.stdout)
    );
    let mut spec = prog.display().to_string();
    for a in args {
        spec.push(' ');
        spec.push_str(a);
    }
    let run = run_user(&[spec]);
    assert!(!run.stdout.contains("FAIL"), "\n{}", run.dump());
    run.assert_status(0);
    run
}
