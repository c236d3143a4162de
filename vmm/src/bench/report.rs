//! The table and the JSON of `vmm bench`: one row per operation (ours, floor, host Linux, the
//! ratios, and our excess over the floor estimated in ring-0 instructions from the cycles),
//! the exact single-stepped ring-0 instruction counts of each path (counts.rs), then the
//! issue's targets, each met or missed by how much. Medians in the table; JSON has
//! min/median/p99, and is written with serde_json.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;
use serde_json::Value;

use super::counts::{self, CountRow};
use super::lines::{BenchLines, Stat, StatOf};
use super::Results;

/// One operation, measured up to three ways.
pub struct Row {
    pub key: &'static str,
    pub label: &'static str,
    pub ours: Option<Stat>,
    pub floor: Option<Stat>,
    pub host: Option<Stat>,
}

/// One of the targets.
pub struct Target {
    pub key: &'static str,
    pub goal: &'static str,
    /// The measured value, in the goal's unit, and the limit it is held to.
    pub value: Option<f64>,
    pub limit: f64,
    /// true: the value must be at most the limit; false: at least.
    pub at_most: bool,
    pub unit: &'static str,
    pub note: String,
}

impl Target {
    pub fn met(&self) -> Option<bool> {
        self.value.map(|v| {
            if self.at_most {
                v <= self.limit
            } else {
                v >= self.limit
            }
        })
    }

    fn verdict(&self) -> String {
        match (self.value, self.met()) {
            (Some(_), Some(true)) => "met".into(),
            (Some(v), Some(false)) => {
                format!("MISSED by {:.3} {}", (v - self.limit).abs(), self.unit)
            }
            _ => "not measured".into(),
        }
    }
}

