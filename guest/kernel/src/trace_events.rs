//! `trace=events` (added by `vmm --trace`): the system calls, context switches and signals as
//! records (abi::trace) on the trace port, which the VMM turns into a Perfetto trace. Off, it
//! costs the hot paths nothing: the system calls go through this file's table only when it is
//! on (syscall.rs chooses the table), and the switch and signal paths test a flag they test
//! already for `trace=sched` or take only on their slow path.

use crate::percpu::current;
use crate::sync::CpuCell;
use crate::syscall_table::{Handler, SYSCALL_TABLE, TABLE_LEN};
use crate::trap_frame::TrapFrame;
use abi::syscall::nr;
use abi::trace::{self, Record, RECORD_BYTES};

/// Every entry the same: a record, the real entry, a record.
pub static EVENT_TABLE: [Handler; TABLE_LEN] = [traced; TABLE_LEN];

static ON: CpuCell<bool> = CpuCell::new(false);
/// `trace=sched` too: the switch lines on the console as well as the records.
static SCHED_LINES: CpuCell<bool> = CpuCell::new(false);

pub fn on() -> bool {
    ON.get()
}

pub fn sched_lines() -> bool {
    SCHED_LINES.get()
}

pub fn enable(sched_lines: bool) {
    ON.set(true);
    SCHED_LINES.set(sched_lines);
}

/// Sends one record: one VM exit.
pub fn emit(kind: u32, pid: u32, a: [u64; 4]) {
    let ns = crate::time::monotonic_ns();
    let bytes = Record { ns, kind, pid, a }.to_bytes();
    // SAFETY: sends the record's bytes to the trace port, which only the VMM reads; DF is
    // clear (the ABI's and SFMASK's promise), and rsi/rcx are given back as clobbered.
    unsafe {
        core::arch::asm!("rep outsb", in("dx") abi::machine::port::TRACE,
            inout("rsi") bytes.as_ptr() => _, inout("rcx") RECORD_BYTES => _,
            options(nostack, preserves_flags, readonly));
    }
}

fn traced(f: &mut TrapFrame) -> u8 {
    let n = f.rax;
    let pid = current().pid();
    emit(trace::SYSCALL_ENTER, pid, [n, f.rdi, f.rsi, f.rdx]);
    let rip = f.rip;
    let handler = SYSCALL_TABLE
        .get(n as usize)
        .copied()
        .unwrap_or(crate::syscall_table::sys_nosys);
    let work = handler(f);
    let how = if n as usize == nr::EXIT || n as usize == nr::EXIT_GROUP {
        trace::NO_RETURN
    } else if crate::percpu::this().deferred_syscall.get() == n {
        // The slow exit runs it and reports its end (`deferred_result`).
        return work;
    } else if f.rip != rip {
        trace::BLOCKED
    } else {
        trace::RETURNED
    };
    emit(trace::SYSCALL_EXIT, pid, [n, f.rax, how, 0]);
    work
}

/// The end of a call the slow exit ran (fork, execve, rt_sigreturn...).
pub fn deferred_result(n: u64, rax: u64) {
    emit(
        trace::SYSCALL_EXIT,
        current().pid(),
        [n, rax, trace::RETURNED, 0],
    );
}

/// A switch from `prev` (0 at boot) to `next`, named, for the trace's tracks.
pub fn switch(prev: u32, next: u32, next_name: &[u8], why: &str) {
    let name = trace::pack_name(next_name);
    emit(
        trace::SWITCH,
        prev,
        [next as u64, trace::why_code(why), name[0], name[1]],
    );
}
