//! `run_vcpu_exit_loop`: the one KVM_RUN loop that sees every VM exit and sends it to its
//! device (devices/io_bus.rs). A VM-exit trace or exit statistics hook in here. With `--gdb`,
//! the debugger (gdb/) sees the guest stop at its first instruction, every KVM_EXIT_DEBUG, every
//! interrupted KVM_RUN (Ctrl-C in gdb), and the guest's end. The bench port's instruction
//! counter (step_count.rs) gets its commands, its reads and, while it steps, the debug exits.

use kvm_bindings::kvm_debug_exit_arch;
use kvm_ioctls::{VcpuExit, VcpuFd};
use log::{debug, info, warn};
use std::sync::Mutex;

use crate::devices::bench_port::BENCH_PORT;
use crate::devices::io_bus::{IoBus, WriteEffect};
use crate::error::{Error, Result};
use crate::exit_stats::{lock, ExitKind, ExitStats};
use crate::gdb::{Debugger, Killed};
use crate::step_count::StepCounter;

/// Why the loop stopped when the guest did not crash.
#[derive(Debug, PartialEq, Eq)]
pub enum VcpuStop {
    /// The guest wrote this status to the exit port.
    PoweredOff(u8),
    /// gdb's `kill`.
    Killed,
}

/// The vCPU the loop runs: on its own, or owned by a gdb session, which needs it between
/// exits (registers, memory, breakpoints).
pub enum Vcpu {
    Plain(VcpuFd),
    Debugged(Box<Debugger>),
}

impl Vcpu {
    fn fd(&mut self) -> &mut VcpuFd {
        match self {
            Vcpu::Plain(fd) => fd,
            Vcpu::Debugged(d) => d.vcpu(),
        }
    }

    fn debugger(&mut self) -> Option<&mut Debugger> {
        match self {
            Vcpu::Plain(_) => None,
            Vcpu::Debugged(d) => Some(d),
        }
    }
}

/// What an exit asked for once its borrow of the vCPU's kvm_run area has ended.
enum Next {
    Resume,
    Stop(VcpuStop),
    TripleFault,
    FailEntry(u64, u32),
    InternalError,
    Debug(kvm_debug_exit_arch),
    Interrupted,
    /// A command byte for the step counter (bench port).
    CountCommand(u8),
    /// The guest read the step counter while it was stepping (the end of a span, or a read
    /// too early).
    CountCancel,
}

const INTERNAL_ERROR_NAMES: [&str; 5] = [
    "",
    "instruction emulation failed",
    "exception while delivering an exception",
    "exception while delivering an event",
    "unexpected exit reason",
];

/// Runs the guest until it powers off or crashes (or gdb kills it). `counter` serves the
/// bench port's instruction-counter commands; `stats` (`--stats`), when given, sees every
/// KVM_RUN and exit.
pub fn run_vcpu_exit_loop(
    vcpu: &mut Vcpu,
    io: &IoBus,
    counter: &mut StepCounter,
    stats: Option<&Mutex<ExitStats>>,
) -> Result<VcpuStop> {
    let result = exit_loop(vcpu, io, counter, stats);
    if let Some(s) = stats {
        lock(s).finish();
    }
    if let Some(t) = io.trace.as_deref() {
        t.finish();
    }
    result
}

