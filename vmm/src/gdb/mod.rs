//! `vmm --gdb`: gdb's remote protocol (served by the `gdbstub` crate) for the guest's one vCPU.
//!
//! The guest stops before its first instruction and waits for gdb. From then on gdb is in
//! control whenever the guest is stopped: `serve` answers its packets until it resumes the
//! guest. While the guest runs, the vCPU loop (vcpu.rs) comes back here for three things only:
//! a KVM_EXIT_DEBUG (a breakpoint, watchpoint or step: `debug_exit`), an interrupted KVM_RUN
//! (gdb sent something, normally Ctrl-C: `interrupted`, see kick.rs), and the guest's end
//! (`guest_exited`, `guest_died`), which gdb is told about.
//!
//! - `target.rs`: gdbstub's Target (registers, memory, breakpoints, resume) over KVM;
//! - `arch.rs`: the register set and target description (x86-64 + fs_base/gs_base + CRs);
//! - `regs.rs`, `memory.rs`, `breakpoints.rs`: KVM registers, virtual memory, debug registers;
//! - `conn.rs`: the TCP or Unix socket; `kick.rs`: interrupting KVM_RUN for Ctrl-C.
//!
//! docs/gdb.md says what works on kvm_pvm and what we measured.

mod arch;
mod breakpoints;
mod conn;
mod kick;
mod memory;
mod pvm;
mod regs;
mod target;

use gdbstub::common::Signal;
use gdbstub::conn::Connection;
use gdbstub::stub::state_machine::GdbStubStateMachine;
use gdbstub::stub::{DisconnectReason, GdbStub, GdbStubError, SingleThreadStopReason};
use kvm_bindings::{kvm_debug_exit_arch, KVM_CAP_SET_GUEST_DEBUG2, KVM_GUESTDBG_BLOCKIRQ};
use kvm_ioctls::{Cap, VcpuFd, VmFd};
use log::{info, warn};
use vm_memory::GuestMemoryMmap;

pub use conn::GdbAddr;
use conn::GdbConnection;
use kick::Kick;
use target::{Decision, GdbTarget};

use crate::error::{Error, Result};

pub use crate::error::GdbError;

/// gdb ended the guest (`kill`): the vCPU loop stops with `VcpuStop::Killed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Killed;

/// What this KVM's guest debugging can do (probed before the vCPU runs).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// int3 is intercepted (KVM_GUESTDBG_USE_SW_BP); else `break` uses debug registers.
    pub sw_bp: bool,
    /// kvm_pvm, whose guest debugging works in ring 0 only and without data breakpoints:
    /// pvm.rs does the rest another way.
    pub pvm: bool,
    /// Interrupts can be held off during a single step (KVM_GUESTDBG_BLOCKIRQ).
    pub block_irq: bool,
}

impl Caps {
    pub fn probe(vm: &VmFd) -> std::result::Result<Caps, GdbError> {
        if !vm.check_extension(Cap::SetGuestDebug) {
            return Err(GdbError::NoGuestDebug);
        }
        // KVM_CAP_SET_GUEST_DEBUG2 answers with the control flags this KVM accepts.
        let flags = vm
            .check_extension_raw(KVM_CAP_SET_GUEST_DEBUG2.into())
            .max(0) as u32;
        // Nothing in KVM's API tells kvm_pvm apart; its module does (docs/gdb.md).
        let pvm = std::path::Path::new("/sys/module/kvm_pvm").exists();
        let caps = Caps {
            sw_bp: !pvm,
            pvm,
            block_irq: flags & KVM_GUESTDBG_BLOCKIRQ != 0,
        };
        info!("gdb: KVM guest debug flags {flags:#x}, {caps:?}");
        Ok(caps)
    }
}

type Machine = GdbStubStateMachine<'static, GdbTarget, GdbConnection>;
type StubError = GdbStubError<Error, std::io::Error>;

/// A gdb session and the vCPU it debugs (it owns the vCPU: it reads its registers and memory
/// whenever gdb asks, between exits).
pub struct Debugger {
    // Field order is drop order: the kick (which points into the vCPU's kvm_run area) goes
    // before the connection and the vCPU.
    kick: Option<Kick>,
    /// None once gdb has detached or gone away: the guest runs on, undebugged.
    machine: Option<Machine>,
    target: GdbTarget,
}

