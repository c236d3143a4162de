//! The system calls themselves, by family. Each handler reads its arguments from the trap frame
//! (Linux x86-64: rdi, rsi, rdx, r10, r8, r9) and returns `Ok(value)` or `Err(errno)`; every user
//! pointer goes through uaccess.rs. The numbers are in syscall_table.rs.

pub mod bench;
pub mod console;
pub mod memory;
pub mod process;
pub mod time;

use crate::percpu::current;
use abi::Errno;

/// What a system call returns: its value, or the error.
pub type SysResult = Result<u64, Errno>;

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
