//! The floor of `vmm bench` (issue 4): a minimal PVH guest whose trap handlers do nothing but
//! return (ring0.rs). It times, from ring 3, the same round trips as our kernel's `bench`
//! program, so the gap between the two is the cost of our kernel's own code:
//! a null trap by `syscall` and by `int 0x80`, `cpuid` in ring 3, and (in ring 0, like the
//! kernel's bench call) a port write the VMM answers in userspace, `cpuid`, and an empty loop.
//! Every result is a `BENCH name=... min=... median=... p99=... iters=...` line on COM1, with
//! the same names as the kernel's; then it exits through port 0xf4 with status 0.
//!
//! All of this file runs in ring 3 (it is linked on the user page at 2 MiB, see linker.ld).
#![no_std]
#![no_main]

mod ring0;

use core::arch::asm;
use core::cell::UnsafeCell;
use core::fmt::{self, Write};

const WARM: usize = 100;
const ITERS: usize = 2000;
const BATCHES: usize = 200;

const SVC_WRITE: u64 = 1;
const SVC_PORT: u64 = 2;
const SVC_CPUID: u64 = 3;
const SVC_LOOP: u64 = 4;
const SVC_EXIT: u64 = 5;
const SVC_TIMER: u64 = 6;
const SVC_TICKS: u64 = 7;
const SVC_CPUID_EAX: u64 = 8;
const SVC_BENCH_OUT: u64 = 9;
const SVC_BENCH_IN: u64 = 10;

/// The timer measurement: the same work as our kernel's bench program, tickless and at 2 kHz.
const WORK_ROUNDS: u64 = 4_000_000;
const WORK_REPS: usize = 7;
const TICK_HZ: u64 = 2000;

use abi::bench as bench_work;

/// The ring-3 stack (ring0.rs starts `floor_main` at its top).
#[repr(C, align(16))]
pub struct Stack(UnsafeCell<[u8; 64 * 1024]>);
// SAFETY: only ever used as the one stack of the one ring-3 thread.
unsafe impl Sync for Stack {}
#[no_mangle]
pub static FLOOR_USER_STACK: Stack = Stack(UnsafeCell::new([0; 64 * 1024]));

core::arch::global_asm!(
    ".global floor_user_stack_top",
    ".set floor_user_stack_top, FLOOR_USER_STACK + 65536"
);

/// A floor service (int3 into ring0.rs): rax = service, rdi/rsi/rdx = arguments.
fn service(n: u64, a: u64, b: u64, c: u64) -> u64 {
    let ret: u64;
    // SAFETY: the int3 handler reads the registers below, writes rax, and clobbers rcx, rdx,
    // rsi, r8 and r9 (rbx it saves); the write service only reads `c` bytes at `b`.
    unsafe {
        asm!(
            "int3",
            inlateout("rax") n => ret,
            in("rdi") a,
            inlateout("rsi") b => _,
            inlateout("rdx") c => _,
            lateout("rcx") _, lateout("r8") _, lateout("r9") _,
            options(nostack),
        );
    }
    ret
}

fn exit(status: u8) -> ! {
    service(SVC_EXIT, status as u64, 0, 0);
    loop {
        core::hint::spin_loop();
    }
}

/// Formats into a buffer and writes it to the console with one service call.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn print(args: fmt::Arguments) {
    let mut l = Line {
        buf: [0; 256],
        len: 0,
    };
    let _ = l.write_fmt(args);
    service(SVC_WRITE, 0, l.buf.as_ptr() as u64, l.len as u64);
}

#[inline(always)]
fn tsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: lfence and rdtsc only read the time-stamp counter.
    unsafe { asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (hi as u64) << 32 | lo as u64
}

fn report(name: &str, s: &mut [u64], extra: &str) {
    let summary = bench_work::Summary::of(s);
    print(format_args!(
        "{}\n",
        bench_work::StatLine {
            name,
            summary,
            extra: format_args!("{extra}")
        }
    ));
}

fn measure(name: &str, buf: &mut [u64], overhead: u64, mut op: impl FnMut()) {
    for _ in 0..WARM {
        op();
    }
    for slot in buf.iter_mut() {
        let t0 = tsc();
        op();
        let t1 = tsc();
        *slot = (t1 - t0).saturating_sub(overhead);
    }
    report(name, buf, "");
}

/// `syscall` with getpid's number: the null trap by the kernel's fast path.
#[inline(always)]
fn null_syscall() {
    // SAFETY: the floor's syscall path returns at once; rcx and r11 are clobbered as by any
    // `syscall`.
    unsafe {
        asm!("syscall", inlateout("rax") 39u64 => _, lateout("rcx") _, lateout("r11") _,
             options(nostack))
    };
}

/// `int 0x80` with getpid's number: the null trap through the trap table.
#[inline(always)]
fn null_int80() {
    // SAFETY: the floor's int 0x80 path returns at once and changes no register.
    unsafe { asm!("int 0x80", inlateout("rax") 39u64 => _, options(nostack)) };
}

