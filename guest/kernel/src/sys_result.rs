//! What a system call returns, as every layer that serves one writes it: the devices and pipes
//! below the system calls (sys/) return it too.

use abi::Errno;

/// What a system call returns: its value, or the error.
pub type SysResult = Result<u64, Errno>;

/// `-errno` for an error, the value otherwise. Inlined into each table entry, so a handler that
/// cannot fail (getpid) costs no more than one that returned a raw i64.
#[inline(always)]
pub fn raw(r: SysResult) -> i64 {
    match r {
        Ok(v) => v as i64,
        Err(e) => e.ret(),
    }
}
