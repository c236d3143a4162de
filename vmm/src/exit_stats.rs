//! `--stats`: what the VMM saw of the run. Every KVM_RUN call is timed, and each exit that
//! reaches userspace is counted by kind and device with the time the VMM spent on it before
//! entering the guest again. With the in-kernel irqchip, HLT and interrupt exits stay inside
//! KVM and are not among them. Off, the loop pays one `Option` test per exit. `--stats=json`
//! prints the same as one line of JSON.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kvm_ioctls::VcpuExit;

use abi::machine::port;

/// One kind of exit: what happened, and the port for port I/O or the address for MMIO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitKind {
    PortOut(u16),
    PortIn(u16),
    MmioRead(u64),
    MmioWrite(u64),
    Hlt,
    Debug,
    Shutdown,
    FailEntry,
    InternalError,
    /// KVM_RUN returned EINTR or EAGAIN: a signal or a kick, not the guest.
    Interrupted,
    Other,
}

impl ExitKind {
    pub fn of(exit: &VcpuExit) -> ExitKind {
        match exit {
            VcpuExit::IoOut(p, _) => ExitKind::PortOut(*p),
            VcpuExit::IoIn(p, _) => ExitKind::PortIn(*p),
            VcpuExit::MmioRead(a, _) => ExitKind::MmioRead(mmio_key(*a)),
            VcpuExit::MmioWrite(a, _) => ExitKind::MmioWrite(mmio_key(*a)),
            VcpuExit::Hlt => ExitKind::Hlt,
            VcpuExit::Debug(_) => ExitKind::Debug,
            VcpuExit::Shutdown => ExitKind::Shutdown,
            VcpuExit::FailEntry(..) => ExitKind::FailEntry,
            VcpuExit::InternalError => ExitKind::InternalError,
            _ => ExitKind::Other,
        }
    }

    /// "port out 0x3f8 COM1", "MMIO write 0xd0000050 virtio-console notify", ...
    pub fn name(&self) -> String {
        match self {
            ExitKind::PortOut(p) => format!("port out {p:#x} {}", device_name(*p)),
            ExitKind::PortIn(p) => format!("port in {p:#x} {}", device_name(*p)),
            ExitKind::MmioRead(NO_DEVICE) => "MMIO read, no device there".into(),
            ExitKind::MmioWrite(NO_DEVICE) => "MMIO write, no device there".into(),
            ExitKind::MmioRead(a) => format!("MMIO read {a:#x} {}", mmio_name(*a)),
            ExitKind::MmioWrite(a) => format!("MMIO write {a:#x} {}", mmio_name(*a)),
            ExitKind::Hlt => "HLT".into(),
            ExitKind::Debug => "debug".into(),
            ExitKind::Shutdown => "shutdown (triple fault)".into(),
            ExitKind::FailEntry => "entry failure".into(),
            ExitKind::InternalError => "internal error".into(),
            ExitKind::Interrupted => "interrupted (EINTR/EAGAIN)".into(),
            ExitKind::Other => "other".into(),
        }
    }
}

/// The key of every MMIO exit outside a device's window: one row for all of them, so a guest
/// that touches many addresses cannot grow the table (ports are bounded by their 16 bits).
const NO_DEVICE: u64 = u64::MAX;

fn mmio_key(a: u64) -> u64 {
    use abi::virtio::{CONSOLE_MMIO_BASE, CONSOLE_MMIO_SIZE};
    match a.checked_sub(CONSOLE_MMIO_BASE) {
        Some(off) if off < CONSOLE_MMIO_SIZE => a,
        _ => NO_DEVICE,
    }
}

/// The device (and, for the virtio console, the register) behind an MMIO address.
pub fn mmio_name(a: u64) -> String {
    use abi::virtio::{mmio, CONSOLE_MMIO_BASE, CONSOLE_MMIO_SIZE};
    let Some(off) = a
        .checked_sub(CONSOLE_MMIO_BASE)
        .filter(|&o| o < CONSOLE_MMIO_SIZE)
    else {
        return "none".into();
    };
    let reg = match off {
        mmio::QUEUE_NOTIFY => "notify",
        mmio::INTERRUPT_STATUS => "interrupt status",
        mmio::INTERRUPT_ACK => "interrupt ack",
        mmio::STATUS => "status",
        mmio::CONFIG_GENERATION => "config generation",
        o if o >= mmio::CONFIG => "config",
        _ => "set-up",
    };
    format!("virtio-console {reg}")
}

/// The device behind a port (devices/io_bus.rs dispatches the same way).
pub fn device_name(p: u16) -> &'static str {
    match p {
        _ if (port::COM1..port::COM1 + 8).contains(&p) => "COM1",
        port::EXIT => "exit",
        port::BENCH => "bench",
        port::CONSOLE_STATUS => "console-status",
        port::ENTROPY => "entropy",
        abi::rtc::INDEX_PORT => "rtc-index",
        abi::rtc::DATA_PORT => "rtc-data",
        port::CONSOLE_WINSIZE => "console-winsize",
        port::TRACE_BUFFER => "trace-buffer",
        port::TRACE_FLUSH => "trace-flush",
        _ => "none",
    }
}

/// The stats even if a thread panicked holding them: counts are still worth printing.
pub fn lock(s: &Mutex<ExitStats>) -> MutexGuard<'_, ExitStats> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub count: u64,
    /// From KVM_RUN's return to the next KVM_RUN (or the loop's end).
    pub in_vmm: Duration,
}

