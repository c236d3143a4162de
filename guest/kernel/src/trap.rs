//! Where every trap lands (one handler per kind, called by its entry stub): system calls, the timer,
//! and exceptions. An exception in ring 3 kills only the process that caused it (OSTEP 6.2: "the
//! OS would then likely kill the process"); one in ring 0 is a kernel bug: a panic.

use crate::exit;
use crate::memory::address_space::Fault as MmFault;
use crate::percpu::current;
use crate::scheduler;
use crate::signal::state::{SigInfo, SEGV_ACCERR, SEGV_MAPERR, SI_KERNEL};
use crate::trace_events;
use crate::trap_frame::{
    TrapFrame, BREAKPOINT, CONSOLE_VECTOR, DIVIDE_ERROR, EXCEPTION_NAMES, GENERAL_PROTECTION,
    INVALID_OPCODE, PAGE_FAULT, SPURIOUS_VECTOR,
};
use crate::uaccess::{self, copy_from_user};
use abi::signal::{SIGFPE, SIGILL, SIGKILL, SIGSEGV, SIGTRAP};
use abi::trace;

/// si_code for the faults we report.
const FPE_INTDIV: i32 = 1;
const ILL_ILLOPN: i32 = 2;
const TRAP_BRKPT: i32 = 1;
use x86_64::registers::control::Cr2;

// The handlers the entry stubs call (trap_entry.rs), one per kind of trap. Each returns what the
// trap exit must do besides returning (`scheduler::take_work`): nothing, or leave through the
// context switch because the scheduler picked another task. The system calls (`int 0x80`,
// `syscall`, and on kvm_pvm their #UD and #PF) and the timer tick's common case never get here:
// the stubs run them (trap_entry.rs).

/// The timer, when its stub's fast path does not apply (see trap_entry.rs).
#[no_mangle]
extern "C" fn trap_timer(f: &mut TrapFrame) -> u8 {
    if trace_events::on() {
        return timer_traced(f.user_mode());
    }
    scheduler::timer_interrupt(f.user_mode())
}

/// The timer interrupt between two records. Out of line, so that `trap_timer` stays as it was
/// when tracing is off.
#[cold]
#[inline(never)]
fn timer_traced(from_user: bool) -> u8 {
    trace_events::emit_own(trace::TICK_BEGIN, [from_user as u64]);
    let work = scheduler::timer_interrupt(from_user);
    trace_events::emit_own(trace::TICK_END, []);
    work
}

/// A page fault (the stub took kvm_pvm's `syscall`, a fault at LSTAR with a user RCX, already;
/// one with any other RCX is a jump into the kernel, and faults here like any other).
#[no_mangle]
extern "C" fn trap_page_fault(f: &mut TrapFrame) -> u8 {
    if !f.user_mode() {
        kernel_fault(f);
    }
    user_page_fault(f);
    scheduler::take_work()
}

/// An invalid opcode (the stub took kvm_pvm's `int 0x80` already).
#[no_mangle]
extern "C" fn trap_invalid_opcode(f: &mut TrapFrame) -> u8 {
    if !f.user_mode() {
        kernel_fault(f);
    }
    user_invalid_opcode(f)
}

/// Every other exception: from ring 3 it kills the task, from ring 0 it is a kernel bug.
#[no_mangle]
extern "C" fn trap_exception(f: &mut TrapFrame) -> u8 {
    if !f.user_mode() {
        kernel_fault(f);
    }
    let sig = signal_for(f.vector);
    let code = match f.vector {
        DIVIDE_ERROR => FPE_INTDIV,
        BREAKPOINT => TRAP_BRKPT,
        _ => SI_KERNEL,
    };
    kill(f, sig, code, None);
    scheduler::take_work()
}

/// The console's interrupt: input arrived (or the host's input ended).
#[no_mangle]
extern "C" fn trap_console(_f: &mut TrapFrame) -> u8 {
    let traced = trace_events::on();
    if traced {
        trace_events::emit_own(trace::INTERRUPT_BEGIN, [CONSOLE_VECTOR as u64]);
    }
    crate::tty::interrupt();
    crate::lapic::eoi();
    if traced {
        trace_events::emit_own(trace::INTERRUPT_END, []);
    }
    scheduler::take_work()
}

/// The LAPIC's spurious vector: nothing to do, not even an EOI.
#[no_mangle]
extern "C" fn trap_spurious(_f: &mut TrapFrame) -> u8 {
    if trace_events::on() {
        trace_events::emit_own(trace::INTERRUPT_BEGIN, [SPURIOUS_VECTOR as u64]);
        trace_events::emit_own(trace::INTERRUPT_END, []);
    }
    0
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
    let error = f.error;
    let cpu = crate::percpu::this();
    cpu.page_faults.set(cpu.page_faults.get() + 1);
    let resolve = move || match current().mm() {
        Some(mm) => mm.handle_fault(addr, error & 2 != 0, error & 16 != 0),
        None => MmFault::Segv,
    };
    let outcome = if trace_events::on() {
        traced_page_fault(f, addr, resolve)
    } else {
        resolve()
    };
    match outcome {
        MmFault::Resolved => {}
        MmFault::Segv => {
            let code = if f.error & 1 != 0 {
                SEGV_ACCERR
            } else {
                SEGV_MAPERR
            };
            kill(f, SIGSEGV, code, Some(addr))
        }
        MmFault::OutOfMemory => {
            let p = current();
            crate::println!(
                "kernel: killed pid {} ({}): out of memory for a page at {addr:#x} [signal {SIGKILL}]",
                p.tgid(),
                p.name()
            );
            exit::exit_current(SIGKILL);
        }
    }
}

