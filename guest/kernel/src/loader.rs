//! The program loader (OSTEP figure 6.2, "OS @ boot / run"): create the process entry, allocate
//! memory, load the program, set up the user stack with argc/argv, and leave a trap frame that
//! "returns from trap" into its entry point in ring 3.
//!
//! Programs are static, non-PIE ELF64 x86-64 executables (what `musl-gcc -static` and our Rust
//! runtime produce). The ELF header checks are written out here, against the file's bounds,
//! because a bad program must never crash the kernel.

use crate::gdt::{USER_CODE, USER_DATA};
use crate::memory::frame::FRAMES;
use crate::memory::paging::{self, USER_END};
use crate::memory::{align_down, align_up, phys_to_virt, PAGE_SIZE};
use crate::process::{self, SpawnError};
use crate::trap_entry::TrapFrame;

pub const USER_STACK_TOP: u64 = 0x0000_7fff_ffff_f000;
const USER_STACK_PAGES: u64 = 16;
pub const MAX_ARGS: usize = 32;
/// Arguments, AT_RANDOM bytes and the argv/auxv vectors must fit in the top stack page.
const ARG_SPACE: usize = PAGE_SIZE as usize;

#[derive(Debug)]
pub enum LoadError {
    NotElf,
    Unsupported(&'static str),
    BadSegment,
    TooManyArgs,
    Spawn(SpawnError),
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            LoadError::NotElf => write!(f, "not an ELF file"),
            LoadError::Unsupported(why) => write!(f, "unsupported program: {why}"),
            LoadError::BadSegment => {
                write!(f, "a program header is malformed or outside user space")
            }
            LoadError::TooManyArgs => write!(f, "too many or too long arguments"),
            LoadError::Spawn(SpawnError::NoSlot) => write!(f, "the process table is full"),
            LoadError::Spawn(SpawnError::OutOfMemory) => write!(f, "out of memory"),
        }
    }
}

impl From<paging::OutOfMemory> for LoadError {
    fn from(_: paging::OutOfMemory) -> Self {
        LoadError::Spawn(SpawnError::OutOfMemory)
    }
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

struct Segment {
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    flags: u32,
}

const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;

/// Creates a ready-to-run process for program `name` (ELF image `elf`) with `args` (argv[0]
/// first). Returns its process-table slot; the caller makes it ready.
pub fn spawn(elf: &[u8], name: &str, args: &[&[u8]], parent: u32) -> Result<usize, LoadError> {
    // ELF header: magic, 64-bit, little-endian, x86-64, executable.
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" {
        return Err(LoadError::NotElf);
    }
    if elf[4] != 2 {
        return Err(LoadError::Unsupported("not a 64-bit ELF"));
    }
    if elf[5] != 1 {
        return Err(LoadError::Unsupported("not little-endian"));
    }
    if u16_at(elf, 18) != Some(62) {
        return Err(LoadError::Unsupported("not an x86-64 program"));
    }
    match u16_at(elf, 16) {
        Some(2) => {}
        Some(3) => {
            return Err(LoadError::Unsupported(
                "position-independent (link it with -static -no-pie)",
            ))
        }
        _ => return Err(LoadError::Unsupported("not an executable")),
    }
    if args.len() > MAX_ARGS {
        return Err(LoadError::TooManyArgs);
    }
    let entry = u64_at(elf, 24).ok_or(LoadError::NotElf)?;
    let phoff = u64_at(elf, 32).ok_or(LoadError::NotElf)? as usize;
    let phentsize = u16_at(elf, 54).ok_or(LoadError::NotElf)? as usize;
    let phnum = u16_at(elf, 56).ok_or(LoadError::NotElf)? as usize;
    if phentsize < 56 || phnum == 0 || phnum > 64 {
        return Err(LoadError::BadSegment);
    }
    let segment = |i: usize| -> Option<(u32, Segment)> {
        let p = phoff.checked_add(i.checked_mul(phentsize)?)?;
        Some((
            u32_at(elf, p)?,
            Segment {
                flags: u32_at(elf, p + 4)?,
                offset: u64_at(elf, p + 8)?,
                vaddr: u64_at(elf, p + 16)?,
                filesz: u64_at(elf, p + 32)?,
                memsz: u64_at(elf, p + 40)?,
            },
        ))
    };

