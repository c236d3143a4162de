//! Where every trap lands (`trap_dispatch`, called by the entry stubs): system calls, the timer,
//! and exceptions. An exception in ring 3 kills only the process that caused it (OSTEP 6.2: "the
//! OS would then likely kill the process"); one in ring 0 is a kernel bug: a panic.

use crate::lapic::{SPURIOUS_VECTOR, TIMER_VECTOR};
use crate::memory::frame::FRAMES;
use crate::memory::paging;
use crate::memory::PAGE_SIZE;
use crate::process::{self, SIGFPE, SIGILL, SIGSEGV, SIGTRAP};
use crate::scheduler::{self, current};
use crate::syscall;
use crate::trap_entry::TrapFrame;
use crate::uaccess::copy_from_user;
use x86_64::registers::control::Cr2;

pub const SYSCALL_VECTOR: u64 = 0x80;
const DIVIDE_ERROR: u64 = 0;
const BREAKPOINT: u64 = 3;
const INVALID_OPCODE: u64 = 6;
const PAGE_FAULT: u64 = 14;

const NAMES: [&str; 32] = [
    "divide error",
    "debug",
    "NMI",
    "breakpoint",
    "overflow",
    "bound range exceeded",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor segment overrun",
    "invalid TSS",
    "segment not present",
    "stack-segment fault",
    "general protection fault",
    "page fault",
    "reserved",
    "x87 floating-point error",
    "alignment check",
    "machine check",
    "SIMD floating-point error",
    "virtualization exception",
    "control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "hypervisor injection",
    "VMM communication",
    "security exception",
    "reserved",
];

#[no_mangle]
extern "C" fn trap_dispatch(f: &mut TrapFrame) {
    match f.vector {
        SYSCALL_VECTOR => syscall::dispatch(f),
        v if v == TIMER_VECTOR as u64 => scheduler::timer_interrupt(f.user_mode()),
        v if v == SPURIOUS_VECTOR as u64 => {}
        PAGE_FAULT if f.user_mode() => user_page_fault(f),
        INVALID_OPCODE if f.user_mode() => user_invalid_opcode(f),
        v if v < 32 && f.user_mode() => kill(f, signal_for(v), None),
        _ => kernel_fault(f),
    }
}

fn signal_for(vector: u64) -> u32 {
    match vector {
        DIVIDE_ERROR => SIGFPE,
        16 | 19 => SIGFPE,
        BREAKPOINT => SIGTRAP,
        INVALID_OPCODE => SIGILL,
        _ => SIGSEGV,
    }
}

fn user_page_fault(f: &mut TrapFrame) {
    let addr = Cr2::read_raw();
    // kvm_pvm: a `syscall` from ring 3 faults at LSTAR instead of entering ring 0 there.
    if addr == syscall::lstar() && f.rip == addr {
        syscall::from_pvm_page_fault(f);
        return syscall::dispatch(f);
    }
    // The heap grows on demand: a first touch below the break gets a fresh zero page.
    let p = current();
    let not_present = f.error & 1 == 0;
    if not_present && addr >= p.heap_start && addr < p.brk {
        let page = addr & !(PAGE_SIZE - 1);
        if let Some(frame) = FRAMES.lock().alloc_zeroed() {
            let flags = paging::USER | paging::WRITABLE | paging::nx();
            if paging::map(p.pml4, page, frame, flags).is_ok() {
                return;
            }
        }
    }
    kill(f, SIGSEGV, Some(addr))
}

/// kvm_pvm delivers `int N` from ring 3 as #UD at the instruction (bytes CD nn). `int 0x80` is
/// our system-call gate; any other vector would be a #GP on hardware, so it is one here too.
fn user_invalid_opcode(f: &mut TrapFrame) {
    let mut insn = [0u8; 2];
    if copy_from_user(current().pml4, &mut insn, f.rip).is_ok() && insn[0] == 0xcd {
        if insn[1] as u64 == SYSCALL_VECTOR {
            f.rip += 2;
            return syscall::dispatch(f);
        }
        return kill(f, SIGSEGV, None);
    }
    kill(f, SIGILL, None)
}

/// Kills the running process for an exception it caused; the rest go on.
fn kill(f: &TrapFrame, signal: u32, fault_addr: Option<u64>) {
    let p = current();
    crate::print!(
        "kernel: killed pid {} ({}): {} at rip {:#x}",
        p.pid,
        p.name(),
        NAMES[f.vector as usize % 32],
        f.rip
    );
    if let Some(addr) = fault_addr {
        let what = if f.error & 16 != 0 {
            "executing"
        } else if f.error & 2 != 0 {
            "writing"
        } else {
            "reading"
        };
        let why = if f.error & 1 != 0 {
            "a protected page"
        } else {
            "an unmapped page"
        };
        crate::print!(", {what} {addr:#x} ({why})");
    }
    crate::println!(" [signal {signal}]");
    process::exit_current(signal)
}

fn kernel_fault(f: &TrapFrame) -> ! {
    panic!(
        "{} (vector {}, error {:#x}) in ring 0\n  rip {:#018x} cs {:#x} rflags {:#x} rsp {:#018x} ss {:#x} cr2 {:#x}\n  rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}\n  rsi {:#018x} rdi {:#018x} rbp {:#018x} r8  {:#018x}\n  r9  {:#018x} r10 {:#018x} r11 {:#018x} r12 {:#018x}\n  r13 {:#018x} r14 {:#018x} r15 {:#018x}",
        NAMES.get(f.vector as usize).unwrap_or(&"interrupt"),
        f.vector, f.error, f.rip, f.cs, f.rflags, f.rsp, f.ss, Cr2::read_raw(),
        f.rax, f.rbx, f.rcx, f.rdx, f.rsi, f.rdi, f.rbp, f.r8, f.r9, f.r10, f.r11, f.r12,
        f.r13, f.r14, f.r15
    )
}
