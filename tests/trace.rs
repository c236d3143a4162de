//! `vmm --trace FILE`: the kernel's events as Chrome trace-event JSON (Perfetto). The demo's
//! trace must be well-formed (slices nest and time never goes back on a track), hold the same
//! switches as `trace=sched` prints, in the same order, and show each known program's system
//! calls in the order it makes them, and the faults that killed the bad ones.

mod common;
use common::lde::*;

use std::collections::HashMap;

use serde_json::Value;

/// The demo booted once with a trace, shared by the tests that read it (two boots writing
/// one file at once would corrupt it, and one boot is cheaper). A failed boot fails every
/// test that reads it, each with the boot's own message.
fn demo_trace() -> &'static (Run, Value) {
    static DEMO: std::sync::OnceLock<Result<(Run, Value), String>> = std::sync::OnceLock::new();
    let demo = DEMO.get_or_init(|| {
        std::panic::catch_unwind(boot_demo_with_trace).map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the traced demo boot panicked".into())
        })
    });
    demo.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

fn boot_demo_with_trace() -> (Run, Value) {
    let dir = common::scratch_dir("trace_demo");
    let path = dir.join("demo.json");
    let run = run_vmm_lde([
        "--trace",
        path.to_str().unwrap(),
        "--cmdline",
        "trace=sched",
    ]);
    run.assert_status(0);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no trace: {e}"));
    let v: Value = serde_json::from_str(&text).expect("the trace is JSON");
    (run, v)
}

fn events(v: &Value) -> &Vec<Value> {
    v["traceEvents"]
        .as_array()
        .expect("traceEvents is an array")
}

fn str_of<'a>(e: &'a Value, key: &str) -> &'a str {
    e[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {e}"))
}

#[test]
fn the_demo_trace_is_well_formed_and_matches_trace_sched() {
    let (run, v) = demo_trace();
    assert_eq!(v["otherData"]["dropped_records"], 0);
    assert!(v["otherData"]["problem"].is_null(), "{}", v["otherData"]);
    // The demo makes more events than the buffer holds: it was handed over when full, and
    // the rest read at the end.
    assert!(v["otherData"]["records"].as_u64().unwrap() > 1024);
    let mut stacks: HashMap<(u64, u64), Vec<String>> = HashMap::new();
    let mut last_ts: HashMap<(u64, u64), f64> = HashMap::new();
    for e in events(v) {
        let ph = str_of(e, "ph");
        assert!(["B", "E", "i", "M"].contains(&ph), "{e}");
        let track = (
            e["pid"].as_u64().expect("pid is an integer"),
            e["tid"].as_u64().expect("tid is an integer"),
        );
        if ph == "M" {
            continue;
        }
        let ts = e["ts"].as_f64().expect("ts in µs");
        let last = last_ts.insert(track, ts).unwrap_or(0.0);
        assert!(ts >= last, "time went back on {track:?}: {last} then {e}");
        let name = str_of(e, "name").to_string();
        let stack = stacks.entry(track).or_default();
        match ph {
            "B" => stack.push(name),
            "E" => assert_eq!(stack.pop(), Some(name), "unbalanced end on {track:?}: {e}"),
            _ => {}
        }
    }
    for (track, stack) in &stacks {
        assert!(stack.is_empty(), "{track:?} left open: {stack:?}");
    }

    // The switch instants, in order, are the `sched:` lines: from, to, why.
    let switches: Vec<(u64, u64, String)> = events(v)
        .iter()
        .filter(|e| e["cat"] == "sched" && e["ph"] == "i")
        .map(|e| {
            let a = &e["args"];
            (
                a["from"].as_u64().unwrap(),
                a["to"].as_u64().unwrap(),
                str_of(a, "why").to_string(),
            )
        })
        .collect();
    let pid = |task: &str| task.split(':').next().unwrap().parse::<u64>().unwrap();
    let lines: Vec<(u64, u64, String)> = run
        .lines_starting("sched: ")
        .iter()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (pid(w[2]), pid(w[4]), w[5].to_string())
        })
        .collect();
    assert!(lines.len() > 10, "{}", run.dump());
    assert_eq!(switches, lines);
}

