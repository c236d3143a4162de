//! `vmm bench` (issue 4): measures the trap round trips of our kernel, side by side with a floor
//! (a minimal guest whose trap handlers only return, on our VMM and on a bare KVM_RUN loop) and
//! with the host Linux, in one run, and prints one table (or JSON).
//!
//! - ours: the embedded kernel runs the `bench` program of the embedded archive (guest/user/src/
//!   bin/bench.rs) in a child `vmm` process; its console's BENCH lines are the measurements;
//! - floor: the embedded floor guest (guest/floor) in a child `vmm` process, then on the bare
//!   KVM_RUN loop of `bare.rs` in this process;
//! - host: `host.rs`, in this process.
//!
//! Everything is in TSC cycles (converted to ns with the TSC frequency), except the exact
//! ring-0 instruction counts (counts.rs), which both guests make first with the VMM's
//! single-stepping counter (step_count.rs). `--counts` makes only those. See docs/bench.md.

pub mod bare;
pub mod boot;
pub mod console;
pub mod counts;
pub mod host;
pub mod lines;
pub mod report;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::{Error, Result};
use lines::BenchLines;

/// The tiny program that fork + exec + exit + wait runs, in our guest and on the host.
pub const EXEC_TARGET: &str = "exit0";
/// The same with 2 MiB of code it never runs: exec must not pay for a program's size.
pub const EXEC_PADDED: &str = "exit0_padded";

/// What `vmm bench` was asked for.
#[derive(Debug, Clone, Default)]
pub struct BenchOptions {
    /// Fewer iterations everywhere (for tests): about 2 s instead of about 10 s.
    pub quick: bool,
    /// Only the exact instruction counts (about 1 s): no timing, no host side.
    pub counts_only: bool,
    /// Write the results as JSON here ("-" = stdout, instead of the table).
    pub json: Option<PathBuf>,
}

/// The guests the bench boots, as embedded in the vmm binary.
pub struct Guests<'a> {
    pub kernel: &'a [u8],
    pub programs: &'a [u8],
    pub floor: &'a [u8],
}

/// Everything one run measured.
pub struct Results {
    pub quick: bool,
    pub counts_only: bool,
    pub cpu: String,
    pub kvm: String,
    pub tsc_hz: f64,
    pub tsc_source: &'static str,
    pub ours: BenchLines,
    pub floor: BenchLines,
    pub floor_bare: BenchLines,
    pub host: std::collections::BTreeMap<&'static str, lines::Stat>,
    /// The share of a ring-3 TSC scan the host process lost to gaps (interrupts, preemption).
    pub host_lost: f64,
    /// The exact ring-0 instruction counts, ours beside the floor's.
    pub counts: Vec<counts::CountRow>,
    /// Ring-0 instructions one trace record adds to a path (traced count minus plain, per
    /// record): (path, instructions).
    pub trace_record_cost: Vec<(String, f64)>,
    /// What went wrong on the way (a part that could not be measured), for the notes.
    pub problems: Vec<String>,
}

/// Runs the whole bench and prints the table or writes the JSON. Returns the exit status.
pub fn run(opts: &BenchOptions, guests: &Guests) -> Result<u8> {
    let results = measure(opts, guests)?;
    let table = report::table(&results);
    match opts.json.as_deref() {
        Some(p) if p == Path::new("-") => println!("{}", report::json(&results)),
        Some(p) => {
            std::fs::write(p, report::json(&results))
                .map_err(|e| Error::Internal(format!("cannot write {}: {e}", p.display())))?;
            print!("{table}");
        }
        None => print!("{table}"),
    }
    Ok(0)
}

