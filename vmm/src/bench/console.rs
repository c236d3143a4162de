//! Console throughput (issue 13), from the outside: whole `vmm` runs of the `blast` program
//! (guest/user/src/bin/blast.rs), which writes the checkable stream of `abi::bench::stream_byte`
//! to its standard output, through the console, into a pipe this process drains. Each row is
//! the wall time of a run minus the median of an empty run (`blast 0`, the boot and the
//! shutdown), in TSC cycles like the other rows. The host column runs the very same static
//! binary natively into a pipe. Every run's output is checked byte for byte: a fast console
//! that loses a byte is a problem reported, not a row.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::lines::Stat;

/// The bulk rows' size: 4 MiB.
pub const STREAM: u64 = 4 << 20;
/// The line row: this many 80-byte writes.
pub const LINES: u64 = 10_000;
pub const LINE: u64 = 80;

/// One workload: its row key, and blast's arguments.
struct Workload {
    key: &'static str,
    host_key: &'static str,
    total: u64,
    block: u64,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        key: "console_4m_4k",
        host_key: "console_4m_4k_host",
        total: STREAM,
        block: 4096,
    },
    Workload {
        key: "console_4m_64k",
        host_key: "console_4m_64k_host",
        total: STREAM,
        block: 64 << 10,
    },
    Workload {
        key: "console_lines",
        host_key: "console_lines_host",
        total: LINES * LINE,
        block: LINE,
    },
];

/// The rows, as far as they could be had (what could not goes to `problems`). The line row
/// is per write; the others per run.
pub fn measure(
    blast: &Path,
    tsc_hz: f64,
    runs: usize,
    problems: &mut Vec<String>,
) -> Vec<(&'static str, Stat)> {
    let mut rows = Vec::new();
    let Ok(vmm) = std::env::current_exe() else {
        problems.push("console rows: cannot find the vmm binary".into());
        return rows;
    };
    let guest = |total: u64, block: u64| {
        let mut c = Command::new(&vmm);
        c.args(["-qq", "--timeout", "600", "--user"])
            .arg(format!("{} {total} {block}", blast.display()));
        c
    };
    let host = |total: u64, block: u64| {
        let mut c = Command::new(blast);
        c.arg(total.to_string()).arg(block.to_string());
        c
    };
    let cycles = |ns: f64| ns * tsc_hz / 1e9;
    for (side, make) in [
        ("guest", &guest as &dyn Fn(u64, u64) -> Command),
        ("host", &host),
    ] {
        // Empty runs between the others, so that a noisy moment falls on both.
        let mut empty = Vec::new();
        let mut timed: Vec<Vec<f64>> = vec![Vec::new(); WORKLOADS.len()];
        'runs: for _ in 0..runs {
            for (i, w) in WORKLOADS.iter().enumerate() {
                match run(make(0, 4096), 0)
                    .and_then(|e| Ok((e, run(make(w.total, w.block), w.total)?)))
                {
                    Ok((e, t)) => {
                        empty.push(e);
                        timed[i].push(t);
                    }
                    Err(e) => {
                        problems.push(format!("console rows ({side}): {e}"));
                        break 'runs;
                    }
                }
            }
        }
        let Some(base) = median(&mut empty) else {
            continue;
        };
        for (w, samples) in WORKLOADS.iter().zip(&timed) {
            let per = if w.block == LINE { LINES as f64 } else { 1.0 };
            let mut over: Vec<u64> = samples
                .iter()
                .map(|&t| (cycles(t - base).max(0.0) / per) as u64)
                .collect();
            if let Some(s) = Stat::from_samples(&mut over) {
                rows.push((if side == "guest" { w.key } else { w.host_key }, s));
            }
        }
    }
    rows
}

fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// Runs `cmd`, draining its standard output; its wall time in ns once the output was found
/// to be blast's `total` bytes of the stream, whole and in order, and the status 0.
fn run(mut cmd: Command, total: u64) -> Result<f64, String> {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    let mut out = Vec::with_capacity(total as usize + 4096);
    let read = child.stdout.take().map(|mut s| s.read_to_end(&mut out));
    let status = child.wait().map_err(|e| format!("cannot wait: {e}"))?;
    let ns = start.elapsed().as_nanos() as f64;
    if let Some(Err(e)) = read {
        return Err(format!("reading its output: {e}"));
    }
    if !status.success() {
        return Err(format!("blast {total} ended with {status}"));
    }
    check(&out, total)?;
    Ok(ns)
}

/// Finds the stream between blast's two marker lines and checks every byte of it.
pub fn check(out: &[u8], total: u64) -> Result<(), String> {
    const BEGIN: &[u8] = b"blast: begin\n";
    const END: &[u8] = b"blast: end\n";
    let at = out
        .windows(BEGIN.len())
        .position(|w| w == BEGIN)
        .ok_or("no `blast: begin` line in the output")?
        + BEGIN.len();
    let rest = &out[at..];
    let end = rest
        .windows(END.len())
        .rposition(|w| w == END)
        .ok_or("no `blast: end` line in the output")?;
    let got = &rest[..end];
    match abi::bench::stream_mismatch(got, total) {
        None => Ok(()),
        Some(k) => {
            let (from, to) = ((k as usize).saturating_sub(64), (k as usize + 64).min(end));
            Err(format!(
                "the stream differs at byte {k} of {total} ({end} arrived); around it:\n{}",
                String::from_utf8_lossy(&got[from..to])
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(total: u64) -> Vec<u8> {
        let mut s = vec![0; total as usize];
        abi::bench::stream_fill(0, &mut s);
        [
            b"boot\nblast: begin\n".as_slice(),
            &s,
            b"blast: end\nreport\n",
        ]
        .concat()
    }

    #[test]
    fn a_whole_stream_passes_and_a_damaged_one_does_not() {
        assert_eq!(check(&output(1000), 1000), Ok(()));
        let mut bad = output(1000);
        bad[18 + 500] ^= 1;
        assert!(check(&bad, 1000).unwrap_err().contains("byte 500"));
        assert!(check(&output(999), 1000).unwrap_err().contains("byte 999"));
        assert!(check(b"nothing", 10).is_err());
    }
}
