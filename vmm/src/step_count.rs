//! The exact ring-0 instruction counter of `vmm bench` (docs/bench.md, "Exact instruction
//! counts"). A guest arms it from ring 0 with a byte written to the bench port
//! (`abi::bench::count`); from then on the vCPU is single-stepped (KVM_SET_GUEST_DEBUG with
//! KVM_GUESTDBG_SINGLESTEP: a KVM_EXIT_DEBUG after each instruction):
//!
//! 1. the rest of the arming system call is stepped, not counted, up to its return to ring 3;
//! 2. from the next entry into ring 0 (a system call, a fault, an interrupt), every instruction
//!    executed in ring 0 is counted, up to and including the one that returns to ring 3
//!    (`iretq` to a ring-3 CS, or `sysretq`); a `rep` instruction is stepped, and so counted,
//!    once per iteration;
//! 3. stepping stops before that return runs, and the next 4-byte read of the bench port gives
//!    the count.
//!
//! Armed for a span (`count::SPAN`), step 2 goes on across returns to ring 3 (each one is
//! counted, ring 3 is not), other processes and context switches, and ends at the next 4-byte
//! read of the bench port, which answers the count: a fork, an exec, a pipe round trip.
//!
//! What kvm_pvm does (measured, docs/bench.md): ring 3 is not stepped at all. After the return
//! to ring 3 the next debug exit comes once the first ring-0 instruction of the next entry has
//! run. So the return to ring 3 cannot be seen as a step into ring 3: it is recognised by
//! decoding the instruction about to run (and, for `iretq`, the CS it will pop). A KVM that
//! does step ring 3 (CS.RPL = 3 at an exit) is handled by the privilege level of each step.
//!
//! The vCPU loop (vcpu.rs) hands this module three things: bench-port commands, bench-port
//! reads and debug exits. Nothing here knows which path the guest counts: a new path is a new
//! entry in the guest's bench program.

use kvm_bindings::{
    kvm_guest_debug, KVM_CAP_SET_GUEST_DEBUG2, KVM_GUESTDBG_BLOCKIRQ, KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
};
use kvm_ioctls::{Kvm, VcpuFd};
use log::{debug, trace, warn};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use abi::bench::count;

use crate::error::{Error, Result};

/// Steps of the arming call's own return to ring 3 before giving up.
const MAX_ARMING_STEPS: u64 = 100_000;
/// Ring-3 steps (on a KVM that steps ring 3) waiting for the entry into ring 0.
const MAX_RING3_STEPS: u64 = 1_000_000;
/// Ring-0 instructions counted before giving up (a path that never returns to ring 3, such as
/// a kernel that halts with interrupts held off). Each step is a VM exit (~10-40 us here).
const MAX_RING0_STEPS: u64 = 2_000_000;

/// Where the counter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not stepping.
    Idle,
    /// Armed: stepping the rest of the arming system call.
    Arming { steps: u64 },
    /// The arming call is returning to ring 3: the next exit is in the next entry into ring 0
    /// (kvm_pvm), or in ring 3 (a KVM that steps ring 3).
    Returned,
    /// Ring 3 is being stepped (not on kvm_pvm), waiting for the entry into ring 0.
    InRing3 { steps: u64 },
    /// Counting: `count` ring-0 instructions have run since `entry`, the first ring-0 RIP seen.
    InRing0 { count: u64, entry: u64 },
    /// Counting a span, which has returned to ring 3 (the return is in `count`); `stepped`:
    /// ring 3 has been stepped since (a KVM that steps ring 3).
    SpanRing3 {
        count: u64,
        entry: u64,
        stepped: bool,
    },
}

/// A `rep` string instruction being stepped: where, and RCX at the last exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RepStep {
    rip: u64,
    rcx: u64,
    /// No step of it has run yet.
    first: bool,
}

/// The counter of one vCPU.
pub struct StepCounter {
    state: State,
    /// Armed for a span: counting ends at the read of the port, not at the return to ring 3.
    span: bool,
    /// The `rep` instruction the last exit stopped at, if any (its iterations are counted from
    /// RCX: kvm_pvm steps a whole batch of iterations at once).
    rep: Option<RepStep>,
    /// What the next read of the bench port returns.
    answer: u32,
    /// KVM_GUESTDBG_* flags this KVM accepts (KVM_CAP_SET_GUEST_DEBUG2), 0 if it does not say.
    supported: u32,
    /// Guest RAM, to decode the instruction about to run.
    memory: GuestMemoryMmap,
    /// Log every stepped instruction at trace level: `RUST_LOG=vmm::step_count=trace`.
    trace: bool,
}

