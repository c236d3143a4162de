//! Measurements only the kernel can make, for `vmm bench` (the `bench` system call, 1001).
//! Each runs a loop in ring 0 and returns the cycles it took, so a ring-3 program can compare
//! them with what it measures itself.

use crate::cpu::rdtsc;
use crate::timer;

use abi::machine::port::BENCH as BENCH_PORT;
use abi::Errno;

const OP_RING0_LOOP: u64 = 0;
const OP_PORT_WRITE: u64 = 1;
const OP_CPUID: u64 = 2;
const OP_FORCE_TICK: u64 = 3;
const OP_TIMER_INTERRUPTS: u64 = 4;

/// bench(op, n): `n` iterations of `op` in ring 0; returns the cycles, or EINVAL.
/// - 0: an empty loop (`dec; jnz`: two instructions an iteration), the cost of ring-0 code;
/// - 1: `out` to port 0xf5, which our VMM answers in userspace: a VM exit round trip;
/// - 2: `cpuid`, which KVM answers in the kernel;
/// - 3: make the timer tick at `n` Hz even with one runnable task (0: back to tickless);
///   returns 0;
/// - 4: returns how many timer interrupts the kernel has taken since boot (`n` ignored).
pub fn sys_bench(f: &mut crate::trap_frame::TrapFrame) -> super::SysResult {
    let (op, n) = (f.rdi, f.rsi);
    if n > 100_000_000 {
        return Err(Errno::EINVAL);
    }
    let start = rdtsc();
    // SAFETY (all three loops): they touch no memory; `out` goes to the VMM's benchmark port,
    // which has no side effect; `cpuid` is harmless.
    match op {
        OP_RING0_LOOP if n > 0 => unsafe {
            core::arch::asm!("2:", "dec {n}", "jnz 2b", n = inout(reg) n => _, options(nomem, nostack));
        },
        OP_PORT_WRITE => unsafe {
            for _ in 0..n {
                core::arch::asm!("out dx, al", in("dx") BENCH_PORT, in("al") 0u8, options(nomem, nostack));
            }
        },
        OP_CPUID => {
            for _ in 0..n {
                core::hint::black_box(core::arch::x86_64::__cpuid(0));
            }
        }
        OP_FORCE_TICK => {
            timer::force_hz(n);
            return Ok(0);
        }
        OP_TIMER_INTERRUPTS => return Ok(timer::interrupts()),
        OP_RING0_LOOP => {}
        _ => return Err(Errno::EINVAL),
    }
    Ok(rdtsc() - start)
}
