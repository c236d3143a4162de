//! blast TOTAL BLOCK: writes TOTAL bytes of the console-throughput stream
//! (`abi::bench::stream_byte`) to fd 1 in writes of BLOCK bytes (at most 64 KiB), between a
//! `blast: begin` and a `blast: end` line, and exits 0, or 1 if a write failed or came up
//! short. `vmm bench`'s console rows and tests/virtio_console.rs run it; the stream lets them
//! check every byte arrived, in order.
#![no_std]
#![no_main]

use core::cell::UnsafeCell;

lde_user::entry!(main);

const MAX_BLOCK: usize = 64 << 10;

/// The write buffer: too big for the stack, so a static the one thread owns.
struct Buffer(UnsafeCell<[u8; MAX_BLOCK]>);
// SAFETY: the program has one thread; `main` is the only user of the buffer.
unsafe impl Sync for Buffer {}
static BUFFER: Buffer = Buffer(UnsafeCell::new([0; MAX_BLOCK]));

fn main(args: lde_user::Args) -> i32 {
    let total = args.get_number(1, 1 << 20);
    let block = (args.get_number(2, 4096) as usize).clamp(1, MAX_BLOCK);
    // SAFETY: the only reference to the buffer, for the whole run (see `Buffer`).
    let buf = unsafe { &mut *BUFFER.0.get() };
    if lde_user::write_all(1, b"blast: begin\n").is_err() {
        return 1;
    }
    let mut at = 0u64;
    while at < total {
        let n = (total - at).min(block as u64) as usize;
        abi::bench::stream_fill(at, &mut buf[..n]);
        match lde_user::write(1, &buf[..n]) {
            Ok(k) if k == n => at += n as u64,
            _ => return 1,
        }
    }
    if lde_user::write_all(1, b"blast: end\n").is_err() {
        return 1;
    }
    0
}