/// Where the vCPU is at a debug exit.
struct At {
    rip: u64,
    rsp: u64,
    /// For the trace: the count of a `rep` instruction.
    rcx: u64,
    /// The privilege level: the RPL of CS.
    cpl: u8,
}

impl StepCounter {
    /// A counter for a vCPU of `kvm`'s VMs with guest RAM `memory`.
    pub fn new(kvm: &Kvm, memory: GuestMemoryMmap) -> StepCounter {
        let supported = kvm.check_extension_raw(KVM_CAP_SET_GUEST_DEBUG2.into());
        StepCounter {
            state: State::Idle,
            span: false,
            rep: None,
            answer: count::read::NOT_ARMED,
            supported: supported.max(0) as u32,
            memory,
            trace: log::log_enabled!(target: "vmm::step_count", log::Level::Trace),
        }
    }

    /// Whether the counter is stepping the vCPU (a debug exit is then its own).
    pub fn active(&self) -> bool {
        self.state != State::Idle
    }

    /// A byte the guest wrote to the bench port: `count::ARM`, `count::ARM_IRQ` or
    /// `count::SPAN`. Other bytes are not commands (0 is the port-exit measurement's write).
    pub fn command(&mut self, vcpu: &VcpuFd, byte: u8) -> Result<()> {
        let (block_irqs, span) = match byte {
            count::ARM => (true, false),
            count::ARM_IRQ => (false, false),
            count::SPAN => (true, true),
            _ => return Ok(()),
        };
        if self.active() {
            warn!("step counter: armed again before the last count finished; starting over");
        }
        let mut control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP;
        if block_irqs {
            if self.supported & KVM_GUESTDBG_BLOCKIRQ == 0 {
                // Without it a timer interrupt could land in the counted path: refuse rather
                // than give a count that is sometimes a different path's.
                warn!("step counter: this KVM lacks KVM_GUESTDBG_BLOCKIRQ; not counting");
                self.answer = count::read::FAILED;
                return Ok(());
            }
            control |= KVM_GUESTDBG_BLOCKIRQ;
        }
        if let Err(e) = set_debug(vcpu, control) {
            warn!("step counter: cannot single-step this vCPU ({e}); not counting");
            self.answer = count::read::FAILED;
            return Ok(());
        }
        self.rep = None;
        self.span = span;
        // The first step after this exit runs the instruction after the `out`; when that one
        // is already the return to ring 3 (the floor's service), the next exit is in the next
        // entry, so the counter must know now.
        let mut at = self.where_is(vcpu)?;
        at.rip += self.out_len(vcpu, &at);
        self.state = match self.next_insn(vcpu, &at) {
            Next::ToRing3 => State::Returned,
            _ => State::Arming { steps: 0 },
        };
        self.answer = count::read::NOT_ARMED;
        debug!(
            "step counter: armed (interrupts {}{})",
            if block_irqs { "held off" } else { "let in" },
            if span { ", a span" } else { "" }
        );
        Ok(())
    }

    /// Refuses an arming command (the vCPU's debug state belongs to someone else).
    pub fn refuse(&mut self, why: &str) {
        warn!("step counter: not counting while {why}");
        self.answer = count::read::FAILED;
    }

    /// A 4-byte read of the bench port: the last count, once, or the end of a span and its
    /// count. Returns true when the vCPU is still being stepped: the caller must then `end`
    /// the stepping (once its borrow of the vCPU ends).
    pub fn read(&mut self, data: &mut [u8]) -> bool {
        let answer = match self.state {
            State::Idle => std::mem::replace(&mut self.answer, count::read::NOT_ARMED),
            // The `in` itself is not counted: it exits to us before its step.
            State::InRing0 { count, entry } | State::SpanRing3 { count, entry, .. }
                if self.span =>
            {
                debug!("step counter: a span of {count} ring-0 instructions from rip {entry:#x}");
                self.answer = count::read::NOT_ARMED;
                clamp(count)
            }
            // A read while stepping is in ring 0, in the path being counted: the guest asked
            // too early (the armed path never entered ring 0 before this call).
            _ => {
                debug!("step counter: read before the count finished; abandoned");
                self.answer = count::read::NOT_ARMED;
                count::read::UNFINISHED
            }
        };
        for (d, b) in data.iter_mut().zip(answer.to_le_bytes().iter().cycle()) {
            *d = *b;
        }
        self.active()
    }

