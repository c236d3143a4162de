//! Exact ring-0 instruction counts (docs/bench.md, "Exact instruction counts"): each path is
//! one round trip from ring 3, run with the VMM's step counter armed (`abi::bench::count`), so
//! the VMM single-steps it and counts every instruction it executes in ring 0. Each path is
//! counted twice, after a few uncounted runs; the two counts agree when the path is
//! deterministic. One BENCH line per path: `BENCH name=insns_PATH insns=N again=M`.
//!
//! A new path (fork, exec, signal delivery...) is one more call of `count` in `all` with a
//! name: `vmm bench` shows every `insns_*` line it finds.
//!
//! A path that returns to ring 3 on the way (fork + exit + wait runs the child in between; a
//! pipe round trip runs the partner) is counted as a span (`span`): everything in ring 0 from
//! the entry after arming to the read of the count. That read's own entry up to its `in` is in
//! every span; it is counted alone (`span_marker`, an empty span) and taken off the others.

use abi::bench::op::{COUNT_ARM, COUNT_READ, FORCE_TICK, TIMER_INTERRUPTS};
use abi::bench::{CountLine, count};
use lde_user::syscall::{int80_syscall6, nr, syscall0, syscall1, syscall2};
use lde_user::{println, sched_yield, spawn, wait4};

use super::procs;

/// Uncounted runs of a path before its two counted ones (so that it is in its steady state).
const WARM: usize = 3;
const PAGE: usize = 4096;

/// The timer tick is counted at this rate, with one task (so the tick does not switch).
const TICK_HZ: usize = 1000;
/// Ring-3 spin after arming, in TSC cycles: several tick periods at any TSC rate above 200 MHz,
/// however slowly the stepped ring-3 loop goes.
const TICK_SPIN: u64 = 40_000_000;

fn bench_call(op: u64, n: usize) -> isize {
    // SAFETY: the bench call reads only its two integer arguments and touches no user memory.
    unsafe { syscall2(nr::BENCH, op as usize, n) }
}

fn arm(irqs: bool) {
    bench_call(COUNT_ARM, irqs as usize);
}

/// Arms the counter for a span (interrupts held off).
fn arm_span() {
    bench_call(COUNT_ARM, 2);
}

/// A real count, not one of `count::read`'s answers.
fn is_count(c: u32) -> bool {
    !matches!(
        c,
        count::read::NOT_ARMED | count::read::UNFINISHED | count::read::FAILED
    )
}

/// The count of an empty span: the reading call's own entry up to its `in`, which every span
/// includes. Counted twice; printed as `span_marker`. None when the counter cannot count.
fn span_marker() -> Option<u32> {
    let mut runs = [0u32; 2];
    for r in runs.iter_mut() {
        arm_span();
        *r = answer();
    }
    println!(
        "{}",
        CountLine {
            path: "span_marker",
            runs
        }
    );
    (is_count(runs[0]) && runs[0] == runs[1]).then_some(runs[0])
}

/// Counts `op` as a span, twice (after `WARM` uncounted runs), less the `marker`, and prints
/// its line. `op` returns false if it failed (the count is then not printed as one).
fn span(path: &str, marker: Option<u32>, mut op: impl FnMut() -> bool) {
    let Some(marker) = marker else {
        println!(
            "BENCH name={}{path} error=no-span-marker",
            count::LINE_PREFIX
        );
        return;
    };
    for _ in 0..WARM {
        if !op() {
            println!("BENCH name={}{path} error=op-failed", count::LINE_PREFIX);
            return;
        }
    }
    let mut runs = [0u32; 2];
    for r in runs.iter_mut() {
        arm_span();
        let ok = op();
        let c = answer();
        *r = match (ok, is_count(c)) {
            (true, true) => c.saturating_sub(marker),
            (true, false) => c,
            (false, _) => count::read::FAILED,
        };
    }
    println!("{}", CountLine { path, runs });
}

/// The process paths of issue 8, each a span (also alone: `bench procs`).
pub fn processes() {
    let marker = span_marker();
    span("fork_exit_wait", marker, || procs::fork_exit_wait().is_ok());
    span("fork_exec_wait", marker, || {
        procs::fork_exec_wait(procs::EXIT0).is_ok()
    });
    span("fork_exec_padded_wait", marker, || {
        procs::fork_exec_wait(procs::EXIT0_PADDED).is_ok()
    });
    match procs::PipePartner::start() {
        Ok(p) => {
            span("pipe_round_trip", marker, || p.round_trip());
            p.stop();
        }
        Err(e) => println!(
            "BENCH name={}pipe_round_trip error=pipe-partner-{e}",
            count::LINE_PREFIX
        ),
    }
}

fn answer() -> u32 {
    bench_call(COUNT_READ, 0) as u32
}

