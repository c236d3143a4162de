//! The exact ring-0 instruction counts of `vmm bench`: the guests' `insns_*` BENCH lines
//! (counted by the VMM's single-stepping counter, step_count.rs), one row per path, ours beside
//! the floor's. Any path a guest counts gets a row: a new one needs no change here, only a
//! label if it should read better than its name.

use serde::Serialize;

use super::lines::BenchLines;

/// The known paths, in table order, with their labels.
const LABELS: &[(&str, &str)] = &[
    ("syscall_getpid", "null syscall, getpid by `syscall`"),
    ("int80_getpid", "null syscall, getpid by `int 0x80`"),
    ("sched_yield", "sched_yield, nothing else runnable"),
    (
        "context_switch",
        "context switch (yield to a yielding partner)",
    ),
    ("timer_tick", "timer tick that does not switch"),
    ("page_fault", "page fault, demand-zero page"),
    ("console_write_80", "write(2) of 80 bytes to the console"),
    ("console_write_4k", "write(2) of 4 KiB to the console"),
    ("fork_exit_wait", "fork + exit + wait (a span)"),
    (
        "fork_exec_wait",
        "fork + exec + exit + wait of exit0 (a span)",
    ),
    (
        "fork_exec_padded_wait",
        "the same of exit0 padded with 2 MiB of code (a span)",
    ),
    (
        "pipe_round_trip",
        "pipe round trip: 2 switches (a span; per switch: half)",
    ),
    (
        "span_marker",
        "span marker: the read's own entry (taken off spans)",
    ),
    (
        "syscall_getpid_traced",
        "null syscall, traced (`--trace`: 2 records)",
    ),
    ("timer_tick_traced", "timer tick, traced (2 records)"),
    ("page_fault_traced", "page fault, traced (2 records)"),
];

/// The paths whose traced counts are shown, with the records each makes.
pub const TRACED: &[(&str, u64)] = &[("syscall_getpid", 2), ("timer_tick", 2), ("page_fault", 2)];

/// Puts `traced`'s counts of the `TRACED` paths into `ours` as PATH_traced.
pub fn add_traced(ours: &mut BenchLines, traced: BenchLines) {
    for (path, _) in TRACED {
        let name = format!("{}{path}", abi::bench::count::LINE_PREFIX);
        if let Some(fields) = traced.lines.get(&name) {
            ours.lines.insert(format!("{name}_traced"), fields.clone());
        }
    }
}

/// What one trace record costs on each `TRACED` path: (path, ring-0 instructions per record),
/// from the counts with and without tracing.
pub fn per_record(rows: &[CountRow]) -> Vec<(String, f64)> {
    let insns = |key: &str| {
        rows.iter()
            .find(|r| r.key == key)
            .and_then(|r| r.ours.as_ref())
            .and_then(Count::insns)
    };
    TRACED
        .iter()
        .filter_map(|(path, records)| {
            let (on, off) = (insns(&format!("{path}_traced"))?, insns(path)?);
            Some((path.to_string(), (on as f64 - off as f64) / *records as f64))
        })
        .collect()
}

/// One guest's count of one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Count {
    /// Two round trips counted: `insns` is the first, `deterministic` whether both agree.
    Counted {
        insns: u64,
        runs: [u64; 2],
        deterministic: bool,
    },
    /// The counter could not count it (the guest's line says why).
    Failed { error: String },
}

impl Count {
    fn from_line(c: Result<[u64; 2], &str>) -> Count {
        match c {
            Ok(runs) => Count::Counted {
                insns: runs[0],
                runs,
                deterministic: runs[0] == runs[1],
            },
            Err(e) => Count::Failed { error: e.into() },
        }
    }

    pub fn insns(&self) -> Option<u64> {
        match self {
            Count::Counted { insns, .. } => Some(*insns),
            Count::Failed { .. } => None,
        }
    }
}

/// One path: ours and the floor's count.
#[derive(Debug, Clone, Serialize)]
pub struct CountRow {
    pub key: String,
    pub label: String,
    pub ours: Option<Count>,
    pub floor: Option<Count>,
    /// Ours minus the floor's, in ring-0 instructions (first runs).
    pub excess: Option<i64>,
}

/// Every counted path of either guest: the known ones in table order, then the rest by name.
pub fn rows(ours: &BenchLines, floor: &BenchLines) -> Vec<CountRow> {
    let find = |b: &BenchLines, key: &str| {
        b.counts()
            .find(|(p, _)| *p == key)
            .map(|(_, c)| Count::from_line(c))
    };
    let mut keys: Vec<String> = LABELS.iter().map(|(k, _)| k.to_string()).collect();
    let mut others: Vec<String> = ours
        .counts()
        .chain(floor.counts())
        .map(|(p, _)| p.to_string())
        .filter(|p| !keys.contains(p))
        .collect();
    others.sort();
    others.dedup();
    keys.extend(others);
    keys.into_iter()
        .filter_map(|key| {
            let (o, f) = (find(ours, &key), find(floor, &key));
            if o.is_none() && f.is_none() {
                return None;
            }
            let excess = o
                .as_ref()
                .and_then(Count::insns)
                .zip(f.as_ref().and_then(Count::insns))
                .map(|(a, b)| a as i64 - b as i64);
            let label = LABELS
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(key.clone(), |(_, l)| l.to_string());
            Some(CountRow {
                key,
                label,
                ours: o,
                floor: f,
                excess,
            })
        })
        .collect()
}

/// A table cell: the count, both runs when they differ, or the error.
pub fn cell(c: &Option<Count>) -> String {
    match c {
        None => "-".into(),
        Some(Count::Counted {
            insns,
            deterministic: true,
            ..
        }) => insns.to_string(),
        Some(Count::Counted { runs, .. }) => format!("{} / {}", runs[0], runs[1]),
        Some(Count::Failed { error }) => error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_in_order_with_unknown_paths_last() {
        let ours = BenchLines::parse(
            "BENCH name=insns_fork insns=900 again=900\n\
             BENCH name=insns_int80_getpid insns=88 again=88\n\
             BENCH name=insns_syscall_getpid insns=56 again=57\n\
             BENCH name=insns_timer_tick error=unfinished\n",
        );
        let floor = BenchLines::parse(
            "BENCH name=insns_syscall_getpid insns=4 again=4\n\
             BENCH name=insns_timer_tick insns=23 again=23\n",
        );
        let r = rows(&ours, &floor);
        let keys: Vec<&str> = r.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(
            keys,
            ["syscall_getpid", "int80_getpid", "timer_tick", "fork"]
        );
        assert_eq!(r[0].excess, Some(52));
        assert_eq!(cell(&r[0].ours), "56 / 57");
        assert_eq!(cell(&r[0].floor), "4");
        assert_eq!(r[1].floor, None);
        assert_eq!(r[2].excess, None);
        assert_eq!(cell(&r[2].ours), "unfinished");
        assert_eq!(r[3].label, "fork");
        let json = serde_json::to_value(&r[0]).unwrap();
        assert_eq!(json["ours"]["runs"], serde_json::json!([56, 57]));
        assert_eq!(json["ours"]["deterministic"], false);
        assert_eq!(json["floor"]["insns"], 4);
    }
}
