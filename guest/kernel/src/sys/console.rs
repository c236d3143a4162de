//! The console's calls: fd 0 reads the UART, fds 1 and 2 write to it.

use super::{pml4, SysResult};
use crate::console::CONSOLE;
use crate::trap_frame::TrapFrame;
use crate::uaccess::{check, copy_to_user, read_u64, read_user_chunks};
use abi::Errno;

/// read(fd, buf, count): console input. Returns what the UART has now, 0 if nothing (EOF).
pub fn sys_read(f: &mut TrapFrame) -> SysResult {
    let (fd, buf, count) = (f.rdi, f.rsi, f.rdx);
    if fd != 0 {
        return Err(Errno::EBADF);
    }
    // The whole buffer must be writable user memory, even if less arrives (as on Linux).
    check(pml4(), buf, count, true)?;
    let mut tmp = [0u8; 64];
    let mut n = 0;
    let want = (count as usize).min(tmp.len());
    {
        let mut console = CONSOLE.lock();
        while n < want {
            match console.try_read_byte() {
                Some(b) => {
                    tmp[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
    }
    copy_to_user(pml4(), buf, &tmp[..n])?;
    Ok(n as u64)
}

/// Writes `len` bytes at user address `buf` to the console; a bad buffer writes nothing.
fn write_console(buf: u64, len: u64) -> SysResult {
    read_user_chunks::<256>(pml4(), buf, len, |chunk| CONSOLE.lock().write_bytes(chunk))?;
    Ok(len)
}

pub fn sys_write(f: &mut TrapFrame) -> SysResult {
    match f.rdi {
        1 | 2 => write_console(f.rsi, f.rdx),
        _ => Err(Errno::EBADF),
    }
}

pub fn sys_writev(f: &mut TrapFrame) -> SysResult {
    let (fd, iov, cnt) = (f.rdi, f.rsi, f.rdx);
    if fd != 1 && fd != 2 {
        return Err(Errno::EBADF);
    }
    if cnt > 1024 {
        return Err(Errno::EINVAL);
    }
    let mut total = 0;
    for i in 0..cnt {
        let at = iov.wrapping_add(i * 16);
        let base = read_u64(pml4(), at)?;
        let len = read_u64(pml4(), at.wrapping_add(8))?;
        total += write_console(base, len)?;
    }
    Ok(total)
}

pub fn sys_ioctl(_f: &mut TrapFrame) -> SysResult {
    Err(Errno::ENOTTY)
}