fn kernel_loop(name: &str, buf: &mut [u64], svc: u64, per: u64, div: u64) {
    service(svc, per, 0, 0);
    for slot in buf.iter_mut() {
        *slot = service(svc, per, 0, 0) / div;
    }
    let mut extra = Line {
        buf: [0; 256],
        len: 0,
    };
    let _ = write!(extra, " per_call={per}");
    let extra = core::str::from_utf8(&extra.buf[..extra.len]).unwrap_or("");
    report(name, buf, extra);
}

fn run_work() -> u64 {
    let t0 = tsc();
    core::hint::black_box(bench_work::work(
        core::hint::black_box(bench_work::WORK_SEED),
        core::hint::black_box(WORK_ROUNDS),
    ));
    tsc() - t0
}

/// Cycles one timer interrupt takes from a ring-3 program: a run of the work with the timer at
/// 2 kHz minus the tickless run before it, divided by the interrupts counted.
fn timer_tick() {
    // In ring 0: on kvm_pvm a ring-3 cpuid does not reach KVM's (our VMM's) CPUID table.
    let tsc_hz = service(SVC_CPUID_EAX, abi::machine::cpuid::TIMING as u64, 0, 0) * 1000;
    if tsc_hz == 0 {
        print(format_args!(
            "BENCH name=timer_tick error=no-tsc-frequency\n"
        ));
        return;
    }
    run_work();
    // Tickless and ticking runs alternate, as in the kernel's bench program.
    let mut per = [0u64; WORK_REPS];
    let mut kept = 0;
    let mut total = 0;
    for _ in 0..WORK_REPS {
        let off = run_work();
        service(SVC_TIMER, tsc_hz / TICK_HZ, 0, 0);
        let before = service(SVC_TICKS, 0, 0, 0);
        let on = run_work();
        let irqs = service(SVC_TICKS, 0, 0, 0) - before;
        service(SVC_TIMER, 0, 0, 0);
        if let Some(p) = on.saturating_sub(off).checked_div(irqs) {
            per[kept] = p;
            kept += 1;
            total += irqs;
        }
    }
    let mut extra = Line {
        buf: [0; 256],
        len: 0,
    };
    let _ = write!(extra, " hz={TICK_HZ} interrupts={total}");
    let extra = core::str::from_utf8(&extra.buf[..extra.len]).unwrap_or("");
    if kept > 0 {
        report("timer_tick", &mut per[..kept], extra);
    } else {
        print(format_args!("BENCH name=timer_tick error=no-interrupts\n"));
    }
}

/// Counts the ring-0 instructions of `op` (one round trip) twice, as our kernel's bench
/// program does (after a few uncounted runs), and prints its `insns_` line.
fn count(path: &str, irqs: bool, mut op: impl FnMut()) {
    use abi::bench::count::{ARM, ARM_IRQ};
    for _ in 0..3 {
        op();
    }
    let mut runs = [0u32; 2];
    for r in runs.iter_mut() {
        service(SVC_BENCH_OUT, if irqs { ARM_IRQ } else { ARM } as u64, 0, 0);
        op();
        *r = service(SVC_BENCH_IN, 0, 0, 0) as u32;
    }
    print(format_args!("{}\n", abi::bench::CountLine { path, runs }));
}

/// The exact counts of the floor's null paths: `syscall`, `int 0x80`, and a timer tick (the
/// timer at 1 kHz; ring 3 spins until it comes, interrupts let in).
fn counts() {
    count("syscall_getpid", false, null_syscall);
    count("int80_getpid", false, null_int80);
    let tsc_hz = service(SVC_CPUID_EAX, abi::machine::cpuid::TIMING as u64, 0, 0) * 1000;
    if tsc_hz == 0 {
        return;
    }
    service(SVC_TIMER, tsc_hz / 1000, 0, 0);
    count("timer_tick", true, || {
        let t0 = tsc();
        while tsc() - t0 < 40_000_000 {}
    });
    service(SVC_TIMER, 0, 0, 0);
}

#[no_mangle]
extern "C" fn floor_main() -> ! {
    print(format_args!("floor: ring 3, null trap handlers\n"));
    counts();
    let mut samples = [0u64; ITERS];
    for slot in samples.iter_mut() {
        let t0 = tsc();
        *slot = tsc() - t0;
    }
    let overhead = samples.iter().copied().min().unwrap_or(0);
    report("rdtsc_overhead", &mut samples, "");
    measure("syscall_getpid", &mut samples, overhead, null_syscall);
    measure("int80_getpid", &mut samples, overhead, null_int80);
    measure("cpuid_ring3", &mut samples, overhead, || {
        core::hint::black_box(core::arch::x86_64::__cpuid(0));
    });
    let batches = &mut samples[..BATCHES];
    kernel_loop("port_exit", batches, SVC_PORT, 20, 20);
    kernel_loop("cpuid_ring0", batches, SVC_CPUID, 20, 20);
    kernel_loop(
        "ring0_insn",
        &mut batches[..BATCHES / 2],
        SVC_LOOP,
        1000,
        2000,
    );
    timer_tick();
    print(format_args!("{}\n", bench_work::DONE_LINE));
    exit(0)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    print(format_args!("floor: panic\n"));
    exit(250)
}
