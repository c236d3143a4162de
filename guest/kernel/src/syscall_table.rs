//! The system-call table: Linux x86-64 numbers, so ordinary static programs run unchanged, plus
//! two calls of our own (`spawn`, 1000, and `bench`, 1001). The handlers are in sys/, by family.

use crate::sys::{bench, console, memory, process, time, SysResult};
use crate::trap_frame::TrapFrame;
use abi::syscall::nr;
use abi::Errno;

/// What the dispatcher calls: runs the call, leaves its result (or -errno) in the frame's rax,
/// the raw Linux convention, and returns what the trap exit must do (`scheduler::take_work`).
/// Doing all of that here lets the trap handler end with a jump into the table: a few
/// instructions less on every system call.
pub type Handler = fn(&mut TrapFrame) -> u8;
const TABLE_LEN: usize = nr::BENCH + 1;

/// `-errno` for an error, the value otherwise. Inlined into each table entry, so a handler that
/// cannot fail (getpid) costs no more than one that returned a raw i64.
#[inline(always)]
fn raw(r: SysResult) -> i64 {
    match r {
        Ok(v) => v as i64,
        Err(e) => e.ret(),
    }
}

/// Builds the table: each `number => handler` entry becomes a `Handler` that converts the
/// handler's `SysResult`; numbers with no entry get ENOSYS.
macro_rules! syscall_table {
    ($($nr:expr => $handler:path),* $(,)?) => {{
        let mut t: [Handler; TABLE_LEN] = [sys_nosys; TABLE_LEN];
        $(
            t[$nr] = {
                fn entry(f: &mut TrapFrame) -> u8 {
                    f.rax = raw($handler(f)) as u64;
                    crate::scheduler::take_work()
                }
                entry
            };
        )*
        t
    }};
}

/// Indexed by system-call number.
pub static SYSCALL_TABLE: [Handler; TABLE_LEN] = syscall_table! {
    nr::READ => console::sys_read,
    nr::WRITE => console::sys_write,
    nr::BRK => memory::sys_brk,
    nr::IOCTL => console::sys_ioctl,
    nr::WRITEV => console::sys_writev,
    nr::SCHED_YIELD => process::sys_sched_yield,
    nr::NANOSLEEP => time::sys_nanosleep,
    nr::GETPID => process::sys_getpid,
    nr::EXIT => process::sys_exit,
    nr::WAIT4 => process::sys_wait4,
    nr::GETPPID => process::sys_getppid,
    nr::ARCH_PRCTL => memory::sys_arch_prctl,
    nr::SET_TID_ADDRESS => process::sys_set_tid_address,
    nr::CLOCK_GETTIME => time::sys_clock_gettime,
    nr::EXIT_GROUP => process::sys_exit, // one thread per process
    nr::SPAWN => process::sys_spawn,
    nr::BENCH => bench::sys_bench,
};

pub fn sys_nosys(f: &mut TrapFrame) -> u8 {
    f.rax = Errno::ENOSYS.ret() as u64;
    crate::scheduler::take_work()
}