impl Debugger {
    /// Waits for gdb at `addr`. Runs on the vCPU thread (Ctrl-C signals go to the caller).
    pub fn attach(
        addr: &GdbAddr,
        mut vcpu: VcpuFd,
        memory: GuestMemoryMmap,
        caps: Caps,
    ) -> Result<Debugger> {
        let conn = conn::accept(addr)?;
        let kick = Kick::arm(&mut vcpu, conn.raw_fd())?;
        let mut target = GdbTarget::new(vcpu, memory, caps);
        let machine = GdbStub::new(conn)
            .run_state_machine(&mut target)
            .map_err(|e| Error::Internal(format!("gdb session: {e}")))?;
        info!("gdb connected");
        Ok(Debugger {
            kick: Some(kick),
            machine: Some(machine),
            target,
        })
    }

    pub fn vcpu(&mut self) -> &mut VcpuFd {
        &mut self.target.vcpu
    }

    /// Before the first instruction: gdb is in control until it resumes the guest.
    pub fn first_stop(&mut self) -> Result<Option<Killed>> {
        self.serve()
    }

    /// A KVM_EXIT_DEBUG.
    pub fn debug_exit(&mut self, info: &kvm_debug_exit_arch) -> Result<Option<Killed>> {
        let Some(machine) = self.machine.take() else {
            return Ok(None);
        };
        match (self.target.classify(info)?, machine) {
            (Decision::Stop(reason), GdbStubStateMachine::Running(m)) => {
                let next = m.report_stop(&mut self.target, reason);
                self.settle(next)?;
                self.serve()
            }
            (_, machine) => {
                self.machine = Some(machine);
                self.target.prepare_resume()?;
                Ok(None)
            }
        }
    }

    /// Any other VM exit, with the guest running on.
    pub fn exit_seen(&mut self) -> Result<()> {
        if self.machine.is_some() {
            self.target.exit_seen()?;
        }
        Ok(())
    }

    /// KVM_RUN returned EINTR: gdb sent something while the guest ran (Ctrl-C).
    pub fn interrupted(&mut self) -> Result<Option<Killed>> {
        self.target.vcpu.set_kvm_immediate_exit(0);
        self.take_input()?;
        self.serve()
    }

    /// The guest powered off: gdb hears the exit status (a `W` packet).
    pub fn guest_exited(&mut self, code: u8) {
        if let Some(GdbStubStateMachine::Running(m)) = self.machine.take() {
            let _ = m.report_stop(&mut self.target, SingleThreadStopReason::Exited(code));
        }
    }

    /// The guest crashed (a triple fault, a failed entry): gdb sees it stopped with SIGSEGV
    /// and can look at its registers and memory; when it tries to resume it, the guest is gone.
    pub fn guest_died(&mut self) {
        if let Some(GdbStubStateMachine::Running(m)) = self.machine.take() {
            let next = m.report_stop(
                &mut self.target,
                SingleThreadStopReason::Signal(Signal::SIGSEGV),
            );
            if self.settle(next).is_ok() && self.serve().is_ok() {
                if let Some(GdbStubStateMachine::Running(m)) = self.machine.take() {
                    let reason = SingleThreadStopReason::Terminated(Signal::SIGSEGV);
                    let _ = m.report_stop(&mut self.target, reason);
                }
            }
        }
    }

