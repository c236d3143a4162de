//! The vCPU's state at the PVH entry (https://xenbits.xen.org/docs/unstable/misc/pvh.html):
//! 32-bit protected mode, paging off, flat segments from a boot GDT in guest memory at
//! `layout::BOOT_GDT`, EBX = start_info, EIP = the PVH entry.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_segment};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::error::{ioctl, Error, Result};
use crate::layout;

/// GDT entries: null, flat 32-bit code (0x08), flat data (0x10), 32-bit TSS (0x18).
/// Flags/access bytes as Cloud Hypervisor and Firecracker use for PVH.
const GDT: [u64; 4] = [
    0,
    gdt_entry(0xc09b, 0, 0xffff_ffff),
    gdt_entry(0xc093, 0, 0xffff_ffff),
    gdt_entry(0x008b, 0, 0x67),
];
const CODE_SEL: u16 = 0x08;
const DATA_SEL: u16 = 0x10;
const TSS_SEL: u16 = 0x18;

const X86_CR0_PE: u64 = 1;
const X86_CR0_ET: u64 = 1 << 4;

/// Packs a segment descriptor from flags (G, D/B, L, AVL in bits 12..15; access byte in 0..7).
const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << 32)
        | ((flags as u64 & 0xf0ff) << 40)
        | ((limit as u64 & 0x000f_0000) << 32)
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0x0000_ffff)
}

/// Unpacks a descriptor into the form KVM wants, so the hidden segment state matches the GDT.
fn kvm_segment_from_gdt(entry: u64, selector: u16) -> kvm_segment {
    let base = ((entry >> 16) & 0xff_ffff) | ((entry >> 32) & 0xff00_0000);
    let raw_limit = ((entry & 0xffff) | ((entry >> 32) & 0xf_0000)) as u32;
    let g = ((entry >> 55) & 1) as u8;
    let limit = if g == 1 {
        (raw_limit << 12) | 0xfff
    } else {
        raw_limit
    };
    kvm_segment {
        base,
        limit,
        selector,
        type_: ((entry >> 40) & 0xf) as u8,
        present: ((entry >> 47) & 1) as u8,
        dpl: ((entry >> 45) & 3) as u8,
        db: ((entry >> 54) & 1) as u8,
        s: ((entry >> 44) & 1) as u8,
        l: ((entry >> 53) & 1) as u8,
        g,
        avl: ((entry >> 52) & 1) as u8,
        unusable: 0,
        padding: 0,
    }
}

/// Writes the boot GDT and puts the vCPU in the PVH entry state.
pub fn setup_pvh_entry_state(
    vcpu: &VcpuFd,
    memory: &GuestMemoryMmap,
    entry: u64,
    start_info: u64,
) -> Result<()> {
    for (i, e) in GDT.iter().enumerate() {
        memory
            .write_obj(*e, GuestAddress(layout::BOOT_GDT + 8 * i as u64))
            .map_err(|e| Error::Memory(e.to_string()))?;
    }

    let mut sregs = vcpu.get_sregs().map_err(ioctl("KVM_GET_SREGS"))?;
    sregs.gdt.base = layout::BOOT_GDT;
    sregs.gdt.limit = (GDT.len() * 8 - 1) as u16;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cs = kvm_segment_from_gdt(GDT[1], CODE_SEL);
    let data = kvm_segment_from_gdt(GDT[2], DATA_SEL);
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = kvm_segment_from_gdt(GDT[3], TSS_SEL);
    sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
    vcpu.set_sregs(&sregs).map_err(ioctl("KVM_SET_SREGS"))?;

    let regs = kvm_regs {
        rflags: 0x2,
        rip: entry,
        rbx: start_info,
        ..Default::default()
    };
    vcpu.set_regs(&regs).map_err(ioctl("KVM_SET_REGS"))?;

    // The power-on x87/SSE state, so a guest enabling SSE starts from defined control words.
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(ioctl("KVM_SET_FPU"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_entries_decode_flat() {
        let cs = kvm_segment_from_gdt(GDT[1], CODE_SEL);
        assert_eq!(
            (cs.base, cs.limit, cs.type_, cs.db, cs.l),
            (0, 0xffff_ffff, 0xb, 1, 0)
        );
        let tr = kvm_segment_from_gdt(GDT[3], TSS_SEL);
        assert_eq!((tr.limit, tr.type_, tr.s, tr.present), (0x67, 0xb, 0, 1));
        assert_eq!(GDT[1], 0x00cf_9b00_0000_ffff);
    }
}