pub fn rows(r: &Results) -> Vec<Row> {
    let o = |k: &str| r.ours.stat(k);
    let f = |k: &str| r.floor.stat(k);
    let h = |k: &str| r.host.get(k).copied();
    vec![
        Row {
            key: "syscall",
            label: "null syscall, getpid by `syscall` (host: getppid)",
            ours: o("syscall_getpid"),
            floor: f("syscall_getpid"),
            host: h("syscall_getpid"),
        },
        Row {
            key: "int80",
            label: "null syscall, getpid by `int 0x80`",
            ours: o("int80_getpid"),
            floor: f("int80_getpid"),
            host: None,
        },
        Row {
            key: "sched_yield",
            label: "sched_yield, nothing else runnable",
            ours: o("sched_yield"),
            floor: None,
            host: h("sched_yield"),
        },
        Row {
            key: "context_switch",
            label: "context switch (yield ping-pong; host: pipes, 1 CPU)",
            ours: o("context_switch"),
            floor: None,
            host: h("context_switch"),
        },
        Row {
            key: "pipe_switch",
            label: "context switch through two pipes (half a round trip)",
            ours: o("pipe_switch"),
            floor: None,
            host: h("pipe_switch"),
        },
        Row {
            key: "fork_exit_wait",
            label: "fork + exit + wait",
            ours: o("fork_exit_wait"),
            floor: None,
            host: h("fork_exit_wait"),
        },
        Row {
            key: "fork_exec_wait",
            label: "fork + exec + exit + wait of exit0 (static)",
            ours: o("fork_exec_wait"),
            floor: None,
            host: h("fork_exec_wait"),
        },
        Row {
            key: "fork_exec_padded_wait",
            label: "the same, exit0 padded with 2 MiB of code",
            ours: o("fork_exec_padded_wait"),
            floor: None,
            host: None,
        },
        Row {
            key: "boot_busybox",
            label: "boot to busybox true (host column: QEMU, KVM)",
            ours: h("boot_busybox"),
            floor: None,
            host: h("boot_busybox_qemu"),
        },
        Row {
            key: "console_4m_4k",
            label: "console: 4 MiB in 4 KiB writes, over an empty run",
            ours: h("console_4m_4k"),
            floor: None,
            host: h("console_4m_4k_host"),
        },
        Row {
            key: "console_4m_64k",
            label: "console: 4 MiB in 64 KiB writes, over an empty run",
            ours: h("console_4m_64k"),
            floor: None,
            host: h("console_4m_64k_host"),
        },
        Row {
            key: "console_lines",
            label: "console: one 80-byte write (of 10,000)",
            ours: h("console_lines"),
            floor: None,
            host: h("console_lines_host"),
        },
        Row {
            key: "timer_tick",
            label: "timer interrupt, cycles lost per tick",
            ours: o("timer_tick"),
            floor: f("timer_tick"),
            host: None,
        },
        Row {
            key: "page_fault",
            label: "page fault, demand-zero page (brk / mmap)",
            ours: o("page_fault"),
            floor: None,
            host: h("page_fault"),
        },
        Row {
            key: "clock_gettime",
            label: "clock_gettime(MONOTONIC), vDSO in ring 3 (host: libc)",
            ours: o("clock_gettime"),
            floor: None,
            host: h("clock_gettime"),
        },
        Row {
            key: "clock_gettime_syscall",
            label: "  same, by the system call",
            ours: o("clock_gettime_syscall"),
            floor: None,
            host: h("clock_gettime_syscall"),
        },
        Row {
            key: "port_exit",
            label: "port write from ring 0 to VMM userspace",
            ours: o("port_exit"),
            floor: f("port_exit"),
            host: None,
        },
        Row {
            key: "port_exit_vmm",
            label: "  same, floor guest: our VMM | bare KVM_RUN",
            ours: f("port_exit"),
            floor: r.floor_bare.stat("port_exit"),
            host: None,
        },
        Row {
            key: "cpuid_ring0",
            label: "cpuid in ring 0 (answered inside KVM)",
            ours: o("cpuid_ring0"),
            floor: f("cpuid_ring0"),
            host: None,
        },
        Row {
            key: "cpuid_ring3",
            label: "cpuid in ring 3",
            ours: o("cpuid_ring3"),
            floor: f("cpuid_ring3"),
            host: h("cpuid_ring3"),
        },
        Row {
            key: "ring0_insn",
            label: "one ring-0 instruction (dec/jnz loop)",
            ours: o("ring0_insn"),
            floor: f("ring0_insn"),
            host: None,
        },
        Row {
            key: "work",
            label: "direct execution: CPU-bound work, tickless",
            ours: o("work"),
            floor: None,
            host: h("work"),
        },
        Row {
            key: "work_hz100",
            label: "  same, timer forced on at HZ=100",
            ours: o("work_hz100"),
            floor: None,
            host: h("work"),
        },
        Row {
            key: "ring3_gaps",
            label: "ring 3 alone: one gap in a TSC scan (> 2,000 cyc)",
            ours: o("ring3_gaps"),
            floor: None,
            host: h("ring3_gaps"),
        },
        Row {
            key: "rdtsc_overhead",
            label: "lfence;rdtsc pair (subtracted from samples)",
            ours: o("rdtsc_overhead"),
            floor: f("rdtsc_overhead"),
            host: h("rdtsc_overhead"),
        },
    ]
}

/// What one ring-0 instruction costs in our guest (median), the unit of "excess".
pub fn ring0_insn(r: &Results) -> Option<f64> {
    r.ours
        .stat("ring0_insn")
        .or_else(|| r.floor.stat("ring0_insn"))
        .map(|s| s.median)
        .filter(|&c| c > 0.0)
}

fn excess_insns(r: &Results, ours: Option<Stat>, floor: Option<Stat>) -> Option<f64> {
    Some((ours?.median - floor?.median) / ring0_insn(r)?)
}

/// The exact excess of a counted path over the floor, in ring-0 instructions.
fn exact_excess(r: &Results, key: &str) -> Option<f64> {
    r.counts
        .iter()
        .find(|c| c.key == key)
        .and_then(|c| c.excess)
        .map(|e| e as f64)
}

/// Our exact count of a path.
fn our_count(r: &Results, key: &str) -> Option<f64> {
    r.counts
        .iter()
        .find(|c| c.key == key)
        .and_then(|c| c.ours.as_ref()?.insns())
        .map(|n| n as f64)
}

