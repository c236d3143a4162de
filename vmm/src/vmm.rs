//! Putting a VM together and running it: the boot path in order, each step in its own file.
//!
//!   vm.rs (KVM, irqchip, PIT, RAM) -> boot/loader.rs (kernel ELF) -> boot/pvh.rs (start_info,
//!   e820, cmdline, module) -> cpuid.rs, lapic.rs, boot/regs.rs (vCPU state) ->
//!   devices/ (COM1, exit port, the virtio console) -> vcpu.rs (KVM_RUN loop, own thread) ->
//!   event_loop.rs (main thread: vCPU end, timeout, stdin to COM1 or the virtio console).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use abi::machine::exit_status;
use kvm_ioctls::VcpuFd;
use log::{debug, info};
use vmm_sys_util::eventfd::EventFd;

use crate::boot::loader::{self, KernelImage, LoadedKernel};
use crate::boot::pvh::{self, Cmdline};
use crate::boot::regs;
use crate::devices::console_status::ConsoleStatus;
use crate::devices::{console_input::ConsoleInput, io_bus::IoBus, serial, virtio_console};
use crate::error::{ioctl, Error, Result};
use crate::event_loop::{self, LoopEnd};
use crate::exit_stats::ExitStats;
use crate::gdb::{self, Debugger, GdbAddr};
use crate::guest_stats::GuestCounts;
use crate::step_count::StepCounter;
use crate::terminal;
use crate::vcpu::{self, Vcpu, VcpuStop};
use crate::{cpuid, lapic, layout, vm::Vm};

/// Everything needed to boot one guest.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// Where the kernel came from (for messages) and its bytes.
    pub kernel_path: PathBuf,
    pub kernel: Vec<u8>,
    pub mem_mib: u64,
    pub cmdline: Cmdline,
    /// The PVH boot module (the program archive), if any.
    pub module: Option<Vec<u8>>,
    /// Seconds the guest may run.
    pub timeout: Option<f64>,
    /// Wait for gdb here before the first instruction (`--gdb`).
    pub gdb: Option<GdbAddr>,
    /// Print the VM exit statistics at the end (`--stats`, `--stats=json`).
    pub stats: Option<StatsFormat>,
    /// Write the kernel's events here as Chrome trace-event JSON (`--trace`); the kernel
    /// command line then has `trace=events`.
    pub trace: Option<PathBuf>,
    /// Draw the run as an SVG timeline here (`--timeline`); also adds `trace=events`.
    pub timeline: Option<PathBuf>,
    /// The part of the run the timeline draws (`--timeline-window`).
    pub timeline_window: crate::timeline::Window,
    /// Give the guest the virtio console (its `virtio_mmio.device=` word is then on `cmdline`;
    /// `--no-virtio-console` turns both off).
    pub virtio_console: bool,
}

/// How `--stats` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsFormat {
    Table,
    Json,
    /// The exit table alone: the kernel is not asked for its records.
    ExitsOnly,
}

impl StatsFormat {
    /// Whether the guest's counts are wanted too (they come from its event records).
    pub fn counts_the_guest(self) -> bool {
        self != StatsFormat::ExitsOnly
    }
}

/// Writes the EventFd when dropped: the vCPU thread's end reaches the event loop even if the
/// thread panics.
struct SignalOnDrop(EventFd);

impl Drop for SignalOnDrop {
    fn drop(&mut self) {
        let _ = self.0.write(1);
    }
}

/// A VM with the kernel, its boot information and one vCPU at the PVH entry, ready to run.
pub struct Booted {
    pub vm: Vm,
    pub vcpu: VcpuFd,
    pub kernel: LoadedKernel,
}

