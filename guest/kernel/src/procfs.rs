//! The few /proc files that programs read for the machine's state: `meminfo` (free, top),
//! `uptime`, `loadavg`, `cpuinfo` and `version`. Each is a `Kind::Generated` node of the tree,
//! made at boot (fs/boot.rs); opening one writes its text into a snapshot that the reads then
//! take, as a read of Linux's seq files sees one moment. (Per-process directories,
//! /proc/PID, are not there: `ps` finds no processes.)

use alloc::vec::Vec;
use core::fmt::Write;

use crate::memory::frame::FRAMES;
use crate::percpu;
use crate::process::TASKS;
use crate::time;
use abi::Errno;

/// The files, by the number their nodes carry.
pub const FILES: [(&[u8], u8); 5] = [
    (b"meminfo", MEMINFO),
    (b"uptime", UPTIME),
    (b"loadavg", LOADAVG),
    (b"cpuinfo", CPUINFO),
    (b"version", VERSION),
];
const MEMINFO: u8 = 0;
const UPTIME: u8 = 1;
const LOADAVG: u8 = 2;
const CPUINFO: u8 = 3;
const VERSION: u8 = 4;

/// A text being written, which runs out of room as an error instead of a panic.
struct Text(Vec<u8>);

impl Write for Text {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.try_reserve(s.len()).map_err(|_| core::fmt::Error)?;
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The text of file `which` now (ENOMEM if the heap has no room for it).
pub fn generate(which: u8) -> Result<Vec<u8>, Errno> {
    let mut t = Text(Vec::new());
    write(&mut t, which).map_err(|_| Errno::ENOMEM)?;
    Ok(t.0)
}

fn write(t: &mut Text, which: u8) -> core::fmt::Result {
    match which {
        MEMINFO => {
            let (total, free) = {
                let f = FRAMES.lock();
                (f.total_frames * 4, f.free_frames * 4)
            };
            // Everything not free is the kernel's or a program's: no page cache, no swap.
            for (name, kib) in [
                ("MemTotal", total),
                ("MemFree", free),
                ("MemAvailable", free),
                ("Buffers", 0),
                ("Cached", 0),
                ("SwapCached", 0),
                ("SwapTotal", 0),
                ("SwapFree", 0),
                ("Shmem", 0),
            ] {
                let pad = 15usize.saturating_sub(name.len());
                writeln!(t, "{name}:{:pad$}{kib:>8} kB", "")?;
            }
        }
        UPTIME => {
            let up = time::monotonic_ns() / 10_000_000;
            let idle = time::cycles_to_ns(percpu::this().idle_cycles.get()) / 10_000_000;
            writeln!(
                t,
                "{}.{:02} {}.{:02}",
                up / 100,
                up % 100,
                idle / 100,
                idle % 100
            )?;
        }
        LOADAVG => {
            // No load average is kept: zeros, then what runs and what exists, and the last pid.
            let (ready, live, last) = {
                let tasks = TASKS.lock();
                let last = tasks.live().map(|p| p.pid()).max().unwrap_or(0);
                (tasks.ready.len(), tasks.live().count(), last)
            };
            writeln!(t, "0.00 0.00 0.00 {}/{live} {last}", ready + 1)?;
        }
        CPUINFO => {
            let mhz = time::tsc_hz() / 1000;
            writeln!(t, "processor\t: 0")?;
            writeln!(
                t,
                "vendor_id\t: {}",
                crate::cpu::Features::detect().vendor_str()
            )?;
            writeln!(t, "cpu MHz\t\t: {}.{:03}", mhz / 1000, mhz % 1000)?;
            writeln!(t, "cpu cores\t: 1")?;
            writeln!(t)?;
        }
        _ => {
            writeln!(
                t,
                "Linux version {} (lde) #1 lde (Limited Direct Execution)",
                crate::sys::info::RELEASE
            )?;
        }
    }
    Ok(())
}
