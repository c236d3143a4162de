//! The PVH boot information: `hvm_start_info`, the e820-style memory map, the module list and
//! the command line, written at the addresses of `layout.rs`. The guest finds all of them
//! through EBX = `layout::START_INFO`.

use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::error::{Error, ImageError, Result};
use crate::layout;

use abi::machine::pvh::{E820_RAM, E820_RESERVED, START_INFO_MAGIC as XEN_HVM_START_MAGIC_VALUE};

// linux-loader's structures are what we write, the contracts crate's what the kernel reads.
const _: () = {
    use std::mem::size_of;
    assert!(size_of::<hvm_start_info>() == size_of::<abi::machine::pvh::StartInfo>());
    assert!(size_of::<hvm_memmap_table_entry>() == size_of::<abi::machine::pvh::MemmapEntry>());
    assert!(size_of::<hvm_modlist_entry>() == size_of::<abi::machine::pvh::ModlistEntry>());
};
const PAGE: u64 = 4096;

/// The e820 map: low RAM, the reserved PC hole below 1 MiB, RAM from 1 MiB, with no RAM in
/// the 32-bit MMIO gap.
pub fn memory_map(mem_bytes: u64) -> Vec<hvm_memmap_table_entry> {
    let entry = |addr: u64, end: u64, type_: u32| hvm_memmap_table_entry {
        addr,
        size: end - addr,
        type_,
        reserved: 0,
    };
    let mut map = vec![
        entry(0, layout::LOW_RAM_END, E820_RAM),
        entry(layout::LOW_RAM_END, layout::HIGH_RAM_START, E820_RESERVED),
        entry(
            layout::HIGH_RAM_START,
            mem_bytes.min(layout::MMIO_GAP_START),
            E820_RAM,
        ),
    ];
    if mem_bytes > layout::MMIO_GAP_START {
        map.push(entry(
            layout::MMIO_GAP_END,
            layout::MMIO_GAP_END + (mem_bytes - layout::MMIO_GAP_START),
            E820_RAM,
        ));
    }
    map
}

/// Where a module of `len` bytes goes: page-aligned at the top of the RAM below the MMIO gap
/// (so a kernel that maps only low memory early can still reach it), above the kernel.
pub fn module_address(len: usize, mem_bytes: u64, kernel_end: u64) -> Result<u64> {
    let top = mem_bytes.min(layout::MMIO_GAP_START);
    let too_big = || Error::from(ImageError::ModuleTooBig(len, kernel_end));
    let start = top.checked_sub(len as u64).ok_or_else(too_big)? & !(PAGE - 1);
    if start < kernel_end {
        return Err(too_big());
    }
    Ok(start)
}

/// A kernel command line that fits at `layout::CMDLINE` (checked once, when it is made).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline(String);

impl Cmdline {
    /// Checks `s`: shorter than `layout::CMDLINE_MAX` with its NUL, and no NUL inside.
    pub fn new(s: String) -> std::result::Result<Cmdline, ImageError> {
        if s.len() >= layout::CMDLINE_MAX {
            return Err(ImageError::CmdlineTooLong(s.len(), layout::CMDLINE_MAX - 1));
        }
        if s.contains('\0') {
            return Err(ImageError::CmdlineNul);
        }
        Ok(Cmdline(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Writes the command line, the modules and the start_info structures into guest memory.
pub fn write_boot_info(
    memory: &GuestMemoryMmap,
    mem_bytes: u64,
    kernel_end: u64,
    cmdline: &Cmdline,
    module: Option<&[u8]>,
) -> Result<()> {
    let mem_err = |e: vm_memory::GuestMemoryError| Error::Memory(e.to_string());
    let mut cmd = cmdline.as_str().as_bytes().to_vec();
    cmd.push(0);
    memory
        .write_slice(&cmd, GuestAddress(layout::CMDLINE))
        .map_err(mem_err)?;

    let mut modules = Vec::new();
    if let Some(bytes) = module {
        let addr = module_address(bytes.len(), mem_bytes, kernel_end)?;
        memory
            .write_slice(bytes, GuestAddress(addr))
            .map_err(mem_err)?;
        modules.push(hvm_modlist_entry {
            paddr: addr,
            size: bytes.len() as u64,
            cmdline_paddr: 0,
            reserved: 0,
        });
    }

    let map = memory_map(mem_bytes);
    let start_info = hvm_start_info {
        magic: XEN_HVM_START_MAGIC_VALUE,
        version: 1,
        flags: 0,
        nr_modules: modules.len() as u32,
        modlist_paddr: if modules.is_empty() {
            0
        } else {
            layout::MODLIST
        },
        cmdline_paddr: layout::CMDLINE,
        rsdp_paddr: 0,
        memmap_paddr: layout::MEMMAP,
        memmap_entries: map.len() as u32,
        reserved: 0,
    };
    let mut params = BootParams::new(&start_info, GuestAddress(layout::START_INFO));
    params.set_sections(&map, GuestAddress(layout::MEMMAP));
    if !modules.is_empty() {
        params.set_modules(&modules, GuestAddress(layout::MODLIST));
    }
    PvhBootConfigurator::write_bootparams::<GuestMemoryMmap>(&params, memory)
        .map_err(|e| Error::Memory(format!("writing PVH start_info: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_has_hole_and_gap() {
        let m = memory_map(4 << 30);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].type_, E820_RESERVED);
        assert_eq!(m[2].addr + m[2].size, 0xC000_0000);
        assert_eq!(m[3].addr, 0x1_0000_0000);
        assert_eq!(m[3].size, 0x4000_0000);
    }

    #[test]
    fn cmdline_checked_when_made() {
        assert_eq!(Cmdline::new("hz=250".into()).unwrap().as_str(), "hz=250");
        assert!(matches!(
            Cmdline::new("a\0b".into()),
            Err(ImageError::CmdlineNul)
        ));
        assert!(matches!(
            Cmdline::new("x".repeat(layout::CMDLINE_MAX)),
            Err(ImageError::CmdlineTooLong(..))
        ));
    }

    #[test]
    fn module_at_top_page_aligned() {
        let a = module_address(5000, 512 << 20, 0x20_0000).unwrap();
        assert_eq!(a % 4096, 0);
        assert!(a + 5000 <= 512 << 20);
        assert!(module_address(600 << 20, 512 << 20, 0x20_0000).is_err());
    }
}