/// The boot path up to the first KVM_RUN, shared by `run` and the bench's bare KVM_RUN loop:
/// the VM and its RAM, the kernel's segments, start_info with `cmdline` and `module`, the
/// vCPU's CPUID, LAPIC and 32-bit entry state.
pub fn boot(
    kernel: &KernelImage,
    mem_mib: u64,
    cmdline: &Cmdline,
    module: Option<&[u8]>,
) -> Result<Booted> {
    let vm = Vm::new(mem_mib)?;
    let loaded = loader::load_kernel(kernel, &vm.memory, vm.mem_bytes)?;
    info!(
        "kernel loaded: PVH entry {:#x}, end {:#x}",
        loaded.entry, loaded.end
    );
    pvh::write_boot_info(&vm.memory, vm.mem_bytes, loaded.end, cmdline, module)?;
    let vcpu = vm.fd.create_vcpu(0).map_err(ioctl("KVM_CREATE_VCPU"))?;
    cpuid::setup_cpuid(&vm.kvm, &vcpu)?;
    lapic::setup_lint(&vcpu)?;
    regs::setup_pvh_entry_state(&vcpu, &vm.memory, loaded.entry, layout::START_INFO)?;
    Ok(Booted {
        vm,
        vcpu,
        kernel: loaded,
    })
}