#[test]
fn the_demo_trace_shows_each_programs_calls_and_faults() {
    let (_, v) = demo_trace();
    let names: HashMap<u64, String> = events(v)
        .iter()
        .filter(|e| e["ph"] == "M")
        .map(|e| {
            let n = str_of(&e["args"], "name");
            (
                e["pid"].as_u64().unwrap(),
                n.split(' ').nth(1).unwrap_or("").into(),
            )
        })
        .collect();
    let pid_of = |name: &str| -> u64 {
        *names
            .iter()
            .find(|(_, n)| *n == name)
            .unwrap_or_else(|| panic!("no {name} track in {names:?}"))
            .0
    };
    // ping's calls: execve (by init's child), then five turns of a line and a yield. A call
    // that blocked and ran again shows twice in a row: counted once.
    let ping = pid_of("ping");
    let mut calls: Vec<&str> = events(v)
        .iter()
        .filter(|e| e["pid"] == ping && e["ph"] == "B" && e["cat"] == "syscall")
        .map(|e| str_of(e, "name"))
        .collect();
    calls.dedup();
    let mut expected = vec!["execve"];
    for _ in 0..5 {
        expected.extend(["write", "sched_yield"]);
    }
    expected.push("exit_group");
    assert_eq!(calls, expected);
    // The records carry each call's arguments and how it ended: ping's writes go to fd 1 and
    // return their length, its exit_group does not return, and init's wait4s return the
    // pids of its children (the recording dispatcher in trap_entry.rs writes these;
    // abi::trace::Filler completes them). A call that blocks has its slice cut by the switch
    // (kernel_lane.rs), so its own end is not shown.
    let evs = events(v);
    let ends = |pid: u64, name: &str| -> Vec<&Value> {
        evs.iter()
            .filter(|e| e["pid"] == pid && e["ph"] == "E" && e["name"] == name)
            .filter_map(|e| e.get("args"))
            .collect()
    };
    let writes: Vec<&Value> = evs
        .iter()
        .filter(|e| e["pid"] == ping && e["ph"] == "B" && e["name"] == "write")
        .map(|e| &e["args"])
        .collect();
    assert_eq!(writes.len(), 5);
    for w in &writes {
        assert_eq!(
            (w["nr"].as_u64(), w["args"][0].as_u64()),
            (Some(1), Some(1)),
            "{w}"
        );
    }
    let written: Vec<(i64, &str)> = ends(ping, "write")
        .iter()
        .map(|a| (a["result"].as_i64().unwrap(), str_of(a, "how")))
        .collect();
    assert_eq!(written.len(), 5, "{written:?}");
    for (i, (result, how)) in written.iter().enumerate() {
        assert_eq!(*result as u64, writes[i]["args"][2].as_u64().unwrap());
        assert_eq!(*how, "returned");
    }
    assert!(
        ends(ping, "exit_group")
            .iter()
            .all(|a| a["how"] == "no return"),
        "{:?}",
        ends(ping, "exit_group")
    );
    let reaped = ends(1, "wait4")
        .iter()
        .filter(|a| a["how"] == "returned" && a["result"].as_i64() > Some(1))
        .count();
    assert!(reaped >= 10, "init's wait4 ends: {:?}", ends(1, "wait4"));
    // Each of its yields hands the CPU over: a yield switch from ping ends every
    // sched_yield slice, at the same time.
    let evs = events(v);
    let yield_ends: Vec<f64> = evs
        .iter()
        .filter(|e| e["pid"] == ping && e["ph"] == "E" && e["name"] == "sched_yield")
        .map(|e| e["ts"].as_f64().unwrap())
        .collect();
    assert_eq!(yield_ends.len(), 5);
    for ts in yield_ends {
        assert!(
            evs.iter().any(|e| e["cat"] == "sched"
                && e["ph"] == "i"
                && e["args"]["from"] == ping
                && e["args"]["why"] == "yield"
                && e["ts"].as_f64() == Some(ts)),
            "no yield switch at {ts}"
        );
    }
    // A spinner, which makes no calls, is taken off the CPU by the timer.
    let spin = pid_of("spin");
    assert!(evs.iter().any(|e| e["cat"] == "sched"
        && e["args"]["from"] == spin
        && e["args"]["why"] == "preempt"));
    // The bad programs' faults, with the signal that killed each.
    for (prog, fault, signal) in [
        ("divzero", "fault: divide error", "SIGFPE"),
        ("privileged", "fault: general protection", "SIGSEGV"),
        ("readkernel", "fault: page fault", "SIGSEGV"),
    ] {
        let p = pid_of(prog);
        assert!(
            evs.iter().any(|e| e["pid"] == p
                && e["cat"] == "fault"
                && e["name"] == fault
                && e["args"]["signal"] == signal),
            "no {fault} ({signal}) on {prog}'s track"
        );
    }
}

