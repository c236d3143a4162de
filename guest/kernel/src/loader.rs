//! The program loader (OSTEP figure 6.2, "OS @ boot / run"): create the process entry, allocate
//! memory, load the program, set up the user stack with argc/argv, and leave a trap frame that
//! "returns from trap" into its entry point in ring 3.
//!
//! Programs are static, non-PIE ELF64 x86-64 executables (what `musl-gcc -static` and our Rust
//! runtime produce), checked by `abi::elf::check_program` against the file's bounds before
//! anything is mapped: a bad program must never crash the kernel.

use crate::gdt::{USER_CODE, USER_DATA};
use crate::memory::frame::FRAMES;
use crate::memory::paging::{self, USER_END};
use crate::memory::{align_down, align_up, phys_to_virt, PAGE_SIZE};
use crate::process::{Process, SpawnError, Tasks};
use crate::trap_frame::TrapFrame;
use abi::elf::{self, ProgramError, ProgramHeader, PF_W, PF_X};
use core::sync::atomic::Ordering::Relaxed;

pub const USER_STACK_TOP: u64 = 0x0000_7fff_ffff_f000;
const USER_STACK_PAGES: u64 = 16;
pub const MAX_ARGS: usize = 32;
/// Arguments, AT_RANDOM bytes and the argv/auxv vectors must fit in the top stack page.
const ARG_SPACE: usize = PAGE_SIZE as usize;

#[derive(Debug)]
pub enum LoadError {
    Program(ProgramError),
    TooManyArgs,
    Spawn(SpawnError),
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            LoadError::Program(e) => write!(f, "{e}"),
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

/// Creates a ready-to-run process for program `name` (ELF image `elf`) with `args` (argv[0]
/// first), a child of `parent`. Returns it; the caller makes it ready.
pub fn spawn(
    t: &mut Tasks,
    elf: &[u8],
    name: &str,
    args: &[&[u8]],
    parent: u32,
) -> Result<&'static Process, LoadError> {
    let elf = elf::check_program(elf, USER_END).map_err(LoadError::Program)?;
    if args.len() > MAX_ARGS {
        return Err(LoadError::TooManyArgs);
    }
    let p = t.alloc(name, parent).map_err(LoadError::Spawn)?;
    let pml4 = p.pml4();
    let result = (|| -> Result<(u64, u64), LoadError> {
        let mut image_end = 0;
        let mut phdr_vaddr = 0;
        let phoff = elf.phoff;
        for seg in elf.loads() {
            if seg.offset <= phoff && phoff < seg.offset + seg.filesz {
                phdr_vaddr = seg.vaddr + (phoff - seg.offset);
            }
            load_segment(pml4, elf.data(&seg), &seg)?;
            image_end = image_end.max(seg.vaddr + seg.memsz);
        }
        let entry = elf.entry;
        let phnum = elf.phnum;
        let rsp = build_stack(pml4, args, entry, phdr_vaddr, phnum as u64)?;
        Ok((rsp, align_up(image_end, PAGE_SIZE)))
    })();
    let (rsp, heap_start) = match result {
        Ok(v) => v,
        Err(e) => {
            paging::free_address_space(pml4);
            t.release(p);
            return Err(e);
        }
    };
    p.heap_start.store(heap_start, Relaxed);
    p.brk.store(heap_start, Relaxed);
    // The trap frame a return-from-trap will "restore": ring 3 at the entry point, interrupts on.
    let frame = TrapFrame {
        rip: elf.entry,
        cs: USER_CODE as u64,
        rflags: 0x202,
        rsp,
        ss: USER_DATA as u64,
        ..TrapFrame::default()
    };
    // SAFETY: the frame slot at the top of `p`'s kernel stack is mapped and p's own; `p` is an
    // Embryo, so nothing else reads or writes its stack.
    unsafe { p.frame_ptr().write(frame) };
    Ok(p)
}

/// Maps a PT_LOAD segment page by page and copies its file bytes. Pages shared with an earlier
/// segment are reused, their permissions widened.
/// `data` is the segment's file bytes (`seg.filesz` of them).
fn load_segment(pml4: u64, data: &[u8], seg: &ProgramHeader) -> Result<(), LoadError> {
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
            let src = (copy_start - seg.vaddr) as usize;
            let len = (copy_end - copy_start) as usize;
            let dst = phys_to_virt(frame + (copy_start - page)) as *mut u8;
            // SAFETY: `frame` is a frame of this new process, mapped in the direct map; the source
            // range was checked against the file's length; [copy_start, copy_end) is in one page.
            unsafe { core::ptr::copy_nonoverlapping(data[src..src + len].as_ptr(), dst, len) };
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