/// The note of an excess target: the exact counts, and the estimate from the cycles.
fn excess_note(r: &Results, key: &str, estimate: Option<f64>) -> String {
    let row = r.counts.iter().find(|c| c.key == key);
    let cell = |c: Option<&CountRow>, ours: bool| {
        c.map_or("-".into(), |c| {
            counts::cell(if ours { &c.ours } else { &c.floor })
        })
    };
    format!(
        "exact, single-stepped: ours {}, floor {} ring-0 instructions (estimated from the \
         cycles: {})",
        cell(row, true),
        cell(row, false),
        estimate.map_or("?".into(), |e| format!("{e:.0}"))
    )
}

pub fn targets(r: &Results) -> Vec<Target> {
    let o = |k: &str| r.ours.stat(k);
    let f = |k: &str| r.floor.stat(k);
    let host_work = r.host.get("work").copied();
    // Medians: the host pools twice the guest's runs (before and after the guests), and the
    // minimum of a larger pool is biased low. The minima's ratio goes in the note.
    let speed = host_work.zip(o("work")).map(|(h, g)| h.median / g.median);
    let speed_min = host_work.zip(o("work")).map(|(h, g)| h.min / g.min);
    let speed100 = host_work
        .zip(o("work_hz100"))
        .map(|(h, g)| h.median / g.median);
    let tickless = r.ours.field("tickless_interrupts", "count");
    let vmm_ratio = f("port_exit")
        .zip(r.floor_bare.stat("port_exit"))
        .map(|(a, b)| a.median / b.median);
    let clock_ratio = o("clock_gettime")
        .zip(r.host.get("clock_gettime"))
        .map(|(g, h)| g.median / h.median.max(1.0));
    let switch_ratio = o("context_switch")
        .zip(o("syscall_getpid"))
        .map(|(c, s)| c.median / s.median);
    let lost = |b: &super::lines::BenchLines| {
        Some(b.field("ring3_gaps", "lost")? / b.field("ring3_gaps", "span")?)
    };
    let gaps_note = format!(
        "; ring 3 alone lost {} of its time to gaps in the guest, {:.2}% on the host",
        lost(&r.ours).map_or("?".into(), |l| format!("{:.2}%", l * 100.0)),
        r.host_lost * 100.0
    );
    let pipe_per_switch = our_count(r, "pipe_round_trip").map(|n| n / 2.0);
    let yield_switch = our_count(r, "context_switch");
    let pipe_vs_yield = pipe_per_switch
        .zip(yield_switch)
        .map(|(p, y)| p / y)
        .filter(|x| x.is_finite());
    let pipe_cycles = o("pipe_switch")
        .zip(o("context_switch"))
        .map(|(p, y)| p.median / y.median);
    let fork_exec = our_count(r, "fork_exec_wait");
    let padded_ratio = our_count(r, "fork_exec_padded_wait")
        .zip(fork_exec)
        .map(|(p, f)| p / f)
        .filter(|x| x.is_finite());
    let padded_cycles = o("fork_exec_padded_wait")
        .zip(o("fork_exec_wait"))
        .map(|(p, f)| p.median / f.median);
    let null_calls = fork_exec
        .zip(our_count(r, "syscall_getpid"))
        .map(|(f, s)| f / s);
    let hz100_share = o("timer_tick")
        .map(|t| t.median * 100.0 / r.tsc_hz * 100.0)
        .map(|p| format!("a tick costs {p:.2}% of the CPU at HZ=100 while the timer runs"))
        .unwrap_or_default();
    vec![
        Target {
            key: "direct_execution",
            goal: "CPU-bound ring-3 work >= 0.99x host native speed (default HZ, one task)",
            value: speed,
            limit: 0.99,
            at_most: false,
            unit: "x",
            note: format!(
                "speed = host median / guest median (of the minima: {}); with the timer \
                 forced on at 100 Hz: {}",
                speed_min.map_or("?".into(), |s| format!("{s:.3}x")),
                speed100.map_or("?".into(), |s| format!("{s:.3}x"))
            ) + &gaps_note,
        },
        Target {
            key: "tickless",
            goal: "no timer interrupt while one task runs (tickless)",
            value: tickless,
            limit: 0.0,
            at_most: true,
            unit: "interrupts",
            note: "interrupts counted by the kernel during the tickless work runs".into(),
        },
        Target {
            key: "port_exit_vmm",
            goal: "VMM port-exit round trip <= 1.1x the bare KVM_RUN loop",
            value: vmm_ratio,
            limit: 1.1,
            at_most: true,
            unit: "x",
            note: "the floor guest's ring-0 `out` loop, on our VMM vs the bare loop".into(),
        },
        Target {
            key: "syscall_excess",
            goal: "null syscall (`syscall`) <= floor + 40 ring-0 instructions",
            value: exact_excess(r, "syscall_getpid"),
            limit: 40.0,
            at_most: true,
            unit: "instructions",
            note: excess_note(
                r,
                "syscall_getpid",
                excess_insns(r, o("syscall_getpid"), f("syscall_getpid")),
            ),
        },
        Target {
            key: "int80_excess",
            // Issue 13's budget: the #UD path must read the `CD 80` bytes from user memory.
            goal: "null syscall (`int 0x80`) <= floor + 60 ring-0 instructions (issue 13)",
            value: exact_excess(r, "int80_getpid"),
            limit: 60.0,
            at_most: true,
            unit: "instructions",
            note: excess_note(
                r,
                "int80_getpid",
                excess_insns(r, o("int80_getpid"), f("int80_getpid")),
            ),
        },
        Target {
            key: "clock_gettime",
            goal: "clock_gettime in the guest (vDSO) <= 2x the host's (issue 10)",
            value: clock_ratio,
            limit: 2.0,
            at_most: true,
            unit: "x",
            note: "medians; the guest's by the kernel's vDSO, the host's by libc and Linux's vDSO"
                .into(),
        },
        Target {
            key: "context_switch",
            goal: "context switch <= 4x the null syscall",
            value: switch_ratio,
            limit: 4.0,
            at_most: true,
            unit: "x",
            note: String::new(),
        },
        Target {
            key: "fork_exec_insns",
            goal: "fork + exec + exit + wait of a small static program <= 24,000 ring-0 \
                   instructions",
            value: fork_exec,
            limit: 24_000.0,
            at_most: true,
            unit: "instructions",
            note: format!(
                "exact, single-stepped (a span); {} null system calls' worth; fork + exit + \
                 wait alone: {}",
                null_calls.map_or("?".into(), |n| format!("{n:.0}")),
                our_count(r, "fork_exit_wait").map_or("?".into(), |n| format!("{n:.0}"))
            ),
        },
        Target {
            key: "exec_size_costs_nothing",
            goal: "fork + exec of a program padded with 2 MiB of code <= 1.1x that of the \
                   program itself",
            value: padded_ratio,
            limit: 1.1,
            at_most: true,
            unit: "x",
            note: format!(
                "exact ring-0 instructions, padded / plain; in cycles (medians): {}",
                padded_cycles.map_or("?".into(), |x| format!("{x:.2}x"))
            ),
        },
        Target {
            key: "pipe_switch",
            goal: "context switch through two pipes <= 1.5x the yield ping-pong switch",
            value: pipe_vs_yield,
            limit: 1.5,
            at_most: true,
            unit: "x",
            note: format!(
                "exact ring-0 instructions: {} per pipe switch (half a round trip) vs {} per \
                 yield switch; in cycles: {}",
                pipe_per_switch.map_or("?".into(), |n| format!("{n:.1}")),
                yield_switch.map_or("?".into(), |n| format!("{n:.0}")),
                pipe_cycles.map_or("?".into(), |x| format!("{x:.2}x"))
            ),
        },
        Target {
            key: "timer_tick_excess",
            goal: "timer tick that does not switch <= floor + 30 ring-0 instructions",
            value: exact_excess(r, "timer_tick"),
            limit: 30.0,
            at_most: true,
            unit: "instructions",
            note: excess_note(
                r,
                "timer_tick",
                excess_insns(r, o("timer_tick"), f("timer_tick")),
            ) + if hz100_share.is_empty() { "" } else { "; " }
                + &hz100_share,
        },
        Target {
            key: "trace_record",
            goal: "with --trace, each event costs <= 15 ring-0 instructions (worst path)",
            value: r.trace_record_cost.iter().map(|(_, n)| *n).reduce(f64::max),
            limit: 15.0,
            at_most: true,
            unit: "instructions",
            note: format!(
                "traced count minus plain, per record: {}; the hook's own work included (the \
                 system call's and the tick's records come from recording twins of their entry \
                 stubs, trap_entry.rs)",
                r.trace_record_cost
                    .iter()
                    .map(|(p, n)| format!("{p} {n:.1}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        Target {
            key: "console_4m_4k",
            goal: "console: 4 MiB in 4 KiB writes costs <= 0.3 s over an empty run",
            value: r.host.get("console_4m_4k").map(|s| s.median / r.tsc_hz),
            limit: 0.3,
            at_most: true,
            unit: "s",
            note: console_note(r, "console_4m_4k"),
        },
        Target {
            key: "console_4m_64k",
            goal: "console: 4 MiB in 64 KiB writes costs <= 0.05 s over an empty run",
            value: r.host.get("console_4m_64k").map(|s| s.median / r.tsc_hz),
            limit: 0.05,
            at_most: true,
            unit: "s",
            note: console_note(r, "console_4m_64k"),
        },
        Target {
            key: "console_lines",
            goal: "console: an 80-byte write costs <= a null system call plus one VM exit",
            value: r
                .host
                .get("console_lines")
                .zip(line_budget(r))
                .map(|(l, b)| l.median / b),
            limit: 1.0,
            at_most: true,
            unit: "x",
            note: format!(
                "per write over the budget (null syscall {} + port exit {} cycles, medians)",
                o("syscall_getpid").map_or("?".into(), |s| format!("{:.0}", s.median)),
                o("port_exit").map_or("?".into(), |s| format!("{:.0}", s.median)),
            ),
        },
    ]
}

/// The budget of one line write: a null system call and a port exit, ours, in cycles.
fn line_budget(r: &Results) -> Option<f64> {
    let o = |k: &str| r.ours.stat(k).map(|s| s.median);
    Some(o("syscall_getpid")? + o("port_exit")?)
}

fn console_note(r: &Results, key: &str) -> String {
    let host = r
        .host
        .get(&*format!("{key}_host"))
        .map(|s| s.median / r.tsc_hz);
    format!(
        "wall time of `vmm --user \"blast 4194304 BLOCK\"` minus `blast 0`, stdout a pipe, \
         every byte checked; the same binary on the host into a pipe: {}",
        host.map_or("?".into(), |s| format!("{:.4} s", s))
    )
}

fn ns(r: &Results, cycles: f64) -> f64 {
    cycles / r.tsc_hz * 1e9
}

fn cell(r: &Results, s: Option<Stat>) -> String {
    match s {
        Some(s) => format!("{} ({})", human(s.median), human_ns(ns(r, s.median))),
        None => "-".into(),
    }
}

fn human(c: f64) -> String {
    if c >= 1e7 {
        format!("{:.1}M", c / 1e6)
    } else if c >= 1e4 {
        format!("{:.1}k", c / 1e3)
    } else {
        format!("{c:.0}")
    }
}

fn human_ns(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2} ms", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.2} us", n / 1e3)
    } else {
        format!("{n:.0} ns")
    }
}

