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

const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
/// Xen ELF note type carrying the 32-bit physical PVH entry point.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

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
        Ok(_) => {}
    }
    std::fs::read(path).map_err(|e| ImageError::Unreadable(p, e))
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn machine_name(m: u16) -> &'static str {
    match m {
        3 => "i386",
        8 => "MIPS",
        20 => "PowerPC",
        21 => "PowerPC64",
        40 => "ARM",
        183 => "AArch64",
        243 => "RISC-V",
        _ => "unknown",
    }
}

/// Validates the ELF header and program headers of a 64-bit little-endian x86-64 ELF, and
/// finds its segments and PVH entry (if any). Used for the kernel and for user programs.
pub fn parse_elf64(path: &Path, image: &[u8]) -> Result<ElfInfo, ImageError> {
    let p = || path.to_path_buf();
    let bad = |what: &str| ImageError::Malformed(path.to_path_buf(), what.to_string());
    if image.len() < 4 || &image[..4] != b"\x7fELF" {
        return Err(ImageError::NotElf(p()));
    }
    if image.len() < 20 {
        return Err(bad("truncated ELF header"));
    }
    match image[4] {
        1 => return Err(ImageError::Elf32(p())),
        2 => {}
        c => return Err(bad(&format!("unknown ELF class {c}"))),
    }
    if image[5] != 1 {
        return Err(ImageError::BigEndian(p()));
    }
    let machine = u16_at(image, 18);
    if machine != EM_X86_64 {
        return Err(ImageError::WrongMachine(
            p(),
            machine,
            machine_name(machine),
        ));
    }
    if image.len() < 64 {
        return Err(bad("truncated ELF64 header"));
    }
    let phoff = u64_at(image, 32);
    let phentsize = u16_at(image, 54) as u64;
    let phnum = u16_at(image, 56) as u64;
    if phentsize != 56 {
        return Err(bad("program header size is not 56"));
    }
    phnum
        .checked_mul(56)
        .and_then(|n| n.checked_add(phoff))
        .filter(|&end| end <= image.len() as u64)
        .ok_or_else(|| bad("program headers lie outside the file"))?;

    let mut info = ElfInfo {
        segments: Vec::new(),
        pvh_entry: None,
    };
    for i in 0..phnum {
        let ph = (phoff + i * 56) as usize;
        let p_type = u32_at(image, ph);
        let offset = u64_at(image, ph + 8);
        let paddr = u64_at(image, ph + 24);
        let filesz = u64_at(image, ph + 32);
        let memsz = u64_at(image, ph + 40);
        if p_type != PT_LOAD && p_type != PT_NOTE {
            continue;
        }
        let file_end = offset
            .checked_add(filesz)
            .filter(|&e| e <= image.len() as u64)
            .ok_or_else(|| bad(&format!("segment {i} data lies outside the file")))?;
        if p_type == PT_LOAD {
            if filesz > memsz {
                return Err(bad(&format!("segment {i} has p_filesz > p_memsz")));
            }
            paddr
                .checked_add(memsz)
                .ok_or_else(|| bad(&format!("segment {i} wraps around the address space")))?;
            info.segments.push(Segment { paddr, memsz });
        } else if info.pvh_entry.is_none() {
            info.pvh_entry = find_pvh_note(&image[offset as usize..file_end as usize]);
        }
    }
    Ok(info)
}

/// Walks the notes of one PT_NOTE segment looking for ("Xen", XEN_ELFNOTE_PHYS32_ENTRY).
fn find_pvh_note(mut notes: &[u8]) -> Option<u64> {
    let align4 = |n: usize| n.checked_add(3).map(|n| n & !3);
    while notes.len() >= 12 {
        let namesz = u32_at(notes, 0) as usize;
        let descsz = u32_at(notes, 4) as usize;
        let ntype = u32_at(notes, 8);
        let name_end = 12usize.checked_add(align4(namesz)?)?;
        let desc_end = name_end.checked_add(align4(descsz)?)?;
        if desc_end > notes.len() {
            return None;
        }
        let name = &notes[12..12 + namesz];
        if ntype == XEN_ELFNOTE_PHYS32_ENTRY && name == b"Xen\0" && descsz >= 4 {
            // The descriptor is 4 or 8 bytes; the entry is the low 32 bits either way.
            return Some(u32_at(notes, name_end) as u64);
        }
        notes = &notes[desc_end..];
    }
    None
}

/// Validates `image` as a PVH kernel that fits the guest's RAM layout and loads its segments
/// at their physical addresses.
pub fn load_kernel(
    path: &Path,
    image: &[u8],
    memory: &GuestMemoryMmap,
    mem_bytes: u64,
) -> Result<LoadedKernel, ImageError> {
    let info = parse_elf64(path, image)?;
    let entry = info
        .pvh_entry
        .ok_or_else(|| ImageError::NoPvhNote(path.to_path_buf()))?;
    if info.segments.is_empty() {
        return Err(ImageError::Malformed(
            path.to_path_buf(),
            "no PT_LOAD segment".into(),
        ));
    }

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
    if !info
        .segments
        .iter()
        .any(|s| entry >= s.paddr && entry < s.paddr + s.memsz)
    {
        return Err(ImageError::EntryOutsideSegments(path.to_path_buf(), entry));
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
