//! Loading the kernel ELF into guest memory.
//!
//! linux-loader does the copying, but it checks little (any class, any machine, segments are
//! only bounded by whatever memory happens to exist), so the header, the program headers and
//! the PVH note are validated here first, each failure a precise `ImageError`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use linux_loader::loader::{elf::Elf, elf::PvhBootCapability, KernelLoader};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::error::ImageError;
use crate::layout;

/// What the rest of the boot needs from the kernel image.
#[derive(Debug, Clone, Copy)]
pub struct LoadedKernel {
    /// 32-bit physical PVH entry point.
    pub entry: u64,
    /// First byte above every loaded segment (boot modules go above this).
    pub end: u64,
}

/// One PT_LOAD segment, as far as placement is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub paddr: u64,
    pub memsz: u64,
}

/// The facts read from a validated ELF64 x86-64 image.
#[derive(Debug)]
pub struct ElfInfo {
    pub segments: Vec<Segment>,
    pub pvh_entry: Option<u64>,
}

/// Reads a file the user named, with a distinct error for missing, directory and unreadable.
pub fn read_user_file(path: &Path) -> Result<Vec<u8>, ImageError> {
    let p = path.to_path_buf();
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ImageError::Missing(p)),
        Err(e) => return Err(ImageError::Unreadable(p, e)),
        Ok(m) if m.is_dir() => return Err(ImageError::Directory(p)),
        // A device or a FIFO would be read forever or wait forever (/dev/zero, a named pipe).
        Ok(m) if !m.is_file() => return Err(ImageError::NotRegular(p)),
        Ok(_) => {}
    }
    std::fs::read(path).map_err(|e| ImageError::Unreadable(p, e))
}

/// A kernel image that passed every check that needs no guest RAM: a valid ELF64 x86-64 with
/// a PVH entry inside one of its segments. Parsed once, before KVM is touched, so a bad file is
/// reported as such even where KVM is unusable; `load_kernel` then only places it.
pub struct KernelImage<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    info: ElfInfo,
    entry: u64,
}

impl<'a> KernelImage<'a> {
    pub fn parse(path: &'a Path, bytes: &'a [u8]) -> Result<KernelImage<'a>, ImageError> {
        let info = parse_elf64(path, bytes)?;
        let entry = info
            .pvh_entry
            .ok_or_else(|| ImageError::NoPvhNote(path.to_path_buf()))?;
        if info.segments.is_empty() {
            return Err(ImageError::Malformed(
                path.to_path_buf(),
                "no PT_LOAD segment".into(),
            ));
        }
        if !info
            .segments
            .iter()
            .any(|s| entry >= s.paddr && entry < s.paddr + s.memsz)
        {
            return Err(ImageError::EntryOutsideSegments(path.to_path_buf(), entry));
        }
        Ok(KernelImage {
            path,
            bytes,
            info,
            entry,
        })
    }
}

/// Validates the ELF header and program headers of a 64-bit little-endian x86-64 ELF (with
/// `abi::elf`, the same checks the kernel makes), and finds its segments and PVH entry.
pub fn parse_elf64(path: &Path, image: &[u8]) -> Result<ElfInfo, ImageError> {
    let elf = abi::elf::Elf::parse(image).map_err(|e| ImageError::Elf(path.to_path_buf(), e))?;
    Ok(ElfInfo {
        segments: elf
            .loads()
            .map(|p| Segment {
                paddr: p.paddr,
                memsz: p.memsz,
            })
            .collect(),
        pvh_entry: elf.pvh_entry(),
    })
}

/// Checks a `--user` program the way the kernel will before it runs it: a static, non-PIE
/// x86-64 executable whose segments lie in user space. Refused here, it is one clear line and
/// status 3 before the VM boots, rather than a failed boot.
pub fn check_user_program(path: &Path, image: &[u8]) -> Result<(), ImageError> {
    abi::elf::check_program(image, USER_END)
        .map(|_| ())
        .map_err(|e| ImageError::Program(path.to_path_buf(), e))
}

/// The end of the user half of a guest address space (x86-64's lower canonical half).
const USER_END: u64 = 0x0000_8000_0000_0000;

/// Checks that a parsed kernel fits the guest's RAM layout and loads its segments at their
/// physical addresses.
pub fn load_kernel(
    kernel: &KernelImage,
    memory: &GuestMemoryMmap,
    mem_bytes: u64,
) -> Result<LoadedKernel, ImageError> {
    let (path, image, info, entry) = (kernel.path, kernel.bytes, &kernel.info, kernel.entry);

    // Segments go in the RAM from 1 MiB up to the MMIO gap or the end of RAM: below 1 MiB are
    // our boot structures, and one segment must not straddle the gap.
    let low_end = mem_bytes.min(layout::MMIO_GAP_START);
    let high_end = layout::MMIO_GAP_END + mem_bytes.saturating_sub(layout::MMIO_GAP_START);
    let mut end = 0;
    for (i, s) in info.segments.iter().enumerate() {
        let seg_end = s.paddr + s.memsz;
        let in_low = s.paddr >= layout::HIGH_RAM_START && seg_end <= low_end;
        let in_high = mem_bytes > layout::MMIO_GAP_START
            && s.paddr >= layout::MMIO_GAP_END
            && seg_end <= high_end;
        if !in_low && !in_high {
            return Err(ImageError::SegmentOutsideRam(
                path.to_path_buf(),
                i,
                s.paddr,
                seg_end,
                low_end,
            ));
        }
        end = end.max(seg_end);
    }

    let loaded = Elf::load(memory, None, &mut Cursor::new(image), None)
        .map_err(|e| ImageError::Loader(path.to_path_buf(), e.to_string()))?;
    // linux-loader keeps the answer of the last PT_NOTE only; ours looks at all of them. A
    // different address, though, means the two parsers disagree: refuse rather than guess.
    if let PvhBootCapability::PvhEntryPresent(GuestAddress(a)) = loaded.pvh_boot_cap {
        if a != entry {
            return Err(ImageError::Loader(
                path.to_path_buf(),
                format!("PVH entry {a:#x} found by linux-loader, {entry:#x} by us"),
            ));
        }
    }
    Ok(LoadedKernel { entry, end })
}

/// The path printed for the kernel embedded at build time.
pub fn embedded_kernel_path() -> PathBuf {
    PathBuf::from("<embedded kernel>")
}
