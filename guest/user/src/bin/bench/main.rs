//! bench [quick]: the in-guest half of `vmm bench` (issue 4). Times, in ring 3 with a serialised
//! `lfence; rdtsc`, the round trips through our kernel (null system calls by each entry path,
//! sched_yield, a context switch, a timer tick, a demand-zero page fault), the VM exits the kernel
//! makes for us (bench system call 1001), clock_gettime through the vDSO, the cost of one ring-0 instruction, and a CPU-bound
//! piece of work run by direct execution. Every result is one machine-readable line:
//!
//! `BENCH name=NAME min=CYCLES median=CYCLES p99=CYCLES iters=N [key=value...]`
//!
//! which `vmm bench` parses. Each sample has the timer's own overhead (the minimum of an empty
//! `lfence; rdtsc` pair, reported as `rdtsc_overhead`) subtracted.
//! fork + exit + wait, fork + exec + exit + wait of `exit0`, and a context switch through two
//! pipes (procs.rs) are timed too.
//! `bench partner N` is the second process of the context-switch measurement: it yields N + 1
//! times and exits. `bench counts` only counts the ring-0 instructions of each path (count.rs);
//! every other run counts them first, then times everything.
#![no_std]
#![no_main]

use core::arch::asm;
use core::cell::UnsafeCell;
use core::ffi::CStr;

use lde_user::syscall::{int80_syscall6, nr, syscall0, syscall1, syscall2};
use lde_user::{Args, println, sched_yield, spawn, wait4};

use abi::bench as bench_work;
use abi::bench::op;

mod count;
mod procs;

lde_user::entry!(main);

/// The kernel's `bench` call (guest/kernel/src/bench.rs).
const SYS_BENCH: usize = nr::BENCH;
const OP_RING0_LOOP: usize = op::RING0_LOOP as usize;
const OP_PORT_WRITE: usize = op::PORT_WRITE as usize;
const OP_CPUID: usize = op::CPUID as usize;
const OP_FORCE_TICK: usize = op::FORCE_TICK as usize;
const OP_TIMER_INTERRUPTS: usize = op::TIMER_INTERRUPTS as usize;
const BRK: usize = nr::BRK;
const PAGE: usize = 4096;

/// Most samples one measurement keeps.
const MAX_SAMPLES: usize = 4096;

/// Sample storage, in .bss rather than on the stack.
struct Samples(UnsafeCell<[u64; MAX_SAMPLES]>);
// SAFETY: the program has a single thread, and `main` takes the only reference.
unsafe impl Sync for Samples {}
static SAMPLES: Samples = Samples(UnsafeCell::new([0; MAX_SAMPLES]));

/// How much of everything to do.
struct Plan {
    warm: usize,
    iters: usize,
    switch_iters: usize,
    fault_pages: usize,
    batches: usize,
    work_rounds: u64,
    work_reps: usize,
    /// fork + exit + wait and fork + exec + exit + wait samples (each costs tens of ms here).
    proc_iters: usize,
    /// Pipe round trips.
    pipe_iters: usize,
}

const FULL: Plan = Plan {
    warm: 100,
    iters: 3000,
    switch_iters: 2000,
    fault_pages: 1000,
    batches: 200,
    work_rounds: 20_000_000,
    work_reps: 15,
    proc_iters: 60,
    pipe_iters: 500,
};

const QUICK: Plan = Plan {
    warm: 20,
    iters: 300,
    switch_iters: 300,
    fault_pages: 100,
    batches: 30,
    work_rounds: 4_000_000,
    work_reps: 5,
    proc_iters: 8,
    pipe_iters: 60,
};

/// `lfence; rdtsc`: the TSC once every earlier instruction has completed.
#[inline(always)]
fn tsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: lfence and rdtsc only read the time-stamp counter into eax:edx.
    unsafe { asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (hi as u64) << 32 | lo as u64
}

fn bench_call(op: usize, n: usize) -> isize {
    // SAFETY: the bench call reads only its two integer arguments and touches no user memory.
    unsafe { syscall2(SYS_BENCH, op, n) }
}

/// Sorts `s` and prints its BENCH line.
fn report(name: &str, s: &mut [u64], extra: core::fmt::Arguments) {
    let summary = bench_work::Summary::of(s);
    println!(
        "{}",
        bench_work::StatLine {
            name,
            summary,
            extra
        }
    );
}

