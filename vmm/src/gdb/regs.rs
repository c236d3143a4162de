//! Between KVM's register structures (kvm_regs, kvm_sregs, kvm_fpu) and gdb's register set
//! (`arch.rs`). Writes change only what gdb changed: gdb writes every register at once (`G`)
//! even for `set $rax = 1`, and KVM_SET_SREGS is not free (it resets KVM's MMU context).

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs};
use kvm_ioctls::VcpuFd;

type Result<T> = std::result::Result<T, kvm_ioctls::Error>;

use super::arch::LdeRegs;

/// The vCPU's registers, as KVM gives them.
#[derive(Clone, Default)]
pub struct KvmState {
    pub regs: kvm_regs,
    pub sregs: kvm_sregs,
    pub fpu: kvm_fpu,
}

impl KvmState {
    pub fn read(vcpu: &VcpuFd) -> Result<KvmState> {
        Ok(KvmState {
            regs: vcpu.get_regs()?,
            sregs: vcpu.get_sregs()?,
            fpu: vcpu.get_fpu()?,
        })
    }

    /// Writes back the parts that differ from `old`.
    pub fn write_changes(&self, old: &KvmState, vcpu: &VcpuFd) -> Result<()> {
        if self.regs != old.regs {
            vcpu.set_regs(&self.regs)?;
        }
        if self.sregs != old.sregs {
            vcpu.set_sregs(&self.sregs)?;
        }
        if self.fpu != old.fpu {
            vcpu.set_fpu(&self.fpu)?;
        }
        Ok(())
    }
}

/// gdb's order of the general registers, as fields of kvm_regs.
macro_rules! gprs {
    ($r:expr) => {
        [
            &mut $r.rax,
            &mut $r.rbx,
            &mut $r.rcx,
            &mut $r.rdx,
            &mut $r.rsi,
            &mut $r.rdi,
            &mut $r.rbp,
            &mut $r.rsp,
            &mut $r.r8,
            &mut $r.r9,
            &mut $r.r10,
            &mut $r.r11,
            &mut $r.r12,
            &mut $r.r13,
            &mut $r.r14,
            &mut $r.r15,
        ]
    };
}

pub fn to_gdb(k: &KvmState) -> LdeRegs {
    let mut out = LdeRegs::default();
    let mut regs = k.regs;
    for (dst, src) in out.core.regs.iter_mut().zip(gprs!(regs)) {
        *dst = *src;
    }
    out.core.rip = k.regs.rip;
    out.core.eflags = k.regs.rflags as u32;
    let s = &k.sregs;
    let seg = &mut out.core.segments;
    seg.cs = s.cs.selector.into();
    seg.ss = s.ss.selector.into();
    seg.ds = s.ds.selector.into();
    seg.es = s.es.selector.into();
    seg.fs = s.fs.selector.into();
    seg.gs = s.gs.selector.into();
    out.extra = [s.fs.base, s.gs.base, s.cr0, s.cr2, s.cr3, s.cr4, s.efer];

    let f = &k.fpu;
    for (st, fpr) in out.core.st.iter_mut().zip(&f.fpr) {
        st.copy_from_slice(&fpr[..10]);
    }
    let fpu = &mut out.core.fpu;
    fpu.fctrl = f.fcw.into();
    fpu.fstat = f.fsw.into();
    fpu.ftag = full_tag_word(f.ftwx, f.fsw, &f.fpr).into();
    // The 64-bit FXSAVE layout gdb's amd64 code reads: the segment fields hold the upper
    // halves of the 64-bit instruction and operand pointers.
    fpu.fioff = f.last_ip as u32;
    fpu.fiseg = (f.last_ip >> 32) as u32;
    fpu.fooff = f.last_dp as u32;
    fpu.foseg = (f.last_dp >> 32) as u32;
    fpu.fop = f.last_opcode.into();
    for (x, xmm) in out.core.xmm.iter_mut().zip(&f.xmm) {
        *x = u128::from_le_bytes(*xmm);
    }
    out.core.mxcsr = f.mxcsr;
    out
}

