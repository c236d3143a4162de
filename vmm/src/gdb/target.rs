//! The guest as gdbstub sees it: one thread (the vCPU), its registers, its memory at virtual
//! addresses, breakpoints, watchpoints, continue and single-step. gdbstub calls in here for each
//! packet; `prepare_resume` and `classify` are where KVM_SET_GUEST_DEBUG and KVM_EXIT_DEBUG meet
//! what gdb asked for.

use gdbstub::arch::Registers;
use gdbstub::common::Signal;
use gdbstub::stub::SingleThreadStopReason;
use gdbstub::target::ext::base::single_register_access::{
    SingleRegisterAccess, SingleRegisterAccessOps,
};
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep,
    SingleThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints as GdbBreakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint,
    HwWatchpointOps, SwBreakpoint, SwBreakpointOps, WatchKind,
};
use gdbstub::target::{Target, TargetError, TargetResult};
use kvm_bindings::{
    kvm_debug_exit_arch, kvm_guest_debug, kvm_guest_debug_arch, KVM_GUESTDBG_BLOCKIRQ,
    KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_INJECT_BP, KVM_GUESTDBG_INJECT_DB, KVM_GUESTDBG_SINGLESTEP,
    KVM_GUESTDBG_USE_HW_BP, KVM_GUESTDBG_USE_SW_BP,
};
use kvm_ioctls::VcpuFd;
use log::{debug, warn};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::arch::{LdeRegId, LdeRegs, LdeX86_64};
use super::breakpoints::{self, Breakpoints, Internal, Slot, INT3};
use super::memory::{lookup, paging_on, read_virt, translate, write_virt};
use super::pvm::{self, SoftWatches};
use super::regs::{from_gdb, to_gdb, KvmState};
use super::Caps;
use crate::error::Error;

const DB_VECTOR: u32 = 1;
const BP_VECTOR: u32 = 3;
/// DR6: B0-B3 (which debug register matched) and BS (single step).
const DR6_B_MASK: u64 = 0xf;
const DR6_BS: u64 = 1 << 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResumeKind {
    Continue,
    Step,
}

/// A breakpoint at RIP that must not fire again when gdb continues from it: it is left out
/// for one single step, then put back.
#[derive(Debug, Clone, Copy)]
enum StepOver {
    Slot(usize),
    /// An int3 taken out (its original byte written back) at this guest-physical address.
    Sw(u64),
}

/// What a KVM_EXIT_DEBUG means.
pub enum Decision {
    /// Report this stop to gdb.
    Stop(SingleThreadStopReason<u64>),
    /// Ours alone (a step over a breakpoint): run on.
    Resume,
}

pub struct GdbTarget {
    pub vcpu: VcpuFd,
    memory: GuestMemoryMmap,
    caps: Caps,
    bps: Breakpoints,
    /// kvm_pvm: watchpoints by comparison, and breakpoints in ring 3 whose page was not mapped
    /// when gdb set them (pvm.rs).
    soft: SoftWatches,
    pending_user: Vec<u64>,
    resume: ResumeKind,
    step_over: Option<StepOver>,
    /// Whether the guest runs in single steps now (for gdb, a step over, or soft watches).
    stepping: bool,
    /// A #BP or #DB that was the guest's own, to give back to it on the next entry.
    inject: u32,
    /// Whether KVM has guest debugging on now (so that it is turned off once unused).
    debug_on: bool,
}

fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> TargetError<Error> {
    move |e| TargetError::Fatal(Error::KvmIoctl(what, e))
}

impl GdbTarget {
    pub fn new(vcpu: VcpuFd, memory: GuestMemoryMmap, caps: Caps) -> GdbTarget {
        GdbTarget {
            vcpu,
            memory,
            caps,
            bps: Breakpoints::default(),
            soft: SoftWatches::default(),
            pending_user: Vec::new(),
            resume: ResumeKind::Continue,
            step_over: None,
            stepping: false,
            inject: 0,
            debug_on: false,
        }
    }

