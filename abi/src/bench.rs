//! What `vmm bench` and its guests share: the direct-execution workload (the very same
//! instructions in the guest's `bench` program, the floor guest and the host), the summary of a
//! measurement, and the `BENCH` line that carries it from a guest's console to the VMM:
//!
//! `BENCH name=NAME min=CYCLES median=CYCLES p99=CYCLES iters=N [key=value...]`, or
//! `BENCH name=NAME error=WHY`, or other key=value fields; `BENCH done` ends a run.

use core::fmt;

/// xorshift64* for `rounds` rounds from `seed`; returns a checksum of every output (so the
/// optimiser cannot skip any round). About six dependent ALU operations per round, no memory
/// traffic and no system calls.
#[inline(never)]
pub fn work(seed: u64, rounds: u64) -> u64 {
    let mut x = seed | 1;
    let mut acc = 0u64;
    for _ in 0..rounds {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        acc = acc.wrapping_add(x.wrapping_mul(0x2545_f491_4f6c_dd1d));
    }
    acc
}

/// The seed every side passes to `work`.
pub const WORK_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// The console-throughput stream (the `blast` program writes it, the tests and `vmm bench`
/// check it): 64-byte text lines, each its number in 8 hex digits, a space, 54 letters that
/// shift with the line, and a newline. A lost, doubled or reordered piece shows in the
/// numbers; the letters catch bytes changed inside a line.
pub const STREAM_LINE: u64 = 64;

/// Byte `i` of the stream.
pub fn stream_byte(i: u64) -> u8 {
    let (line, col) = (i / STREAM_LINE, i % STREAM_LINE);
    match col {
        0..=7 => b"0123456789abcdef"[((line >> (4 * (7 - col))) & 0xf) as usize],
        8 => b' ',
        63 => b'\n',
        _ => b'a' + ((line + col) % 26) as u8,
    }
}

/// Fills `buf` with the stream's bytes from offset `at`.
pub fn stream_fill(at: u64, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = stream_byte(at + k as u64);
    }
}

/// The first offset in `0..len` where `got` differs from the stream (or where it ends early /
/// runs past `len`), if any.
pub fn stream_mismatch(got: &[u8], len: u64) -> Option<u64> {
    let first_bad = got
        .iter()
        .enumerate()
        .position(|(k, &b)| b != stream_byte(k as u64));
    match first_bad {
        Some(k) => Some(k as u64),
        None if got.len() as u64 != len => Some((got.len() as u64).min(len)),
        None => None,
    }
}

/// `rdtsc` (not serialising: the scan wants every cycle it can see).
#[inline(always)]
fn tsc() -> u64 {
    // SAFETY: rdtsc only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Watches the TSC for `span` cycles and records every gap longer than `threshold` cycles:
/// time this program did not run (an interrupt, a VM exit, being preempted). Gap sizes go into
/// `gaps` (as many as fit); returns how many gaps there were and their total cycles.
#[inline(never)]
pub fn scan_gaps(span: u64, threshold: u64, gaps: &mut [u64]) -> (usize, u64) {
    let start = tsc();
    let mut prev = start;
    let (mut count, mut lost) = (0usize, 0u64);
    while prev - start < span {
        let t = tsc();
        let d = t - prev;
        if d > threshold {
            if let Some(slot) = gaps.get_mut(count) {
                *slot = d;
            }
            count += 1;
            lost += d;
        }
        prev = t;
    }
    (count, lost)
}

/// One measurement: cycles per operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub min: u64,
    pub median: u64,
    pub p99: u64,
    pub iters: u64,
}

impl Summary {
    /// Sorts `samples` and summarises them; `None` when there are none.
    pub fn of(samples: &mut [u64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let n = samples.len();
        Some(Summary {
            min: samples[0],
            median: samples[n / 2],
            p99: samples[(n * 99 / 100).min(n - 1)],
            iters: n as u64,
        })
    }
}

/// The BENCH line for a summary, with `extra` appended (" key=value..." or nothing).
pub struct StatLine<'a> {
    pub name: &'a str,
    pub summary: Option<Summary>,
    pub extra: fmt::Arguments<'a>,
}

impl fmt::Display for StatLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.summary {
            Some(s) => write!(
                f,
                "BENCH name={} min={} median={} p99={} iters={}{}",
                self.name, s.min, s.median, s.p99, s.iters, self.extra
            ),
            None => write!(f, "BENCH name={} error=no-samples", self.name),
        }
    }
}

pub const DONE_LINE: &str = "BENCH done";

