//! `trace=sched`: the kernel reports every context switch (time, from, to, why), the raw material
//! for a timeline of which task ran when.

mod common;
use common::lde;

use lde::*;

#[test]
fn trace_sched_reports_start_yield_preempt_and_exit() {
    // The default demo: init forks and execs the others, as the default archive holds them all.
    let run = run_vmm_lde(["--cmdline", "trace=sched"]);
    run.assert_status(0);
    let events: Vec<(u64, String, String, String)> = run
        .lines_starting("sched: ")
        .iter()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(w.len(), 6, "sched: TIME FROM -> TO WHY: {l}");
            assert_eq!(w[3], "->", "{l}");
            (
                w[1].parse().expect("time in µs"),
                w[2].into(),
                w[4].into(),
                w[5].into(),
            )
        })
        .collect();
    assert!(!events.is_empty(), "{}", run.dump());
    assert_eq!(events[0].1, "0:-");
    assert_eq!(events[0].2, "1:init");
    assert_eq!(events[0].3, "start");
    assert!(
        events.windows(2).all(|w| w[0].0 <= w[1].0),
        "times never go back"
    );
    for why in ["yield", "preempt", "wait", "exit"] {
        assert!(
            events.iter().any(|e| e.3 == why),
            "no {why} switch in\n{}",
            run.dump()
        );
    }
    // Each switch starts the task the previous line switched to... from that task (the same
    // pid: its name changes when it execs, as a child of init forked as "init" becomes "hello").
    let pid = |task: &str| task.split(':').next().unwrap_or("").to_string();
    for w in events.windows(2) {
        assert_eq!(pid(&w[0].2), pid(&w[1].1), "{:?} then {:?}", w[0], w[1]);
    }
    // The two spinners are preempted, never yield; ping and pong yield to each other.
    assert!(events
        .iter()
        .any(|e| e.1.ends_with(":spin") && e.3 == "preempt"));
    assert!(events
        .iter()
        .any(|e| e.1.ends_with(":ping") && e.2.ends_with(":pong") && e.3 == "yield"));
}

/// A task woken by a running one gets the CPU when the runner's slice ends, even though the
/// timer was off while the runner was alone (tickless): in `spin A 3 | cat` spin computes
/// between its lines without system calls, and cat, woken by each line, must be switched to
/// (a preemption of spin) before spin is done.
#[test]
fn a_task_woken_by_a_running_one_is_not_left_waiting() {
    let timeout = TIMEOUT_SECS.to_string();
    let out = common::run_vmm_with_input(
        ["--timeout", &timeout, "--cmdline", "trace=sched", "--shell"],
        b"spin A 3 | cat\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let events: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("sched: "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let spin_exit = events
        .iter()
        .position(|w| w[2].ends_with(":spin") && w[5] == "exit")
        .unwrap_or_else(|| panic!("spin never exits\n{stdout}"));
    // Once cat has blocked on the empty pipe (spin alone: tickless), spin's first line must
    // bring it back before spin ends.
    let cat_blocks = events
        .iter()
        .position(|w| w[2].ends_with(":cat") && w[5] == "block")
        .unwrap_or_else(|| panic!("cat never waits for the pipe\n{stdout}"));
    assert!(
        events[cat_blocks..spin_exit]
            .iter()
            .any(|w| w[2].ends_with(":spin") && w[4].ends_with(":cat") && w[5] == "preempt"),
        "cat, woken by spin's lines, waited for spin to end\n{stdout}"
    );
}
