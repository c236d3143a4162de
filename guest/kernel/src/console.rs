//! The console as programs see it: where their output goes and their input comes from. With a
//! virtio console announced on the command line (virtio_console.rs), through it: one VM exit
//! per write rather than one per byte. Otherwise, and for whatever the UART received before
//! the driver started, through the UART (uart.rs). The terminal (tty.rs) reads input from here
//! through its line discipline.

use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crate::uart::UART;

/// write(2) of `len` bytes at user address `buf` to the console. Through the UART a bad
/// buffer writes nothing; through virtio, nothing of a chain with a bad page is sent
/// (virtio_console.rs says what a long write does).
///
/// Inlined into its callers, so that a write through the virtio console pays for no frame
/// of this function's: the UART's way, with its bounce buffer on the stack, is out of line.
#[inline(always)]
pub fn write_user(buf: u64, len: u64) -> crate::sys_result::SysResult {
    let pml4 = crate::percpu::current().pml4();
    if let Some(r) = crate::virtio_console::write_user(pml4, buf, len) {
        return r;
    }
    write_user_by_uart(pml4, buf, len)
}

#[inline(never)]
fn write_user_by_uart(pml4: u64, buf: u64, len: u64) -> crate::sys_result::SysResult {
    crate::uaccess::read_user_chunks::<256>(pml4, buf, len, |chunk| {
        UART.lock().write_bytes(chunk)
    })?;
    Ok(len)
}

/// Bytes of the kernel's own for the console's output stream (the terminal's echo,
/// sendfile): where program output goes, so that they stay in order with it.
pub fn write_kernel(bytes: &[u8]) {
    let rest = if crate::virtio_console::active() {
        crate::virtio_console::write_kernel(bytes)
    } else {
        bytes
    };
    if !rest.is_empty() {
        UART.lock().write_bytes(rest);
    }
}

/// Whether the UART may hold input. With the virtio console in use the host sends there
/// only what came before our driver started, so once it reads empty we stop asking (each
/// question is a VM exit) until the next interrupt, which may be the UART's.
static UART_MAY_HAVE_INPUT: AtomicBool = AtomicBool::new(true);

/// Input bytes waiting in the UART, then in the virtio console's buffers; how many went to
/// `out`.
pub fn read_input(out: &mut [u8]) -> usize {
    let mut n = 0;
    let virtio = crate::virtio_console::active();
    if !virtio || UART_MAY_HAVE_INPUT.load(Relaxed) {
        let mut c = UART.lock();
        while n < out.len() {
            match c.try_read_byte() {
                Some(b) => out[n] = b,
                None => break,
            }
            n += 1;
        }
        if n < out.len() && virtio {
            UART_MAY_HAVE_INPUT.store(false, Relaxed);
        }
    }
    if n < out.len() && virtio {
        n += crate::virtio_console::read_input(&mut out[n..]);
    }
    n
}

/// The device side of the console's interrupt (the UART's or the virtio console's line: one
/// vector); the terminal then reads what came (tty.rs `interrupt`).
pub fn take_interrupt() {
    UART_MAY_HAVE_INPUT.store(true, Relaxed);
    crate::virtio_console::take_interrupt();
}
