//! The entropy port (0xf7): each read is answered with fresh random bytes from the host's
//! getrandom(2). The guest kernel reads 32 bytes at boot to seed its own generator (getrandom,
//! AT_RANDOM); a VMM without the port answers all-ones, which the kernel recognises and falls
//! back to the TSC, saying so.

pub const ENTROPY_PORT: u16 = abi::machine::port::ENTROPY;

/// Fills `data` from the host's generator; all-ones (no entropy) if it fails, which the guest
/// reports.
pub fn read(data: &mut [u8]) {
    // SAFETY: getrandom writes at most `data.len()` bytes into the buffer we own.
    let n = unsafe { libc::getrandom(data.as_mut_ptr().cast(), data.len(), 0) };
    if n != data.len() as isize {
        log::warn!("getrandom failed: the guest gets no entropy from the host");
        data.fill(0xff);
    }
}