fn ratio(a: Option<Stat>, b: Option<Stat>) -> Option<f64> {
    Some(a?.median / b?.median).filter(|x| x.is_finite())
}

/// The exact counts: one line per path, ours, the floor's, the excess, whether both runs
/// agreed.
fn counts_table(t: &mut String, r: &Results) {
    let _ = writeln!(
        t,
        "\nring-0 instructions per round trip, single-stepped (exact; each path counted twice, \
         a / b when the two differ)"
    );
    let _ = writeln!(
        t,
        "{:<54} {:>14} {:>14} {:>8}",
        "path", "guest (ours)", "floor", "excess"
    );
    for c in &r.counts {
        let _ = writeln!(
            t,
            "{:<54} {:>14} {:>14} {:>8}",
            c.label,
            counts::cell(&c.ours),
            counts::cell(&c.floor),
            c.excess.map_or("-".into(), |e| e.to_string())
        );
    }
    if r.counts.is_empty() {
        let _ = writeln!(t, "  (no counts: see the notes)");
    }
    if !r.trace_record_cost.is_empty() {
        let each: Vec<String> = r
            .trace_record_cost
            .iter()
            .map(|(path, n)| format!("{path} {n:.1}"))
            .collect();
        let _ = writeln!(
            t,
            "one trace record costs (traced minus plain, per record; target <= 15): {}",
            each.join(", ")
        );
    }
}