fn exit_loop(
    vcpu: &mut Vcpu,
    io: &IoBus,
    counter: &mut StepCounter,
    stats: Option<&Mutex<ExitStats>>,
) -> Result<VcpuStop> {
    if let Some(gdb) = vcpu.debugger() {
        if let Some(Killed) = gdb.first_stop()? {
            return Ok(VcpuStop::Killed);
        }
    }
    // The exits are logged only for a trace or a timeline.
    let trace = io.trace.as_deref().filter(|t| t.with_exits);
    loop {
        let entered = stats.map(|s| lock(s).entering());
        if let Some(t) = trace {
            t.entering();
        }
        let run = vcpu.fd().run();
        if stats.is_some() || trace.is_some() {
            let kind = match &run {
                Ok(exit) => ExitKind::of(exit),
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    ExitKind::Interrupted
                }
                Err(_) => ExitKind::Other,
            };
            if let (Some(s), Some(entered)) = (stats, entered) {
                lock(s).exited(entered, kind);
            }
            if let Some(t) = trace {
                t.exited(kind);
            }
        }
        let next = match run {
            Ok(exit) => match exit {
                VcpuExit::IoOut(BENCH_PORT, &[cmd, ..]) if cmd != 0 => Next::CountCommand(cmd),
                VcpuExit::IoIn(BENCH_PORT, data) if data.len() == 4 => {
                    if counter.read(data) {
                        Next::CountCancel
                    } else {
                        Next::Resume
                    }
                }
                VcpuExit::IoOut(port, data) => match io.pio_write(port, data) {
                    WriteEffect::PowerOff(code) => Next::Stop(VcpuStop::PoweredOff(code)),
                    WriteEffect::None => Next::Resume,
                },
                VcpuExit::IoIn(port, data) => {
                    io.pio_read(port, data);
                    Next::Resume
                }
                VcpuExit::MmioRead(addr, data) => {
                    io.mmio_read(addr, data);
                    Next::Resume
                }
                VcpuExit::MmioWrite(addr, data) => match io.mmio_write(addr, data) {
                    WriteEffect::PowerOff(code) => Next::Stop(VcpuStop::PoweredOff(code)),
                    WriteEffect::None => Next::Resume,
                },
                // With the in-kernel LAPIC, KVM handles HLT itself; if it reports one anyway,
                // entering again waits inside KVM for the next interrupt.
                VcpuExit::Hlt => {
                    debug!("KVM_EXIT_HLT");
                    Next::Resume
                }
                VcpuExit::Shutdown => Next::TripleFault,
                VcpuExit::FailEntry(reason, cpu) => Next::FailEntry(reason, cpu),
                VcpuExit::InternalError => Next::InternalError,
                // A breakpoint, watchpoint or single step (gdb's, or the step counter's).
                VcpuExit::Debug(info) => Next::Debug(info),
                other => {
                    warn!("unexpected VM exit {other:?}; resuming the guest");
                    Next::Resume
                }
            },
            // A signal interrupted KVM_RUN (EINTR; with --gdb, gdb sent something) or the vCPU
            // was kicked (EAGAIN): go again.
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => Next::Interrupted,
            Err(e) => return Err(Error::KvmIoctl("KVM_RUN", e)),
        };
        let gdb_says = match next {
            Next::Resume => {
                if let Some(gdb) = vcpu.debugger() {
                    gdb.exit_seen()?;
                }
                None
            }
            Next::Debug(_) if counter.active() => {
                counter.step(vcpu.fd())?;
                None
            }
            Next::Debug(info) => match vcpu.debugger() {
                Some(gdb) => gdb.debug_exit(&info)?.map(|Killed| VcpuStop::Killed),
                None => None,
            },
            // gdb owns the vCPU's debug state: the counter would take it from under gdb.
            Next::CountCommand(_) if vcpu.debugger().is_some() => {
                counter.refuse("gdb is attached");
                None
            }
            Next::CountCommand(cmd) => {
                counter.command(vcpu.fd(), cmd)?;
                None
            }
            Next::CountCancel => {
                counter.end(vcpu.fd())?;
                None
            }
            Next::Interrupted => match vcpu.debugger() {
                Some(gdb) => gdb.interrupted()?.map(|Killed| VcpuStop::Killed),
                None => None,
            },
            Next::Stop(stop) => {
                if let (VcpuStop::PoweredOff(code), Some(gdb)) = (&stop, vcpu.debugger()) {
                    gdb.guest_exited(*code);
                }
                return Ok(stop);
            }
            crash => {
                let err = crash_error(crash, vcpu.fd());
                if let Some(gdb) = vcpu.debugger() {
                    gdb.guest_died();
                }
                return Err(err);
            }
        };
        if let Some(stop) = gdb_says {
            return Ok(stop);
        }
    }
}

