//! Measurements only the kernel can make, for `vmm bench` (the `bench` system call, 1001).
//! Each runs a loop in ring 0 and returns the cycles it took, so a ring-3 program can compare
//! them with what it measures itself.

use crate::cpu::rdtsc;
use crate::timer;

use abi::bench::count;
use abi::bench::op::{
    COUNT_ARM as OP_COUNT_ARM, COUNT_READ as OP_COUNT_READ, CPUID as OP_CPUID,
    FORCE_TICK as OP_FORCE_TICK, PORT_WRITE as OP_PORT_WRITE, RING0_LOOP as OP_RING0_LOOP,
    TIMER_INTERRUPTS as OP_TIMER_INTERRUPTS,
};
use abi::machine::port::BENCH as BENCH_PORT;
use abi::Errno;

/// bench(op, n): `n` iterations of `op` in ring 0; returns the cycles, or EINVAL.
/// - 0: an empty loop (`dec; jnz`: two instructions an iteration), the cost of ring-0 code;
/// - 1: `out` to port 0xf5, which our VMM answers in userspace: a VM exit round trip;
/// - 2: `cpuid`, which KVM answers in the kernel;
/// - 3: make the timer tick at `n` Hz even with one runnable task (0: back to tickless);
///   returns 0;
/// - 4: returns how many timer interrupts the kernel has taken since boot (`n` ignored);
/// - 5: arms the VMM's instruction counter (`abi::bench::count`): it counts the ring-0
///   instructions of the next round trip from ring 3 (`n` = 0: interrupts held off; 1: let in;
///   2: a span, everything up to the next op 6, interrupts held off); returns 0;
/// - 6: returns the counter's answer (a count, or one of `abi::bench::count::read`).
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
            crate::scheduler::reprogram_timer();
            return Ok(0);
        }
        OP_TIMER_INTERRUPTS => return Ok(timer::interrupts()),
        OP_COUNT_ARM => {
            let cmd = match n {
                0 => count::ARM,
                1 => count::ARM_IRQ,
                2 => count::SPAN,
                _ => return Err(Errno::EINVAL),
            };
            // SAFETY: the bench port has no effect on the guest; the VMM starts single-stepping.
            unsafe {
                core::arch::asm!("out dx, al", in("dx") BENCH_PORT, in("al") cmd, options(nomem, nostack));
            }
            return Ok(0);
        }
        OP_COUNT_READ => {
            let answer: u32;
            // SAFETY: reading the bench port has no effect on the guest.
            unsafe {
                core::arch::asm!("in eax, dx", in("dx") BENCH_PORT, out("eax") answer, options(nomem, nostack));
            }
            return Ok(answer as u64);
        }
        OP_RING0_LOOP => {}
        _ => return Err(Errno::EINVAL),
    }
    Ok(rdtsc() - start)
}