pub fn table(r: &Results) -> String {
    let mut t = String::new();
    let mode = match (r.counts_only, r.quick) {
        (true, _) => " --counts",
        (false, true) => " --quick",
        (false, false) => "",
    };
    let _ = writeln!(t, "vmm bench{mode}");
    let _ = writeln!(t, "  CPU   {}", r.cpu);
    let _ = writeln!(t, "  TSC   {:.1} MHz ({})", r.tsc_hz / 1e6, r.tsc_source);
    let _ = writeln!(t, "  KVM   {}", r.kvm);
    if r.counts_only {
        counts_table(&mut t, r);
        for p in &r.problems {
            let _ = writeln!(t, "note: {p}");
        }
        return t;
    }
    if let Some(c) = ring0_insn(r) {
        let _ = writeln!(t, "  one ring-0 instruction in our guest: {c:.0} cycles");
    }
    let _ = writeln!(
        t,
        "  medians, TSC cycles (ns); excess = (ours - floor) / one ring-0 instruction\n"
    );
    let _ = writeln!(
        t,
        "{:<54} {:>21} {:>21} {:>21} {:>10} {:>10} {:>8}",
        "operation", "guest (ours)", "floor", "host Linux", "ours/flr", "ours/host", "excess"
    );
    for row in rows(r) {
        let rf = ratio(row.ours, row.floor).map_or("-".into(), |x| format!("{x:.2}x"));
        let rh = ratio(row.ours, row.host).map_or("-".into(), |x| format!("{x:.3}x"));
        let ex = if row.key == "port_exit_vmm" || row.key == "ring0_insn" {
            "-".into()
        } else {
            excess_insns(r, row.ours, row.floor).map_or("-".into(), |x| format!("{x:.0}"))
        };
        let _ = writeln!(
            t,
            "{:<54} {:>21} {:>21} {:>21} {:>10} {:>10} {:>8}",
            row.label,
            cell(r, row.ours),
            cell(r, row.floor),
            cell(r, row.host),
            rf,
            rh,
            ex
        );
    }
    counts_table(&mut t, r);
    let _ = writeln!(
        t,
        "\ntargets (issues 4 and 8; the instruction budgets held to the exact counts):"
    );
    for g in targets(r) {
        let v = g.value.map_or("?".into(), |v| format!("{v:.3}"));
        let _ = writeln!(
            t,
            "  {:<72} {:>10} {:<12} {}",
            g.goal,
            v,
            g.unit,
            g.verdict()
        );
        if !g.note.is_empty() {
            let _ = writeln!(t, "      {}", g.note);
        }
    }
    for p in &r.problems {
        let _ = writeln!(t, "note: {p}");
    }
    t
}