    /// Sets KVM's guest debugging for the resume gdb asked for: single step or not, the debug
    /// registers, int3 interception, and a step over a breakpoint at RIP.
    pub fn prepare_resume(&mut self) -> Result<(), Error> {
        self.end_step_over();
        let rip = self
            .vcpu
            .get_regs()
            .map_err(|e| Error::KvmIoctl("KVM_GET_REGS", e))?
            .rip;
        if self.resume == ResumeKind::Continue {
            if let Some(i) = self.bps.exec_slot_at(rip) {
                self.step_over = Some(StepOver::Slot(i));
            } else if let Some(bp) = self.bps.sw_at(rip).copied() {
                let _ = self.memory.write_obj(bp.original, GuestAddress(bp.gpa));
                self.step_over = Some(StepOver::Sw(bp.gpa));
            }
        }
        let skip = match self.step_over {
            Some(StepOver::Slot(i)) => Some(i),
            _ => None,
        };
        let mut control = std::mem::take(&mut self.inject);
        self.stepping =
            self.resume == ResumeKind::Step || self.step_over.is_some() || !self.soft.is_empty();
        if self.caps.pvm {
            self.prepare_pvm();
        }
        if self.stepping {
            control |= KVM_GUESTDBG_SINGLESTEP;
            // Without it, a step taken while the timer is pending lands in its handler.
            if self.caps.block_irq {
                control |= KVM_GUESTDBG_BLOCKIRQ;
            }
        }
        if !self.bps.sw.is_empty() {
            control |= KVM_GUESTDBG_USE_SW_BP;
        }
        if self.bps.any_hw() {
            control |= KVM_GUESTDBG_USE_HW_BP;
        }
        if control == 0 && !self.debug_on {
            return Ok(());
        }
        if control != 0 {
            control |= KVM_GUESTDBG_ENABLE;
        }
        let dbg = kvm_guest_debug {
            control,
            pad: 0,
            arch: kvm_guest_debug_arch {
                debugreg: self.bps.debugregs(skip),
            },
        };
        self.vcpu
            .set_guest_debug(&dbg)
            .map_err(|e| Error::KvmIoctl("KVM_SET_GUEST_DEBUG", e))?;
        self.debug_on = control != 0;
        Ok(())
    }

    /// kvm_pvm: plants what can be planted now, and keeps our breakpoints on the kernel's
    /// entries for ring-3 breakpoints (pvm.rs); the watched bytes before the next step.
    fn prepare_pvm(&mut self) {
        for gva in std::mem::take(&mut self.pending_user) {
            if !self.plant(gva) {
                self.pending_user.push(gva);
            }
        }
        let user_bps = self.bps.sw.iter().any(|b| pvm::is_user(b.gva));
        let entry = |vector| pvm::idt_entry(&self.vcpu, &self.memory, vector);
        let bp_entry = if user_bps { entry(3) } else { None };
        let db_entry = if self.stepping { entry(1) } else { None };
        let pf_entry = if self.pending_user.is_empty() {
            None
        } else {
            entry(14)
        };
        debug!(
            "kvm_pvm: pending {:x?}, #BP entry {bp_entry:x?}, #PF entry {pf_entry:x?}, #DB entry {db_entry:x?}",
            self.pending_user
        );
        if !self.bps.set_internal(Internal::Breakpoint, bp_entry)
            || !self.bps.set_internal(Internal::PageFault, pf_entry)
            || !self.bps.set_internal(Internal::Debug, db_entry)
        {
            warn!("gdb: all four debug registers are taken: ring 3 may not stop where asked");
        }
        self.soft.snapshot(&self.vcpu, &self.memory);
    }

    /// kvm_pvm, after an ordinary VM exit: ring-3 breakpoints need our breakpoints on the
    /// kernel's #PF and #BP entries, which are only known once the kernel has an IDT. Until then
    /// every exit (its console output, early in boot) is a chance to look.
    pub fn exit_seen(&mut self) -> Result<(), Error> {
        let armed = |what: Internal| {
            self.bps
                .slots
                .iter()
                .any(|s| matches!(s, Slot::Internal { what: w, .. } if *w == what))
        };
        let user_bps = self.bps.sw.iter().any(|b| pvm::is_user(b.gva));
        let waiting = (!self.pending_user.is_empty() && !armed(Internal::PageFault))
            || (user_bps && !armed(Internal::Breakpoint));
        if self.caps.pvm && waiting {
            self.prepare_resume()?;
        }
        Ok(())
    }

