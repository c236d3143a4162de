//! The CPUID the guest sees (docs/conventions.md, "CPUID the VMM provides"): KVM's supported
//! set, plus the TSC-deadline bit, APIC id 0, and the TSC / LAPIC-bus frequencies so the
//! guest kernel needs no calibration loop.

use kvm_bindings::{kvm_cpuid_entry2, CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Cap, Kvm, VcpuFd};
use log::{info, warn};

use crate::error::{ioctl, Result};

const LEAF1_ECX_TSC_DEADLINE: u32 = 1 << 24;
const LEAF1_ECX_HYPERVISOR: u32 = 1 << 31;
use abi::machine::cpuid::{HYPERVISOR_BASE, TIMING as HYPERVISOR_TIMING, TSC as TSC_LEAF};
/// KVM's in-kernel LAPIC timer counts at 1 GHz.
pub const APIC_BUS_KHZ: u32 = 1_000_000;

/// Builds the CPUID table for vCPU 0 and installs it.
pub fn setup_cpuid(kvm: &Kvm, vcpu: &VcpuFd) -> Result<()> {
    let mut cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(ioctl("KVM_GET_SUPPORTED_CPUID"))?;
    let tsc_deadline = kvm.check_extension(Cap::TscDeadlineTimer);
    // KVM_GET_TSC_KHZ fails where the host cannot tell; then the guest must calibrate.
    let tsc_khz = match vcpu.get_tsc_khz() {
        Ok(khz) if khz > 0 => Some(khz),
        other => {
            warn!("KVM_GET_TSC_KHZ gave {other:?}: no TSC frequency advertised to the guest");
            None
        }
    };
    info!("cpuid: tsc_khz={tsc_khz:?} tsc_deadline={tsc_deadline}");
    let entries = patch_entries(cpuid.as_slice(), tsc_deadline, tsc_khz);
    cpuid = CpuId::from_entries(&entries)
        .map_err(|e| crate::error::Error::Internal(format!("CPUID table: {e:?}")))?;
    vcpu.set_cpuid2(&cpuid).map_err(ioctl("KVM_SET_CPUID2"))
}

fn entry(function: u32, eax: u32, ebx: u32, ecx: u32, edx: u32) -> kvm_cpuid_entry2 {
    kvm_cpuid_entry2 {
        function,
        eax,
        ebx,
        ecx,
        edx,
        ..Default::default()
    }
}

/// Pure so it can be unit-tested: the supported entries in, the guest's entries out.
pub fn patch_entries(
    supported: &[kvm_cpuid_entry2],
    tsc_deadline: bool,
    tsc_khz: Option<u32>,
) -> Vec<kvm_cpuid_entry2> {
    let mut out: Vec<kvm_cpuid_entry2> = supported
        .iter()
        .filter(|e| e.function != HYPERVISOR_TIMING)
        .copied()
        .collect();
    let tsc_hz = tsc_khz
        .map(|k| k as u64 * 1000)
        .filter(|&hz| hz <= u32::MAX as u64);

    let mut max_basic = 0;
    for e in out.iter_mut() {
        match e.function {
            0 => max_basic = e.eax,
            1 => {
                if tsc_deadline {
                    e.ecx |= LEAF1_ECX_TSC_DEADLINE;
                }
                e.ecx |= LEAF1_ECX_HYPERVISOR;
                // EBX[31:24] is the initial APIC id: we have one vCPU, id 0.
                e.ebx &= 0x00ff_ffff;
            }
            // x2APIC topology leaves: EDX is the x2APIC id.
            0xb | 0x1f => e.edx = 0,
            HYPERVISOR_BASE => {
                // "KVMKVMKVM\0\0\0" in EBX, ECX, EDX; EAX the highest hypervisor leaf.
                e.eax = e.eax.max(HYPERVISOR_TIMING);
                e.ebx = u32::from_le_bytes(*b"KVMK");
                e.ecx = u32::from_le_bytes(*b"VMKV");
                e.edx = u32::from_le_bytes(*b"M\0\0\0");
            }
            TSC_LEAF => {
                if let Some(hz) = tsc_hz {
                    (e.eax, e.ebx, e.ecx) = (1, 1, hz as u32);
                }
            }
            _ => {}
        }
    }
    if !out.iter().any(|e| e.function == HYPERVISOR_BASE) {
        out.push(entry(
            HYPERVISOR_BASE,
            HYPERVISOR_TIMING,
            u32::from_le_bytes(*b"KVMK"),
            u32::from_le_bytes(*b"VMKV"),
            u32::from_le_bytes(*b"M\0\0\0"),
        ));
    }
    if let Some(khz) = tsc_khz {
        out.push(entry(HYPERVISOR_TIMING, khz, APIC_BUS_KHZ, 0, 0));
    }
    if let Some(hz) = tsc_hz {
        if !out.iter().any(|e| e.function == TSC_LEAF) {
            out.push(entry(TSC_LEAF, 1, 1, hz as u32, 0));
        }
        if max_basic < TSC_LEAF {
            // Leaves between the old maximum and 0x15 read as zero, as on a CPU without them.
            for f in max_basic + 1..TSC_LEAF {
                if !out.iter().any(|e| e.function == f) {
                    out.push(entry(f, 0, 0, 0, 0));
                }
            }
            if let Some(leaf0) = out.iter_mut().find(|e| e.function == 0) {
                leaf0.eax = TSC_LEAF;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(v: &[kvm_cpuid_entry2], f: u32) -> kvm_cpuid_entry2 {
        *v.iter().find(|e| e.function == f).unwrap()
    }

    #[test]
    fn adds_frequencies_and_deadline() {
        let supported = vec![
            entry(0, 0xd, 0, 0, 0),
            entry(1, 0, 0x0500_0800, 0, 0),
            entry(HYPERVISOR_BASE, 0x4000_0001, 0, 0, 0),
        ];
        let out = patch_entries(&supported, true, Some(2_596_150));
        assert_ne!(find(&out, 1).ecx & LEAF1_ECX_TSC_DEADLINE, 0);
        assert_eq!(find(&out, 1).ebx >> 24, 0);
        assert_eq!(find(&out, HYPERVISOR_BASE).eax, HYPERVISOR_TIMING);
        let t = find(&out, HYPERVISOR_TIMING);
        assert_eq!((t.eax, t.ebx), (2_596_150, 1_000_000));
        let l15 = find(&out, TSC_LEAF);
        assert_eq!((l15.eax, l15.ebx, l15.ecx), (1, 1, 2_596_150_000));
        assert_eq!(find(&out, 0).eax, TSC_LEAF);
        assert_eq!(find(&out, 0x14).eax, 0);
    }

    #[test]
    fn no_leaf_15_when_hz_overflows() {
        let supported = vec![entry(0, 0xd, 0, 0, 0)];
        let out = patch_entries(&supported, false, Some(5_000_000));
        assert!(out.iter().all(|e| e.function != TSC_LEAF));
        assert_eq!(find(&out, 0).eax, 0xd);
    }
}