    /// gdb is in control: answers its packets until it resumes the guest (Ok(None)) or kills
    /// it (Ok(Some)).
    fn serve(&mut self) -> Result<Option<Killed>> {
        loop {
            match self.machine.take() {
                None => return Ok(None),
                Some(GdbStubStateMachine::Idle(mut m)) => match m.borrow_conn().read_byte() {
                    Ok(Some(byte)) => {
                        let next = m.incoming_data(&mut self.target, byte);
                        self.settle(next)?;
                    }
                    Ok(None) => self.lost("gdb closed the connection")?,
                    Err(e) => self.lost(&format!("reading from gdb failed: {e}"))?,
                },
                Some(GdbStubStateMachine::Running(m)) => {
                    // gdb resumed the guest. Clear the kick flag before looking for input, so
                    // that a byte arriving after the look still stops KVM_RUN.
                    self.machine = Some(GdbStubStateMachine::Running(m));
                    self.target.prepare_resume()?;
                    self.target.vcpu.set_kvm_immediate_exit(0);
                    if !self.take_input()? {
                        return Ok(None);
                    }
                }
                Some(GdbStubStateMachine::Disconnected(m)) => match m.get_reason() {
                    DisconnectReason::Kill => {
                        info!("gdb killed the guest");
                        return Ok(Some(Killed));
                    }
                    DisconnectReason::Disconnect => {
                        info!("gdb detached: the guest runs on");
                        self.end_session()?;
                    }
                    DisconnectReason::TargetExited(_) | DisconnectReason::TargetTerminated(_) => {
                        return Ok(None)
                    }
                },
                Some(GdbStubStateMachine::CtrlCInterrupt(m)) => {
                    let stop = Some(SingleThreadStopReason::Signal(Signal::SIGINT));
                    let next = m.interrupt_handled(&mut self.target, stop);
                    self.settle(next)?;
                }
            }
        }
    }

    /// Feeds whatever gdb has sent while the guest runs; true if any came.
    fn take_input(&mut self) -> Result<bool> {
        let Some(mut machine) = self.machine.take() else {
            return Ok(false);
        };
        let conn = match &mut machine {
            GdbStubStateMachine::Running(m) => m.borrow_conn(),
            GdbStubStateMachine::Idle(m) => m.borrow_conn(),
            _ => {
                self.machine = Some(machine);
                return Ok(false);
            }
        };
        let bytes = match conn.read_available() {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                self.lost("gdb closed the connection")?;
                return Ok(true);
            }
            Err(e) => {
                self.lost(&format!("reading from gdb failed: {e}"))?;
                return Ok(true);
            }
        };
        self.machine = Some(machine);
        for &byte in &bytes {
            let next = match self.machine.take() {
                Some(GdbStubStateMachine::Running(m)) => m.incoming_data(&mut self.target, byte),
                Some(GdbStubStateMachine::Idle(m)) => m.incoming_data(&mut self.target, byte),
                other => {
                    self.machine = other;
                    break;
                }
            };
            self.settle(next)?;
        }
        Ok(!bytes.is_empty())
    }

    /// Takes gdbstub's next state; a Ctrl-C is answered at once with a SIGINT stop. A broken
    /// session (gdb gone, garbage on the wire) ends debugging and the guest runs on; only our
    /// own target's errors (a failed KVM ioctl) are the VMM's errors.
    fn settle(&mut self, next: std::result::Result<Machine, StubError>) -> Result<()> {
        match next {
            Ok(GdbStubStateMachine::CtrlCInterrupt(m)) => {
                let stop = Some(SingleThreadStopReason::Signal(Signal::SIGINT));
                let next = m.interrupt_handled(&mut self.target, stop);
                self.settle(next)
            }
            Ok(machine) => {
                self.machine = Some(machine);
                Ok(())
            }
            Err(e) if e.is_target_error() => Err(e
                .into_target_error()
                .unwrap_or_else(|| Error::Internal("gdb session".into()))),
            Err(e) => self.lost(&format!("gdb session failed: {e}")),
        }
    }

    fn lost(&mut self, why: &str) -> Result<()> {
        warn!("{why}; the guest runs on without gdb");
        self.end_session()
    }

    /// No more gdb: breakpoints out, guest debugging off, socket closed.
    fn end_session(&mut self) -> Result<()> {
        self.kick = None;
        if let Some(mut m) = self.machine.take() {
            let conn = match &mut m {
                GdbStubStateMachine::Idle(s) => Some(s.borrow_conn()),
                GdbStubStateMachine::Running(s) => Some(s.borrow_conn()),
                _ => None,
            };
            if let Some(c) = conn {
                let _ = c.flush();
            }
        }
        self.target.clear_all()?;
        self.target.vcpu.set_kvm_immediate_exit(0);
        Ok(())
    }
}
