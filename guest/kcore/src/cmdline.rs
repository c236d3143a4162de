//! The kernel command line: `hz=N` (timer ticks per second while tasks compete for the CPU,
//! default 100), `slice=N` (time slice in ticks, default 1), `epoch=SECONDS` (wall-clock time at
//! boot, for CLOCK_REALTIME), `trace=sched` (a console line for every context switch),
//! `trace=events` (records of system calls, switches and signals on the trace port, for `vmm --trace`),
//! `strace=1` (a console line for every system call, with its arguments and result), and
//! `nproc=N` (the most processes at once; by default one per 128 KiB of RAM, as Linux sizes its
//! threads-max), and `crash=ring0`, which makes the kernel fault on purpose once its trap table
//! is in place, to show (and test) what a kernel bug looks like; `crash=exit` does the same when
//! the first process ends, and `crash=triple` triple-faults the CPU then, so that a crash in the
//! middle of a run can be tested (the VMM still saves its trace). Unknown keys are ignored
//! (they may be for a program); a bad value of a known key is reported and the default kept.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub hz: u64,
    pub slice: u32,
    /// `epoch=SECONDS`: the wall-clock time at boot, over what the CMOS clock says.
    pub epoch: Option<u64>,
    pub crash: Option<Crash>,
    pub trace_sched: bool,
    /// `trace=events`: every system call, switch and signal as a record on the trace port.
    pub trace_events: bool,
    /// `strace=1`: a console line for every system call, its arguments and its result.
    pub strace: bool,
    pub nproc: Option<u32>,
}

/// `crash=`: how and when the kernel fails on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// `ring0`: a fault in ring 0 at boot, once the trap table is in place (a kernel panic).
    Ring0AtBoot,
    /// `exit`: the same fault when the first process ends.
    Ring0AtExit,
    /// `triple`: a triple fault (the CPU shuts down) when the first process ends.
    TripleAtExit,
}

/// The fewest and the most processes `nproc=` may ask for.
pub const NPROC_RANGE: core::ops::RangeInclusive<u64> = 2..=65536;

/// The default process limit for `ram_bytes` of RAM: one per 128 KiB, within `NPROC_RANGE`.
pub fn default_nproc(ram_bytes: u64) -> u32 {
    (ram_bytes / (128 << 10)).clamp(64, *NPROC_RANGE.end()) as u32
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hz: 100,
            slice: 1,
            epoch: None,
            crash: None,
            trace_sched: false,
            trace_events: false,
            strace: false,
            nproc: None,
        }
    }
}

/// Why a word of the command line was ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ignored<'a> {
    UnknownValue(&'a str),
    NotANumber(&'a str),
    OutOfRange(&'a str),
}

/// Parses `cmdline`; `warn` hears about each word that was ignored.
pub fn parse<'a>(cmdline: &'a str, mut warn: impl FnMut(Ignored<'a>)) -> Config {
    let mut c = Config::default();
    for word in cmdline.split_ascii_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        match (key, value) {
            ("crash", "ring0") => c.crash = Some(Crash::Ring0AtBoot),
            ("crash", "exit") => c.crash = Some(Crash::Ring0AtExit),
            ("crash", "triple") => c.crash = Some(Crash::TripleAtExit),
            ("trace", "sched") => c.trace_sched = true,
            ("trace", "events") => c.trace_events = true,
            ("strace", "1") => c.strace = true,
            ("crash" | "trace" | "strace", _) => warn(Ignored::UnknownValue(word)),
            ("hz" | "slice" | "epoch" | "nproc", _) => {
                let Ok(n) = value.parse::<u64>() else {
                    warn(Ignored::NotANumber(word));
                    continue;
                };
                match key {
                    "hz" if (1..=10_000).contains(&n) => c.hz = n,
                    "slice" if (1..=1000).contains(&n) => c.slice = n as u32,
                    "epoch" => c.epoch = Some(n),
                    "nproc" if NPROC_RANGE.contains(&n) => c.nproc = Some(n as u32),
                    _ => warn(Ignored::OutOfRange(word)),
                }
            }
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn parse_all(s: &str) -> (Config, Vec<Ignored<'_>>) {
        let mut w = Vec::new();
        let c = parse(s, |i| w.push(i));
        (c, w)
    }

    #[test]
    fn defaults_and_settings() {
        assert_eq!(parse_all("").0, Config::default());
        let (c, w) = parse_all(
            "hz=250 slice=2 epoch=1700000000 trace=sched crash=ring0 nproc=64 strace=1 trace=events x",
        );
        assert_eq!((c.hz, c.slice, c.epoch), (250, 2, Some(1_700_000_000)));
        assert_eq!(c.nproc, Some(64));
        assert!(c.trace_sched && c.strace && c.trace_events);
        assert_eq!(c.crash, Some(Crash::Ring0AtBoot));
        assert!(w.is_empty());
        assert_eq!(parse_all("crash=exit").0.crash, Some(Crash::Ring0AtExit));
        assert_eq!(parse_all("crash=triple").0.crash, Some(Crash::TripleAtExit));
        let (c, w) = parse_all("crash=later");
        assert_eq!(
            (c.crash, w),
            (None, std::vec![Ignored::UnknownValue("crash=later")])
        );
    }

    #[test]
    fn nproc_grows_with_memory() {
        assert_eq!(default_nproc(16 << 20), 128);
        assert_eq!(default_nproc(512 << 20), 4096);
        assert_eq!(default_nproc(1 << 20), 64);
        assert_eq!(default_nproc(1 << 40), 65536);
    }

    #[test]
    fn bad_values_keep_the_default() {
        let (c, w) = parse_all("hz=0 slice=abc trace=all hz=20000 nproc=1");
        assert_eq!(c, Config::default());
        assert_eq!(
            w,
            [
                Ignored::OutOfRange("hz=0"),
                Ignored::NotANumber("slice=abc"),
                Ignored::UnknownValue("trace=all"),
                Ignored::OutOfRange("hz=20000"),
                Ignored::OutOfRange("nproc=1"),
            ]
        );
    }
}
