//! `--stats`, the guest's half: what the kernel did, counted from its event records
//! (abi::trace, the same ones `--trace` draws): system calls by name, traps by vector, context
//! switches, timer interrupts, page faults and time idle. The kernel's shutdown report counts
//! the same things its own way (tests/stats.rs holds the two equal). `--stats` therefore turns
//! the records on (`trace=events` on the kernel command line), and the exit table then shows
//! their flushes too.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::trap_names::vector_name;
use abi::trace::{self, Record};
use serde_json::{json, Value};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GuestCounts {
    pub records: u64,
    /// Records the VMM could not keep (trace_json::MAX_RECORDS): the counts are short by them.
    pub dropped: u64,
    pub syscalls: BTreeMap<u64, u64>,
    /// Traps other than system calls, by vector: timer, page faults, exceptions, device
    /// interrupts.
    pub traps: BTreeMap<u64, u64>,
    pub switches: u64,
    pub timer_interrupts: u64,
    /// Page faults from user mode, resolved or not.
    pub page_faults: u64,
    pub idle_ns: u64,
    pub idle_periods: u64,
}

const TIMER_VECTOR: u64 = trace::TIMER_VECTOR as u64;
const PAGE_FAULT_VECTOR: u64 = 14;

impl GuestCounts {
    pub fn from_records(records: &[Record], dropped: u64) -> GuestCounts {
        let mut c = GuestCounts {
            records: records.len() as u64,
            dropped,
            ..GuestCounts::default()
        };
        let mut idle_since = None;
        for r in records {
            match r.kind {
                trace::SYSCALL_ENTER => *c.syscalls.entry(r.a[0]).or_default() += 1,
                trace::SWITCH => c.switches += 1,
                trace::TICK_BEGIN => {
                    c.timer_interrupts += 1;
                    *c.traps.entry(TIMER_VECTOR).or_default() += 1;
                }
                trace::PAGE_FAULT_BEGIN => {
                    c.page_faults += 1;
                    *c.traps.entry(PAGE_FAULT_VECTOR).or_default() += 1;
                }
                // A page fault that kills is already counted by its PAGE_FAULT_BEGIN.
                trace::FAULT if r.a[0] != PAGE_FAULT_VECTOR => {
                    *c.traps.entry(r.a[0]).or_default() += 1
                }
                trace::INTERRUPT_BEGIN => *c.traps.entry(r.a[0]).or_default() += 1,
                trace::IDLE_BEGIN => idle_since = Some(r.ns),
                trace::IDLE_END => {
                    if let Some(since) = idle_since.take() {
                        c.idle_ns += r.ns.saturating_sub(since);
                        c.idle_periods += 1;
                    }
                }
                _ => {}
            }
        }
        c
    }

    pub fn total_syscalls(&self) -> u64 {
        self.syscalls.values().sum()
    }

    /// The lines `--stats` prints after the exit table.
    pub fn report(&self) -> String {
        let mut out = String::new();
        if self.records == 0 {
            let _ = writeln!(
                out,
                "vmm stats: guest: no event records (a guest other than our kernel, or it \
                 stopped before tracing began)"
            );
            return out;
        }
        let _ = writeln!(
            out,
            "vmm stats: guest: {} system calls, {} context switches, {} timer interrupts, \
             {} page faults, idle {:.3} ms in {} periods ({} event records{})",
            self.total_syscalls(),
            self.switches,
            self.timer_interrupts,
            self.page_faults,
            self.idle_ns as f64 / 1e6,
            self.idle_periods,
            self.records,
            if self.dropped > 0 {
                format!(", {} more not kept: the counts are short", self.dropped)
            } else {
                String::new()
            }
        );
        let mut calls: Vec<(&u64, &u64)> = self.syscalls.iter().collect();
        calls.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let _ = writeln!(out, "vmm stats: guest {:<28} {:>9}", "system call", "count");
        for (nr, n) in calls {
            let name = abi::syscall::name(*nr as usize);
            let _ = writeln!(
                out,
                "vmm stats: guest   {:<26} {:>9}",
                format!("{name} ({nr})"),
                n
            );
        }
        let _ = writeln!(out, "vmm stats: guest {:<28} {:>9}", "trap", "count");
        for (v, n) in &self.traps {
            let what = format!("{} ({v})", vector_name(*v));
            let _ = writeln!(out, "vmm stats: guest   {what:<26} {n:>9}");
        }
        out
    }

    pub fn json(&self) -> Value {
        let calls: BTreeMap<String, u64> = self
            .syscalls
            .iter()
            .map(|(nr, n)| (abi::syscall::name(*nr as usize).to_string(), *n))
            .collect();
        let traps: Vec<Value> = self
            .traps
            .iter()
            .map(|(v, n)| json!({"vector": v, "name": vector_name(*v), "count": n}))
            .collect();
        json!({
            "records": self.records,
            "dropped_records": self.dropped,
            "syscalls": self.total_syscalls(),
            "syscalls_by_name": calls,
            "traps": traps,
            "context_switches": self.switches,
            "timer_interrupts": self.timer_interrupts,
            "page_faults": self.page_faults,
            "idle_ns": self.idle_ns,
            "idle_periods": self.idle_periods,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ns: u64, kind: u32, a0: u64) -> Record {
        Record {
            ns,
            kind,
            pid: 1,
            a: [a0, 0, 0, 0],
        }
    }

    #[test]
    fn each_kind_of_record_is_counted_once() {
        let getpid = abi::syscall::nr::GETPID as u64;
        let records = [
            rec(0, trace::SWITCH, 1),
            rec(10, trace::SYSCALL_ENTER, getpid),
            rec(20, trace::SYSCALL_EXIT, getpid),
            rec(30, trace::SYSCALL_ENTER, getpid),
            rec(40, trace::TICK_BEGIN, 1),
            rec(50, trace::TICK_END, 0),
            rec(60, trace::PAGE_FAULT_BEGIN, 0x1000),
            rec(70, trace::FAULT, 14),
            rec(80, trace::FAULT, 0),
            rec(100, trace::IDLE_BEGIN, 0),
            rec(200, trace::INTERRUPT_BEGIN, 36),
            rec(210, trace::INTERRUPT_END, 0),
            rec(350, trace::IDLE_END, 0),
        ];
        let c = GuestCounts::from_records(&records, 0);
        assert_eq!(c.syscalls[&getpid], 2);
        assert_eq!((c.switches, c.timer_interrupts, c.page_faults), (1, 1, 1));
        assert_eq!(c.traps[&14], 1);
        assert_eq!(c.traps[&0], 1);
        assert_eq!(c.traps[&TIMER_VECTOR], 1);
        assert_eq!(c.traps[&36], 1);
        assert_eq!((c.idle_ns, c.idle_periods), (250, 1));
        let text = c.report();
        assert!(text.contains("console interrupt"), "{text}");
        assert!(text.contains("getpid (39)"), "{text}");
        assert!(!text.lines().any(|l| l.ends_with('%')), "{text}");
        assert_eq!(c.json()["syscalls_by_name"]["getpid"], 2);
    }
}