    /// Writes an int3 at `gva` if it is mapped now. Not while paging is off (the first stop):
    /// the address gdb means is a virtual one the kernel has not mapped yet, and the physical
    /// page of that number is something else.
    fn plant(&mut self, gva: u64) -> bool {
        if !paging_on(&self.vcpu) {
            return false;
        }
        // A ring-3 address counts as mapped only where ring 3 may use it: not in the kernel's
        // own mappings of low memory, say, which are no program's code.
        let Some((gpa, user)) = lookup(&self.vcpu, &self.memory, gva) else {
            return false;
        };
        if pvm::is_user(gva) && !user {
            return false;
        }
        let Ok(original) = self.memory.read_obj::<u8>(GuestAddress(gpa)) else {
            return false;
        };
        if self.memory.write_obj(INT3, GuestAddress(gpa)).is_err() {
            return false;
        }
        self.bps
            .sw
            .push(breakpoints::SwBreakpoint { gva, gpa, original });
        true
    }

    /// kvm_pvm: the kernel's #BP entry was reached. An int3 of ours in ring 3 is a breakpoint
    /// hit, and the vCPU goes back to where it was; anything else is the kernel's business.
    fn user_breakpoint(&mut self) -> Result<Decision, Error> {
        let Some(frame) = pvm::user_frame(&self.vcpu, &self.memory) else {
            return Ok(Decision::Resume);
        };
        let addr = frame.rip.wrapping_sub(1);
        let ours = self
            .bps
            .sw_at(addr)
            .is_some_and(|bp| translate(&self.vcpu, &self.memory, addr) == Some(bp.gpa));
        if !ours {
            return Ok(Decision::Resume);
        }
        pvm::return_to_user(&self.vcpu, &frame, addr)
            .map_err(|e| Error::KvmIoctl("KVM_SET_REGS/SREGS", e))?;
        Ok(Decision::Stop(SingleThreadStopReason::SwBreak(())))
    }

    /// kvm_pvm: a single step in ring 3 arrived at the kernel's #DB entry; if so the vCPU is
    /// put back in ring 3 after the one instruction, as a step on hardware would leave it.
    fn user_step_done(&mut self, info: &kvm_debug_exit_arch) -> Result<bool, Error> {
        let at_db_entry = (0..breakpoints::SLOTS).any(|i| {
            info.dr6 & (1 << i) != 0
                && matches!(
                    self.bps.slots[i],
                    Slot::Internal {
                        what: Internal::Debug,
                        ..
                    }
                )
        });
        if !(self.caps.pvm && self.stepping && at_db_entry) {
            return Ok(false);
        }
        let Some(frame) = pvm::user_frame(&self.vcpu, &self.memory) else {
            return Ok(false);
        };
        pvm::return_to_user(&self.vcpu, &frame, frame.rip)
            .map_err(|e| Error::KvmIoctl("KVM_SET_REGS/SREGS", e))?;
        Ok(true)
    }

    /// Puts back a breakpoint left out for a step.
    fn end_step_over(&mut self) -> Option<StepOver> {
        let over = self.step_over.take();
        if let Some(StepOver::Sw(gpa)) = over {
            if self.bps.sw.iter().any(|b| b.gpa == gpa) {
                let _ = self.memory.write_obj(INT3, GuestAddress(gpa));
            }
        }
        over
    }

