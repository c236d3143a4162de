//! Limited Direct Execution (issue 3): one test per mechanism and per misbehaviour, on our kernel
//! and the ring-3 programs of guest/user, asserting on the vmm's exit status and console lines.
//!
//! Exit statuses (docs/conventions.md): pid 1's exit code, or 128 + signal when it was killed
//! (136 divide error, 139 page fault / general protection fault); 251 boot failure; 3 a bad
//! program refused by the vmm itself; 124 --timeout expired.

mod common;
use common::lde;

use common::scratch_dir;
use lde::*;
use std::sync::OnceLock;

/// The default demo runs once; several tests look at different parts of its output.
fn demo() -> &'static Run {
    static DEMO: OnceLock<Run> = OnceLock::new();
    DEMO.get_or_init(|| run_vmm_lde(Vec::<String>::new()))
}

/// A user address, where the programs are linked (0x400000) and below the canonical hole.
fn is_user_rip(rip: u64) -> bool {
    (0x40_0000..0x8000_0000_0000).contains(&rip)
}

// --- The default demo -----------------------------------------------------------------------

/// The demo's plan as init states it, one line per check ("init: pid 5 divzero killed by
/// SIGFPE, as expected"): (pid, program, the report's status column). The one source of the
/// pid table is init's own list of jobs.
fn demo_plan(run: &Run) -> Vec<(u32, String, String)> {
    run.lines_starting("init: pid ")
        .iter()
        .filter(|l| l.ends_with(", as expected"))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let pid: u32 = words[2].parse().unwrap_or_else(|_| panic!("{l}"));
            let name = words[3].to_string();
            let status = if let Some(at) = l.find(" exited with ") {
                let code = l[at + 13..].split(',').next().unwrap();
                format!("exit {code}")
            } else if let Some(at) = l.find(" killed by ") {
                let sig = l[at + 11..].split(',').next().unwrap();
                let n = (1..32)
                    .find(|&s| abi::signal::name(s) == sig)
                    .unwrap_or_else(|| panic!("{l}"));
                format!("killed ({})", 128 + n)
            } else {
                panic!("{l}")
            };
            (pid, name, status)
        })
        .collect()
}

/// The pids init gave the demo's programs called one of `names`.
fn demo_pids(run: &Run, names: &[&str]) -> Vec<u32> {
    let pids: Vec<u32> = demo_plan(run)
        .into_iter()
        .filter(|(_, n, _)| names.contains(&n.as_str()))
        .map(|(p, _, _)| p)
        .collect();
    assert!(!pids.is_empty(), "init ran no {names:?}\n{}", run.dump());
    pids
}

#[test]
fn default_demo_passes_all_checks() {
    let run = demo();
    run.assert_status(0);
    run.assert_line("hello from ring 3");
    let plan = demo_plan(run);
    assert!(plan.len() >= 10, "one line per check\n{}", run.dump());
    run.assert_line(&format!("init: all {} checks passed", plan.len()));
    run.assert_no_line("checks failed");
    run.assert_no_line(", expected ");
    run.assert_no_line("cannot start");
}

#[test]
fn default_demo_report_lists_every_pid_with_its_status() {
    // Every program init says it ran, under the pid it says, ended in the report as init
    // says it expected; and nothing else ran.
    let run = demo();
    run.assert_status(0);
    let report = run.report();
    let mut want = vec![(1, "init".to_string(), "exit 0".to_string())];
    want.extend(demo_plan(run));
    want.sort();
    let got: Vec<(u32, String, String)> = report
        .rows
        .iter()
        .map(|r| (r.pid, r.name.clone(), r.status.clone()))
        .collect();
    assert_eq!(got, want, "\n{}", run.dump());
    // The kinds of end the demo is about are all there.
    for end in ["exit 0", "killed (136)", "killed (139)"] {
        assert!(want.iter().any(|w| w.2 == end), "{end}: {want:?}");
    }
}

