//! The system calls themselves, by family. Each handler reads its arguments from the trap frame
//! (Linux x86-64: rdi, rsi, rdx, r10, r8, r9) and returns `Ok(value)` or `Err(errno)`; every user
//! pointer goes through uaccess.rs. The numbers are in syscall_table.rs.

pub mod bench;
pub mod exec;
pub mod fd;
pub mod file_times;
pub mod fs;
pub mod futex;
pub mod info;
pub mod memory;
pub mod poll;
pub mod process;
pub mod signal;
pub mod stat;
pub mod time;
pub mod xattr;

use crate::percpu::current;
use abi::Errno;

pub use crate::sys_result::{raw, SysResult};

/// The *at calls' flags that several families take (Linux's values).
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
pub const AT_SYMLINK_FOLLOW: u64 = 0x400;
pub const AT_EMPTY_PATH: u64 = 0x1000;

/// A path argument (fs::user_path); one that reaches into /proc first brings its per-process
/// directories up to date (procfs.rs), which is the only time they are.
pub fn user_path(addr: u64) -> Result<alloc::vec::Vec<u8>, Errno> {
    let mut path = crate::fs::user_path(addr)?;
    let cwd = || current().cwd.load(core::sync::atomic::Ordering::Relaxed);
    if crate::procfs::looks_into(&path, cwd) {
        crate::procfs::self_to_pid(&mut path, current().tgid())?;
        crate::procfs::refresh(crate::procfs::fd_dir_of(&path));
    }
    Ok(path)
}

/// The table's entry for the calls that need the whole register set (fork, execve,
/// rt_sigreturn): it only leaves the call for the slow trap exit (trap_slow.rs), which makes
/// the frame whole and runs it. Returns the call's number, which the slow exit overwrites.
/// Whether call `n` was just left for the slow exit by `sys_defer` (the traces then report
/// its end from there). The marker for "none" is itself a number a program may pass (-1),
/// which is never deferred.
pub fn deferred(n: u64) -> bool {
    crate::percpu::this().deferred_syscall.get() == n && n != crate::percpu::NO_SYSCALL
}

pub fn sys_defer(f: &mut crate::trap_frame::TrapFrame) -> SysResult {
    let cpu = crate::percpu::this();
    cpu.deferred_syscall.set(f.rax);
    cpu.work.set(cpu.work.get() | crate::percpu::WORK_SLOW);
    Ok(f.rax)
}

/// The running task's page table, where its user pointers point.
#[inline]
fn pml4() -> u64 {
    current().pml4()
}

/// uaccess's fault, as a system call reports it.
impl From<crate::uaccess::Fault> for Errno {
    fn from(_: crate::uaccess::Fault) -> Errno {
        Errno::EFAULT
    }
}