/// Counts `op`, one round trip, twice (after `WARM` uncounted runs) and prints its line.
/// `irqs`: let interrupts in while stepping (only the timer tick wants them).
fn count(path: &str, irqs: bool, mut op: impl FnMut()) {
    for _ in 0..WARM {
        op();
    }
    let mut runs = [0u32; 2];
    for r in runs.iter_mut() {
        arm(irqs);
        op();
        *r = answer();
    }
    println!("{}", CountLine { path, runs });
}

/// `lfence; rdtsc`.
fn tsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: lfence and rdtsc only read the time-stamp counter into eax:edx.
    unsafe {
        core::arch::asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack))
    };
    (hi as u64) << 32 | lo as u64
}

/// Spins in ring 3 (no system call) for `cycles` of the TSC.
fn spin(cycles: u64) {
    let t0 = tsc();
    while tsc().wrapping_sub(t0) < cycles {}
}

/// A demand-zero page fault per run: the heap grows by enough pages first.
fn page_fault() {
    let pages = WARM + 2;
    // SAFETY: brk only moves the break; the pages between the old and the new break are ours.
    let cur = unsafe { syscall1(nr::BRK, 0) } as usize;
    let start = (cur + PAGE - 1) & !(PAGE - 1);
    let end = start + pages * PAGE;
    // SAFETY: as above.
    if unsafe { syscall1(nr::BRK, end) } as usize != end {
        println!("BENCH name={}page_fault error=brk", count::LINE_PREFIX);
        return;
    }
    let mut next = start;
    count("page_fault", false, || {
        // SAFETY: the page is below the break we just set, so it is ours; this is its first
        // touch.
        unsafe { core::ptr::write_volatile(next as *mut u8, 1) };
        next += PAGE;
    });
}

/// One switch of a yield ping-pong: this process yields to a partner that yields back (the
/// count ends when the partner is back in ring 3).
fn context_switch() {
    // The partner yields WARM + 3 times: once back for each of ours, then alone.
    let partner = match spawn(c"bench", &[c"partner", c"5"]) {
        Ok(pid) => pid,
        Err(e) => {
            println!(
                "BENCH name={}context_switch error=spawn-{e}",
                count::LINE_PREFIX
            );
            return;
        }
    };
    const _: () = assert!(WARM + 2 == 5);
    count("context_switch", false, sched_yield);
    let _ = wait4(partner);
}

/// A timer tick that does not switch (one task, the timer forced on): after arming, ring 3
/// spins until the tick comes; the count is of its handler. Interrupts must be let in for this
/// one, so the interrupt count says whether the tick came inside the spin.
fn timer_tick() {
    bench_call(FORCE_TICK, TICK_HZ);
    sched_yield(); // the kernel arms the timer at a scheduling decision
    let before = bench_call(TIMER_INTERRUPTS, 0);
    count("timer_tick", true, || spin(TICK_SPIN));
    let after = bench_call(TIMER_INTERRUPTS, 0);
    bench_call(FORCE_TICK, 0);
    sched_yield();
    if after <= before {
        println!("BENCH name=timer_tick_count_check error=no-interrupts");
    }
}

/// Every counted path, in the order of the table.
pub fn all() {
    // SAFETY (both): getpid takes no argument and touches no memory.
    count("syscall_getpid", false, || unsafe {
        syscall0(nr::GETPID);
    });
    count("int80_getpid", false, || unsafe {
        int80_syscall6(nr::GETPID, 0, 0, 0, 0, 0, 0);
    });
    count("sched_yield", false, sched_yield);
    context_switch();
    timer_tick();
    page_fault();
    processes();
    // After the process rows: its first touch of a page of .rodata would otherwise be one
    // more mapped page for every fork they count.
    console_writes();
}

/// write(2) to the console of one 80-byte line and of 4 KiB (64 such lines): the virtio
/// console's path when the VMM has the device, the UART's otherwise. The count includes the
/// VM exit's own instruction (the doorbell, or each port write), not the time in the VMM.
fn console_writes() {
    // In .rodata rather than on the stack, which would grow by a page (and fork's counts
    // after this with it).
    static BLOCK: [u8; PAGE] = {
        let mut b = [b'.'; PAGE];
        let mut i = 79;
        while i < PAGE {
            b[i] = b'\n';
            i += 80;
        }
        b[PAGE - 1] = b'\n';
        b
    };
    count("console_write_80", false, || {
        let _ = lde_user::write(1, &BLOCK[..80]);
    });
    count("console_write_4k", false, || {
        let _ = lde_user::write(1, &BLOCK);
    });
}

/// Paths that only probe how single-stepping behaves (docs/bench.md): a sleep, which idles
/// the CPU with `sti; hlt` until the timer wakes it.
pub fn probes() {
    let ts = lde_user::Timespec {
        sec: 0,
        nsec: 200_000_000,
    };
    for msg in ["", "a", "ab", "abcde\n"] {
        count("probe_write", false, || {
            let _ = lde_user::write(1, msg.as_bytes());
        });
    }
    count("probe_nanosleep_200ms", true, || {
        let _ = lde_user::nanosleep(&ts);
    });
}