/// A finite number, or nothing (JSON null).
fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

#[derive(Serialize)]
struct JsonStat {
    min: f64,
    median: f64,
    p99: f64,
    iters: u64,
    median_ns: Option<f64>,
}

fn jstat(r: &Results, s: Option<Stat>) -> Option<JsonStat> {
    s.map(|s| JsonStat {
        min: s.min,
        median: s.median,
        p99: s.p99,
        iters: s.iters,
        median_ns: finite(Some(ns(r, s.median))),
    })
}

#[derive(Serialize)]
struct JsonRow {
    key: &'static str,
    label: &'static str,
    ours: Option<JsonStat>,
    floor: Option<JsonStat>,
    host: Option<JsonStat>,
    ours_over_floor: Option<f64>,
    ours_over_host: Option<f64>,
    /// Estimated from the cycles (the exact counts are in `counts`).
    excess_ring0_insns: Option<f64>,
}

#[derive(Serialize)]
struct JsonTarget {
    key: &'static str,
    goal: &'static str,
    value: Option<f64>,
    limit: f64,
    unit: &'static str,
    met: Option<bool>,
    verdict: String,
    note: String,
}

#[derive(Serialize)]
struct JsonRaw {
    ours: BTreeMap<String, BTreeMap<String, Value>>,
    floor: BTreeMap<String, BTreeMap<String, Value>>,
    floor_bare: BTreeMap<String, BTreeMap<String, Value>>,
    host: BTreeMap<&'static str, JsonStat>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    unix_time: u64,
    quick: bool,
    counts_only: bool,
    cpu: &'a str,
    kvm: &'a str,
    tsc_hz: f64,
    tsc_source: &'a str,
    ring0_insn_cycles: Option<f64>,
    host_ring3_lost: Option<f64>,
    rows: Vec<JsonRow>,
    counts: &'a [CountRow],
    trace_record_cost: &'a [(String, f64)],
    targets: Vec<JsonTarget>,
    raw: JsonRaw,
    problems: &'a [String],
}