/// Runs every part; a part that fails is noted and left empty rather than ending the run.
pub fn measure(opts: &BenchOptions, guests: &Guests) -> Result<Results> {
    if guests.kernel.is_empty() {
        return Err(crate::error::ImageError::NoEmbeddedKernel.into());
    }
    let (tsc_hz, tsc_source) = host::tsc_hz();
    let mut problems = Vec::new();
    if cfg!(debug_assertions) {
        problems.push(
            "this vmm is a debug build: the host's work runs unoptimised, so the direct-execution \
             row means nothing; use cargo run --release"
                .into(),
        );
    }
    let tmp = TempDir::new()?;
    let plan = host::Plan::new(opts.quick);
    // The native work runs before and after the guests, so that a noisy moment on a shared
    // machine does not fall on one side only; its samples are pooled.
    let mut host_work = if opts.counts_only {
        Vec::new()
    } else {
        host::run_work(&plan)
    };

    let ours = match extract(guests.programs, "bench") {
        Some(bench) => {
            let archive = |start: &str, problems: &mut Vec<String>| {
                let mut archive = abi::cpio::CpioWriter::page_aligned();
                archive.add_file("START", start.as_bytes());
                archive.add_file("bench", &bench);
                // What the bench's fork + exec row runs.
                for name in [EXEC_TARGET, EXEC_PADDED] {
                    match extract(guests.programs, name) {
                        Some(p) => archive.add_file(name, &p),
                        None => problems.push(format!("the embedded archive has no `{name}`")),
                    }
                }
                archive.finish()
            };
            let start = match (opts.counts_only, opts.quick) {
                (true, _) => "bench counts\n",
                (false, true) => "bench quick\n",
                (false, false) => "bench\n",
            };
            let path = tmp.write("bench.cpio", &archive(start, &mut problems))?;
            let args = ["--initrd".as_ref(), path.as_os_str()];
            let mut ours = run_child(&args, &mut problems, "our kernel");
            // The same counts with the kernel's event records on: what tracing costs a path.
            // The kernel's side only (the VMM keeps no records: the step counter's exits
            // would fill a trace file for nothing); its flushes are exits as with --trace.
            let path = tmp.write("counts.cpio", &archive("bench counts\n", &mut problems))?;
            let args = [
                "--initrd".as_ref(),
                path.as_os_str(),
                "--cmdline".as_ref(),
                "trace=events".as_ref(),
            ];
            let traced = run_child(&args, &mut problems, "our kernel, traced");
            counts::add_traced(&mut ours, traced);
            ours
        }
        None => {
            problems.push("the embedded archive has no `bench` program".into());
            BenchLines::default()
        }
    };

    let (floor, floor_bare) = if guests.floor.is_empty() {
        problems.push("no floor guest embedded (guest/floor did not build)".into());
        (BenchLines::default(), BenchLines::default())
    } else {
        let path = tmp.write("floor.elf", guests.floor)?;
        let floor = run_child(&[path.as_os_str()], &mut problems, "the floor on our VMM");
        let bare_run = if opts.counts_only {
            Ok(String::new())
        } else {
            bare::run_bare(guests.floor, Duration::from_secs(120))
        };
        let bare = match bare_run {
            Ok(console) => BenchLines::parse(&console),
            Err(e) => {
                problems.push(format!("the floor on the bare KVM_RUN loop: {e}"));
                BenchLines::default()
            }
        };
        (floor, bare)
    };

    let mut host = std::collections::BTreeMap::new();
    let mut host_lost = 0.0;
    if !opts.counts_only {
        let exec = match extract(guests.programs, EXEC_TARGET) {
            Some(bytes) => tmp.write_executable(EXEC_TARGET, &bytes).ok(),
            None => None,
        };
        let exec = exec.as_deref().and_then(host::ExecTarget::new);
        if exec.is_none() {
            problems.push(format!("host: no `{EXEC_TARGET}` to exec"));
        }
        host = host::measure_all(&plan, exec.as_ref());
        let gaps;
        (gaps, host_lost) = host::ring3_gaps(&plan);
        if let Some(g) = gaps {
            host.insert("ring3_gaps", g);
        }
        if !opts.quick {
            match tmp.write("kernel.elf", guests.kernel) {
                Ok(kernel) => host.extend(boot::measure(&kernel, &tmp.0, tsc_hz, &mut problems)),
                Err(e) => problems.push(format!("boot rows: {e}")),
            }
        }
        match extract(guests.programs, "blast") {
            Some(bytes) => match tmp.write_executable("blast", &bytes) {
                Ok(blast) => {
                    let runs = if opts.quick { 1 } else { 3 };
                    host.extend(console::measure(&blast, tsc_hz, runs, &mut problems));
                }
                Err(e) => problems.push(format!("console rows: {e}")),
            },
            None => problems.push("the embedded archive has no `blast` program".into()),
        }
        host_work.extend(host::run_work(&plan));
        if let Some(w) = lines::Stat::from_samples(&mut host_work) {
            host.insert("work", w);
        }
    }
    let counts = counts::rows(&ours, &floor);
    Ok(Results {
        quick: opts.quick,
        counts_only: opts.counts_only,
        trace_record_cost: counts::per_record(&counts),
        counts,
        cpu: host::cpu_name(),
        kvm: host::kvm_kind(),
        tsc_hz,
        tsc_source,
        ours,
        floor,
        floor_bare,
        host,
        host_lost,
        problems,
    })
}

/// Runs this vmm binary on `args` (plus quiet logging and a timeout) and parses the BENCH
/// lines of its console.
fn run_child(args: &[&std::ffi::OsStr], problems: &mut Vec<String>, what: &str) -> BenchLines {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            problems.push(format!("{what}: cannot find the vmm binary: {e}"));
            return BenchLines::default();
        }
    };
    let out = Command::new(exe)
        .args(args)
        // The machine a user gets: with the virtio console (the console-write counts are its
        // path; the trap paths do not touch it).
        .args(["-qq", "--timeout", "600"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output();
    match out {
        Ok(out) => {
            let lines = BenchLines::parse(&String::from_utf8_lossy(&out.stdout));
            if !out.status.success() || !lines.done {
                problems.push(format!(
                    "{what}: the guest ended with {} before finishing its measurements",
                    out.status
                ));
            }
            lines
        }
        Err(e) => {
            problems.push(format!("{what}: cannot run the vmm binary: {e}"));
            BenchLines::default()
        }
    }
}

/// A program's bytes from a cpio "newc" archive, by name.
pub fn extract(archive: &[u8], wanted: &str) -> Option<Vec<u8>> {
    for e in abi::cpio::entries(archive) {
        let Ok(e) = e else { return None };
        if e.name == wanted && e.is_file() {
            return Some(e.data.to_vec());
        }
    }
    None
}

/// A private temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let dir = std::env::temp_dir().join(format!("vmm-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Internal(format!("cannot create {}: {e}", dir.display())))?;
        Ok(TempDir(dir))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let p = self.0.join(name);
        std::fs::write(&p, bytes)
            .map_err(|e| Error::Internal(format!("cannot write {}: {e}", p.display())))?;
        Ok(p)
    }
}

impl TempDir {
    fn write_executable(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let p = self.write(name, bytes)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::Internal(format!("cannot chmod {}: {e}", p.display())))?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_a_file_from_newc() {
        let mut w = abi::cpio::CpioWriter::page_aligned();
        w.add_file("START", b"a\n");
        w.add_file("bench", b"\x7fELF12345");
        let a = w.finish();
        assert_eq!(extract(&a, "bench").as_deref(), Some(&b"\x7fELF12345"[..]));
        assert_eq!(extract(&a, "START").as_deref(), Some(&b"a\n"[..]));
        assert_eq!(extract(&a, "nope"), None);
    }
}
