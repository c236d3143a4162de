//! The host half of `vmm bench`: the same round trips on the Linux we run on, timed the same
//! way as in the guest (a serialised `lfence; rdtsc` around each operation, the timer's own
//! minimum overhead subtracted), and the guest's direct-execution work run natively.

use std::collections::BTreeMap;

use super::lines::Stat;

pub use abi::bench::{scan_gaps, work, WORK_SEED};

/// `lfence; rdtsc`, as the guest's bench program reads the clock.
#[inline(always)]
pub fn tsc() -> u64 {
    // SAFETY: lfence and rdtsc have no memory effects; both exist on every x86-64 CPU.
    unsafe {
        std::arch::x86_64::_mm_lfence();
        std::arch::x86_64::_rdtsc()
    }
}

/// How much to measure (the guest program's plans, in the same proportions).
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub warm: usize,
    pub iters: usize,
    pub pages: usize,
    pub work_rounds: u64,
    pub work_reps: usize,
    /// fork + exit + wait and fork + exec + exit + wait samples.
    pub proc_iters: usize,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                warm: 100,
                iters: 2000,
                pages: 500,
                work_rounds: 4_000_000,
                work_reps: 5,
                proc_iters: 200,
            }
        } else {
            Plan {
                warm: 1000,
                iters: 20000,
                pages: 4000,
                work_rounds: 20_000_000,
                work_reps: 15,
                proc_iters: 2000,
            }
        }
    }
}

fn overhead() -> u64 {
    (0..1000)
        .map(|_| {
            let t0 = tsc();
            tsc() - t0
        })
        .min()
        .unwrap_or(0)
}

fn measure(plan: &Plan, over: u64, mut op: impl FnMut()) -> Option<Stat> {
    for _ in 0..plan.warm {
        op();
    }
    let mut s: Vec<u64> = (0..plan.iters)
        .map(|_| {
            let t0 = tsc();
            op();
            (tsc() - t0).saturating_sub(over)
        })
        .collect();
    Stat::from_samples(&mut s)
}

/// Pins the calling process to `cpu`.
fn pin_to(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it; the call only
    // reads the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// lmbench lat_ctx style: two processes on one CPU pass a byte back and forth through two
/// pipes; one round trip is two switches (plus two writes and two reads), so a sample is half.
fn pipe_switch(plan: &Plan, over: u64) -> Option<Stat> {
    let mut ab = [0i32; 2];
    let mut ba = [0i32; 2];
    // SAFETY: each array has room for the two descriptors pipe() writes.
    if unsafe { libc::pipe(ab.as_mut_ptr()) != 0 || libc::pipe(ba.as_mut_ptr()) != 0 } {
        return None;
    }
    // Pin the parent first: the child inherits the affinity, so both share one CPU.
    // SAFETY: sched_getaffinity writes one cpu_set_t into `saved`.
    let mut saved: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut saved) };
    let pinned = pin_to(0);
    // SAFETY: the child only calls read, write and _exit (async-signal-safe) before exiting.
    let child = unsafe { libc::fork() };
    if child == 0 {
        let mut b = [0u8; 1];
        // SAFETY: closes the ends the child does not use, so that the parent's close is EOF.
        unsafe {
            libc::close(ab[1]);
            libc::close(ba[0]);
        }
        loop {
            // SAFETY: one-byte reads and writes from/to a local buffer on our own pipes.
            unsafe {
                if libc::read(ab[0], b.as_mut_ptr().cast(), 1) != 1 {
                    libc::_exit(0);
                }
                libc::write(ba[1], b.as_ptr().cast(), 1);
            }
        }
    }
    // SAFETY: the parent's unused ends; the child holds its own copies.
    unsafe {
        libc::close(ab[0]);
        libc::close(ba[1]);
    }
    let mut b = [0u8; 1];
    let mut round = || {
        // SAFETY: as in the child.
        unsafe {
            libc::write(ab[1], b.as_ptr().cast(), 1);
            libc::read(ba[0], b.as_mut_ptr().cast(), 1);
        }
    };
    let result = if child > 0 {
        let r = measure(plan, over, &mut round);
        r.map(|s| Stat {
            min: s.min / 2.0,
            median: s.median / 2.0,
            p99: s.p99 / 2.0,
            iters: s.iters,
        })
    } else {
        None
    };
    // SAFETY: closing our descriptors ends the child's loop (read returns 0); waitpid reaps it;
    // the saved affinity set is restored as it was read.
    unsafe {
        for fd in [ab[1], ba[0]] {
            libc::close(fd);
        }
        if child > 0 {
            libc::waitpid(child, std::ptr::null_mut(), 0);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &saved);
    }
    if pinned {
        result
    } else {
        None
    }
}