#[test]
fn default_demo_report_columns_are_plausible() {
    let run = demo();
    let report = run.report();
    for r in &report.rows {
        assert!(r.cpu_ms > 0.0, "no CPU time for {r:?}\n{}", run.dump());
        // Even a program killed at its first instruction after a write made that write.
        assert!(r.syscalls >= 1, "no system call for {r:?}\n{}", run.dump());
    }
    // CPU-bound programs that make no system call between prints: only the timer switches them.
    for pid in demo_pids(run, &["spin"]) {
        let spin = report.row(pid);
        assert!(
            spin.preempted > 0,
            "{spin:?} never preempted\n{}",
            run.dump()
        );
        assert_eq!(spin.yielded, 0, "{spin:?}");
    }
    // ping and pong give the CPU away with sched_yield, once per turn (5 turns).
    for pid in demo_pids(run, &["ping", "pong"]) {
        let r = report.row(pid);
        assert!(
            r.yielded >= 5,
            "{r:?} did not yield 5 times\n{}",
            run.dump()
        );
        assert!(r.syscalls >= r.yielded, "{r:?}");
    }
    // fpu yields once a round (2000 rounds).
    for pid in demo_pids(run, &["fpu"]) {
        let r = report.row(pid);
        assert!(r.yielded >= 2000, "{r:?}\n{}", run.dump());
    }
    // The killed ones never yielded.
    for pid in demo_pids(run, &["divzero", "privileged", "readkernel"]) {
        assert_eq!(report.row(pid).yielded, 0, "{:?}", report.row(pid));
    }
    for label in ["context switches", "timer interrupts"] {
        let n = report.summary_number(label);
        assert!(
            n.is_some_and(|n| n > 0),
            "{label} in {:?}\n{}",
            report.summary,
            run.dump()
        );
    }
}

#[test]
fn default_demo_kill_lines_name_pid_program_fault_and_rip() {
    let run = demo();
    let kills = run.kill_lines();
    assert_eq!(kills.len(), 3, "three programs killed\n{}", run.dump());
    let div = run.kill_line(demo_pids(run, &["divzero"])[0]);
    assert_eq!(
        (div.name.as_str(), div.what.as_str(), div.signal),
        ("divzero", "divide error", 8),
        "{div:?}"
    );
    let gp = run.kill_line(demo_pids(run, &["privileged"])[0]);
    assert_eq!(
        (gp.name.as_str(), gp.what.as_str(), gp.signal),
        ("privileged", "general protection fault", 11),
        "{gp:?}"
    );
    let pf = run.kill_line(demo_pids(run, &["readkernel"])[0]);
    assert_eq!(
        (pf.name.as_str(), pf.what.as_str(), pf.signal),
        ("readkernel", "page fault", 11),
        "{pf:?}"
    );
    assert!(
        pf.detail.contains("0xffffffff80100000"),
        "a page fault line names the address: {pf:?}"
    );
    for k in [&div, &gp, &pf] {
        assert!(is_user_rip(k.rip), "rip {:#x} in ring 3: {k:?}", k.rip);
    }
    // The victims said what they were about to do, and never got past it.
    run.assert_no_line("still alive");
    run.assert_no_line("did not fault");
    run.assert_no_line("from kernel memory!");
}

#[test]
fn default_demo_spin_lines_interleave() {
    let run = demo();
    assert_interleaved(run, "spin A: round", "spin B: round");
}

#[test]
fn default_demo_ping_pong_take_turns() {
    // Not strictly: the default slice is one tick (10 ms), and a turn stretched past it (a busy
    // host descheduling the vCPU) is preempted between its line and its sched_yield.
    // sched_yield_ping_pong_alternate_strictly checks the strict order with a long slice.
    let run = demo();
    for t in 1..=5 {
        run.assert_line(&format!("ping {t}"));
        run.assert_line(&format!("pong {t}"));
    }
    assert_interleaved(run, "ping ", "pong ");
}