/// The operations of our kernel's `bench` system call (`nr::BENCH`): `bench(op, n)`, op in rdi,
/// n in rsi (guest/kernel/src/bench.rs says what each returns).
pub mod op {
    /// `n` iterations of `dec; jnz` in ring 0: the cycles they took.
    pub const RING0_LOOP: u64 = 0;
    /// `n` writes to the bench port: the cycles they took.
    pub const PORT_WRITE: u64 = 1;
    /// `n` ring-0 `cpuid`s: the cycles they took.
    pub const CPUID: u64 = 2;
    /// Tick at `n` Hz even with one runnable task (0: tickless again).
    pub const FORCE_TICK: u64 = 3;
    /// The number of timer interrupts taken since boot.
    pub const TIMER_INTERRUPTS: u64 = 4;
    /// Arm the VMM's instruction counter ([`super::count`]): `n` = 0 holds interrupts off
    /// while it steps, 1 lets them in (to count a timer tick), 2 counts a span
    /// ([`super::count::SPAN`]) with interrupts held off.
    pub const COUNT_ARM: u64 = 5;
    /// The instruction counter's answer ([`super::count::read`]).
    pub const COUNT_READ: u64 = 6;
}

/// The exact ring-0 instruction counter of `vmm bench` (vmm/src/step_count.rs), driven through
/// the bench port from ring 0. A guest arms it with a byte written to the port; the VMM then
/// single-steps the vCPU, waits for ring 3, counts every instruction executed in ring 0 from
/// the next entry into ring 0 to the return to ring 3, and stops stepping. A 4-byte read of the
/// port then gives the count (once; later reads give [`read::NOT_ARMED`]).
pub mod count {
    /// Written to the bench port: arm the counter, interrupts held off while it steps
    /// (KVM_GUESTDBG_BLOCKIRQ), so a timer interrupt cannot land inside the counted path.
    pub const ARM: u8 = 1;
    /// Written to the bench port: arm the counter and let interrupts in (to count a tick).
    pub const ARM_IRQ: u8 = 2;
    /// Written to the bench port: arm the counter for a span, interrupts held off. Every
    /// ring-0 instruction from the next entry into ring 0 is counted, across returns to ring 3,
    /// processes and context switches, up to the next 4-byte read of the port, which ends the
    /// span and answers its count. The count includes the entry path of the call that reads
    /// the port up to its `in`: an empty span (arm, then read at once) measures that part.
    pub const SPAN: u8 = 3;

    /// What a 4-byte read of the bench port returns; any other value is a count.
    pub mod read {
        /// Nothing was armed since the last read.
        pub const NOT_ARMED: u32 = 0;
        /// The count had not finished: the read itself is in the path it was counting (the
        /// armed path never entered ring 0). The count is abandoned.
        pub const UNFINISHED: u32 = u32::MAX - 1;
        /// The VMM could not count (stepping unsupported, or a step limit was hit: its log
        /// says which).
        pub const FAILED: u32 = u32::MAX;
    }

    /// The BENCH line of a counted path is named `insns_<path>`.
    pub const LINE_PREFIX: &str = "insns_";
}

/// The BENCH line of a counted path: `BENCH name=insns_PATH insns=FIRST again=SECOND`, the
/// two counts of two round trips (equal when the path is deterministic), or
/// `BENCH name=insns_PATH error=WHY` when a count failed.
pub struct CountLine<'a> {
    pub path: &'a str,
    /// The raw answers of the two reads ([`count::read`]).
    pub runs: [u32; 2],
}

impl CountLine<'_> {
    fn why(v: u32) -> Option<&'static str> {
        match v {
            count::read::NOT_ARMED => Some("not-armed"),
            count::read::UNFINISHED => Some("unfinished"),
            count::read::FAILED => Some("count-failed"),
            _ => None,
        }
    }
}

impl fmt::Display for CountLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let [a, b] = self.runs;
        write!(f, "BENCH name={}{}", count::LINE_PREFIX, self.path)?;
        match Self::why(a).or(Self::why(b)) {
            Some(why) => write!(f, " error={why}"),
            None => write!(f, " insns={a} again={b}"),
        }
    }
}

/// The BENCH lines of one guest run, by name: each line's key=value fields.
#[cfg(any(test, feature = "std"))]
#[derive(Debug, Default, Clone)]
pub struct BenchLines {
    pub lines: std::collections::BTreeMap<std::string::String, Fields>,
    pub done: bool,
}

#[cfg(any(test, feature = "std"))]
pub type Fields = std::collections::BTreeMap<std::string::String, std::string::String>;

