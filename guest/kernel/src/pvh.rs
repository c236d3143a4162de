//! The PVH boot information (`hvm_start_info`, Xen's arch-x86/hvm/start_info.h) the loader left
//! for us: the memory map, the command line and the boot modules.

use crate::memory::phys_to_virt;

pub use abi::machine::pvh::MemmapEntry;
use abi::machine::pvh::{ModlistEntry, StartInfo, E820_RAM, START_INFO_MAGIC};

#[derive(Clone, Copy)]
pub struct Module {
    pub paddr: u64,
    pub size: u64,
}

pub const MAX_MEMMAP: usize = 32;
pub const MAX_MODULES: usize = 4;

/// What we keep of the boot information (copied out: the loader's memory becomes free RAM).
pub struct BootInfo {
    pub memmap: [MemmapEntry; MAX_MEMMAP],
    pub memmap_len: usize,
    pub modules: [Module; MAX_MODULES],
    pub modules_len: usize,
    pub cmdline: &'static str,
}

#[derive(Debug)]
pub enum BootInfoError {
    BadMagic(u32),
    NoMemoryMap,
}

impl core::fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            BootInfoError::BadMagic(m) => {
                write!(f, "bad magic {m:#x} (want {START_INFO_MAGIC:#x})")
            }
            BootInfoError::NoMemoryMap => write!(f, "no memory map (start_info version 0?)"),
        }
    }
}

/// Reads `hvm_start_info` at physical `paddr`. Must run while the boot direct map covers it.
pub fn read(paddr: u64) -> Result<BootInfo, BootInfoError> {
    // SAFETY: the loader put a start_info at `paddr` (PVH protocol); the direct map covers the
    // first GiB, where every PVH loader puts it. The magic is checked before anything else is used.
    let si = unsafe { &*(phys_to_virt(paddr) as *const StartInfo) };
    if si.magic != START_INFO_MAGIC {
        return Err(BootInfoError::BadMagic(si.magic));
    }
    let mut info = BootInfo {
        memmap: [MemmapEntry::default(); MAX_MEMMAP],
        memmap_len: 0,
        modules: [Module { paddr: 0, size: 0 }; MAX_MODULES],
        modules_len: 0,
        cmdline: "",
    };
    if si.version < 1 || si.memmap_paddr == 0 || si.memmap_entries == 0 {
        return Err(BootInfoError::NoMemoryMap);
    }
    let n = (si.memmap_entries as usize).min(MAX_MEMMAP);
    for i in 0..n {
        // SAFETY: `memmap_entries` entries lie at `memmap_paddr` (PVH protocol, version >= 1).
        info.memmap[i] = unsafe { *(phys_to_virt(si.memmap_paddr) as *const MemmapEntry).add(i) };
    }
    info.memmap_len = n;
    let m = (si.nr_modules as usize).min(MAX_MODULES);
    for i in 0..m {
        // SAFETY: `nr_modules` entries lie at `modlist_paddr` (PVH protocol).
        let e = unsafe { *(phys_to_virt(si.modlist_paddr) as *const ModlistEntry).add(i) };
        info.modules[i] = Module {
            paddr: e.paddr,
            size: e.size,
        };
    }
    info.modules_len = m;
    if si.cmdline_paddr != 0 {
        info.cmdline = c_str_at(si.cmdline_paddr);
    }
    Ok(info)
}

/// The NUL-terminated string at physical `paddr`, at most 4 KiB, cut at the first non-UTF-8 byte.
fn c_str_at(paddr: u64) -> &'static str {
    let p = phys_to_virt(paddr) as *const u8;
    let mut len = 0;
    // SAFETY: the loader wrote a NUL-terminated command line there; we stop at 4 KiB regardless.
    while len < 4096 && unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` bytes were just read; RAM is never unmapped from the direct map.
    let bytes = unsafe { core::slice::from_raw_parts(p, len) };
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

impl BootInfo {
    pub fn ram(&self) -> impl Iterator<Item = &MemmapEntry> {
        self.memmap[..self.memmap_len]
            .iter()
            .filter(|e| e.kind == E820_RAM)
    }

    pub fn ram_bytes(&self) -> u64 {
        self.ram().map(|e| e.size).sum()
    }

    pub fn modules(&self) -> &[Module] {
        &self.modules[..self.modules_len]
    }
}
