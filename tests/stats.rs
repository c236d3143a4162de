//! `--stats`: the VM exits the VMM saw, counted by kind and device. A guest whose every exit is
//! known (tests/common's tiny guests) must be reported exactly; the demo's table must add up.

mod common;
use common::*;

/// The rows of the table: (exit name, count).
fn rows(stderr: &str) -> Vec<(String, u64)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("vmm stats: "))
        // The rows end in a share "N.NN%"; the summary line starts with "run ".
        .filter(|l| !l.starts_with("run ") && l.ends_with('%'))
        .map(|l| {
            // NAME COUNT TOTAL MEAN SHARE: the name has spaces, the last four fields do not.
            let w: Vec<&str> = l.split_whitespace().collect();
            assert!(w.len() >= 5, "{l}");
            let n = w.len() - 4;
            (w[..n].join(" "), w[n].parse().expect("a count"))
        })
        .collect()
}

/// "N KVM_RUN calls" from the summary line.
fn kvm_runs(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("vmm stats: run "))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    let before = line.split(" KVM_RUN calls").next().unwrap();
    before
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect("a number")
}

#[test]
fn a_guest_of_three_outs_and_an_exit_is_counted_exactly() {
    let dir = scratch_dir("stats_tiny");
    let kernel = write_file(
        &dir,
        "hi.elf",
        &make_elf(ElfSpec::default(), &code_hi_then_exit(9)),
    );
    let out = run_vmm([kernel.as_os_str(), "--stats".as_ref()]);
    assert_eq!(out.status.code(), Some(9), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    let err = stderr(&out);
    // "hi\n" is three `out dx, al`, then one `out 0xf4, al`: four exits, four KVM_RUN calls.
    assert_eq!(
        rows(&err),
        vec![
            ("port out 0x3f8 COM1".to_string(), 3),
            ("port out 0xf4 exit".to_string(), 1)
        ],
        "{err}"
    );
    assert_eq!(kvm_runs(&err), 4, "{err}");
}

#[test]
fn without_stats_nothing_is_printed() {
    let dir = scratch_dir("stats_off");
    let kernel = write_file(
        &dir,
        "hi.elf",
        &make_elf(ElfSpec::default(), &code_hi_then_exit(0)),
    );
    let out = run_vmm([kernel.as_os_str()]);
    assert_eq!(stderr(&out), "");
}

#[test]
fn the_demo_table_adds_up_to_the_kvm_run_calls() {
    let run = lde::run_vmm_lde(["--stats"]);
    run.assert_status(0);
    let rows = rows(&run.stderr);
    let total: u64 = rows.iter().map(|r| r.1).sum();
    // Every KVM_RUN ends in one exit; the demo is not interrupted by signals (no gdb), so
    // every exit has a row.
    assert_eq!(total, kvm_runs(&run.stderr), "{}", run.stderr);
    let count = |name: &str| rows.iter().find(|r| r.0 == name).map(|r| r.1);
    assert_eq!(count("port out 0xf4 exit"), Some(1), "{}", run.stderr);
    assert!(
        count("port out 0x3f8 COM1").unwrap_or(0) > 0,
        "the demo prints: {}",
        run.stderr
    );
}

#[test]
fn stats_json_is_the_same_counts_for_machines() {
    let dir = scratch_dir("stats_json");
    let kernel = write_file(
        &dir,
        "hi.elf",
        &make_elf(ElfSpec::default(), &code_hi_then_exit(0)),
    );
    let out = run_vmm([kernel.as_os_str(), "--stats=json".as_ref()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    let v: serde_json::Value = serde_json::from_str(err.trim()).expect("one line of JSON");
    assert_eq!(v["kvm_runs"], 4, "{v}");
    let exits = v["exits"].as_array().unwrap();
    let count = |port: u64| {
        exits
            .iter()
            .find(|e| e["port"] == port)
            .map(|e| e["count"].as_u64().unwrap())
    };
    assert_eq!(count(0x3f8), Some(3), "{v}");
    assert_eq!(count(0xf4), Some(1), "{v}");
    assert_eq!(exits.len(), 2, "{v}");
    assert!(v["in_guest_ns"].as_u64().unwrap() <= v["run_ns"].as_u64().unwrap());
}

/// The guest's half of `--stats` is counted from the kernel's event records; the kernel's own
/// shutdown report counts the same things with its own counters. They must agree exactly
/// (idle time to the report's millisecond).
#[test]
fn the_guests_counts_match_the_kernels_report() {
    // The demo: calls, switches, ticks, page faults and kills; a sleeper: idle time.
    for args in [vec![], vec!["--user".to_string(), lde::user("sleeper", "")]] {
        let run = lde::run_vmm_lde(args.iter().chain(&["--stats=json".to_string()]));
        run.assert_status(0);
        let json_line = run
            .stderr
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON line: {}", run.dump()));
        let v: serde_json::Value = serde_json::from_str(json_line).expect("JSON");
        let g = &v["guest"];
        // KVM's own counters (KVM_GET_STATS_FD): every exit that reached us was a VM exit
        // first, and KVM saw more (the HLT and interrupt exits it handles itself).
        let kvm = &v["kvm"]["during_run"];
        let kvm_exits = kvm["exits"]
            .as_u64()
            .unwrap_or_else(|| panic!("KVM's statistics: {}", v["kvm"]));
        let ours = v["kvm_runs"].as_u64().unwrap();
        assert!(
            kvm_exits >= ours,
            "KVM counted {kvm_exits} exits, we saw {ours}"
        );
        let report = run.report();
        let calls: u64 = report.rows.iter().map(|r| r.syscalls).sum();
        let n = |key: &str| g[key].as_u64().unwrap_or_else(|| panic!("no {key} in {g}"));
        assert_eq!(g["dropped_records"], 0, "{g}");
        assert_eq!(n("syscalls"), calls, "{g}\n{}", run.dump());
        let by_name: u64 = g["syscalls_by_name"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(by_name, calls, "{g}");
        for (key, label) in [
            ("context_switches", "context switches"),
            ("timer_interrupts", "timer interrupts"),
            ("page_faults", "page faults"),
        ] {
            let theirs = report.summary_number(label);
            assert_eq!(Some(n(key)), theirs, "{key}: {g}\n{}", report.summary);
        }
        let traps = g["traps"].as_array().unwrap();
        let trap = |name: &str| {
            traps
                .iter()
                .find(|t| t["name"] == name)
                .map_or(0, |t| t["count"].as_u64().unwrap())
        };
        assert_eq!(trap("timer interrupt"), n("timer_interrupts"), "{g}");
        assert_eq!(trap("page fault"), n("page_faults"), "{g}");
        let idle_ms = report.summary_number("idle").expect("idle in the report");
        let ours_ms = n("idle_ns") / 1_000_000;
        assert!(
            ours_ms.abs_diff(idle_ms) <= 1,
            "idle {ours_ms} ms, report {idle_ms} ms"
        );
        if args.is_empty() {
            // The demo's kills: a divide error, a general protection fault (privileged), and
            // the page faults among the rest.
            assert_eq!(trap("divide error"), 1, "{g}");
            assert!(trap("general protection") >= 1, "{g}");
            assert!(n("page_faults") > 0, "{g}");
        } else {
            assert!(ours_ms > 0, "the sleeper idles the CPU: {g}");
        }
    }
}