/// A guest's BENCH lines as JSON: each line's fields, numbers as numbers.
fn jlines(b: &BenchLines) -> BTreeMap<String, BTreeMap<String, Value>> {
    b.lines
        .iter()
        .map(|(name, fields)| {
            let kv = fields
                .iter()
                .filter(|(k, _)| *k != "name")
                .map(|(k, v)| {
                    let val = match v.parse::<f64>() {
                        Ok(x) if x.is_finite() => Value::from(x),
                        _ => Value::from(v.as_str()),
                    };
                    (k.clone(), val)
                })
                .collect();
            (name.clone(), kv)
        })
        .collect()
}

pub fn json(r: &Results) -> String {
    let unix_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let report = JsonReport {
        unix_time,
        quick: r.quick,
        counts_only: r.counts_only,
        cpu: &r.cpu,
        kvm: &r.kvm,
        tsc_hz: r.tsc_hz,
        tsc_source: r.tsc_source,
        ring0_insn_cycles: finite(ring0_insn(r)),
        host_ring3_lost: finite(Some(r.host_lost)),
        rows: rows(r)
            .into_iter()
            .map(|row| JsonRow {
                key: row.key,
                label: row.label.trim(),
                ours: jstat(r, row.ours),
                floor: jstat(r, row.floor),
                host: jstat(r, row.host),
                ours_over_floor: finite(ratio(row.ours, row.floor)),
                ours_over_host: finite(ratio(row.ours, row.host)),
                excess_ring0_insns: finite(excess_insns(r, row.ours, row.floor)),
            })
            .collect(),
        counts: &r.counts,
        trace_record_cost: &r.trace_record_cost,
        targets: targets(r)
            .into_iter()
            .map(|g| JsonTarget {
                key: g.key,
                goal: g.goal,
                value: finite(g.value),
                limit: g.limit,
                unit: g.unit,
                met: g.met(),
                verdict: g.verdict(),
                note: g.note,
            })
            .collect(),
        raw: JsonRaw {
            ours: jlines(&r.ours),
            floor: jlines(&r.floor),
            floor_bare: jlines(&r.floor_bare),
            host: r
                .host
                .iter()
                .filter_map(|(k, s)| Some((*k, jstat(r, Some(*s))?)))
                .collect(),
        },
        problems: &r.problems,
    };
    // Serialising these plain structures cannot fail (string keys, no custom Serialize).
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