/// The counts for one run, filled by the vCPU loop.
#[derive(Debug)]
pub struct ExitStats {
    started: Instant,
    pub kvm_runs: u64,
    pub in_guest: Duration,
    pub exits: BTreeMap<ExitKind, Tally>,
    /// The exit being handled and when KVM_RUN returned with it.
    pending: Option<(ExitKind, Instant)>,
}

impl Default for ExitStats {
    fn default() -> Self {
        ExitStats::new()
    }
}

impl ExitStats {
    pub fn new() -> ExitStats {
        ExitStats {
            started: Instant::now(),
            kvm_runs: 0,
            in_guest: Duration::ZERO,
            exits: BTreeMap::new(),
            pending: None,
        }
    }

    /// Just before KVM_RUN: the previous exit's handling ends here.
    pub fn entering(&mut self) -> Instant {
        let now = Instant::now();
        self.settle(now);
        now
    }

    /// KVM_RUN, entered at `entered`, came back with `kind`.
    pub fn exited(&mut self, entered: Instant, kind: ExitKind) {
        let now = Instant::now();
        self.kvm_runs += 1;
        self.in_guest += now - entered;
        self.exits.entry(kind).or_default().count += 1;
        self.pending = Some((kind, now));
    }

    /// The loop ended (or the run is being reported while the vCPU is still in it).
    pub fn finish(&mut self) {
        self.settle(Instant::now());
    }

    fn settle(&mut self, now: Instant) {
        if let Some((kind, since)) = self.pending.take() {
            self.exits.entry(kind).or_default().in_vmm += now - since;
        }
    }

    /// The same as one JSON object (`--stats=json`), times in nanoseconds.
    pub fn json(&self) -> serde_json::Value {
        let exits: Vec<serde_json::Value> = self
            .exits
            .iter()
            .map(|(kind, t)| {
                let port = match kind {
                    ExitKind::PortOut(p) | ExitKind::PortIn(p) => Some(*p),
                    _ => None,
                };
                serde_json::json!({
                    "exit": kind.name(),
                    "port": port,
                    "device": port.map(device_name),
                    "count": t.count,
                    "vmm_ns": t.in_vmm.as_nanos() as u64,
                })
            })
            .collect();
        serde_json::json!({
            "run_ns": self.started.elapsed().as_nanos() as u64,
            "kvm_runs": self.kvm_runs,
            "in_guest_ns": self.in_guest.as_nanos() as u64,
            "exits": exits,
            "not_counted": "HLT and interrupt exits (they stay in KVM: in-kernel irqchip)",
        })
    }

    /// The table printed at exit.
    pub fn report(&self) -> String {
        let run = self.started.elapsed();
        let in_vmm: Duration = self.exits.values().map(|t| t.in_vmm).sum();
        let share = |d: Duration| 100.0 * d.as_secs_f64() / run.as_secs_f64().max(1e-9);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "vmm stats: run {:.3} s, {} KVM_RUN calls, in the guest {:.3} s ({:.1}%), \
             handling exits {:.3} s ({:.1}%)",
            run.as_secs_f64(),
            self.kvm_runs,
            self.in_guest.as_secs_f64(),
            share(self.in_guest),
            in_vmm.as_secs_f64(),
            share(in_vmm),
        );
        let _ = writeln!(
            out,
            "vmm stats: {:<34} {:>9} {:>11} {:>9} {:>7}",
            "exit", "count", "total ms", "mean µs", "share"
        );
        let mut rows: Vec<_> = self.exits.iter().collect();
        rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        for (kind, t) in rows {
            let mean_us = t.in_vmm.as_secs_f64() * 1e6 / t.count.max(1) as f64;
            let _ = writeln!(
                out,
                "vmm stats: {:<34} {:>9} {:>11.3} {:>9.2} {:>6.2}%",
                kind.name(),
                t.count,
                t.in_vmm.as_secs_f64() * 1e3,
                mean_us,
                share(t.in_vmm),
            );
        }
        let _ = writeln!(
            out,
            "vmm stats: not seen here: HLT and interrupt exits, which stay in KVM (in-kernel irqchip; \
             KVM's own counts follow where the host has them)"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmio_exits_are_named_by_device_and_register() {
        assert_eq!(
            ExitKind::MmioWrite(0xd000_0050).name(),
            "MMIO write 0xd0000050 virtio-console notify"
        );
        assert_eq!(
            ExitKind::MmioRead(0xd000_0102).name(),
            "MMIO read 0xd0000102 virtio-console config"
        );
        assert_eq!(
            ExitKind::MmioRead(0xfee0_0000).name(),
            "MMIO read 0xfee00000 none"
        );
    }

    #[test]
    fn each_exit_is_counted_once_with_its_handling_time() {
        let mut s = ExitStats::new();
        for kind in [
            ExitKind::PortOut(0x3f8),
            ExitKind::PortOut(0x3f8),
            ExitKind::PortIn(0xf6),
        ] {
            let t = s.entering();
            s.exited(t, kind);
        }
        s.finish();
        assert_eq!(s.kvm_runs, 3);
        assert_eq!(s.exits[&ExitKind::PortOut(0x3f8)].count, 2);
        assert_eq!(s.exits[&ExitKind::PortIn(0xf6)].count, 1);
        let report = s.report();
        assert!(report.contains("port out 0x3f8 COM1"), "{report}");
        assert!(report.contains("port in 0xf6 console-status"), "{report}");
        assert!(report.contains("3 KVM_RUN calls"), "{report}");
    }
}