/// Times `op` (a fork and its wait) `plan.proc_iters` times after a few untimed runs; None if
/// it ever fails.
fn measure_procs(plan: &Plan, over: u64, mut op: impl FnMut() -> bool) -> Option<Stat> {
    for _ in 0..10 {
        if !op() {
            return None;
        }
    }
    let mut s = Vec::with_capacity(plan.proc_iters);
    for _ in 0..plan.proc_iters {
        let t0 = tsc();
        if !op() {
            return None;
        }
        s.push((tsc() - t0).saturating_sub(over));
    }
    Stat::from_samples(&mut s)
}

/// fork; the child `_exit`s at once (or first execs `exec`); the parent waits. True if the
/// child exited 0.
fn fork_wait(exec: Option<&ExecTarget>) -> bool {
    // SAFETY: the child calls only execve and _exit (async-signal-safe), with arguments built
    // before the fork; the parent reaps it with waitpid.
    unsafe {
        let child = libc::fork();
        if child == 0 {
            if let Some(e) = exec {
                libc::execve(e.path.as_ptr(), e.argv.as_ptr(), e.envp.as_ptr());
                libc::_exit(127);
            }
            libc::_exit(0);
        }
        if child < 0 {
            return false;
        }
        let mut status = 0;
        libc::waitpid(child, &mut status, 0) == child && status == 0
    }
}

/// A program for the child to exec, its argv and envp ready before the fork.
pub struct ExecTarget {
    path: std::ffi::CString,
    _arg0: std::ffi::CString,
    argv: [*const libc::c_char; 2],
    envp: [*const libc::c_char; 1],
}

impl ExecTarget {
    pub fn new(path: &std::path::Path) -> Option<ExecTarget> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        let arg0 = std::ffi::CString::new(super::EXEC_TARGET).ok()?;
        let argv = [arg0.as_ptr(), std::ptr::null()];
        Some(ExecTarget {
            path: c,
            _arg0: arg0,
            argv,
            envp: [std::ptr::null()],
        })
    }
}

/// A demand-zero page fault: touch each page of a fresh anonymous mapping once.
fn page_fault(plan: &Plan, over: u64) -> Option<Stat> {
    let len = plan.pages * 4096;
    // SAFETY: a private anonymous mapping of `len` bytes, unmapped below; nothing else uses it.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    let mut s: Vec<u64> = (0..plan.pages)
        .map(|i| {
            let t0 = tsc();
            // SAFETY: the page lies inside the mapping made above.
            unsafe { std::ptr::write_volatile((base as *mut u8).add(i * 4096), 1) };
            (tsc() - t0).saturating_sub(over)
        })
        .collect();
    // SAFETY: unmaps exactly the mapping made above; no reference into it survives.
    unsafe { libc::munmap(base, len) };
    Stat::from_samples(&mut s)
}