    /// What a KVM_EXIT_DEBUG means for gdb.
    pub fn classify(&mut self, info: &kvm_debug_exit_arch) -> Result<Decision, Error> {
        debug!(
            "KVM_EXIT_DEBUG: exception {} pc {:#x} dr6 {:#x} dr7 {:#x}",
            info.exception, info.pc, info.dr6, info.dr7
        );
        let user_step = self.user_step_done(info)?;
        let stepped_over = self.end_step_over().is_some();
        let soft_hit =
            self.soft
                .changed(&self.vcpu, &self.memory)
                .map(|addr| SingleThreadStopReason::Watch {
                    tid: (),
                    kind: WatchKind::Write,
                    addr,
                });
        if let Some(reason) = soft_hit.or_else(|| self.data_hit(info.dr6)) {
            return Ok(Decision::Stop(reason));
        }
        if stepped_over && info.exception == DB_VECTOR {
            // The step over a breakpoint is done; gdb asked to continue.
            return Ok(Decision::Resume);
        }
        Ok(match info.exception {
            BP_VECTOR if self.bps.sw_at(info.pc).is_some() => {
                Decision::Stop(SingleThreadStopReason::SwBreak(()))
            }
            BP_VECTOR => self.give_back(KVM_GUESTDBG_INJECT_BP),
            DB_VECTOR => {
                for i in 0..breakpoints::SLOTS {
                    if info.dr6 & (1 << i) == 0 {
                        continue;
                    }
                    match self.bps.slots[i] {
                        Slot::Exec { as_sw: true, .. } => {
                            return Ok(Decision::Stop(SingleThreadStopReason::SwBreak(())))
                        }
                        Slot::Exec { as_sw: false, .. } => {
                            return Ok(Decision::Stop(SingleThreadStopReason::HwBreak(())))
                        }
                        Slot::Internal {
                            what: Internal::Breakpoint,
                            ..
                        } => return self.user_breakpoint(),
                        // prepare_resume plants what it can; a #DB the guest took for itself
                        // goes on to its kernel.
                        Slot::Internal {
                            what: Internal::PageFault | Internal::Debug,
                            ..
                        } if !user_step => return Ok(Decision::Resume),
                        _ => {}
                    }
                }
                match (info.dr6 & DR6_BS != 0 || user_step, self.resume) {
                    (true, ResumeKind::Step) => Decision::Stop(SingleThreadStopReason::DoneStep),
                    // One of our own steps (watching by comparison).
                    (true, _) if self.stepping => Decision::Resume,
                    _ => self.give_back(KVM_GUESTDBG_INJECT_DB),
                }
            }
            _ => Decision::Stop(SingleThreadStopReason::Signal(Signal::SIGTRAP)),
        })
    }

    /// The watchpoint a data breakpoint hit belongs to.
    fn data_hit(&self, dr6: u64) -> Option<SingleThreadStopReason<u64>> {
        (0..breakpoints::SLOTS)
            .filter(|i| dr6 & DR6_B_MASK & (1 << i) != 0)
            .find_map(|i| match self.bps.slots[i] {
                Slot::Data { watch, .. } => Some(SingleThreadStopReason::Watch {
                    tid: (),
                    kind: watch.2,
                    addr: watch.0,
                }),
                _ => None,
            })
    }

    /// An exception that was not ours: the guest gets it on the next entry.
    fn give_back(&mut self, flag: u32) -> Decision {
        debug!("giving the guest back its own debug exception ({flag:#x})");
        self.inject = flag;
        Decision::Resume
    }

    /// Takes out every breakpoint and turns guest debugging off (gdb detached or went away).
    pub fn clear_all(&mut self) -> Result<(), Error> {
        self.end_step_over();
        for bp in std::mem::take(&mut self.bps.sw) {
            self.unplant(&bp);
        }
        self.bps = Breakpoints::default();
        self.soft.clear();
        self.pending_user.clear();
        self.resume = ResumeKind::Continue;
        self.inject = 0;
        self.prepare_resume()
    }

    fn unplant(&self, bp: &breakpoints::SwBreakpoint) {
        // Put the original byte back only if our int3 is still there: the page may have been
        // freed and reused (our kernel zeroes reused frames) while the breakpoint was in.
        if self.memory.read_obj::<u8>(GuestAddress(bp.gpa)).ok() == Some(INT3) {
            let _ = self.memory.write_obj(bp.original, GuestAddress(bp.gpa));
        }
    }
}

impl Target for GdbTarget {
    type Arch = LdeX86_64;
    type Error = Error;

    fn base_ops(&mut self) -> BaseOps<'_, LdeX86_64, Error> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    // gdb may plant breakpoints of its own (e.g. at a function's return for `finish`); we
    // handle those like any other.
    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        true
    }
}

impl SingleThreadBase for GdbTarget {
    fn read_registers(&mut self, regs: &mut LdeRegs) -> TargetResult<(), Self> {
        let k = KvmState::read(&self.vcpu).map_err(kvm("KVM_GET_REGS/SREGS/FPU"))?;
        *regs = to_gdb(&k);
        Ok(())
    }

    fn write_registers(&mut self, regs: &LdeRegs) -> TargetResult<(), Self> {
        let old = KvmState::read(&self.vcpu).map_err(kvm("KVM_GET_REGS/SREGS/FPU"))?;
        from_gdb(regs, &old)
            .write_changes(&old, &self.vcpu)
            .map_err(kvm("KVM_SET_REGS/SREGS/FPU"))
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, (), Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        match read_virt(&self.vcpu, &self.memory, start, data) {
            0 if !data.is_empty() => Err(TargetError::Errno(14)), // EFAULT
            n => Ok(n),
        }
    }

