//! The guest-physical memory map our VMM writes (docs/conventions.md, "Boot (PVH)").
//! One place for every address so the loader, the PVH structures and the e820 map agree.

/// Boot GDT used for the 32-bit PVH entry state.
pub const BOOT_GDT: u64 = 0x500;
/// `hvm_start_info` (EBX at entry points here).
pub const START_INFO: u64 = 0x6000;
/// `hvm_modlist_entry` array.
pub const MODLIST: u64 = 0x6040;
/// `hvm_memmap_table_entry` array (the e820-style map).
pub const MEMMAP: u64 = 0x6100;
/// Kernel command line, NUL-terminated.
pub const CMDLINE: u64 = 0x20000;
/// Longest command line, NUL included.
pub const CMDLINE_MAX: usize = 4096;
/// End of conventional low RAM (start of the EBDA area, reserved as on a PC).
pub const LOW_RAM_END: u64 = 0x9fc00;
/// Kernel segments must start at or above 1 MiB: below is ours (boot data) and the PC hole.
pub const HIGH_RAM_START: u64 = 0x10_0000;
/// The 32-bit MMIO gap: no RAM between these two addresses (room for future devices).
pub const MMIO_GAP_START: u64 = 0xC000_0000;
pub const MMIO_GAP_END: u64 = 0x1_0000_0000;
/// KVM needs three pages for the TSS of real-mode emulation and one for the EPT identity map
/// on Intel; put them just below 4 GiB inside the MMIO gap, where they collide with nothing.
pub const KVM_TSS_ADDR: u64 = 0xfffb_d000;
pub const KVM_IDENTITY_MAP_ADDR: u64 = 0xfffb_c000;

/// The RAM regions for `mem_bytes` of guest memory: one region, or two around the MMIO gap.
pub fn ram_regions(mem_bytes: u64) -> Vec<(u64, u64)> {
    if mem_bytes <= MMIO_GAP_START {
        vec![(0, mem_bytes)]
    } else {
        vec![
            (0, MMIO_GAP_START),
            (MMIO_GAP_END, mem_bytes - MMIO_GAP_START),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_split_around_the_gap() {
        assert_eq!(ram_regions(512 << 20), vec![(0, 512 << 20)]);
        assert_eq!(
            ram_regions(4 << 30),
            vec![(0, 0xC000_0000), (0x1_0000_0000, 0x4000_0000)]
        );
    }
}
