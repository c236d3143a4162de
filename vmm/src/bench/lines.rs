//! The `BENCH name=NAME key=value...` lines the guests print, and the summary of one
//! measurement (min, median, p99 in cycles) that every column of the table is made of.

use std::collections::BTreeMap;

/// One measurement: cycles per operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub min: f64,
    pub median: f64,
    pub p99: f64,
    pub iters: u64,
}

impl Stat {
    /// Summarises raw samples (sorted here).
    pub fn from_samples(samples: &mut [u64]) -> Option<Stat> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let n = samples.len();
        Some(Stat {
            min: samples[0] as f64,
            median: samples[n / 2] as f64,
            p99: samples[(n * 99 / 100).min(n - 1)] as f64,
            iters: n as u64,
        })
    }
}

/// The BENCH lines of one guest run, by name: each line's key=value fields.
#[derive(Debug, Default, Clone)]
pub struct BenchLines {
    pub lines: BTreeMap<String, BTreeMap<String, String>>,
    pub done: bool,
}

impl BenchLines {
    /// Picks the BENCH lines out of a guest's console output (anything else is ignored).
    pub fn parse(console: &str) -> BenchLines {
        let mut out = BenchLines::default();
        for line in console.lines() {
            let Some(rest) = line.trim_end_matches('\r').strip_prefix("BENCH ") else {
                continue;
            };
            if rest.trim() == "done" {
                out.done = true;
                continue;
            }
            let fields: BTreeMap<String, String> = rest
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

    /// The min/median/p99 of line `name`, if it has them.
    pub fn stat(&self, name: &str) -> Option<Stat> {
        Some(Stat {
            min: self.field(name, "min")?,
            median: self.field(name, "median")?,
            p99: self.field(name, "p99")?,
            iters: self.field(name, "iters")? as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bench_lines_among_other_output() {
        let text =
            "lde kernel: booted\nBENCH name=syscall_getpid min=10 median=12 p99=30 iters=5\r\n\
                    noise\nBENCH name=tickless_interrupts count=0 runs=5\nBENCH done\n";
        let b = BenchLines::parse(text);
        assert!(b.done);
        let s = b.stat("syscall_getpid").unwrap();
        assert_eq!((s.min, s.median, s.p99, s.iters), (10.0, 12.0, 30.0, 5));
        assert_eq!(b.field("tickless_interrupts", "count"), Some(0.0));
        assert!(b.stat("tickless_interrupts").is_none());
    }

    #[test]
    fn stat_of_samples() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let s = Stat::from_samples(&mut v).unwrap();
        assert_eq!((s.min, s.median, s.p99), (1.0, 51.0, 100.0));
        assert!(Stat::from_samples(&mut []).is_none());
    }
}