#[cfg(any(test, feature = "std"))]
impl BenchLines {
    /// Picks the BENCH lines out of a guest's console output (anything else is ignored).
    pub fn parse(console: &str) -> BenchLines {
        use std::string::ToString;
        let mut out = BenchLines::default();
        for line in console.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim_end() == DONE_LINE {
                out.done = true;
                continue;
            }
            let Some(rest) = line.strip_prefix("BENCH ") else {
                continue;
            };
            let fields: Fields = rest
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            if let Some(name) = fields.get("name").cloned() {
                out.lines.insert(name, fields);
            }
        }
        out
    }

    pub fn field(&self, name: &str, key: &str) -> Option<f64> {
        self.lines.get(name)?.get(key)?.parse().ok()
    }

    /// The counted paths (`insns_*` lines), in name order: (path, first count, second count),
    /// or (path, the error) for a count that failed.
    pub fn counts(&self) -> impl Iterator<Item = (&str, Result<[u64; 2], &str>)> {
        self.lines.iter().filter_map(|(name, fields)| {
            let path = name.strip_prefix(count::LINE_PREFIX)?;
            let n = |k: &str| fields.get(k)?.parse::<u64>().ok();
            let counts = match (n("insns"), n("again")) {
                (Some(a), Some(b)) => Ok([a, b]),
                _ => Err(fields.get("error").map_or("no-count", |e| e.as_str())),
            };
            Some((path, counts))
        })
    }

    /// The summary of line `name`, if it has one.
    pub fn summary(&self, name: &str) -> Option<Summary> {
        let f = |k| self.lines.get(name)?.get(k)?.parse().ok();
        Some(Summary {
            min: f("min")?,
            median: f("median")?,
            p99: f("p99")?,
            iters: f("iters")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::format;
    use std::string::ToString;
    use std::vec::Vec;

    #[test]
    fn the_stream_is_numbered_lines() {
        let mut b = [0u8; 128];
        stream_fill(0, &mut b);
        assert_eq!(&b[..9], b"00000000 ");
        assert_eq!(b[63], b'\n');
        assert_eq!(&b[64..73], b"00000001 ");
        assert_eq!(stream_mismatch(&b, 128), None);
        assert_eq!(stream_mismatch(&b[..100], 128), Some(100));
        assert_eq!(stream_mismatch(&b, 100), Some(100));
        b[70] = b'x';
        assert_eq!(stream_mismatch(&b, 128), Some(70));
    }

    #[test]
    fn a_line_round_trips() {
        let mut v = [30, 10, 12, 11, 12];
        let s = Summary::of(&mut v);
        let line = format!(
            "{}",
            StatLine {
                name: "syscall_getppid",
                summary: s,
                extra: format_args!(" depth=2")
            }
        );
        assert_eq!(
            line,
            "BENCH name=syscall_getppid min=10 median=12 p99=30 iters=5 depth=2"
        );
        let text =
            format!("lde kernel: booted\n{line}\r\nnoise\nBENCH name=x count=0\n{DONE_LINE}\n");
        let b = BenchLines::parse(&text);
        assert!(b.done);
        assert_eq!(b.summary("syscall_getppid"), s);
        assert_eq!(b.field("syscall_getppid", "depth"), Some(2.0));
        assert_eq!(b.field("x", "count"), Some(0.0));
        assert!(b.summary("x").is_none());
    }

    #[test]
    fn count_lines_round_trip() {
        let ok = CountLine {
            path: "syscall_getpid",
            runs: [57, 58],
        }
        .to_string();
        assert_eq!(ok, "BENCH name=insns_syscall_getpid insns=57 again=58");
        let bad = CountLine {
            path: "timer_tick",
            runs: [40, count::read::UNFINISHED],
        }
        .to_string();
        assert_eq!(bad, "BENCH name=insns_timer_tick error=unfinished");
        let b = BenchLines::parse(&format!(
            "{ok}\n{bad}\nBENCH name=work min=1 median=1 p99=1 iters=1\n"
        ));
        let counts: Vec<_> = b.counts().collect();
        assert_eq!(
            counts,
            [
                ("syscall_getpid", Ok([57, 58])),
                ("timer_tick", Err("unfinished"))
            ]
        );
    }

    #[test]
    fn summary_of_samples() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let s = Summary::of(&mut v).unwrap();
        assert_eq!((s.min, s.median, s.p99, s.iters), (1, 51, 100, 100));
        assert!(Summary::of(&mut []).is_none());
        assert!(StatLine {
            name: "n",
            summary: None,
            extra: format_args!("")
        }
        .to_string()
        .ends_with("error=no-samples"));
    }

    #[test]
    fn work_is_deterministic() {
        assert_eq!(work(WORK_SEED, 1000), work(WORK_SEED, 1000));
        assert_ne!(work(WORK_SEED, 1000), work(WORK_SEED, 1001));
    }

    proptest! {
        #[test]
        fn summaries_are_ordered(mut v in proptest::collection::vec(any::<u64>(), 1..200)) {
            let s = Summary::of(&mut v).unwrap();
            prop_assert!(s.min <= s.median && s.median <= s.p99);
            prop_assert_eq!(s.iters as usize, v.len());
        }

        #[test]
        fn any_console_text_parses(text in ".{0,300}") {
            let _ = BenchLines::parse(&text);
        }
    }
}