/// Lines with `a` and lines with `b` interleave: each has a line between two of the other's.
#[track_caller]
fn assert_interleaved(run: &Run, a: &str, b: &str) {
    let seq: Vec<char> = run
        .lines()
        .filter_map(|l| {
            if l.contains(a) {
                Some('a')
            } else if l.contains(b) {
                Some('b')
            } else {
                None
            }
        })
        .collect();
    let first = |c| seq.iter().position(|&x| x == c);
    let last = |c| seq.iter().rposition(|&x| x == c);
    let (Some(fa), Some(la), Some(fb), Some(lb)) = (first('a'), last('a'), first('b'), last('b'))
    else {
        panic!("no {a:?} or no {b:?} lines\n{}", run.dump());
    };
    assert!(
        fb < la && fa < lb,
        "{a:?} and {b:?} lines do not interleave ({}): no preemption?\n{}",
        seq.iter().collect::<String>(),
        run.dump()
    );
}

/// "ping 1", "pong 1", "ping 2", ... exactly, `turns` each.
#[track_caller]
fn assert_ping_pong(run: &Run, turns: u32) {
    let got: Vec<&str> = run
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("ping ") || l.starts_with("pong "))
        .collect();
    let want: Vec<String> = (1..=turns)
        .flat_map(|t| [format!("ping {t}"), format!("pong {t}")])
        .collect();
    assert_eq!(got, want, "ping and pong must alternate\n{}", run.dump());
}

// --- Running programs, exit status -----------------------------------------------------------

#[test]
fn hello_via_user_exits_0() {
    let run = run_user(&[user("hello", "")]);
    run.assert_status(0);
    run.assert_line("hello from ring 3");
    let report = run.report();
    let r = report.row(1);
    assert_eq!((r.name.as_str(), r.status.as_str()), ("hello", "exit 0"));
    assert!(r.syscalls >= 2, "write and exit_group: {r:?}");
    assert_eq!(report.rows.len(), 1);
}

#[test]
fn exit_status_is_pid_1s_exit_code_and_argv_arrives() {
    let run = run_user(&[user("args", "a b c")]);
    run.assert_status(4);
    for line in ["argc=4", "argv[1]=a", "argv[2]=b", "argv[3]=c"] {
        run.assert_line(line);
    }
    assert!(run.find_line("argv[0]=args").is_some(), "{}", run.dump());
    run.assert_no_line("argv[argc] is not NULL");
    // The auxv entries musl's start-up reads: AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_ENTRY,
    // AT_RANDOM.
    for key in [3, 4, 5, 6, 9, 25] {
        run.assert_line(&format!("auxv[{key}]=0x"));
    }
    run.assert_line("auxv[6]=0x1000");
}