/// The error for an exit that ends the guest.
fn crash_error(next: Next, vcpu: &mut VcpuFd) -> Error {
    match next {
        Next::TripleFault => Error::GuestCrash(format!(
            "triple fault (KVM_EXIT_SHUTDOWN) {}",
            describe_state(vcpu)
        )),
        Next::FailEntry(reason, cpu) => Error::GuestCrash(format!(
            "KVM_EXIT_FAIL_ENTRY: hardware entry failure reason {reason:#x} on cpu {cpu} {}",
            describe_state(vcpu)
        )),
        // Next::InternalError, the only other exit that ends the guest.
        _ => {
            let run = vcpu.get_kvm_run();
            // SAFETY: exit_reason is KVM_EXIT_INTERNAL_ERROR, for which KVM fills the
            // `internal` member of the union; all its fields are plain integers.
            let internal = unsafe { run.__bindgen_anon_1.internal };
            let name = INTERNAL_ERROR_NAMES
                .get(internal.suberror as usize)
                .copied()
                .unwrap_or("unknown");
            let n = (internal.ndata as usize).min(internal.data.len());
            Error::GuestCrash(format!(
                "KVM_EXIT_INTERNAL_ERROR: suberror {} ({name}), {} {}",
                internal.suberror,
                describe_internal_data(internal.suberror, &internal.data[..n]),
                describe_state(vcpu)
            ))
        }
    }
}

/// KVM_INTERNAL_ERROR_EMULATION with the instruction-bytes flag: data[0] = flags, then
/// insn_size (one byte) and up to 15 instruction bytes. Naming the instruction that KVM could
/// not emulate is the most useful fact here (on kvm_pvm: xsave, xgetbv, rdtscp, stac...).
fn describe_internal_data(suberror: u32, data: &[u64]) -> String {
    const EMULATION: u32 = 1;
    const FLAG_INSTRUCTION_BYTES: u64 = 1;
    if suberror == EMULATION && data.len() >= 2 && data[0] & FLAG_INSTRUCTION_BYTES != 0 {
        let bytes: Vec<u8> = data[1..].iter().flat_map(|d| d.to_le_bytes()).collect();
        let len = (bytes[0] as usize).min(bytes.len() - 1);
        let insn: Vec<String> = bytes[1..1 + len]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        return format!("instruction bytes {}", insn.join(" "));
    }
    let words: Vec<String> = data.iter().map(|d| format!("{d:#x}")).collect();
    format!("data [{}]", words.join(", "))
}

/// The registers that say where a dead guest was, on one line; the full set at info level.
fn describe_state(vcpu: &VcpuFd) -> String {
    let (regs, sregs) = match (vcpu.get_regs(), vcpu.get_sregs()) {
        (Ok(r), Ok(s)) => (r, s),
        (r, s) => return format!("(registers unavailable: {:?} {:?})", r.err(), s.err()),
    };
    info!("guest registers at the crash: {regs:x?}");
    info!("guest special registers at the crash: {sregs:x?}");
    format!(
        "at rip={:#x} cs={:#x} rsp={:#x} rflags={:#x} cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x}",
        regs.rip,
        sregs.cs.selector,
        regs.rsp,
        regs.rflags,
        sregs.cr0,
        sregs.cr2,
        sregs.cr3,
        sregs.cr4,
        sregs.efer
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulation_failure_names_the_instruction() {
        // As kvm_pvm reported a ring-0 `stac`: flags 1, size 15, bytes 0f 01 cb 48 89 f7 ...
        let data = [0x1, 0x48f7_8948_cb01_0f0f, 0x0001_9af8_15ff_ce89];
        let text = describe_internal_data(1, &data);
        assert!(
            text.starts_with("instruction bytes 0f 01 cb 48 89 f7"),
            "{text}"
        );
        assert_eq!(
            describe_internal_data(3, &[0x10, 0x20]),
            "data [0x10, 0x20]"
        );
    }
}
