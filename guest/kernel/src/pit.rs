//! The 8254 PIT, used only to measure a clock we are not told the frequency of (under QEMU,
//! which does not fill in the hypervisor timing leaf).

use x86_64::instructions::port::Port;

const PIT_HZ: u64 = 1_193_182;
const CHANNEL0: u16 = 0x40;
const COMMAND: u16 = 0x43;

/// Counts `read()` ticks over ~20 ms of PIT time and returns its frequency in Hz.
pub fn measure_hz(read: fn() -> u64) -> u64 {
    const TICKS: u64 = 23_864; // 20 ms
                               // SAFETY: programs PIT channel 0 (mode 0, one-shot countdown, lobyte/hibyte) and reads it back
                               // with the latch command; no interrupt is enabled for it (the LAPIC is our timer).
    unsafe {
        let mut cmd = Port::<u8>::new(COMMAND);
        let mut ch0 = Port::<u8>::new(CHANNEL0);
        cmd.write(0x30);
        ch0.write(0xff);
        ch0.write(0xff);
        let latch = |cmd: &mut Port<u8>, ch0: &mut Port<u8>| -> u64 {
            cmd.write(0x00);
            let lo = ch0.read() as u64;
            let hi = ch0.read() as u64;
            lo | hi << 8
        };
        let start_count = latch(&mut cmd, &mut ch0);
        let start = read();
        loop {
            let now = latch(&mut cmd, &mut ch0);
            let elapsed = start_count.wrapping_sub(now) & 0xffff;
            if elapsed >= TICKS {
                let cycles = read() - start;
                return cycles * PIT_HZ / elapsed;
            }
        }
    }
}