/// `--user` splits as a POSIX shell does, and the START manifest carries what it split (spaces,
/// quotes, backslashes, empty words) to the kernel intact.
#[test]
fn user_arguments_split_as_a_shell_splits_them() {
    let run = run_user(&[user("args", r#"'one argument' two "it's" '' a\ b\\c"#)]);
    run.assert_status(6);
    for line in [
        "argv[1]=one argument",
        "argv[2]=two",
        "argv[3]=it's",
        "argv[5]=a b\\c",
    ] {
        run.assert_line(line);
    }
    assert!(run.lines().any(|l| l == "argv[4]="), "{}", run.dump());
}

/// More console input than the kernel buffers (4 KiB) reaches a slow reader whole: what does
/// not fit waits in the UART (and the VMM), it is not dropped. wc's counts are checked against
/// the host's wc on the same bytes; the pipe's end ends wc (the console-status port).
#[test]
fn console_input_beyond_the_kernel_buffer_is_not_lost() {
    use std::io::Write;
    use std::process::Stdio;
    let mut text = String::new();
    for i in 0..900 {
        text.push_str(&format!("line {i} of the input\n"));
    }
    assert!(text.len() > 3 * 4096);
    let mut host = std::process::Command::new("wc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the host's wc");
    host.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let want = String::from_utf8(host.wait_with_output().unwrap().stdout).unwrap();
    let want: Vec<&str> = want.split_whitespace().collect();
    assert_eq!(want, ["900", "4500", &text.len().to_string()]);

    let timeout = TIMEOUT_SECS.to_string();
    let wc = prog("wc");
    let out = common::run_vmm_with_input(
        [
            "--timeout".as_ref(),
            timeout.as_ref(),
            "--user".as_ref(),
            wc.as_os_str(),
        ],
        text.as_bytes(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let got = stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.len() == 3 && w.iter().all(|x| x.parse::<u64>().is_ok()));
    assert_eq!(got, Some(want), "{stdout}");
}

#[test]
fn divide_error_kills_with_sigfpe_136() {
    let run = run_user(&[user("divzero", "")]);
    run.assert_status(KILLED_FPE);
    run.assert_line("divzero: dividing by zero");
    run.assert_no_line("still alive");
    let k = run.assert_killed(1, "divzero", "divide error", 8);
    assert!(is_user_rip(k.rip), "{k:?}");
    assert_eq!(run.report().row(1).status, "killed (136)");
}

#[test]
fn reading_kernel_memory_is_a_page_fault_139_with_its_address() {
    let run = run_user(&[user("readkernel", "")]);
    run.assert_status(KILLED_SEGV);
    run.assert_no_line("from kernel memory!");
    let k = run.assert_killed(1, "readkernel", "page fault", 11);
    assert!(k.detail.contains("0xffffffff80100000"), "{k:?}");
    assert!(is_user_rip(k.rip), "{k:?}");
}

#[test]
fn null_read_is_a_page_fault_at_0_and_non_canonical_a_gp_fault() {
    let run = run_user(&[user("readkernel", "0")]);
    run.assert_status(KILLED_SEGV);
    let k = run.kill_line(1);
    assert_eq!((k.what.as_str(), k.signal), ("page fault", 11), "{k:?}");
    assert!(
        k.detail
            .split(|c: char| !c.is_ascii_hexdigit() && c != 'x')
            .any(|w| w == "0x0"),
        "the address 0x0 in {k:?}"
    );

    let run = run_user(&[user("readkernel", "8000000000000000")]);
    run.assert_status(KILLED_SEGV);
    let k = run.kill_line(1);
    assert_eq!(
        (k.what.as_str(), k.signal),
        ("general protection fault", 11),
        "{k:?}"
    );
}

#[test]
fn each_privileged_instruction_is_refused_with_sigsegv_139() {
    for insn in ["cli", "hlt", "lidt", "wrmsr", "in", "out"] {
        let run = run_user(&[user("privileged", insn)]);
        run.assert_status(KILLED_SEGV);
        run.assert_line(&format!("privileged: executing {insn} in ring 3"));
        run.assert_no_line("did not fault");
        let k = run.kill_line(1);
        assert_eq!(
            (k.name.as_str(), k.what.as_str(), k.signal),
            ("privileged", "general protection fault", 11),
            "{insn}: {k:?}"
        );
        assert!(is_user_rip(k.rip), "{insn}: {k:?}");
    }
}

#[test]
fn the_others_go_on_after_a_kill() {
    // pid 1 computes for much longer than its siblings need to be killed, then exits 0.
    let run = run_user(&[
        user("spin", "A 12"),
        user("divzero", ""),
        user("readkernel", ""),
        user("privileged", "hlt"),
        user("hello", ""),
    ]);
    run.assert_status(0);
    run.assert_line("spin A: round 12/12");
    run.assert_line("spin A: done");
    run.assert_line("hello from ring 3");
    assert_eq!(run.kill_line(2).name, "divzero");
    assert_eq!(run.kill_line(3).name, "readkernel");
    assert_eq!(run.kill_line(4).name, "privileged");
    let report = run.report();
    let statuses: Vec<(&str, &str)> = report
        .rows
        .iter()
        .map(|r| (r.name.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("spin", "exit 0"),
            ("divzero", "killed (136)"),
            ("readkernel", "killed (139)"),
            ("privileged", "killed (139)"),
            ("hello", "exit 0"),
        ],
        "\n{}",
        run.dump()
    );
}

// --- System calls ----------------------------------------------------------------------------

#[test]
fn syscalls_every_abi_call_passes() {
    let run = run_user(&[user("syscalls", "")]);
    run.assert_no_failed_checks();
    run.assert_status(0);
    let summary = run.assert_line("passed, 0 failed");
    assert!(summary.starts_with("syscalls: "), "{summary}");
    // The paths the issue names: int 0x80 as well as syscall, and -ENOSYS for unknown numbers.
    run.assert_line("syscalls: int 0x80 getpid: ok");
    run.assert_line("syscalls: int 0x80 write: this line written through int 0x80");
    run.assert_line("syscalls: int 0x80 write: ok");
    let enosys = run
        .lines()
        .filter(|l| l.starts_with("syscalls: unknown number: ok") && l.contains("ENOSYS"))
        .count();
    assert_eq!(enosys, 3, "\n{}", run.dump());
    run.assert_line("syscalls: spawn unknown program: ok");
    run.assert_line("syscalls: writev: this line in three pieces");
    run.assert_no_line("skipped");
}

#[test]
fn zero_length_read_returns_0() {
    // read(0, buf, 0) returns 0 on Linux whatever buf is (no byte is accessed): `syscalls` makes
    // it with an empty Rust slice, whose pointer is the dangling non-null 0x1.
    let run = run_user(&[user("syscalls", "")]);
    let line = run.assert_line("syscalls: read of 0 bytes:");
    assert!(line.contains(": ok"), "{line}\n{}", run.dump());
}

#[test]
fn bad_pointers_get_efault_and_the_caller_goes_on() {
    let run = run_user(&[user("badptr", "")]);
    run.assert_status(0);
    for what in [
        "kernel pointer",
        "non-canonical pointer",
        "unmapped pointer",
        "wrapping length",
    ] {
        let line = run.assert_line(&format!("badptr: write({what} "));
        assert!(line.ends_with("= -EFAULT (14): ok"), "{line}");
    }
    run.assert_no_line("this line must not be printed");
    assert!(run.kill_lines().is_empty(), "\n{}", run.dump());
}

#[test]
fn epoch_on_the_cmdline_sets_clock_realtime() {
    // Without the virtio console, whose word the VMM would add to the line.
    let run = run_vmm_lde([
        "--no-virtio-console",
        "--cmdline",
        "epoch=1000000000",
        "--user",
        &user("syscalls", ""),
    ]);
    run.assert_line("cmdline   \"epoch=1000000000\"");
    let line = run.assert_line("syscalls: clock_gettime(REALTIME): ok");
    assert!(line.contains("sec: 1000000000,"), "{line}\n{}", run.dump());
}

#[test]
fn clock_realtime_starts_from_the_cmos_clock() {
    // No epoch= on the line: the kernel reads the date from the CMOS clock, which our VMM
    // answers from the host's clock.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let run = run_vmm_lde(["--user", &user("syscalls", "")]);
    run.assert_line("(from the CMOS clock)");
    let line = run.assert_line("syscalls: clock_gettime(REALTIME): ok");
    let sec: u64 = line
        .split("sec: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no seconds in {line}"));
    // The clock keeps whole seconds and the boot takes a few hundred milliseconds.
    assert!(
        (before.saturating_sub(1)..before + 30).contains(&sec),
        "guest {sec}, host {before}\n{}",
        run.dump()
    );
}

// --- Context switch: FPU state ------------------------------------------------------------------

#[test]
fn fpu_state_is_private_to_each_process() {
    // Two instances of one program need an archive (--user takes each file once). pid 1 does
    // three times the rounds, so the VM does not power off before fpu B is done.
    let dir = scratch_dir("lde_fpu");
    let fpu = prog("fpu");
    let cpio = archive(&[("fpu", &fpu)], &["fpu A 3000", "fpu B 1000"]);
    let initrd = common::write_file(&dir, "fpu.cpio", &cpio);
    let run = run_vmm_lde(["--initrd".as_ref(), initrd.as_os_str()]);
    run.assert_status(0);
    run.assert_line("fpu B: 1000 rounds, xmm0-15, mxcsr and fcw intact");
    run.assert_line("fpu A: 3000 rounds, xmm0-15, mxcsr and fcw intact");
    run.assert_no_line("CORRUPTED");
    let report = run.report();
    assert_eq!(report.row(2).status, "exit 0", "{:?}", report.rows);
}

// --- Timer and preemption --------------------------------------------------------------------

#[test]
fn preemption_lets_a_sleeper_finish_beside_a_program_that_spins_forever() {
    // Without timer preemption, spinforever keeps the CPU and the vmm's --timeout ends the run
    // (status 124).
    let run = run_vmm_lde([
        "--user",
        &user("sleeper", ""),
        "--user",
        &user("spinforever", ""),
        "--timeout",
        "30",
    ]);
    run.assert_status(0);
    run.assert_line("spinforever: spinning");
    run.assert_line("sleeper: woke after");
    let report = run.report();
    assert_eq!(report.row(1).status, "exit 0");
    // Still running when pid 1 exited.
    assert!(
        !report.row(2).status.starts_with("exit"),
        "{:?}",
        report.rows
    );
}

#[test]
fn two_spinners_cannot_starve_a_sleeper() {
    let dir = scratch_dir("lde_two_spinners");
    let spin2 = dir.join("spinforever2");
    std::fs::copy(prog("spinforever"), &spin2).unwrap();
    let run = run_vmm_lde([
        "--user".to_string(),
        user("sleeper", ""),
        "--user".to_string(),
        user("spinforever", ""),
        "--user".to_string(),
        spin2.display().to_string(),
        "--timeout".to_string(),
        "30".to_string(),
    ]);
    run.assert_status(0);
    run.assert_line("sleeper: woke after");
}

#[test]
fn hz_and_slice_from_the_cmdline_show_in_the_banner_and_cpu_bound_programs_interleave() {
    // spin A (pid 1) computes twice as long as spin B: B finishes first under a fair scheduler.
    let dir = scratch_dir("lde_hz_slice");
    let spin = prog("spin");
    let cpio = archive(&[("spin", &spin)], &["spin A 8", "spin B 4"]);
    let initrd = common::write_file(&dir, "spin.cpio", &cpio);
    let run = run_vmm_lde([
        "--cmdline".as_ref(),
        "hz=250 slice=2".as_ref(),
        "--initrd".as_ref(),
        initrd.as_os_str(),
    ]);
    run.assert_status(0);
    let timer = run.assert_line("timer ");
    assert!(
        timer.contains("250 Hz") && timer.contains("slice 2"),
        "banner: {timer}"
    );
    run.assert_line("spin B: done");
    assert_interleaved(&run, "spin A: round", "spin B: round");
    let report = run.report();
    for pid in [1, 2] {
        let r = report.row(pid);
        assert!(r.preempted > 0, "{r:?}\n{}", run.dump());
    }
}

#[test]
fn hz_1000_is_accepted() {
    let run = run_vmm_lde(["--cmdline", "hz=1000 slice=1", "--user", &user("hello", "")]);
    run.assert_status(0);
    let timer = run.assert_line("timer ");
    assert!(
        timer.contains("1000 Hz") && timer.contains("slice 1"),
        "{timer}"
    );
}

#[test]
fn sched_yield_ping_pong_alternate_strictly() {
    // A slice of 20 ticks (200 ms): a turn (a line and a sched_yield) takes a few ms, so the
    // timer never takes the CPU in the middle of one, and only sched_yield passes it on.
    let run = run_vmm_lde([
        "--cmdline",
        "slice=20",
        "--user",
        &user("ping", "8"),
        "--user",
        &user("pong", "8"),
    ]);
    run.assert_status(0);
    assert_ping_pong(&run, 8);
    let report = run.report();
    assert!(report.row(1).yielded >= 8, "{:?}", report.rows);
    assert!(report.row(2).yielded >= 7, "{:?}", report.rows);
}

#[test]
fn nanosleep_really_sleeps_and_the_cpu_idles() {
    let run = run_user(&[user("sleeper", "")]);
    run.assert_status(0); // sleeper itself exits 1 if its monotonic clock says < 100 ms
    let line = run.assert_line("sleeper: woke after");
    let ms: u64 = line
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(ms >= 100, "{line}");
    assert!(
        run.wall.as_millis() >= 100,
        "the whole run took {:?}, less than the 100 ms slept",
        run.wall
    );
    // Nothing else to run while it sleeps: the CPU halts, which the report counts as idle.
    let report = run.report();
    assert!(
        report.summary_number("idle").is_some_and(|ms| ms > 0),
        "{:?}",
        report.summary
    );
}

// --- Programs that cannot run ----------------------------------------------------------------

#[test]
fn a_file_that_is_not_an_elf_is_refused_by_the_vmm() {
    let dir = scratch_dir("lde_not_elf");
    let script = common::write_file(&dir, "script.sh", b"#!/bin/sh\necho not a program\n");
    let run = run_user(&[script.display().to_string()]);
    run.assert_status(3);
    let err: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(err.len(), 1, "\n{}", run.dump());
    assert!(
        err[0].starts_with("vmm: error: ") && err[0].contains("not an ELF"),
        "{}",
        err[0]
    );
}

#[test]
fn a_file_that_is_not_an_elf_inside_an_archive_is_refused_by_the_kernel() {
    let dir = scratch_dir("lde_not_elf_archive");
    let text = common::write_file(&dir, "notes", b"just some text\n");
    let cpio = archive(&[("notes", &text)], &["notes"]);
    let initrd = common::write_file(&dir, "bad.cpio", &cpio);
    let run = run_vmm_lde(["--initrd".as_ref(), initrd.as_os_str()]);
    run.assert_line("kernel: cannot start notes");
    assert_eq!(
        run.status,
        Some(BOOT_FAILURE as i32),
        "boot failure\n{}",
        run.dump()
    );
}

#[test]
fn a_program_whose_pt_interp_holds_no_path_is_refused_with_a_clear_line() {
    // hello with one program header turned into PT_INTERP: it asks for a dynamic linker, by
    // bytes that are not a NUL-terminated path.
    let dir = scratch_dir("lde_interp");
    let mut bytes = std::fs::read(prog("hello")).unwrap();
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes([bytes[56], bytes[57]]) as usize;
    let non_load = (0..phnum)
        .map(|i| phoff + i * 56)
        .find(|&at| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) != 1)
        .expect("hello has a program header besides PT_LOAD");
    bytes[non_load..non_load + 4].copy_from_slice(&3u32.to_le_bytes());
    let dynamic = common::write_file(&dir, "hellodyn", &bytes);

    // Given with --user, the VMM refuses it before boot, as the kernel would.
    let out = common::run_vmm(["--user".as_ref(), dynamic.as_os_str()]);
    common::assert_one_line_error(&out, 3, "vmm: error: ", "PT_INTERP");

    // Inside an archive, only the kernel can see it: one line, a boot failure.
    let cpio = archive(&[("hellodyn", &dynamic)], &["hellodyn"]);
    let initrd = common::write_file(&dir, "dyn.cpio", &cpio);
    let run = run_vmm_lde(["--initrd".as_ref(), initrd.as_os_str()]);
    let line = run.assert_line("kernel: cannot start hellodyn");
    assert!(line.contains("PT_INTERP"), "{line}");
    assert_eq!(
        run.status,
        Some(BOOT_FAILURE as i32),
        "boot failure\n{}",
        run.dump()
    );
    run.assert_no_line("hello from ring 3");
}
