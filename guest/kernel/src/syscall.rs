//! System calls: how they get in (both ways), and the dispatcher.
//!
//! Two instructions lead here from ring 3, and both end up in `dispatch` with the same trap frame:
//! - `int 0x80`, the classic trap-table path: IDT gate 0x80, DPL 3 (trap_table.rs);
//! - `syscall`, the path Linux programs use: the CPU jumps to LSTAR (`syscall_entry` in
//!   trap_entry.rs) in ring 0 with IF, TF, DF and AC cleared by SFMASK.
//!
//! On kvm_pvm neither enters ring 0 the ordinary way (docs/kvm-pvm.md):
//! `syscall` arrives as a page fault at LSTAR and `int 0x80` as an invalid-opcode fault at the
//! instruction. trap.rs recognises both and calls `dispatch` just the same; user programs never
//! know. We always return with `iretq` (the stubs' common exit): `sysretq` would be faster on hardware, but
//! one return path for every trap keeps the exit code simple and works on kvm_pvm too.

use core::sync::atomic::Ordering::Relaxed;

use crate::gdt::KERNEL_CODE;
use crate::percpu::current;
use crate::sync::CpuCell;
use crate::syscall_table::{Handler, SYSCALL_TABLE, TABLE_LEN};
use crate::trap_entry::syscall_entry;
use crate::trap_frame::TrapFrame;
use x86_64::registers::model_specific::{Efer, EferFlags, Msr};

const STAR: u32 = 0xc000_0081;
const LSTAR: u32 = 0xc000_0082;
const SFMASK: u32 = 0xc000_0084;
const RFLAGS_TF: u64 = 1 << 8;
const RFLAGS_IF: u64 = 1 << 9;
const RFLAGS_DF: u64 = 1 << 10;
const RFLAGS_AC: u64 = 1 << 18;

/// The address `syscall` jumps to; on kvm_pvm, the address of the page fault it turns into.
pub fn lstar() -> u64 {
    syscall_entry as *const () as u64
}

pub fn init() {
    // SAFETY: enables `syscall` and points it at `syscall_entry`, which builds a trap frame on the
    // running task's kernel stack. STAR: kernel CS = 0x08 (SS = 0x10); the sysret base 0x13 would
    // give user SS = 0x1b and CS = 0x23, matching gdt.rs. SFMASK clears IF (no interrupt before
    // the stack switch), TF, DF (the ABI wants it clear) and AC (no user access by accident).
    unsafe {
        Efer::update(|f| f.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
        let user_base = (crate::gdt::USER_DATA as u64 - 8) & !3 | 3;
        Msr::new(STAR).write(user_base << 48 | (KERNEL_CODE as u64) << 32);
        Msr::new(LSTAR).write(lstar());
        Msr::new(SFMASK).write(RFLAGS_IF | RFLAGS_TF | RFLAGS_DF | RFLAGS_AC);
    }
}

/// Runs system call `rax` with the Linux x86-64 convention: arguments in rdi, rsi, rdx, r10, r8,
/// r9; the result (or -errno) back in rax. Unknown numbers get -ENOSYS. Returns what the trap
/// exit must do (`scheduler::take_work`). Not inlined: each way in jumps here, so it is one
/// place (one breakpoint in gdb, one of the four debug registers on kvm_pvm) for every call.
#[inline(never)]
pub fn dispatch(f: &mut TrapFrame) -> u8 {
    current().stats.syscalls.fetch_add(1, Relaxed);
    match TABLE.get().get(f.rax as usize) {
        Some(handler) => handler(f),
        None => beyond_the_table(f),
    }
}

/// A number past the table: ENOSYS, recorded like any call when `trace=events` is on.
#[cold]
#[inline(never)]
fn beyond_the_table(f: &mut TrapFrame) -> u8 {
    if core::ptr::eq(TABLE.get(), &crate::trace_events::EVENT_TABLE) {
        return crate::trace_events::traced(f);
    }
    crate::syscall_table::sys_nosys(f)
}

/// The table `dispatch` uses: the system calls, or (`strace=1`) the same calls each wrapped in
/// a console line. Choosing the table costs nothing on the path when tracing is off.
static TABLE: CpuCell<&'static [Handler; TABLE_LEN]> = CpuCell::new(&SYSCALL_TABLE);

/// Whether `strace=1` or `trace=events` is on.
pub fn tracing() -> bool {
    !core::ptr::eq(TABLE.get(), &SYSCALL_TABLE)
}

/// The end of a call the slow exit ran, for whichever trace is on.
pub fn deferred_result(n: u64, rax: u64) {
    if core::ptr::eq(TABLE.get(), &crate::trace_events::EVENT_TABLE) {
        crate::trace_events::deferred_result(n, rax);
    } else {
        crate::strace::deferred_result(n, rax);
    }
}

/// `trace=events`: every call through the recording table from now on (`strace=1` wins if
/// both are given: one table at a time).
pub fn enable_trace_events() {
    TABLE.set(&crate::trace_events::EVENT_TABLE);
}

/// `strace=1`: every call through the tracing table from now on.
pub fn enable_strace() {
    TABLE.set(&crate::strace::TRACED_TABLE);
}

/// Sets up a frame that arrived through a `syscall` the hypervisor turned into a page fault at
/// LSTAR (kvm_pvm): the CPU already put the return address in RCX and the flags in R11, exactly
/// as a native `syscall` would; the frame's RIP/RFLAGS are only those of the fault.
#[inline]
pub fn from_pvm_page_fault(f: &mut TrapFrame) {
    f.rip = f.rcx;
    f.rflags = (f.r11 & !(RFLAGS_TF | RFLAGS_AC)) | RFLAGS_IF | 0x2;
}
