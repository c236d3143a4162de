//! System calls: the table they are dispatched through, and the traces that wrap it.
//!
//! Two instructions lead here from ring 3, and both end up in the same dispatcher with the same
//! trap frame (`syscall_dispatch`, in trap_entry.rs, where the path is described):
//! - `int 0x80`, the classic trap-table path: IDT gate 0x80, DPL 3 (trap_table.rs);
//! - `syscall`, the path Linux programs use: the CPU jumps to LSTAR (`syscall_entry` in
//!   trap_entry.rs, set by trap_table.rs) in ring 0 with IF, TF, DF and AC cleared by SFMASK.
//!
//! On kvm_pvm neither enters ring 0 the ordinary way (docs/kvm-pvm.md): `syscall` arrives as a
//! page fault at LSTAR and `int 0x80` as an invalid-opcode fault at the instruction. The #PF and
//! #UD stubs recognise both and join the same dispatcher; user programs never know. We always
//! return with `iretq` (the stubs' common exit): `sysretq` would be faster on hardware, but one
//! return path for every trap keeps the exit code simple and works on kvm_pvm too.

use crate::sync::CpuCell;
use crate::syscall_table::{Handler, SYSCALL_TABLE, TABLE_LEN};
use crate::trace_events;
use crate::trap_frame::TrapFrame;
use abi::trace;

/// A number past the table: ENOSYS, traced like any call when a trace is on.
#[no_mangle]
#[cold]
extern "C" fn syscall_beyond_the_table(f: &mut TrapFrame) {
    match MODE.get() {
        Mode::Events => traced(f),
        Mode::Strace => crate::strace::traced(f),
        Mode::Plain => crate::syscall_table::sys_nosys(f),
    }
}

/// The table the dispatcher calls through, indexed by number: the system calls
/// (`SYSCALL_TABLE`), or with `strace=1` every entry strace's wrapper, which calls the real
/// one. Rewritten at boot only, before the first task runs, so choosing costs the path nothing
/// (the stubs index it by its address). `trace=events` keeps it: the recording dispatcher
/// (trap_entry.rs) writes its records around the call.
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

/// `trace=events`: every call through the recording dispatcher from now on (main.rs points
/// the trap table and LSTAR at the recording twins of the four entries: trap_table.rs).
pub fn enable_trace_events() {
    MODE.set(Mode::Events);
}

/// Whether the recording dispatcher runs the calls (its end of a deferred call is taken back
/// by the slow exit).
pub fn recording() -> bool {
    MODE.get() == Mode::Events
}

/// `strace=1`: every call through the tracing wrapper from now on.
pub fn enable_strace() {
    wrap_every_call(Mode::Strace, crate::strace::traced);
}

/// A number past the table under `trace=events` (the recording dispatcher takes the others):
/// a record, ENOSYS, a record, in the short form the dispatcher's have (abi::trace `Filler`).
extern "C" fn traced(f: &mut TrapFrame) {
    trace_events::emit_own(trace::SYSCALL_ENTER, [f.rax, f.rdi, f.rsi, f.rdx]);
    crate::syscall_table::sys_nosys(f);
    // The number comes from the ENTER; 0: the return address did not move (it returned).
    trace_events::emit_own(trace::SYSCALL_EXIT, [0, f.rax, 0]);
}