/// The kernel's track holds what the kernel did, by cause; each process's track its start,
/// exec and end.
#[test]
fn the_kernel_track_shows_timer_ticks_page_faults_and_each_programs_life() {
    let (_, v) = demo_trace();
    let evs = events(v);
    let kernel_slices = |name: &str| {
        evs.iter()
            .filter(|e| e["pid"] == 0 && e["tid"] == 0 && e["ph"] == "B" && e["name"] == name)
            .count()
    };
    // The spinners are preempted by the timer; programs fault their pages in; the kernel
    // answers the bad programs' exceptions.
    assert!(kernel_slices("timer") > 10, "timer slices");
    assert!(kernel_slices("page fault") > 10, "page-fault slices");
    assert!(kernel_slices("sched_yield") > 100, "system-call slices");
    assert_eq!(kernel_slices("fault: divide error"), 1);
    let instants = |pid: u64| -> Vec<String> {
        evs.iter()
            .filter(|e| e["pid"] == pid && e["cat"] == "process")
            .map(|e| str_of(e, "name").to_string())
            .collect()
    };
    let pid_of = |name: &str| {
        evs.iter()
            .find(|e| e["cat"] == "process" && e["name"] == format!("exec {name}"))
            .and_then(|e| e["pid"].as_u64())
            .unwrap_or_else(|| panic!("no exec of {name}"))
    };
    assert_eq!(
        instants(pid_of("divzero")),
        ["exec divzero", "killed by SIGFPE"]
    );
    assert_eq!(instants(pid_of("hello")), ["exec hello", "exit 0"]);
    // init starts each program.
    let started = instants(1)
        .iter()
        .filter(|n| n.starts_with("start "))
        .count();
    assert!(started >= 10, "{:?}", instants(1));
}

/// The VMM's exits are put on the guest's clock (guest_clock.rs). Checked against what must be
/// true: while programs run, every console exit happens inside the kernel's work for a
/// system call or a fault (they are what print), never while a program runs in user mode.
/// (Without `trace=sched`, whose lines the switch path prints, outside any slice.)
#[test]
fn the_vmm_exits_sit_on_the_guests_clock_inside_the_kernel_work_that_caused_them() {
    let path = common::scratch_dir("trace_clock").join("demo.json");
    run_vmm_lde(["--trace", path.to_str().unwrap()]).assert_status(0);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no trace: {e}"));
    let v: Value = serde_json::from_str(&text).expect("the trace is JSON");
    let v = &v;
    let clock = &v["otherData"]["clock"];
    assert!(clock["pairs"].as_u64().unwrap() >= 3, "{clock}");
    let evs = events(v);
    let mut slices: Vec<(f64, f64)> = Vec::new();
    let mut open: Vec<f64> = Vec::new();
    for e in evs.iter().filter(|e| e["pid"] == 0 && e["tid"] == 0) {
        match e["ph"].as_str() {
            Some("B") => open.push(e["ts"].as_f64().unwrap()),
            Some("E") => {
                let b = open.pop().unwrap();
                if open.is_empty() {
                    slices.push((b, e["ts"].as_f64().unwrap()));
                }
            }
            _ => {}
        }
    }
    slices.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (first, last) = (slices[0].0, slices.last().unwrap().1);
    // The guest's time is estimated from below by up to an exit's latency; allow 50 µs.
    const SLACK_US: f64 = 50.0;
    let console: Vec<f64> = evs
        .iter()
        .filter(|e| e["tid"] == 1 && e["ph"] == "B" && str_of(e, "name").contains("COM1"))
        .map(|e| e["ts"].as_f64().unwrap())
        .filter(|t| *t > first && *t < last)
        .collect();
    assert!(
        console.len() > 100,
        "console exits during the run: {}",
        console.len()
    );
    let outside: Vec<f64> = console
        .iter()
        .copied()
        .filter(|t| {
            !slices
                .iter()
                .any(|(b, e)| b - SLACK_US <= *t && *t <= e + SLACK_US)
        })
        .collect();
    assert!(
        outside.is_empty(),
        "{} of {} console exits outside the kernel's slices, e.g. at {:?} µs; clock {clock}",
        outside.len(),
        console.len(),
        &outside[..outside.len().min(5)]
    );
}

