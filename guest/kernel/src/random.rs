//! The kernel's random numbers (getrandom, AT_RANDOM): ChaCha20 keyed at boot with 32 bytes the
//! VMM gives us from the host's getrandom (its entropy port, abi::machine::port::ENTROPY).
//! After every request the key is replaced by fresh output ("fast key erasure"), so what a
//! program got earlier cannot be recomputed from the state later. Under a VMM without the port
//! (QEMU) the key comes from the TSC, which is not secret: the boot banner says so.
//!
//! RDRAND is not used: kvm_pvm kills the VM on several instructions it cannot emulate, and the
//! host's generator is as good and known to work.

use crate::sync::IrqLock;
use x86_64::instructions::port::Port;

struct ChaCha {
    key: [u32; 8],
    counter: u64,
}

static RNG: IrqLock<ChaCha> = IrqLock::new(
    "random",
    ChaCha {
        key: [0; 8],
        counter: 0,
    },
);

/// Seeds the generator; returns whether the host gave entropy.
pub fn init() -> bool {
    let mut key = [0u32; 8];
    let mut from_host = true;
    for k in key.iter_mut() {
        // SAFETY: reading the entropy port has no side effect on the machine's state.
        *k = unsafe { Port::<u32>::new(abi::machine::port::ENTROPY).read() };
    }
    if key.iter().all(|&k| k == u32::MAX) {
        from_host = false;
        for (i, k) in key.iter_mut().enumerate() {
            let t = crate::cpu::rdtsc().rotate_left(i as u32 * 7);
            *k = (t ^ (t >> 32)) as u32 ^ 0x6a09_e667u32.rotate_left(i as u32);
        }
    }
    RNG.lock().key = key;
    from_host
}

/// One 64-byte ChaCha20 block of `key` at block number `counter` (RFC 8439's layout, with a
/// 64-bit counter and a zero nonce).
fn block(key: &[u32; 8], counter: u64) -> [u32; 16] {
    const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];
    let mut init = [0u32; 16];
    init[..4].copy_from_slice(&SIGMA);
    init[4..12].copy_from_slice(key);
    init[12] = counter as u32;
    init[13] = (counter >> 32) as u32;
    let mut x = init;
    fn qr(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
        x[a] = x[a].wrapping_add(x[b]);
        x[d] = (x[d] ^ x[a]).rotate_left(16);
        x[c] = x[c].wrapping_add(x[d]);
        x[b] = (x[b] ^ x[c]).rotate_left(12);
        x[a] = x[a].wrapping_add(x[b]);
        x[d] = (x[d] ^ x[a]).rotate_left(8);
        x[c] = x[c].wrapping_add(x[d]);
        x[b] = (x[b] ^ x[c]).rotate_left(7);
    }
    for _ in 0..10 {
        qr(&mut x, 0, 4, 8, 12);
        qr(&mut x, 1, 5, 9, 13);
        qr(&mut x, 2, 6, 10, 14);
        qr(&mut x, 3, 7, 11, 15);
        qr(&mut x, 0, 5, 10, 15);
        qr(&mut x, 1, 6, 11, 12);
        qr(&mut x, 2, 7, 8, 13);
        qr(&mut x, 3, 4, 9, 14);
    }
    for (o, i) in x.iter_mut().zip(init) {
        *o = o.wrapping_add(i);
    }
    x
}

/// Writes `len` random bytes to user memory at `buf` (getrandom, a read of /dev/urandom): how
/// many, short if a page is missing after the first, EFAULT if the first is.
pub fn fill_user(pml4: u64, buf: u64, len: u64) -> crate::sys_result::SysResult {
    let mut done = 0;
    let mut chunk = [0u8; 256];
    while done < len {
        let n = (len - done).min(chunk.len() as u64) as usize;
        fill(&mut chunk[..n]);
        if let Err(e) = crate::uaccess::copy_to_user(pml4, buf.wrapping_add(done), &chunk[..n]) {
            return if done > 0 { Ok(done) } else { Err(e.into()) };
        }
        done += n as u64;
    }
    Ok(done)
}

/// Fills `out` with random bytes, then re-keys.
pub fn fill(out: &mut [u8]) {
    let mut g = RNG.lock();
    for chunk in out.chunks_mut(64) {
        let b = block(&g.key, g.counter);
        g.counter = g.counter.wrapping_add(1);
        for (i, byte) in chunk.iter_mut().enumerate() {
            *byte = (b[i / 4] >> (8 * (i % 4))) as u8;
        }
    }
    let next = block(&g.key, g.counter);
    g.counter = g.counter.wrapping_add(1);
    g.key.copy_from_slice(&next[..8]);
}
