//! The guests' BENCH lines (their format and parser are the contracts crate's,
//! `abi::bench`), and the measurement every column of the table is made of.

pub use abi::bench::BenchLines;
use abi::bench::Summary;

/// One measurement: cycles per operation (fractional where the host's side halves a round
/// trip).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub min: f64,
    pub median: f64,
    pub p99: f64,
    pub iters: u64,
}

impl From<Summary> for Stat {
    fn from(s: Summary) -> Stat {
        Stat {
            min: s.min as f64,
            median: s.median as f64,
            p99: s.p99 as f64,
            iters: s.iters,
        }
    }
}

impl Stat {
    /// Summarises raw samples (sorted here), as the guests do.
    pub fn from_samples(samples: &mut [u64]) -> Option<Stat> {
        Summary::of(samples).map(Stat::from)
    }
}

/// The measurement on a guest's BENCH line.
pub trait StatOf {
    fn stat(&self, name: &str) -> Option<Stat>;
}

impl StatOf for BenchLines {
    fn stat(&self, name: &str) -> Option<Stat> {
        self.summary(name).map(Stat::from)
    }
}