    /// Stops stepping after a read that ended a span or abandoned a count (see `read`).
    pub fn end(&mut self, vcpu: &VcpuFd) -> Result<()> {
        self.stop(vcpu)
    }

    /// A KVM_EXIT_DEBUG while stepping: one instruction has run.
    pub fn step(&mut self, vcpu: &VcpuFd) -> Result<()> {
        if !self.active() {
            debug!("step counter: a debug exit while not counting; ignored");
            return Ok(());
        }
        let at = self.where_is(vcpu)?;
        if self.trace {
            trace!(
                "{:?}: cpl {} rip {:#x} rcx {:#x}",
                self.state,
                at.cpl,
                at.rip,
                at.rcx
            );
        }
        self.state = match self.state {
            State::Idle => State::Idle,
            State::Arming { .. } if at.cpl == 3 => State::InRing3 { steps: 0 },
            State::Arming { .. } if self.next_insn(vcpu, &at) == Next::ToRing3 => State::Returned,
            State::Arming { steps } if steps >= MAX_ARMING_STEPS => {
                return self.give_up(
                    vcpu,
                    "the arming call did not return to ring 3 within the step limit",
                );
            }
            State::Arming { steps } => State::Arming { steps: steps + 1 },
            State::Returned | State::InRing3 { .. } if at.cpl == 3 => State::InRing3 { steps: 0 },
            // kvm_pvm: this exit comes after the first ring-0 instruction of the entry.
            State::Returned => self.counting(vcpu, &at, 1, at.rip)?,
            State::InRing3 { steps } if at.cpl != 0 && steps >= MAX_RING3_STEPS => {
                return self.give_up(vcpu, "ring 3 did not enter ring 0 within the step limit");
            }
            State::InRing3 { steps } if at.cpl != 0 => State::InRing3 { steps: steps + 1 },
            // A KVM that steps ring 3 stops at the first ring-0 instruction before it runs.
            State::InRing3 { .. } => self.counting(vcpu, &at, 0, at.rip)?,
            // The exit after the return, on a KVM that steps ring 3 (the return is not decoded).
            State::InRing0 { count, entry } if at.cpl == 3 && self.span => State::SpanRing3 {
                count: count + 1,
                entry,
                stepped: true,
            },
            State::InRing0 { count, entry } if at.cpl == 3 => self.done(vcpu, count + 1, entry)?,
            State::InRing0 { count, .. } if count >= MAX_RING0_STEPS => {
                return self.give_up(
                    vcpu,
                    "ring 0 did not return to ring 3 within the step limit",
                );
            }
            State::InRing0 { count, entry } => {
                let ran = self.instructions_run(&at);
                self.counting(vcpu, &at, count + ran, entry)?
            }
            // A span in ring 3, on a KVM that steps ring 3: not counted.
            State::SpanRing3 { count, entry, .. } if at.cpl != 0 => State::SpanRing3 {
                count,
                entry,
                stepped: true,
            },
            // The next entry into ring 0: kvm_pvm exits after its first instruction, a KVM
            // that steps ring 3 before it.
            State::SpanRing3 {
                count,
                entry,
                stepped,
            } => self.counting(vcpu, &at, count + u64::from(!stepped), entry)?,
        };
        Ok(())
    }

    /// How many instructions the step that ended at `at` ran: one, or for a `rep` string
    /// instruction its iterations (RCX went down by that much), counting a `rep` with RCX = 0
    /// once, as a CPU that steps each iteration would.
    fn instructions_run(&mut self, at: &At) -> u64 {
        let Some(r) = self.rep.take() else {
            return 1;
        };
        let iterations = r.rcx.saturating_sub(at.rcx);
        if at.rip == r.rip {
            // Still on it: more iterations to go, or the step that only ends it (RCX = 0).
            self.rep = Some(RepStep {
                rip: r.rip,
                rcx: at.rcx,
                first: false,
            });
        }
        match (iterations, r.first) {
            (0, true) => 1,
            (n, _) => n,
        }
    }