/// `k` with gdb's values applied. Segment selectors change alone: the hidden descriptor parts
/// (base, limit, attributes) stay as they are, except fs_base and gs_base, which gdb sets.
pub fn from_gdb(g: &LdeRegs, k: &KvmState) -> KvmState {
    let mut out = k.clone();
    for (dst, src) in gprs!(out.regs).into_iter().zip(&g.core.regs) {
        *dst = *src;
    }
    out.regs.rip = g.core.rip;
    // gdb's eflags is 32 bits; the upper half of RFLAGS is reserved (zero).
    out.regs.rflags = u64::from(g.core.eflags) | 0x2;
    let s = &mut out.sregs;
    let seg = &g.core.segments;
    s.cs.selector = seg.cs as u16;
    s.ss.selector = seg.ss as u16;
    s.ds.selector = seg.ds as u16;
    s.es.selector = seg.es as u16;
    s.fs.selector = seg.fs as u16;
    s.gs.selector = seg.gs as u16;
    [s.fs.base, s.gs.base, s.cr0, s.cr2, s.cr3, s.cr4, s.efer] = g.extra;

    let f = &mut out.fpu;
    for (fpr, st) in f.fpr.iter_mut().zip(&g.core.st) {
        fpr[..10].copy_from_slice(st);
    }
    let fpu = &g.core.fpu;
    f.fcw = fpu.fctrl as u16;
    f.fsw = fpu.fstat as u16;
    f.ftwx = abridged_tag_word(fpu.ftag as u16);
    f.last_ip = u64::from(fpu.fiseg) << 32 | u64::from(fpu.fioff);
    f.last_dp = u64::from(fpu.foseg) << 32 | u64::from(fpu.fooff);
    f.last_opcode = fpu.fop as u16;
    for (xmm, x) in f.xmm.iter_mut().zip(&g.core.xmm) {
        *xmm = x.to_le_bytes();
    }
    f.mxcsr = g.core.mxcsr;
    out
}

/// The x87 tag word gdb shows (two bits per physical register: 0 valid, 1 zero, 2 special,
/// 3 empty) from FXSAVE's abridged one (one bit: in use), by looking at each register's value.
/// `fpr` is in stack order (ST0 first); the tag word is in physical order, rotated by TOP.
fn full_tag_word(abridged: u8, fsw: u16, fpr: &[[u8; 16]; 8]) -> u16 {
    let top = usize::from((fsw >> 11) & 7);
    let mut tags = 0u16;
    for phys in 0..8 {
        let tag = if abridged & (1 << phys) == 0 {
            3
        } else {
            let st = &fpr[(phys + 8 - top) % 8];
            let exponent = u16::from_le_bytes([st[8], st[9]]) & 0x7fff;
            let mantissa = u64::from_le_bytes(st[..8].try_into().unwrap_or([0; 8]));
            match exponent {
                0x7fff => 2,
                0 if mantissa == 0 => 1,
                0 => 2,
                _ if mantissa >> 63 == 0 => 2, // unnormal: no integer bit
                _ => 0,
            }
        };
        tags |= tag << (2 * phys);
    }
    tags
}

fn abridged_tag_word(full: u16) -> u8 {
    (0..8).fold(0, |acc, phys| {
        if (full >> (2 * phys)) & 3 != 3 {
            acc | 1 << phys
        } else {
            acc
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_word_round_trip() {
        let mut fpr = [[0u8; 16]; 8];
        // ST0 = 1.0 (exponent 0x3fff, integer bit set), with TOP = 7: physical register 7.
        fpr[0][7] = 0x80;
        fpr[0][8] = 0xff;
        fpr[0][9] = 0x3f;
        let fsw = 7 << 11;
        let full = full_tag_word(0x80, fsw, &fpr);
        assert_eq!(full, 0x3fff, "registers 0-6 empty, 7 valid");
        assert_eq!(abridged_tag_word(full), 0x80);
        // A zero in use is tagged "zero".
        assert_eq!(full_tag_word(0x01, 0, &[[0u8; 16]; 8]) & 3, 1);
    }

    #[test]
    fn gdb_values_reach_kvm_and_back() {
        let mut k = KvmState::default();
        k.regs.rsp = 0x1000;
        k.regs.rflags = 0x202;
        k.sregs.cs.selector = 0x08;
        k.sregs.cs.base = 0;
        k.sregs.fs.base = 0x4000;
        k.fpu.xmm[3] = 7u128.to_le_bytes();
        k.fpu.mxcsr = 0x1f80;
        k.fpu.last_ip = 0xffff_ffff_8010_0000;
        let mut g = to_gdb(&k);
        assert_eq!(g.core.regs[7], 0x1000, "rsp is gdb's register 7");
        assert_eq!(g.extra[0], 0x4000, "fs_base");
        assert_eq!(g.core.xmm[3], 7);
        g.core.regs[0] = 60; // rax
        g.extra[1] = 0x5000; // gs_base
        let k2 = from_gdb(&g, &k);
        assert_eq!(k2.regs.rax, 60);
        assert_eq!(k2.sregs.gs.base, 0x5000);
        assert_eq!(k2.sregs.cs, k.sregs.cs);
        assert_eq!(k2.fpu, k.fpu, "unchanged FPU state survives the round trip");
        assert_eq!(to_gdb(&k2).core, g.core);
    }
}
