//! A process's memory: the heap's break, and the FS base its thread-local storage hangs from.

use core::sync::atomic::Ordering::Relaxed;

use super::{pml4, SysResult};
use crate::memory::paging::USER_END;
use crate::percpu::current;
use crate::scheduler;
use crate::trap_frame::TrapFrame;
use crate::uaccess::copy_to_user;
use abi::Errno;

/// brk(addr): moves the heap's end; its pages appear, zeroed, when first touched. Returns the
/// break (the old one when refused, as Linux does).
pub fn sys_brk(f: &mut TrapFrame) -> SysResult {
    let mm = current().mm().ok_or(Errno::ENOMEM)?;
    Ok(mm.brk(f.rdi))
}

pub fn sys_arch_prctl(f: &mut TrapFrame) -> SysResult {
    const ARCH_SET_FS: u64 = 0x1002;
    const ARCH_GET_FS: u64 = 0x1003;
    match f.rdi {
        ARCH_SET_FS => {
            if f.rsi >= USER_END {
                return Err(Errno::EPERM);
            }
            current().fs_base.store(f.rsi, Relaxed);
            scheduler::load_fs_base(f.rsi);
            Ok(0)
        }
        ARCH_GET_FS => {
            let fs = current().fs_base.load(Relaxed);
            copy_to_user(pml4(), f.rsi, &fs.to_le_bytes())?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
