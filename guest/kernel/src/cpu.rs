//! What the CPU offers, read once at boot from CPUID.

use core::arch::x86_64::{__cpuid, __cpuid_count, CpuidResult};

pub fn cpuid(leaf: u32, sub: u32) -> CpuidResult {
    __cpuid_count(leaf, sub)
}

#[derive(Clone, Copy, Default)]
pub struct Features {
    pub vendor: [u8; 12],
    pub hypervisor: [u8; 12],
    pub max_leaf: u32,
    pub max_hv_leaf: u32,
    pub x2apic: bool,
    pub tsc_deadline: bool,
    pub nx: bool,
    pub smep: bool,
    pub smap: bool,
    pub pdpe1gb: bool,
    pub fsgsbase: bool,
}

impl Features {
    pub fn detect() -> Self {
        let l0 = __cpuid(0);
        let mut f = Features {
            max_leaf: l0.eax,
            ..Default::default()
        };
        f.vendor[0..4].copy_from_slice(&l0.ebx.to_le_bytes());
        f.vendor[4..8].copy_from_slice(&l0.edx.to_le_bytes());
        f.vendor[8..12].copy_from_slice(&l0.ecx.to_le_bytes());
        let l1 = cpuid(1, 0);
        f.x2apic = l1.ecx & (1 << 21) != 0;
        f.tsc_deadline = l1.ecx & (1 << 24) != 0;
        let hypervisor_present = l1.ecx & (1 << 31) != 0;
        if f.max_leaf >= 7 {
            let l7 = cpuid(7, 0);
            f.fsgsbase = l7.ebx & 1 != 0;
            f.smep = l7.ebx & (1 << 7) != 0;
            f.smap = l7.ebx & (1 << 20) != 0;
        }
        let ext = cpuid(0x8000_0001, 0);
        f.nx = ext.edx & (1 << 20) != 0;
        f.pdpe1gb = ext.edx & (1 << 26) != 0;
        if hypervisor_present {
            let hv = cpuid(abi::machine::cpuid::HYPERVISOR_BASE, 0);
            f.max_hv_leaf = hv.eax;
            f.hypervisor[0..4].copy_from_slice(&hv.ebx.to_le_bytes());
            f.hypervisor[4..8].copy_from_slice(&hv.ecx.to_le_bytes());
            f.hypervisor[8..12].copy_from_slice(&hv.edx.to_le_bytes());
        }
        f
    }

    pub fn vendor_str(&self) -> &str {
        core::str::from_utf8(&self.vendor).unwrap_or("?")
    }

    pub fn hypervisor_str(&self) -> &str {
        let end = self.hypervisor.iter().position(|&b| b == 0).unwrap_or(12);
        match core::str::from_utf8(&self.hypervisor[..end]) {
            Ok("") => "none",
            Ok(s) => s,
            Err(_) => "?",
        }
    }
}

/// `lfence; rdtsc`: a TSC read that waits for earlier instructions. (`rdtscp` kills the VM in
/// ring 0 on kvm_pvm.)
#[inline(always)]
pub fn rdtsc() -> u64 {
    let lo: u32;
    let hi: u32;
    // SAFETY: reads the time-stamp counter; no memory is touched.
    unsafe {
        core::arch::asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack));
    }
    ((hi as u64) << 32) | lo as u64
}
