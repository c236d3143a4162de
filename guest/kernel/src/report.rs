//! The shutdown report: one line per process that ever ran, printed when the VM powers off.

use crate::process::{self, Name, State, StatsSnapshot, TASKS};
use crate::sync::IrqLock;
use crate::{percpu, println, time};

#[derive(Clone, Copy)]
pub struct Record {
    pid: u32,
    name: Name,
    state: State,
    /// Linux's wait status: an exit code or a signal (an exit code of 128 or more is still an
    /// exit, as a shell's `exit 130` is).
    wait_status: u32,
    stats: StatsSnapshot,
}

/// Pids up to this many are remembered after their slot is reused (the report says if more ran).
const MAX_RECORDS: usize = 1024;
static HISTORY: IrqLock<[Option<Record>; MAX_RECORDS]> =
    IrqLock::new("report history", [None; MAX_RECORDS]);

fn record_of(p: &process::Process) -> Record {
    Record {
        pid: p.pid(),
        name: p.name(),
        state: p.state(),
        wait_status: p.wait_status.load(core::sync::atomic::Ordering::Relaxed),
        stats: p.stats.snapshot(),
    }
}

/// Keeps what the report needs of a process whose slot is about to be reused. Indexed by pid,
/// so the report comes out in pid order without sorting.
pub fn remember(p: &process::Process) {
    if let Some(r) = HISTORY.lock().get_mut(p.pid() as usize) {
        *r = Some(record_of(p));
    }
}

pub fn print() {
    let history = HISTORY.lock();
    let t = TASKS.lock();
    println!("--- process report ---------------------------------------------------------");
    println!("  pid  name             status             cpu ms   syscalls  preempted  yielded");
    for pid in 1..t.next_pid {
        let live = t.find_pid(pid).map(record_of);
        let Some(r) = live.or(history.get(pid as usize).copied().flatten()) else {
            continue;
        };
        let mut status = [0u8; 18];
        let status = describe(&r, &mut status);
        let us = time::cycles_to_ns(r.stats.cpu_cycles) / 1000;
        println!(
            "{:>5}  {:<16} {:<16} {:>6}.{:03} {:>10} {:>10} {:>8}",
            r.pid,
            r.name,
            status,
            us / 1000,
            us % 1000,
            r.stats.syscalls,
            r.stats.preempted,
            r.stats.yielded
        );
    }
    if t.next_pid as usize > MAX_RECORDS {
        println!(
            "  (pids {MAX_RECORDS} and up that were reaped are not listed: {} processes ran)",
            t.next_pid - 1
        );
    }
    let cpu = percpu::this();
    println!(
        "  context switches {}, timer interrupts {}, page faults {}, idle {} ms",
        cpu.switches.get(),
        crate::timer::interrupts(),
        cpu.page_faults.get(),
        time::cycles_to_ns(cpu.idle_cycles.get()) / 1_000_000
    );
    println!(
        "  memory: {} KiB free, kernel heap {} KiB",
        crate::memory::frame::FRAMES.lock().free_frames * 4,
        crate::memory::heap::mapped_bytes() / 1024
    );
}
fn describe<'a>(r: &Record, buf: &'a mut [u8; 18]) -> &'a str {
    use core::fmt::Write;
    struct W<'b>(&'b mut [u8], usize);
    impl Write for W<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let n = s.len().min(self.0.len() - self.1);
            self.0[self.1..self.1 + n].copy_from_slice(&s.as_bytes()[..n]);
            self.1 += n;
            Ok(())
        }
    }
    let mut w = W(buf, 0);
    let _ = match r.state {
        State::Zombie | State::Unused if r.wait_status & 0x7f != 0 => {
            write!(w, "killed ({})", process::shell_status(r.wait_status))
        }
        State::Zombie | State::Unused => write!(w, "exit {}", (r.wait_status >> 8) & 0xff),
        State::Running => write!(w, "running"),
        State::Ready | State::Embryo => write!(w, "ready"),
        State::Blocked(process::Wait::Sleep) => write!(w, "sleeping"),
        State::Blocked(process::Wait::Child) => write!(w, "waiting"),
        State::Blocked(process::Wait::Queue) => write!(w, "blocked"),
        State::Blocked(process::Wait::Signal) => write!(w, "pausing"),
        State::Blocked(process::Wait::Vfork) => write!(w, "vfork"),
        State::Blocked(process::Wait::Group) => write!(w, "dethread"),
        State::Stopped => write!(w, "stopped"),
    };
    let n = w.1;
    core::str::from_utf8(&buf[..n]).unwrap_or("?")
}
