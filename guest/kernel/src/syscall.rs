//! System calls: how they get in (every way), and the table they are dispatched through.
//!
//! Two instructions lead here from ring 3, and both end up in the same dispatcher with the same
//! trap frame (`syscall_dispatch`, in trap_entry.rs, where the path is described):
//! - `int 0x80`, the classic trap-table path: IDT gate 0x80, DPL 3 (trap_table.rs);
//! - `syscall`, the path Linux programs use: the CPU jumps to LSTAR (`syscall_entry` in
//!   trap_entry.rs) in ring 0 with IF, TF, DF and AC cleared by SFMASK.
//!
//! On kvm_pvm neither enters ring 0 the ordinary way (docs/kvm-pvm.md): `syscall` arrives as a
//! page fault at LSTAR and `int 0x80` as an invalid-opcode fault at the instruction. The #PF and
//! #UD stubs recognise both and join the same dispatcher; user programs never know. We always
//! return with `iretq` (the stubs' common exit): `sysretq` would be faster on hardware, but one
//! return path for every trap keeps the exit code simple and works on kvm_pvm too.

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
/// exit must do (`scheduler::take_work`). The entry stubs do the same in assembly
/// (`syscall_dispatch`, trap_entry.rs); this is for the system calls the #UD handler finds
/// only on its slow way (trap.rs).
pub fn dispatch(f: &mut TrapFrame) -> u8 {
    current().stats.syscalls.fetch_add(1, Relaxed);
    match TABLE.get(f.rax as usize) {
        Some(handler) => handler.get()(f),
        None => syscall_beyond_the_table(f),
    }
    crate::scheduler::take_work()
}

/// A number past the table: ENOSYS, recorded like any call when `trace=events` is on.
#[no_mangle]
#[cold]
extern "C" fn syscall_beyond_the_table(f: &mut TrapFrame) {
    if MODE.get() == Mode::Events {
        return crate::trace_events::traced(f);
    }
    crate::syscall_table::sys_nosys(f)
}

/// The table the dispatcher calls through, indexed by number: the system calls
/// (`SYSCALL_TABLE`), or with `strace=1` or `trace=events` every entry that trace's wrapper,
/// which calls the real one. Rewritten at boot only, before the first task runs, so choosing
/// costs the path nothing (the stubs index it by its address).
pub static TABLE: [CpuCell<Handler>; TABLE_LEN] = {
    let mut t = [const { CpuCell::new(crate::syscall_table::sys_nosys as Handler) }; TABLE_LEN];
    let mut i = 0;
    while i < TABLE_LEN {
        t[i] = CpuCell::new(SYSCALL_TABLE[i]);
        i += 1;
    }
    t
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Strace,
    Events,
}

static MODE: CpuCell<Mode> = CpuCell::new(Mode::Plain);

fn wrap_every_call(mode: Mode, wrapper: Handler) {
    MODE.set(mode);
    for entry in TABLE.iter() {
        entry.set(wrapper);
    }
}

/// Whether `strace=1` or `trace=events` is on.
pub fn tracing() -> bool {
    MODE.get() != Mode::Plain
}

/// The end of a call the slow exit ran, for whichever trace is on.
pub fn deferred_result(n: u64, rax: u64) {
    if MODE.get() == Mode::Events {
        crate::trace_events::deferred_result(n, rax);
    } else {
        crate::strace::deferred_result(n, rax);
    }
}

/// `trace=events`: every call through the recording wrapper from now on (`strace=1` wins if
/// both are given: one wrapper at a time).
pub fn enable_trace_events() {
    wrap_every_call(Mode::Events, crate::trace_events::traced);
}

/// `strace=1`: every call through the tracing wrapper from now on.
pub fn enable_strace() {
    wrap_every_call(Mode::Strace, crate::strace::traced);
}