#[test]
fn without_trace_the_kernel_sends_no_records() {
    // --stats=exits asks for the VMM's table alone: the kernel is not traced.
    let run = run_vmm_lde(["--stats=exits"]);
    run.assert_status(0);
    assert!(
        !run.stderr.contains(" trace-"),
        "trace port used without --trace: {}",
        run.stderr
    );
    // The guest's counts are from the records: plain --stats asks for them.
    let run = run_vmm_lde(["--stats"]);
    run.assert_status(0);
    assert!(
        run.stderr.contains("port out 0xf9 trace-buffer"),
        "{}",
        run.stderr
    );
}

/// The trace of a run that did not end well matters most: a guest stopped by `--timeout` (pid 1
/// spins forever) still leaves its trace, read from the buffer the kernel never handed over.
#[test]
fn a_timed_out_run_still_leaves_its_trace() {
    let dir = common::scratch_dir("trace_timeout");
    let path = dir.join("timeout.json");
    let mut cmd = common::vmm();
    cmd.args(["--timeout", "3", "--trace", path.to_str().unwrap()])
        .args(["--user", &user("spinforever", "")]);
    let run = run(cmd);
    assert_eq!(run.status, Some(124), "{}", run.dump());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no trace: {e}"));
    let v: Value = serde_json::from_str(&text).expect("the trace is JSON");
    let evs = events(&v);
    assert!(
        evs.iter().any(|e| e["cat"] == "sched"
            && e["ph"] == "i"
            && e["args"]["to"] == 1
            && e["args"]["why"] == "start"
            && e["args"]["to_name"] == "spinforever"),
        "{}",
        v
    );
    // Its "running" slice, still open when the VMM stopped, is closed at the last event.
    let begins = evs
        .iter()
        .filter(|e| e["pid"] == 1 && e["ph"] == "B")
        .count();
    let ends = evs
        .iter()
        .filter(|e| e["pid"] == 1 && e["ph"] == "E")
        .count();
    assert!(begins > 0 && begins == ends, "{begins} begins, {ends} ends");
}

/// A program may pass any number, -1 too (the syscalls program does, and 999 and 2^31-1): each
/// is ENOSYS, and each shows its end in the trace and in `strace=1` like any call. -1 is also the
/// kernel's marker for "no call deferred to the slow exit", which once made both traces take
/// that call for a deferred one and drop its end; numbers past the table once escaped strace.
#[test]
fn unknown_call_numbers_are_traced_to_their_end() {
    let dir = common::scratch_dir("trace_unknown");
    let path = dir.join("syscalls.json");
    let run = run_vmm_lde([
        "--user".to_string(),
        user("syscalls", ""),
        "--trace".to_string(),
        path.display().to_string(),
    ]);
    run.assert_status(0);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let kernel: Vec<&Value> = events(&v)
        .iter()
        .filter(|e| e["pid"] == 0 && e["tid"] == 0)
        .collect();
    for nr in [999u64, 0x7fff_ffff, u64::MAX] {
        let at = kernel
            .iter()
            .position(|e| e["cat"] == "syscall" && e["ph"] == "B" && e["args"]["nr"] == nr)
            .unwrap_or_else(|| panic!("no entry of call {nr:#x} in the trace"));
        let end = kernel[at + 1];
        assert_eq!(end["ph"], "E", "call {nr:#x} has no end: {end}");
        assert_eq!(end["args"]["result"], -38, "call {nr:#x}: {end}");
        assert_eq!(end["args"]["how"], "returned", "call {nr:#x}: {end}");
    }
    let run = run_vmm_lde([
        "--user".to_string(),
        user("syscalls", ""),
        "--cmdline".to_string(),
        "strace=1".to_string(),
    ]);
    run.assert_status(0);
    assert_eq!(
        run.stdout.matches("?(0x0, 0x0, 0x0) = -1 ENOSYS").count(),
        3,
        "the three unknown calls under strace\n{}",
        run.dump()
    );
}