    fn write_addrs(&mut self, start: u64, data: &[u8]) -> TargetResult<(), Self> {
        if write_virt(&self.vcpu, &self.memory, start, data) {
            Ok(())
        } else {
            Err(TargetError::Errno(14))
        }
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

/// One register (`p`, and `P` for gdb's `set $reg = ...`): through the whole set, serialised.
impl SingleRegisterAccess<()> for GdbTarget {
    fn read_register(&mut self, _: (), id: LdeRegId, buf: &mut [u8]) -> TargetResult<usize, Self> {
        let mut regs = LdeRegs::default();
        self.read_registers(&mut regs)?;
        let mut bytes = Vec::new();
        regs.gdb_serialize(|b| bytes.push(b.unwrap_or(0)));
        let range = id.range().ok_or(TargetError::NonFatal)?;
        let value = bytes.get(range).ok_or(TargetError::NonFatal)?;
        let n = value.len().min(buf.len());
        buf[..n].copy_from_slice(&value[..n]);
        Ok(n)
    }

    fn write_register(&mut self, _: (), id: LdeRegId, val: &[u8]) -> TargetResult<(), Self> {
        let mut regs = LdeRegs::default();
        self.read_registers(&mut regs)?;
        let mut bytes = Vec::new();
        regs.gdb_serialize(|b| bytes.push(b.unwrap_or(0)));
        let range = id.range().ok_or(TargetError::NonFatal)?;
        if range.len() != val.len() {
            return Err(TargetError::NonFatal);
        }
        bytes[range].copy_from_slice(val);
        regs.gdb_deserialize(&bytes)
            .map_err(|()| TargetError::NonFatal)?;
        self.write_registers(&regs)
    }
}

impl SingleThreadResume for GdbTarget {
    // A signal gdb would pass to the program has no meaning for a whole machine: ignored.
    fn resume(&mut self, _signal: Option<Signal>) -> Result<(), Error> {
        self.resume = ResumeKind::Continue;
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadSingleStep for GdbTarget {
    fn step(&mut self, _signal: Option<Signal>) -> Result<(), Error> {
        self.resume = ResumeKind::Step;
        Ok(())
    }
}

impl GdbBreakpoints for GdbTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for GdbTarget {
    /// An int3 where the address is mapped now; otherwise (paging still off at the first stop,
    /// a process not started yet) a debug register, which matches the linear address in
    /// whatever address space is current when it is reached. On kvm_pvm, kernel addresses
    /// always get a debug register (an int3 in its emulated ring 0 kills the VM), and ring-3
    /// ones an int3, planted later if need be (pvm.rs).
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        if self.bps.sw_at(addr).is_some() || self.pending_user.contains(&addr) {
            return Ok(true);
        }
        if self.caps.pvm && pvm::is_user(addr) {
            if !self.plant(addr) {
                self.pending_user.push(addr);
            }
            return Ok(true);
        }
        if self.caps.sw_bp && self.plant(addr) {
            return Ok(true);
        }
        Ok(self.bps.add_exec(addr, true))
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        if let Some(i) = self.pending_user.iter().position(|&a| a == addr) {
            self.pending_user.remove(i);
            return Ok(true);
        }
        if let Some(i) = self.bps.sw.iter().position(|b| b.gva == addr) {
            let bp = self.bps.sw.remove(i);
            if matches!(self.step_over, Some(StepOver::Sw(gpa)) if gpa == bp.gpa) {
                self.step_over = None; // its original byte is already back
            } else {
                self.unplant(&bp);
            }
            return Ok(true);
        }
        Ok(self.bps.remove_exec(addr, true))
    }
}

impl HwBreakpoint for GdbTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.bps.add_exec(addr, false))
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.bps.remove_exec(addr, false))
    }
}

impl HwWatchpoint for GdbTarget {
    /// Debug registers; on kvm_pvm, where data breakpoints never fire, comparison after each
    /// step, which sees writes only (rwatch and awatch are refused there).
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        if self.caps.pvm {
            return Ok(kind == WatchKind::Write && self.soft.add(addr, len));
        }
        Ok(self.bps.add_watch(addr, len, kind))
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        if self.caps.pvm {
            return Ok(self.soft.remove(addr, len));
        }
        Ok(self.bps.remove_watch(addr, len, kind))
    }
}
