//! `vmm bench --quick --json` (issue 4): the bench runs all three sides (our kernel, the floor on
//! our VMM and on the bare KVM_RUN loop, the host) and its numbers are sane: the JSON parses,
//! every measured median is positive, what the hardware orders is ordered (a context switch
//! costs more than a null system call, a trap more than a `cpuid` from ring 3), one ring-0
//! instruction costs something. Speed targets are reported by the bench, never asserted here.

use std::process::Command;

use serde_json::Value;

fn bench_json() -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(["bench", "--quick", "--json"])
        .output()
        .expect("run vmm bench");
    assert!(
        out.status.success(),
        "vmm bench failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "vmm bench --json is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn median(v: &Value, row: &str, side: &str) -> f64 {
    let rows = v["rows"].as_array().expect("rows");
    let r = rows
        .iter()
        .find(|r| r["key"] == row)
        .unwrap_or_else(|| panic!("no row {row}"));
    r[side]["median"]
        .as_f64()
        .unwrap_or_else(|| panic!("row {row} has no {side} median: {r}"))
}

#[test]
fn bench_runs_and_its_numbers_are_sane() {
    let v = bench_json();
    assert_eq!(v["quick"], true);
    // Every part of the bench ran (a debug build of vmm only adds a warning about itself).
    let problems = v["problems"].as_array().expect("problems");
    assert!(
        problems
            .iter()
            .all(|p| p.as_str().is_some_and(|p| p.contains("debug build"))),
        "every part of the bench should have run: {problems:?}"
    );
    assert!(
        v["tsc_hz"].as_f64().is_some_and(|f| f > 1e8),
        "TSC frequency"
    );
    assert!(v["cpu"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["kvm"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        v["ring0_insn_cycles"].as_f64().is_some_and(|c| c > 0.0),
        "one ring-0 instruction costs something"
    );

    // Every measured cell: min <= median <= p99, median > 0. (A min may be 0 only for the
    // timer tick, a difference between two runs of the work that noise can cancel.)
    for row in v["rows"].as_array().expect("rows") {
        for side in ["ours", "floor", "host"] {
            let s = &row[side];
            if s.is_null() {
                continue;
            }
            let (min, med, p99) = (
                s["min"].as_f64().unwrap(),
                s["median"].as_f64().unwrap(),
                s["p99"].as_f64().unwrap(),
            );
            let what = format!("{} / {side}: {s}", row["key"]);
            assert!(med > 0.0, "{what}");
            assert!(min >= 0.0 && min <= med && med <= p99, "{what}");
            assert!(s["iters"].as_u64().is_some_and(|n| n > 0), "{what}");
        }
    }

    // The three sides all ran.
    for (row, side) in [
        ("syscall", "ours"),
        ("int80", "ours"),
        ("sched_yield", "ours"),
        ("context_switch", "ours"),
        ("timer_tick", "ours"),
        ("page_fault", "ours"),
        ("port_exit", "ours"),
        ("ring0_insn", "ours"),
        ("work", "ours"),
        ("syscall", "floor"),
        ("int80", "floor"),
        ("port_exit", "floor"),
        ("port_exit_vmm", "floor"),
        ("syscall", "host"),
        ("context_switch", "host"),
        ("work", "host"),
    ] {
        median(&v, row, side);
    }

    // What the hardware orders.
    assert!(
        median(&v, "context_switch", "ours") > median(&v, "syscall", "ours"),
        "a context switch (two traps and a switch) costs more than a null syscall"
    );
    assert!(
        median(&v, "context_switch", "host") > median(&v, "syscall", "host"),
        "on the host too"
    );
    assert!(
        median(&v, "syscall", "ours") > median(&v, "cpuid_ring3", "ours"),
        "a round trip through the kernel costs more than one cpuid"
    );

    // Every target has a verdict (met, missed, or not measured), never a failure here.
    let targets = v["targets"].as_array().expect("targets");
    assert!(targets.len() >= 6);
    for t in targets {
        assert!(t["verdict"].as_str().is_some(), "{t}");
    }
}