/// `resolve`, between the trace's records of the fault. Inlined: out of line, the records
/// cost a call and the registers it saves besides their stores.
#[inline(always)]
fn traced_page_fault(f: &TrapFrame, addr: u64, resolve: impl FnOnce() -> MmFault) -> MmFault {
    trace_events::emit_own(trace::PAGE_FAULT_BEGIN, [addr, f.error, f.rip]);
    let outcome = resolve();
    let how = match outcome {
        MmFault::Resolved => trace::FAULT_RESOLVED,
        MmFault::Segv => trace::FAULT_SEGV,
        MmFault::OutOfMemory => trace::FAULT_OOM,
    };
    trace_events::emit_own(trace::PAGE_FAULT_END, [how]);
    outcome
}

/// kvm_pvm delivers `int N` from ring 3 as #UD at the instruction (bytes CD nn). `int 0x80`, our
/// system-call gate, is taken by the #UD stub itself (trap_entry.rs); any other vector would be
/// a #GP on hardware, so it is one here too.
fn user_invalid_opcode(f: &mut TrapFrame) -> u8 {
    let insn = uaccess::read_faulting_insn(f.rip).or_else(|| {
        let mut b = [0u8; 2];
        copy_from_user(current().pml4(), &mut b, f.rip)
            .ok()
            .map(|_| b)
    });
    let Some(insn) = insn else {
        kill(f, SIGILL, ILL_ILLOPN, None);
        return scheduler::take_work();
    };
    if insn[0] == 0xcd {
        // What a real CPU raises for a gate ring 3 may not use: #GP, error code = IDT entry.
        f.vector = GENERAL_PROTECTION;
        f.error = (insn[1] as u64) << 3 | 2;
        kill(f, SIGSEGV, SI_KERNEL, None);
        return scheduler::take_work();
    }
    kill(f, SIGILL, ILL_ILLOPN, None);
    scheduler::take_work()
}

/// An exception the running process caused: its signal goes to its handler if it has one (and
/// does not block it); otherwise the process is killed, with one line on the console, and the
/// rest go on.
#[cold]
#[inline(never)]
fn kill(f: &TrapFrame, signal: u32, code: i32, fault_addr: Option<u64>) {
    let info = SigInfo {
        signo: signal,
        code,
        addr: fault_addr.unwrap_or(0),
        trapno: f.vector,
        err: f.error,
        ..SigInfo::default()
    };
    if trace_events::on() {
        let a = [f.vector, f.rip, fault_addr.unwrap_or(0), signal as u64];
        trace_events::emit(trace::FAULT, current().pid(), a);
    }
    if crate::signal::send::fault(signal, info) {
        return;
    }
    let p = current();
    crate::print!(
        "kernel: killed pid {} ({}): {} at rip {:#x}",
        p.tgid(),
        p.name(),
        EXCEPTION_NAMES[f.vector as usize % 32],
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
    exit::exit_current(signal);
}

fn kernel_fault(f: &TrapFrame) -> ! {
    // #UD and #PF stubs do not save rbx, rbp, r12-r15 (they are on the system-call path on
    // kvm_pvm; see trap_entry.rs): say so rather than print stale values.
    let partial = f.vector == INVALID_OPCODE || f.vector == PAGE_FAULT;
    let callee = |v: u64| {
        if partial {
            NotSaved(None)
        } else {
            NotSaved(Some(v))
        }
    };
    panic!(
        "{} (vector {}, error {:#x}) in ring 0\n  rip {:#018x} cs {:#x} rflags {:#x} rsp {:#018x} ss {:#x} cr2 {:#x}\n  rax {:#018x} rbx {} rcx {:#018x} rdx {:#018x}\n  rsi {:#018x} rdi {:#018x} rbp {} r8  {:#018x}\n  r9  {:#018x} r10 {:#018x} r11 {:#018x} r12 {}\n  r13 {} r14 {} r15 {}",
        EXCEPTION_NAMES.get(f.vector as usize).unwrap_or(&"interrupt"),
        f.vector, f.error, f.rip, f.cs, f.rflags, f.rsp, f.ss, Cr2::read_raw(),
        f.rax, callee(f.rbx), f.rcx, f.rdx, f.rsi, f.rdi, callee(f.rbp), f.r8, f.r9, f.r10, f.r11,
        callee(f.r12), callee(f.r13), callee(f.r14), callee(f.r15)
    )
}

/// A register value for the panic dump, or a note that this path did not save it.
struct NotSaved(Option<u64>);

impl core::fmt::Display for NotSaved {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v:#018x}"),
            None => write!(f, "(not saved)       "),
        }
    }
}