    let table = process::table();
    let slot = table.alloc(name, parent).map_err(LoadError::Spawn)?;
    let pml4 = table.slots[slot].pml4;
    let result = (|| -> Result<(u64, u64), LoadError> {
        let mut image_end = 0;
        let mut phdr_vaddr = 0;
        for i in 0..phnum {
            let (kind, seg) = segment(i).ok_or(LoadError::BadSegment)?;
            if kind != PT_LOAD {
                continue;
            }
            let file_end = seg
                .offset
                .checked_add(seg.filesz)
                .ok_or(LoadError::BadSegment)?;
            let mem_end = seg
                .vaddr
                .checked_add(seg.memsz)
                .ok_or(LoadError::BadSegment)?;
            if seg.filesz > seg.memsz
                || file_end > elf.len() as u64
                || mem_end > USER_END
                || seg.vaddr < PAGE_SIZE
            {
                return Err(LoadError::BadSegment);
            }
            if seg.offset <= phoff as u64 && (phoff as u64) < file_end {
                phdr_vaddr = seg.vaddr + (phoff as u64 - seg.offset);
            }
            load_segment(pml4, elf, &seg)?;
            image_end = image_end.max(mem_end);
        }
        if image_end == 0 || entry >= USER_END {
            return Err(LoadError::BadSegment);
        }
        let rsp = build_stack(pml4, args, entry, phdr_vaddr, phnum as u64)?;
        Ok((rsp, align_up(image_end, PAGE_SIZE)))
    })();
    let (rsp, heap_start) = match result {
        Ok(v) => v,
        Err(e) => {
            paging::free_address_space(pml4);
            table.slots[slot].state = process::State::Unused;
            return Err(e);
        }
    };
    let p = &mut table.slots[slot];
    p.heap_start = heap_start;
    p.brk = heap_start;
    // The trap frame a return-from-trap will "restore": ring 3 at the entry point, interrupts on.
    *p.frame() = TrapFrame {
        rip: entry,
        cs: USER_CODE as u64,
        rflags: 0x202,
        rsp,
        ss: USER_DATA as u64,
        ..TrapFrame::default()
    };
    Ok(slot)
}

/// Maps a PT_LOAD segment page by page and copies its file bytes. Pages shared with an earlier
/// segment are reused, their permissions widened.
fn load_segment(pml4: u64, elf: &[u8], seg: &Segment) -> Result<(), LoadError> {
    let mut flags = paging::USER;
    if seg.flags & PF_W != 0 {
        flags |= paging::WRITABLE;
    }
    if seg.flags & PF_X == 0 {
        flags |= paging::nx();
    }
    let start = align_down(seg.vaddr, PAGE_SIZE);
    let end = align_up(seg.vaddr + seg.memsz, PAGE_SIZE);
    let mut page = start;
    while page < end {
        let frame = match paging::translate_user(pml4, page, false) {
            Some(pa) => {
                // Executable if either segment is; writable if either is.
                let old = paging::leaf_flags(pml4, page);
                let no_exec = old & flags & paging::NO_EXECUTE;
                let merged = ((old | flags) & !paging::NO_EXECUTE) | no_exec;
                let frame = pa & !(PAGE_SIZE - 1);
                paging::map(pml4, page, frame, merged)?;
                frame
            }
            None => {
                let f = FRAMES.lock().alloc_zeroed().ok_or(paging::OutOfMemory)?;
                paging::map(pml4, page, f, flags)?;
                f
            }
        };
        // The part of the file that lands in this page.
        let copy_start = page.max(seg.vaddr);
        let copy_end = (page + PAGE_SIZE).min(seg.vaddr + seg.filesz);
        if copy_start < copy_end {
            let src = (seg.offset + (copy_start - seg.vaddr)) as usize;
            let len = (copy_end - copy_start) as usize;
            let dst = phys_to_virt(frame + (copy_start - page)) as *mut u8;
            // SAFETY: `frame` is a frame of this new process, mapped in the direct map; the source
            // range was checked against the file's length; [copy_start, copy_end) is in one page.
            unsafe { core::ptr::copy_nonoverlapping(elf[src..src + len].as_ptr(), dst, len) };
        }
        page += PAGE_SIZE;
    }
    Ok(())
}