/// Runs every host measurement; the keys match the guest's BENCH names where they compare.
/// `exec` is the tiny static program fork + exec + exit + wait runs (the guest's own `exit0`,
/// which runs on Linux too).
pub fn measure_all(plan: &Plan, exec: Option<&ExecTarget>) -> BTreeMap<&'static str, Stat> {
    let over = overhead();
    let mut out = BTreeMap::new();
    let mut put = |k, v: Option<Stat>| {
        if let Some(v) = v {
            out.insert(k, v);
        }
    };
    let o = over as f64;
    put(
        "rdtsc_overhead",
        Some(Stat {
            min: o,
            median: o,
            p99: o,
            iters: 1000,
        }),
    );
    // SAFETY (the three closures): system calls without pointer arguments.
    put(
        "syscall_getpid",
        measure(plan, over, || unsafe {
            libc::syscall(libc::SYS_getppid);
        }),
    );
    put(
        "sched_yield",
        measure(plan, over, || unsafe {
            libc::sched_yield();
        }),
    );
    let switch = pipe_switch(plan, over);
    put("context_switch", switch);
    put("pipe_switch", switch);
    put(
        "fork_exit_wait",
        measure_procs(plan, over, || fork_wait(None)),
    );
    if let Some(e) = exec {
        put(
            "fork_exec_wait",
            measure_procs(plan, over, || fork_wait(Some(e))),
        );
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY (both): clock_gettime writes one timespec into `ts`, a live local.
    put(
        "clock_gettime",
        measure(plan, over, || unsafe {
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        }),
    );
    put(
        "clock_gettime_syscall",
        measure(plan, over, || unsafe {
            libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, &mut ts);
        }),
    );
    put("page_fault", page_fault(plan, over));
    put(
        "cpuid_ring3",
        measure(plan, over, || {
            std::hint::black_box(std::arch::x86_64::__cpuid(0));
        }),
    );
    out
}

/// The gaps in a TSC scan of the same span as the guest's (see abi::bench::scan_gaps): their
/// sizes, and the share of the span they took.
pub fn ring3_gaps(plan: &Plan) -> (Option<Stat>, f64) {
    let span = plan.work_rounds * 10;
    let mut gaps = vec![0u64; 4096];
    let (count, lost) = scan_gaps(span, 2000, &mut gaps);
    gaps.truncate(count.min(gaps.len()));
    (Stat::from_samples(&mut gaps), lost as f64 / span as f64)
}

/// The guest's direct-execution work, natively: the samples (cycles per run).
pub fn run_work(plan: &Plan) -> Vec<u64> {
    let go = || {
        let t0 = tsc();
        std::hint::black_box(work(
            std::hint::black_box(WORK_SEED),
            std::hint::black_box(plan.work_rounds),
        ));
        tsc() - t0
    };
    go(); // warm-up
    (0..plan.work_reps).map(|_| go()).collect()
}

/// The TSC frequency in Hz: what KVM says (KVM_GET_TSC_KHZ on a fresh vCPU), or else measured
/// against CLOCK_MONOTONIC over 100 ms.
pub fn tsc_hz() -> (f64, &'static str) {
    if let Some(khz) = kvm_tsc_khz() {
        return (khz as f64 * 1000.0, "KVM_GET_TSC_KHZ");
    }
    let t = std::time::Instant::now();
    let c0 = tsc();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let c1 = tsc();
    (
        (c1 - c0) as f64 / t.elapsed().as_secs_f64(),
        "measured against CLOCK_MONOTONIC",
    )
}

fn kvm_tsc_khz() -> Option<u32> {
    let kvm = kvm_ioctls::Kvm::new().ok()?;
    let vm = kvm.create_vm().ok()?;
    let vcpu = vm.create_vcpu(0).ok()?;
    vcpu.get_tsc_khz().ok().filter(|&k| k > 0)
}

/// The host CPU's model name (/proc/cpuinfo).
pub fn cpu_name() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Which KVM this is: kvm_pvm (software, guest ring 0 emulated) or hardware VMX/SVM.
pub fn kvm_kind() -> String {
    if std::path::Path::new("/sys/module/kvm_pvm").exists() {
        return "kvm_pvm (no VMX/SVM: guest ring 0 is emulated)".into();
    }
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    if has("vmx") {
        "hardware VMX (kvm_intel)".into()
    } else if has("svm") {
        "hardware SVM (kvm_amd)".into()
    } else {
        "unknown (no vmx/svm flag, no kvm_pvm module)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_deterministic() {
        assert_eq!(work(WORK_SEED, 1000), work(WORK_SEED, 1000));
        assert_ne!(work(WORK_SEED, 1000), work(WORK_SEED, 1001));
    }
}