    /// `count` ring-0 instructions have run; if the next one returns to ring 3, it is the last.
    fn counting(&mut self, vcpu: &VcpuFd, at: &At, count: u64, entry: u64) -> Result<State> {
        if self.rep.is_some() {
            return Ok(State::InRing0 { count, entry });
        }
        match self.next_insn(vcpu, at) {
            // A span goes on: the return is counted, the ring 3 after it is not.
            Next::ToRing3 if self.span => Ok(State::SpanRing3 {
                count: count + 1,
                entry,
                stepped: false,
            }),
            Next::ToRing3 => self.done(vcpu, count + 1, entry),
            // kvm_pvm: a stepped `hlt` returns at once and the vCPU is never run again
            // (docs/bench.md). Stop stepping first; the guest halts as it meant to.
            Next::Halt => {
                self.give_up(vcpu, "the path halts (hlt cannot be single-stepped here)")?;
                Ok(State::Idle)
            }
            Next::Rep => {
                self.rep = Some(RepStep {
                    rip: at.rip,
                    rcx: at.rcx,
                    first: true,
                });
                Ok(State::InRing0 { count, entry })
            }
            Next::Other => Ok(State::InRing0 { count, entry }),
        }
    }

    fn done(&mut self, vcpu: &VcpuFd, n: u64, entry: u64) -> Result<State> {
        debug!("step counter: {n} ring-0 instructions from rip {entry:#x}");
        self.answer = clamp(n);
        self.stop(vcpu)?;
        Ok(State::Idle)
    }

    fn give_up(&mut self, vcpu: &VcpuFd, why: &str) -> Result<()> {
        warn!("step counter: {why}; not counting");
        self.stop(vcpu)?;
        self.answer = count::read::FAILED;
        Ok(())
    }

    fn stop(&mut self, vcpu: &VcpuFd) -> Result<()> {
        self.state = State::Idle;
        self.rep = None;
        set_debug(vcpu, 0).map_err(|e| Error::KvmIoctl("KVM_SET_GUEST_DEBUG (step counter)", e))
    }

    fn where_is(&self, vcpu: &VcpuFd) -> Result<At> {
        let regs = vcpu
            .get_regs()
            .map_err(|e| Error::KvmIoctl("KVM_GET_REGS (step counter)", e))?;
        let sregs = vcpu
            .get_sregs()
            .map_err(|e| Error::KvmIoctl("KVM_GET_SREGS (step counter)", e))?;
        Ok(At {
            rip: regs.rip,
            rsp: regs.rsp,
            rcx: regs.rcx,
            cpl: (sregs.cs.selector & 3) as u8,
        })
    }

    /// What the instruction at `at.rip` (in ring 0) is, as far as counting goes: a return to
    /// ring 3 (`sysretq`, or an `iretq` whose frame holds a ring-3 CS), a `hlt`, or anything
    /// else. Memory that cannot be read is anything else.
    fn next_insn(&self, vcpu: &VcpuFd, at: &At) -> Next {
        let mut insn = [0u8; 4];
        if at.cpl != 0 || !self.read_virt(vcpu, at.rip, &mut insn) {
            return Next::Other;
        }
        match decode(&insn) {
            Some(Insn::Sysret) => Next::ToRing3,
            Some(Insn::Iret) => {
                // The frame: RIP, CS, RFLAGS, RSP, SS.
                let mut cs = [0u8; 8];
                let to_ring3 = self.read_virt(vcpu, at.rsp.wrapping_add(8), &mut cs)
                    && u64::from_le_bytes(cs) & 3 == 3;
                if to_ring3 {
                    Next::ToRing3
                } else {
                    Next::Other
                }
            }
            Some(Insn::Hlt) => Next::Halt,
            Some(Insn::RepString) => Next::Rep,
            None => Next::Other,
        }
    }

    /// The length of the instruction at `at.rip` if it is an `out` (the KVM may report the
    /// port exit before or after moving RIP past it), else 0.
    fn out_len(&self, vcpu: &VcpuFd, at: &At) -> u64 {
        let mut insn = [0u8; 3];
        if !self.read_virt(vcpu, at.rip, &mut insn) {
            return 0;
        }
        let (prefix, op) = match insn {
            [0x66, op, _] => (1, op),
            [op, ..] => (0, op),
        };
        match op {
            0xe6 | 0xe7 => prefix + 2, // out imm8, al/eax
            0xee | 0xef => prefix + 1, // out dx, al/eax
            _ => 0,
        }
    }