/// Times `op` alone, `iters` times after `warm` untimed runs.
fn measure(name: &str, buf: &mut [u64], plan: &Plan, overhead: u64, mut op: impl FnMut()) {
    for _ in 0..plan.warm {
        op();
    }
    let n = plan.iters.min(buf.len());
    for slot in buf[..n].iter_mut() {
        let t0 = tsc();
        op();
        let t1 = tsc();
        *slot = (t1 - t0).saturating_sub(overhead);
    }
    report(name, &mut buf[..n], format_args!(""));
}

/// `n` as a NUL-terminated decimal string in `out`.
fn decimal(mut n: usize, out: &mut [u8; 24]) -> &CStr {
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        out[i] = digits[len - 1 - i];
    }
    out[len] = 0;
    CStr::from_bytes_until_nul(&out[..=len]).unwrap_or(c"0")
}

/// A context switch: this process and a partner pass the CPU back and forth with sched_yield;
/// one timed yield is a round trip (two switches), so each sample is half of it.
fn context_switch(buf: &mut [u64], plan: &Plan, overhead: u64) {
    let n = plan.switch_iters.min(buf.len());
    let mut text = [0u8; 24];
    let count = decimal(plan.warm + n, &mut text);
    let partner = match spawn(c"bench", &[c"partner", count]) {
        Ok(pid) => pid,
        Err(e) => {
            println!("BENCH name=context_switch error=spawn-{e}");
            return;
        }
    };
    for _ in 0..plan.warm {
        sched_yield();
    }
    for slot in buf[..n].iter_mut() {
        let t0 = tsc();
        sched_yield();
        let t1 = tsc();
        *slot = (t1 - t0).saturating_sub(overhead) / 2;
    }
    let _ = wait4(partner);
    report("context_switch", &mut buf[..n], format_args!(""));
}

/// Times `op`, `n` times after a few untimed runs; `op` returns false when it failed, which
/// ends the measurement with an error line.
fn measure_fallible(
    name: &str,
    buf: &mut [u64],
    n: usize,
    overhead: u64,
    div: u64,
    mut op: impl FnMut() -> bool,
) {
    let n = n.min(buf.len());
    for _ in 0..3 {
        if !op() {
            println!("BENCH name={name} error=op-failed");
            return;
        }
    }
    for slot in buf[..n].iter_mut() {
        let t0 = tsc();
        let ok = op();
        let t1 = tsc();
        if !ok {
            println!("BENCH name={name} error=op-failed");
            return;
        }
        *slot = (t1 - t0).saturating_sub(overhead) / div;
    }
    report(name, &mut buf[..n], format_args!(""));
}

/// fork + exit + wait, fork + exec + exit + wait, and the pipe context switch (half a round
/// trip). Before the page-fault measurement, which grows the heap by a thousand pages that
/// every fork would then have to share.
fn processes(buf: &mut [u64], plan: &Plan, overhead: u64) {
    measure_fallible("fork_exit_wait", buf, plan.proc_iters, overhead, 1, || {
        procs::fork_exit_wait().is_ok()
    });
    measure_fallible("fork_exec_wait", buf, plan.proc_iters, overhead, 1, || {
        procs::fork_exec_wait(procs::EXIT0).is_ok()
    });
    measure_fallible(
        "fork_exec_padded_wait",
        buf,
        plan.proc_iters,
        overhead,
        1,
        || procs::fork_exec_wait(procs::EXIT0_PADDED).is_ok(),
    );
    match procs::PipePartner::start() {
        Ok(p) => {
            measure_fallible("pipe_switch", buf, plan.pipe_iters, overhead, 2, || {
                p.round_trip()
            });
            p.stop();
        }
        Err(e) => println!("BENCH name=pipe_switch error=pipe-partner-{e}"),
    }
}

/// Forces the timer to `hz` (0: tickless again). The kernel arms the timer at its next
/// scheduling decision; a sched_yield with nothing else ready is one, and switches nothing.
fn force_tick(hz: usize) {
    bench_call(OP_FORCE_TICK, hz);
    sched_yield();
}

fn timer_interrupts() -> Option<u64> {
    let n = bench_call(OP_TIMER_INTERRUPTS, 0);
    (n >= 0).then_some(n as u64)
}

fn run_work(rounds: u64) -> (u64, u64) {
    let t0 = tsc();
    let sum = bench_work::work(
        core::hint::black_box(bench_work::WORK_SEED),
        core::hint::black_box(rounds),
    );
    let t1 = tsc();
    (t1 - t0, sum)
}

