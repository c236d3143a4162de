//! The VM: /dev/kvm, the VM file descriptor with the in-kernel interrupt controllers and PIT,
//! and guest RAM (vm-memory) registered with KVM.

use kvm_bindings::{kvm_pit_config, kvm_userspace_memory_region, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{Cap, Kvm, VmFd};
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::error::{ioctl, Error, KvmUnavailable, Result};
use crate::layout;

/// An open /dev/kvm, the VM and its memory.
pub struct Vm {
    pub kvm: Kvm,
    pub fd: VmFd,
    pub memory: GuestMemoryMmap,
    /// Guest RAM size in bytes (not counting the MMIO gap).
    pub mem_bytes: u64,
}

/// Opens /dev/kvm, turning the two common failures into advice on how to fix them.
pub fn open_kvm() -> Result<Kvm> {
    let kvm = Kvm::new().map_err(|e| match e.errno() {
        libc::ENOENT | libc::ENODEV | libc::ENXIO => KvmUnavailable::NoDevice,
        libc::EACCES | libc::EPERM => KvmUnavailable::PermissionDenied,
        _ => KvmUnavailable::Open(e),
    })?;
    let version = kvm.get_api_version();
    if version != kvm_bindings::KVM_API_VERSION as i32 {
        return Err(KvmUnavailable::ApiVersion(version).into());
    }
    // The capabilities this VMM cannot run without; checked up front for a clear message.
    for (cap, name) in [
        (Cap::Irqchip, "KVM_CAP_IRQCHIP"),
        (Cap::Irqfd, "KVM_CAP_IRQFD"),
        (Cap::Pit2, "KVM_CAP_PIT2"),
        (Cap::UserMemory, "KVM_CAP_USER_MEMORY"),
        (Cap::ExtCpuid, "KVM_CAP_EXT_CPUID"),
    ] {
        if !kvm.check_extension(cap) {
            return Err(KvmUnavailable::MissingCap(name).into());
        }
    }
    Ok(kvm)
}

impl Vm {
    /// Creates the VM with `mem_mib` MiB of RAM, the in-kernel irqchip (PIC, IOAPIC, LAPIC)
    /// and PIT, so that timers and interrupt delivery never leave the kernel.
    pub fn new(mem_mib: u64) -> Result<Vm> {
        let kvm = open_kvm()?;
        let fd = kvm.create_vm().map_err(ioctl("KVM_CREATE_VM"))?;

        // Intel VMX needs these two areas for real-mode emulation; harmless elsewhere.
        fd.set_tss_address(layout::KVM_TSS_ADDR as usize)
            .map_err(ioctl("KVM_SET_TSS_ADDR"))?;
        fd.set_identity_map_address(layout::KVM_IDENTITY_MAP_ADDR)
            .map_err(ioctl("KVM_SET_IDENTITY_MAP_ADDR"))?;
        // The irqchip must exist before the vCPU is created so that it gets an in-kernel LAPIC.
        fd.create_irq_chip().map_err(ioctl("KVM_CREATE_IRQCHIP"))?;
        let pit = kvm_pit_config {
            // A dummy speaker port (0x61) in the kernel, so PIT calibration loops work.
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        fd.create_pit2(pit).map_err(ioctl("KVM_CREATE_PIT2"))?;

        let mem_bytes = mem_mib << 20;
        let ranges: Vec<(GuestAddress, usize)> = layout::ram_regions(mem_bytes)
            .into_iter()
            .map(|(start, len)| (GuestAddress(start), len as usize))
            .collect();
        let memory = GuestMemoryMmap::from_ranges(&ranges)
            .map_err(|e| Error::Memory(format!("cannot allocate {mem_mib} MiB: {e}")))?;

        for (slot, region) in memory.iter().enumerate() {
            let host = memory
                .get_host_address(region.start_addr())
                .map_err(|e| Error::Memory(e.to_string()))?;
            let kvm_region = kvm_userspace_memory_region {
                slot: slot as u32,
                flags: 0,
                guest_phys_addr: region.start_addr().0,
                memory_size: region.len(),
                userspace_addr: host as u64,
            };
            // SAFETY: `host` is the start of a live mmap of `region.len()` bytes owned by
            // `memory`, which `Vm` keeps alive as long as the VM fd (the vCPU thread holds
            // a clone of the `Vm`'s memory until it stops running the guest).
            unsafe { fd.set_user_memory_region(kvm_region) }
                .map_err(ioctl("KVM_SET_USER_MEMORY_REGION"))?;
        }
        Ok(Vm {
            kvm,
            fd,
            memory,
            mem_bytes,
        })
    }
}