/// Device interrupts are traps too: input piped to `cat` arrives by the console's interrupt,
/// which the trace shows as kernel slices by vector and `--stats` counts, the same number.
#[test]
fn console_input_shows_as_interrupts_in_the_trace_and_the_stats() {
    let dir = common::scratch_dir("trace_interrupts");
    for (i, extra) in [&[][..], &["--no-virtio-console"][..]].iter().enumerate() {
        let path = dir.join(format!("cat{i}.json"));
        let cat = user("cat", "");
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["--timeout", "60", "--stats=json", "--trace"]);
        args.extend([path.to_str().unwrap(), "--user", &cat]);
        let text: String = (0..50).map(|i| format!("line {i}\n")).collect();
        let out = common::run_vmm_with_input(&args, text.as_bytes());
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}\n{err}");
        let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no trace: {e}"));
        let v: Value = serde_json::from_str(&json).expect("the trace is JSON");
        let slices: Vec<&Value> = events(&v)
            .iter()
            .filter(|e| e["ph"] == "B" && e["name"] == "console interrupt")
            .collect();
        assert!(!slices.is_empty(), "{args:?}: no console interrupt slice");
        assert!(slices
            .iter()
            .all(|e| e["cat"] == "interrupt" && e["pid"] == 0 && e["args"]["vector"] == 36));
        let stats: Value = serde_json::from_str(
            err.lines()
                .find(|l| l.starts_with('{'))
                .unwrap_or_else(|| panic!("no --stats JSON: {err}")),
        )
        .expect("--stats=json is JSON");
        let counted = stats["guest"]["traps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "console interrupt")
            .and_then(|t| t["count"].as_u64());
        assert_eq!(
            counted,
            Some(slices.len() as u64),
            "{args:?}: {}",
            stats["guest"]
        );
    }
}

/// The trace of a crash is kept too: a kernel panic (`crash=exit`: a fault in ring 0 when the
/// first process ends) and a triple fault (`crash=triple`, the same moment) in the middle of a
/// run. The VMM reads the buffer the kernel never handed over: hello's write and its exit are
/// there.
#[test]
fn a_kernel_panic_or_a_triple_fault_mid_run_still_leaves_its_trace() {
    let dir = common::scratch_dir("trace_crash");
    let crash = abi::machine::exit_status::GUEST_CRASH as i32;
    for (how, status) in [("exit", KERNEL_PANIC as i32), ("triple", crash)] {
        let path = dir.join(format!("{how}.json"));
        let mut cmd = common::vmm();
        cmd.args(["--trace", path.to_str().unwrap()])
            .args(["--cmdline", &format!("crash={how}")])
            .args(["--user", &user("hello", "")]);
        let run = run(cmd);
        assert_eq!(run.status, Some(status), "crash={how}: {}", run.dump());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no trace: {e}"));
        let v: Value = serde_json::from_str(&text).expect("the trace is JSON");
        let evs = events(&v);
        assert!(
            evs.iter()
                .any(|e| e["pid"] == 1 && e["ph"] == "B" && e["name"] == "write"),
            "crash={how}: no write of hello's in the trace"
        );
        assert!(
            evs.iter()
                .any(|e| e["pid"] == 1 && e["cat"] == "process" && e["name"] == "exit 0"),
            "crash={how}: no exit of hello's in the trace"
        );
        assert_eq!(v["otherData"]["dropped_records"], 0);
    }
}

/// The buffer fills inside the recording system-call entry (trap_entry.rs), not only in Rust:
/// 3,000 getpids in a row make ~6,000 records, the buffer is handed over five times from the
/// entry itself, and every call is in the trace with its end.
#[test]
fn a_buffer_that_fills_inside_the_recording_entry_loses_nothing() {
    let path = common::scratch_dir("trace_getpids").join("getpids.json");
    let mut cmd = common::vmm();
    cmd.args(["--trace", path.to_str().unwrap()])
        .args(["--user", &user("getpids", "3000")]);
    let run = run(cmd);
    run.assert_status(0);
    run.assert_line("getpids: 3000 calls");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no trace: {e}"));
    let v: Value = serde_json::from_str(&text).expect("the trace is JSON");
    assert_eq!(v["otherData"]["dropped_records"], 0);
    let evs = events(&v);
    let count = |ph: &str| {
        evs.iter()
            .filter(|e| e["pid"] == 1 && e["ph"] == ph && e["name"] == "getpid")
            .count()
    };
    // One more getpid than the loop's: the program's own first.
    assert_eq!(count("B"), 3001);
    let returned = evs
        .iter()
        .filter(|e| {
            e["pid"] == 1
                && e["ph"] == "E"
                && e["name"] == "getpid"
                && e["args"]["result"] == 1
                && e["args"]["how"] == "returned"
        })
        .count();
    assert_eq!(returned, 3001);
}