/// Direct execution (tickless, as a lone task runs), the same work with the timer forced to
/// 100 Hz (the default HZ) and to 2000 Hz, and from the difference the cycles one timer
/// interrupt takes from the program.
fn direct_execution_and_timer(buf: &mut [u64], plan: &Plan) {
    let reps = plan.work_reps.min(buf.len() / 4);
    let (base, rest) = buf.split_at_mut(reps);
    let (hz100, rest) = rest.split_at_mut(reps);
    let (per_irq, _) = rest.split_at_mut(reps);
    run_work(plan.work_rounds); // warm-up
    let irq0 = timer_interrupts();
    let mut sum = 0;
    for slot in base.iter_mut() {
        (*slot, sum) = run_work(plan.work_rounds);
    }
    let tickless_irqs = timer_interrupts().zip(irq0).map(|(b, a)| b - a);
    let rounds = plan.work_rounds;
    report(
        "work",
        base,
        format_args!(" rounds={rounds} checksum={sum:#x}"),
    );
    match tickless_irqs {
        Some(n) => println!("BENCH name=tickless_interrupts count={n} runs={reps}"),
        None => println!("BENCH name=tickless_interrupts error=no-counter"),
    }

    force_tick(100);
    for slot in hz100.iter_mut() {
        *slot = run_work(rounds).0;
    }
    force_tick(0);
    report("work_hz100", hz100, format_args!(" rounds={rounds}"));

    // Tickless and ticking runs alternate, so that a slow drift of the machine's speed cancels
    // in each pair's difference.
    let hz = 2000usize;
    let mut total_irqs = 0;
    let mut kept = 0;
    for _ in 0..reps {
        let (off, _) = run_work(rounds);
        force_tick(hz);
        let before = timer_interrupts();
        let (on, _) = run_work(rounds);
        let irqs = match (before, timer_interrupts()) {
            (Some(a), Some(b)) => b - a,
            _ => 0, // a kernel without the counter: no sample
        };
        force_tick(0);
        if let Some(per) = on.saturating_sub(off).checked_div(irqs) {
            per_irq[kept] = per;
            total_irqs += irqs;
            kept += 1;
        }
    }
    report(
        "timer_tick",
        &mut per_irq[..kept],
        format_args!(" hz={hz} interrupts={total_irqs}"),
    );
}

/// Time a ring-3 program loses while it runs alone and makes no system call: the gaps in a
/// TSC scan longer than 2,000 cycles (the kernel takes no interrupt here: tickless).
fn ring3_gaps(buf: &mut [u64], plan: &Plan) {
    let span = plan.work_rounds * 10; // about as long as the work runs take together
    let (count, lost) = bench_work::scan_gaps(span, 2000, buf);
    let kept = count.min(buf.len());
    if kept == 0 {
        println!("BENCH name=ring3_gaps count=0 span={span} lost=0");
        return;
    }
    report(
        "ring3_gaps",
        &mut buf[..kept],
        format_args!(" count={count} span={span} lost={lost}"),
    );
}

/// A demand-zero page fault: grow the heap with brk, then touch each new page once.
fn page_fault(buf: &mut [u64], plan: &Plan, overhead: u64) {
    let n = plan.fault_pages.min(buf.len());
    let warm = 8;
    // SAFETY: brk only moves the break; the pages between the old and the new break are ours.
    let cur = unsafe { syscall1(BRK, 0) } as usize;
    let start = (cur + PAGE - 1) & !(PAGE - 1);
    let end = start + (warm + n) * PAGE;
    // SAFETY: as above.
    if unsafe { syscall1(BRK, end) } as usize != end {
        println!("BENCH name=page_fault error=brk");
        return;
    }
    for i in 0..warm {
        // SAFETY: the page is below the break we just set, so it is ours to write.
        unsafe { core::ptr::write_volatile((start + i * PAGE) as *mut u8, 1) };
    }
    for (i, slot) in buf[..n].iter_mut().enumerate() {
        let page = (start + (warm + i) * PAGE) as *mut u8;
        let t0 = tsc();
        // SAFETY: as above; this is the page's first touch, the fault we time.
        unsafe { core::ptr::write_volatile(page, 1) };
        let t1 = tsc();
        *slot = (t1 - t0).saturating_sub(overhead);
    }
    report("page_fault", &mut buf[..n], format_args!(""));
}