/// Boots the guest and runs it to its end. Returns the status the guest wrote to the exit port.
pub fn run(config: VmConfig) -> Result<u8> {
    // Check everything the user gave before touching KVM, so a bad file is reported as such
    // (the command line was checked when it was made).
    let image = KernelImage::parse(&config.kernel_path, &config.kernel)?;
    let Booted {
        vm, vcpu: vcpu_fd, ..
    } = boot(
        &image,
        config.mem_mib,
        &config.cmdline,
        config.module.as_deref(),
    )?;

    let gdb_caps = match &config.gdb {
        Some(_) => Some(gdb::Caps::probe(&vm.fd)?),
        None => None,
    };

    // The host terminal in raw mode for the run (restored when `_raw` drops, or on any other
    // way out: terminal.rs); the guest then echoes and edits.
    let _raw = terminal::RawMode::enter();
    let console = Arc::new(ConsoleStatus::new(_raw.is_some(), terminal::window_size()));
    let com1 = serial::create_com1(&vm.fd)?;
    let internal = |what: &str, e: std::io::Error| Error::Internal(format!("{what}: {e}"));
    let quit = EventFd::new(libc::EFD_NONBLOCK).map_err(|e| internal("eventfd", e))?;
    let virtio = if config.virtio_console {
        Some(virtio_console::create(
            &vm.fd,
            vm.memory.clone(),
            com1.serial.clone(),
            console.winsize(),
        )?)
    } else {
        None
    };
    let mut console_input = ConsoleInput::new(
        com1.serial.clone(),
        com1.fifo_drained,
        console.clone(),
        com1.irq,
        quit.try_clone().map_err(|e| internal("eventfd", e))?,
    )
    .map_err(|e| internal("console input", e))?;
    let mut io = IoBus::new(com1.serial, console);
    if let Some(v) = virtio {
        console_input = console_input.with_virtio(v.device.clone(), v.rx_kick);
        io.virtio = Some(v.device);
    }
    // `--stats` counts the guest's work from the same records.
    let trace = (config.trace.is_some()
        || config.timeline.is_some()
        || config.stats.is_some_and(|s| s.counts_the_guest()))
    .then(|| {
        let with_exits = config.trace.is_some() || config.timeline.is_some();
        Arc::new(crate::trace_json::TraceSink::new(
            vm.memory.clone(),
            with_exits,
        ))
    });
    io.trace = trace.clone();

    let vcpu_end =
        EventFd::new(libc::EFD_NONBLOCK).map_err(|e| Error::Internal(format!("eventfd: {e}")))?;
    let vcpu_end_signal = SignalOnDrop(
        vcpu_end
            .try_clone()
            .map_err(|e| Error::Internal(format!("eventfd: {e}")))?,
    );
    let mut counter = StepCounter::new(&vm.kvm, vm.memory.clone());
    // The guest's RAM must stay mapped while the vCPU runs: the thread holds a handle to it.
    let memory = vm.memory.clone();
    let gdb_addr = config.gdb.clone();
    let stats = config.stats.map(|_| Arc::new(Mutex::new(ExitStats::new())));
    // KVM's own counters of this vCPU, read from the main thread at the end.
    let kvm_stats = config
        .stats
        .map(|_| crate::kvm_stats::KvmStats::open(&vcpu_fd));
    let vcpu_stats = stats.clone();
    let vcpu_thread = thread::Builder::new()
        .name("vcpu0".into())
        .spawn(move || {
            let _signal = vcpu_end_signal;
            // gdb is accepted on this thread: Ctrl-C from it is a signal to this thread.
            let mut vcpu = match (gdb_addr, gdb_caps) {
                (Some(addr), Some(caps)) => Vcpu::Debugged(Box::new(Debugger::attach(
                    &addr,
                    vcpu_fd,
                    memory.clone(),
                    caps,
                )?)),
                _ => Vcpu::Plain(vcpu_fd),
            };
            let _memory = memory;
            let result =
                vcpu::run_vcpu_exit_loop(&mut vcpu, &io, &mut counter, vcpu_stats.as_deref());
            debug!(
                "accesses to no device: {} port, {} MMIO",
                io.unhandled_pio.load(std::sync::atomic::Ordering::Relaxed),
                io.unhandled_mmio.load(std::sync::atomic::Ordering::Relaxed)
            );
            if let Some(v) = &io.virtio {
                let v = v.lock().unwrap_or_else(|e| e.into_inner());
                debug!(
                    "virtio-console: queues broken by the guest {} time(s)",
                    v.transport().broken
                );
            }
            result
        })
        .map_err(|e| Error::Internal(format!("cannot start the vCPU thread: {e}")))?;

    let timeout = config.timeout.map(Duration::from_secs_f64);
    let end = event_loop::wait_for_guest(vcpu_end, quit, timeout, vec![Box::new(console_input)]);
    // On every way out, a timeout (the vCPU still in KVM_RUN) and a crash included: those are
    // the runs whose exits are most worth seeing.
    if let Some(sink) = &trace {
        // What the kernel recorded since its last flush, however the run ended.
        sink.drain();
    }
    if let Some(stats) = &stats {
        let mut s = crate::exit_stats::lock(stats);
        s.finish();
        let guest = trace.as_ref().map_or_else(GuestCounts::default, |sink| {
            GuestCounts::from_records(&sink.records(), sink.dropped())
        });
        let kvm = kvm_stats
            .as_ref()
            .map_or_else(String::new, crate::kvm_stats::report);
        match config.stats {
            Some(StatsFormat::Json) => {
                let mut v = s.json();
                v["guest"] = guest.json();
                if let Some(k) = &kvm_stats {
                    v["kvm"] = crate::kvm_stats::json(k);
                }
                eprintln!("{v}");
            }
            Some(StatsFormat::ExitsOnly) => eprint!("{}{kvm}", s.report()),
            _ => eprint!("{}{kvm}{}", s.report(), guest.report()),
        }
    }
    if let (Some(sink), Some(path)) = (&trace, &config.timeline) {
        let picture =
            crate::timeline::draw(&sink.records(), &sink.vmm_spans(), config.timeline_window);
        let html = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
        let written = if html {
            std::fs::write(path, crate::timeline::html(&picture))
        } else {
            svg::save(path, &picture)
        };
        if let Err(e) = written {
            eprintln!("vmm: cannot write the timeline to {}: {e}", path.display());
        }
    }
    if let Some(sink) = &trace {
        if let Some(note) = sink.limit_note() {
            eprintln!("vmm: {note}");
        }
    }
    if let (Some(sink), Some(path)) = (&trace, &config.trace) {
        let write = std::fs::File::create(path).and_then(|f| {
            let mut w = std::io::BufWriter::new(f);
            serde_json::to_writer(&mut w, &sink.to_json())?;
            std::io::Write::flush(&mut w)
        });
        if let Err(e) = write {
            eprintln!("vmm: cannot write the trace to {}: {e}", path.display());
        }
    }
    match end? {
        // The vCPU thread is still in KVM_RUN; the caller ends the process, which ends it.
        LoopEnd::TimedOut => Err(Error::Timeout(config.timeout.unwrap_or_default())),
        LoopEnd::Quit => Err(Error::Quit),
        LoopEnd::VcpuExited => match vcpu_thread.join() {
            Ok(Ok(VcpuStop::PoweredOff(code))) => Ok(code),
            Ok(Ok(VcpuStop::Killed)) => {
                eprintln!("vmm: gdb killed the guest");
                Ok(exit_status::killed_by(abi::signal::SIGKILL) as u8)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Internal("the vCPU thread panicked".into())),
        },
    }
}