/// Maps the user stack (under an unmapped guard page) and lays out what a System V program
/// expects at its entry: argc, argv[], NULL, envp[] (empty), NULL, auxv, with the argument
/// strings and 16 random bytes above. Returns the initial RSP (16-byte aligned, at argc).
fn build_stack(
    pml4: u64,
    args: &[&[u8]],
    entry: u64,
    phdr: u64,
    phnum: u64,
) -> Result<u64, LoadError> {
    let mut top_frame = 0;
    for i in 1..=USER_STACK_PAGES {
        let f = FRAMES.lock().alloc_zeroed().ok_or(paging::OutOfMemory)?;
        paging::map(
            pml4,
            USER_STACK_TOP - i * PAGE_SIZE,
            f,
            paging::USER | paging::WRITABLE | paging::nx(),
        )?;
        if i == 1 {
            top_frame = f;
        }
    }
    let page_base = USER_STACK_TOP - PAGE_SIZE;
    // SAFETY: the top stack frame was just allocated for this process and is mapped in the direct
    // map; we fill it before the process can run.
    let page =
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(top_frame) as *mut u8, ARG_SPACE) };
    let mut sp = ARG_SPACE;

    sp -= 16;
    let random_at = page_base + sp as u64;
    let seed = crate::cpu::rdtsc();
    page[sp..sp + 8].copy_from_slice(&seed.rotate_left(17).to_le_bytes());
    page[sp + 8..sp + 16].copy_from_slice(&(seed ^ 0x9e37_79b9_7f4a_7c15).to_le_bytes());

    let mut argv = [0u64; MAX_ARGS];
    for (i, a) in args.iter().enumerate() {
        let need = a.len() + 1;
        if sp < need + 512 {
            return Err(LoadError::TooManyArgs);
        }
        sp -= need;
        page[sp..sp + a.len()].copy_from_slice(a);
        page[sp + a.len()] = 0;
        argv[i] = page_base + sp as u64;
    }

    const AT_NULL: u64 = 0;
    const AT_PHDR: u64 = 3;
    const AT_PHENT: u64 = 4;
    const AT_PHNUM: u64 = 5;
    const AT_PAGESZ: u64 = 6;
    const AT_ENTRY: u64 = 9;
    const AT_RANDOM: u64 = 25;
    let auxv = [
        (AT_PHDR, phdr),
        (AT_PHENT, 56),
        (AT_PHNUM, phnum),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_ENTRY, entry),
        (AT_RANDOM, random_at),
        (AT_NULL, 0),
    ];
    let words = 1 + args.len() + 1 + 1 + 2 * auxv.len();
    sp = (sp - words * 8) & !15;
    let mut w = sp;
    let mut put = |v: u64| {
        page[w..w + 8].copy_from_slice(&v.to_le_bytes());
        w += 8;
    };
    put(args.len() as u64);
    for a in &argv[..args.len()] {
        put(*a);
    }
    put(0); // end of argv
    put(0); // envp: empty
    for (k, v) in auxv {
        put(k);
        put(v);
    }
    Ok(page_base + sp as u64)
}