/// clock_gettime(CLOCK_MONOTONIC) through the vDSO, as libc calls it (issue 10), and by the
/// system call for comparison.
fn clock_gettime(args: &Args, buf: &mut [u64], plan: &Plan, overhead: u64) {
    const CLOCK_MONOTONIC: usize = 1;
    let mut ts = [0i64; 2];
    match lde_user::vdso::symbol(args, b"__vdso_clock_gettime") {
        Some(f) => {
            // SAFETY: the vDSO's __vdso_clock_gettime has the C signature
            // int (clockid_t, struct timespec *), as in Linux's.
            let f: extern "C" fn(i32, *mut [i64; 2]) -> i32 = unsafe { core::mem::transmute(f) };
            measure("clock_gettime", buf, plan, overhead, || {
                f(CLOCK_MONOTONIC as i32, &mut ts);
                core::hint::black_box(&ts);
            });
        }
        None => println!("BENCH name=clock_gettime error=no-vdso"),
    }
    let p = &mut ts as *mut [i64; 2] as usize;
    // SAFETY: clock_gettime writes one timespec to `p`, a live local.
    measure("clock_gettime_syscall", buf, plan, overhead, || unsafe {
        syscall2(nr::CLOCK_GETTIME, CLOCK_MONOTONIC, p);
    });
}

/// A kernel loop of `per` iterations of `op`, `batches` times: cycles per iteration.
fn kernel_loop(name: &str, buf: &mut [u64], batches: usize, op: usize, per: usize, div: u64) {
    let n = batches.min(buf.len());
    bench_call(op, per); // warm-up
    for slot in buf[..n].iter_mut() {
        let c = bench_call(op, per);
        *slot = if c > 0 { c as u64 / div } else { 0 };
    }
    report(name, &mut buf[..n], format_args!(" per_call={per}"));
}

fn main(args: Args) -> i32 {
    if args.get(1) == Some("partner") {
        for _ in 0..=args.get_number(2, 0) {
            sched_yield();
        }
        return 0;
    }
    match args.get(1) {
        Some("counts") => {
            count::all();
            println!("{}", bench_work::DONE_LINE);
            return 0;
        }
        Some("procs") => {
            count::processes();
            println!("{}", bench_work::DONE_LINE);
            return 0;
        }
        Some("probes") => {
            count::probes();
            println!("{}", bench_work::DONE_LINE);
            return 0;
        }
        _ => count::all(),
    }
    let plan = if args.get(1) == Some("quick") {
        &QUICK
    } else {
        &FULL
    };
    // SAFETY: the only reference to SAMPLES, taken once; the program has a single thread.
    let buf = unsafe { &mut *SAMPLES.0.get() };

    // The timer's own cost, subtracted from every sample below.
    for slot in buf[..plan.iters].iter_mut() {
        let t0 = tsc();
        let t1 = tsc();
        *slot = t1 - t0;
    }
    let overhead = buf[..plan.iters].iter().copied().min().unwrap_or(0);
    report("rdtsc_overhead", &mut buf[..plan.iters], format_args!(""));

    // SAFETY (the three closures): getpid takes no argument and touches no memory.
    measure("syscall_getpid", buf, plan, overhead, || unsafe {
        syscall0(nr::GETPID);
    });
    measure("int80_getpid", buf, plan, overhead, || unsafe {
        int80_syscall6(nr::GETPID, 0, 0, 0, 0, 0, 0);
    });
    measure("sched_yield", buf, plan, overhead, sched_yield);
    context_switch(buf, plan, overhead);
    processes(buf, plan, overhead);
    page_fault(buf, plan, overhead);
    measure("cpuid_ring3", buf, plan, overhead, || {
        core::hint::black_box(core::arch::x86_64::__cpuid(0));
    });
    clock_gettime(&args, buf, plan, overhead);
    kernel_loop("port_exit", buf, plan.batches, OP_PORT_WRITE, 20, 20);
    kernel_loop("cpuid_ring0", buf, plan.batches, OP_CPUID, 20, 20);
    kernel_loop(
        "ring0_insn",
        buf,
        plan.batches / 2,
        OP_RING0_LOOP,
        1000,
        2000,
    );
    direct_execution_and_timer(buf, plan);
    ring3_gaps(buf, plan);
    println!("{}", bench_work::DONE_LINE);
    0
}
