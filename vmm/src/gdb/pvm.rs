//! What gdb needs that kvm_pvm's hardware-less debugging cannot give, done another way
//! (docs/gdb.md has the measurements). On kvm_pvm the guest's ring 0 is emulated and its ring 3
//! runs natively, and of KVM_SET_GUEST_DEBUG only single steps and instruction breakpoints in
//! the debug registers work, and only in ring 0. An int3 there kills the VM; in ring 3 it goes to
//! the guest; data breakpoints never fire; ring 3 cannot be stepped (a step runs to the next
//! entry into the kernel).
//!
//! - Breakpoints in ring 3: the int3 is planted as usual, and an instruction breakpoint is put
//!   on the kernel's #BP entry (IDT vector 3), where the int3 arrives. There, a frame from ring 3
//!   whose RIP follows one of our int3s is ours: the vCPU is put back as it was at the int3 (the
//!   registers the CPU saved in the frame, ring 3 again) and gdb hears of a breakpoint. Any other
//!   #BP goes on to the kernel.
//! - Single steps in ring 3: KVM sets the trap flag, the CPU raises #DB after one instruction,
//!   and kvm_pvm gives it to the guest. An instruction breakpoint on the kernel's #DB entry
//!   catches it there, and the vCPU goes back to ring 3 after that one instruction.
//! - Watchpoints (writes only): the guest runs in single steps, and the watched bytes are
//!   compared after each.

use kvm_ioctls::VcpuFd;
use vm_memory::GuestMemoryMmap;

use super::memory::read_virt;

/// Kernel (higher-half) addresses are the same in every address space.
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;
const RFLAGS_TF: u64 = 1 << 8;

pub fn is_user(addr: u64) -> bool {
    addr < KERNEL_HALF
}

/// The address of the guest kernel's handler for `vector`, from its IDT (None before it has
/// one, or if the gate is not present).
pub fn idt_entry(vcpu: &VcpuFd, mem: &GuestMemoryMmap, vector: u64) -> Option<u64> {
    let idt = vcpu.get_sregs().ok()?.idt;
    if u64::from(idt.limit) < vector * 16 + 15 {
        return None;
    }
    let mut gate = [0u8; 16];
    if read_virt(vcpu, mem, idt.base + vector * 16, &mut gate) != 16 {
        return None;
    }
    let word = |i: usize| u64::from(u16::from_le_bytes([gate[i], gate[i + 1]]));
    let high = u64::from(u32::from_le_bytes([gate[8], gate[9], gate[10], gate[11]]));
    let present = gate[5] & 0x80 != 0;
    present.then_some(word(0) | word(6) << 16 | high << 32)
}

/// What the CPU pushed entering the kernel from ring 3.
pub struct Frame {
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// At a kernel entry (RSP at the CPU's frame, no error code): the frame, if it came from ring 3.
pub fn user_frame(vcpu: &VcpuFd, mem: &GuestMemoryMmap) -> Option<Frame> {
    let rsp = vcpu.get_regs().ok()?.rsp;
    let mut raw = [0u8; 40];
    if read_virt(vcpu, mem, rsp, &mut raw) != raw.len() {
        return None;
    }
    let q = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let frame = Frame {
        rip: q(0),
        cs: q(1),
        rflags: q(2),
        rsp: q(3),
        ss: q(4),
    };
    (frame.cs & 3 == 3).then_some(frame)
}

/// Puts the vCPU back in ring 3 as the frame describes, at `rip`: what the kernel's `iretq`
/// would do, done by the VMM so that the kernel never sees the breakpoint. The segments keep
/// the kernel's flat attributes with the user selectors and privilege level.
pub fn return_to_user(vcpu: &VcpuFd, f: &Frame, rip: u64) -> Result<(), kvm_ioctls::Error> {
    let mut sregs = vcpu.get_sregs()?;
    let mut regs = vcpu.get_regs()?;
    sregs.cs.selector = f.cs as u16;
    sregs.cs.dpl = 3;
    sregs.ss.selector = f.ss as u16;
    sregs.ss.dpl = 3;
    regs.rip = rip;
    regs.rsp = f.rsp;
    // Without the trap flag KVM set for a single step: KVM sets it again if still stepping.
    regs.rflags = f.rflags & !RFLAGS_TF;
    vcpu.set_sregs(&sregs)?;
    vcpu.set_regs(&regs)
}

/// Watchpoints done by comparison, one per gdb watchpoint.
#[derive(Debug, Default)]
pub struct SoftWatches {
    watches: Vec<SoftWatch>,
}

#[derive(Debug)]
struct SoftWatch {
    addr: u64,
    len: usize,
    /// The address space the bytes were read in (0 for kernel addresses: all the same), and
    /// the bytes; None when they could not be read.
    seen: Option<(u64, Vec<u8>)>,
}

impl SoftWatches {
    pub fn is_empty(&self) -> bool {
        self.watches.is_empty()
    }

    pub fn add(&mut self, addr: u64, len: u64) -> bool {
        let Ok(len) = usize::try_from(len) else {
            return false;
        };
        if len == 0 || len > 64 {
            return false;
        }
        self.watches.push(SoftWatch {
            addr,
            len,
            seen: None,
        });
        true
    }

    pub fn remove(&mut self, addr: u64, len: u64) -> bool {
        let before = self.watches.len();
        self.watches
            .retain(|w| !(w.addr == addr && w.len as u64 == len));
        self.watches.len() != before
    }

    pub fn clear(&mut self) {
        self.watches.clear();
    }

    fn read(vcpu: &VcpuFd, mem: &GuestMemoryMmap, w: &SoftWatch) -> Option<(u64, Vec<u8>)> {
        let space = if is_user(w.addr) {
            vcpu.get_sregs().ok()?.cr3
        } else {
            0
        };
        let mut bytes = vec![0u8; w.len];
        (read_virt(vcpu, mem, w.addr, &mut bytes) == w.len).then_some((space, bytes))
    }

    /// Remembers the watched bytes before a step.
    pub fn snapshot(&mut self, vcpu: &VcpuFd, mem: &GuestMemoryMmap) {
        for w in &mut self.watches {
            w.seen = Self::read(vcpu, mem, w);
        }
    }

    /// After a step: the address of a watchpoint whose bytes changed in the same address
    /// space (a switch to another process is not a write).
    pub fn changed(&self, vcpu: &VcpuFd, mem: &GuestMemoryMmap) -> Option<u64> {
        self.watches.iter().find_map(|w| {
            let (space, before) = w.seen.as_ref()?;
            let (now_space, now) = Self::read(vcpu, mem, w)?;
            (now_space == *space && now != *before).then_some(w.addr)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_watches_add_and_remove_by_range() {
        let mut w = SoftWatches::default();
        assert!(w.is_empty());
        assert!(w.add(0x404010, 4));
        assert!(!w.add(0x404010, 0));
        assert!(!w.add(0x404010, 4096), "too long to compare at every step");
        assert!(!w.remove(0x404010, 8));
        assert!(w.remove(0x404010, 4));
        assert!(w.is_empty());
        assert!(is_user(0x404010));
        assert!(!is_user(0xffff_ffff_8010_0000));
    }
}