    /// Reads guest-virtual memory through the vCPU's page tables (KVM_TRANSLATE), byte by byte
    /// across a page boundary. False if any byte is unmapped.
    fn read_virt(&self, vcpu: &VcpuFd, addr: u64, buf: &mut [u8]) -> bool {
        let mut done = 0;
        while done < buf.len() {
            let va = addr.wrapping_add(done as u64);
            let Ok(t) = vcpu.translate_gva(va) else {
                return false;
            };
            if t.valid == 0 {
                return false;
            }
            let in_page = (4096 - (va & 4095)) as usize;
            let n = in_page.min(buf.len() - done);
            if self
                .memory
                .read_slice(&mut buf[done..done + n], GuestAddress(t.physical_address))
                .is_err()
            {
                return false;
            }
            done += n;
        }
        true
    }
}

/// A count as the port answers it: a count too large for one is a failure.
fn clamp(n: u64) -> u32 {
    u32::try_from(n)
        .ok()
        .filter(|&n| n < count::read::UNFINISHED)
        .unwrap_or(count::read::FAILED)
}

fn set_debug(vcpu: &VcpuFd, control: u32) -> std::result::Result<(), kvm_ioctls::Error> {
    vcpu.set_guest_debug(&kvm_guest_debug {
        control,
        ..Default::default()
    })
}

/// What the next ring-0 instruction means for the count.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// It returns to ring 3: the last of the path.
    ToRing3,
    /// `hlt`.
    Halt,
    /// A `rep` string instruction.
    Rep,
    Other,
}

/// The instructions the counter looks for.
#[derive(Debug, PartialEq, Eq)]
enum Insn {
    /// `iretq` (REX.W CF), or `iret` (CF): where it returns depends on the CS it pops.
    Iret,
    /// `sysretq` (REX.W 0F 07) or `sysret` (0F 07): always to ring 3.
    Sysret,
    /// `hlt` (F4).
    Hlt,
    /// A string instruction (ins, outs, movs, cmps, stos, lods, scas) with a `rep` prefix.
    RepString,
}

fn decode(insn: &[u8; 4]) -> Option<Insn> {
    if insn[0] == 0xf4 {
        return Some(Insn::Hlt);
    }
    // Legacy prefixes (rep F3/F2, operand size 66), then at most one REX, then the opcode.
    let prefixes = insn
        .iter()
        .take_while(|b| matches!(b, 0xf2 | 0xf3 | 0x66))
        .count();
    let rep = insn[..prefixes].iter().any(|b| matches!(b, 0xf2 | 0xf3));
    let mut body = &insn[prefixes..];
    if let [0x40..=0x4f, rest @ ..] = body {
        body = rest;
    }
    match body {
        [0xcf, ..] if prefixes == 0 => Some(Insn::Iret),
        [0x0f, 0x07, ..] if prefixes == 0 => Some(Insn::Sysret),
        [0x6c..=0x6f | 0xa4..=0xa7 | 0xaa..=0xaf, ..] if rep => Some(Insn::RepString),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_returns_and_hlt() {
        assert_eq!(decode(&[0x48, 0xcf, 0, 0]), Some(Insn::Iret));
        assert_eq!(decode(&[0xcf, 0x90, 0x90, 0]), Some(Insn::Iret));
        assert_eq!(decode(&[0x48, 0x0f, 0x07, 0]), Some(Insn::Sysret));
        assert_eq!(decode(&[0x0f, 0x07, 0x90, 0]), Some(Insn::Sysret));
        assert_eq!(decode(&[0xf4, 0xfa, 0x0f, 0]), Some(Insn::Hlt));
        // rep stosq, rep movsb, rep outsb, repne scasb, rep stosw
        assert_eq!(decode(&[0xf3, 0x48, 0xab, 0]), Some(Insn::RepString));
        assert_eq!(decode(&[0xf3, 0xa4, 0, 0]), Some(Insn::RepString));
        assert_eq!(decode(&[0xf3, 0x6e, 0, 0]), Some(Insn::RepString));
        assert_eq!(decode(&[0xf2, 0xae, 0, 0]), Some(Insn::RepString));
        assert_eq!(decode(&[0x66, 0xf3, 0xab, 0]), Some(Insn::RepString));
        // movsb without rep, pause (F3 90), ud2, pop rax, mov rdi, rcx (ModRM CF), REX hlt
        assert_eq!(decode(&[0xa4, 0, 0, 0]), None);
        assert_eq!(decode(&[0xf3, 0x90, 0, 0]), None);
        assert_eq!(decode(&[0x0f, 0x0b, 0, 0]), None);
        assert_eq!(decode(&[0x58, 0xcf, 0, 0]), None);
        assert_eq!(decode(&[0x48, 0x89, 0xcf, 0]), None);
        assert_eq!(decode(&[0x48, 0xf4, 0, 0]), None);
    }
}
