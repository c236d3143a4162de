//! The program loader (OSTEP figure 6.2, "OS @ boot / run"; execve's second half): a new address
//! space for a program, its segments, and a user stack with argc, argv, envp and the auxiliary
//! vector as the System V ABI lays them out. The caller puts it into a process and "returns from
//! trap" into its entry point in ring 3.
//!
//! Programs are ELF64 x86-64 executables: fixed-address ones (what `musl-gcc -static`,
//! `gcc -static` and our Rust runtime produce), PIEs (ET_DYN), which go at `abi::elf::PIE_BASE`,
//! and dynamically linked programs (what plain `gcc` and `cargo build` produce), whose PT_INTERP
//! names a program interpreter, the C library's dynamic linker (`ld.so`). As Linux's
//! binfmt_elf does, the kernel then maps that interpreter too, just below the mmap area's top
//! (`interpreter_image`), and starts the process at *its* entry; the auxiliary vector tells it
//! where the program is (AT_PHDR, AT_ENTRY) and where it is itself (AT_BASE). Everything else
//! (opening the libraries, mapping them with mmap, relocating) is the dynamic linker's work in
//! ring 3. Each image is checked by `abi::elf` against the file's bounds before anything is
//! mapped: a bad program must never crash the kernel. PT_TLS is the C library's business;
//! PT_GNU_STACK is not looked at: stacks are never executable.
//!
//! Nothing is copied that need not be. When the archive has the file's data on a page boundary
//! (our VMM writes it so), each segment becomes a region backed by the file's own pages: read-only
//! pages are mapped straight from the boot module on first touch, writable ones copied on their
//! first write, the .bss and the stack are zero pages made on demand. Copying 4 KiB costs ~0.7M
//! cycles in kvm_pvm's emulated ring 0; a program's size should cost nothing. Only an archive
//! without that alignment (an `--initrd` made by another tool) is loaded by copying.

use alloc::vec::Vec;

use crate::karc::Karc;
use crate::memory::address_space::AddressSpace;
use crate::memory::frame::FRAMES;
use crate::memory::layout::{MMAP_TOP, STACK_MAX, USER_STACK_TOP};
use crate::memory::paging::{translate_user, OutOfMemory, USER_END};
use crate::memory::{align_down, align_up, phys_to_virt, PAGE_SIZE, PHYS_OFFSET};
use abi::elf::{self, Elf, ProgramError, ProgramHeader, PF_W, PF_X};
use kcore::regions::{Backing, Region, RegionError, PROT_EXEC, PROT_READ, PROT_WRITE};

/// The most bytes of argument and environment strings (with their NULs) and pointers: Linux's
/// ARG_MAX is a quarter of the stack limit; ours is a fixed 128 KiB.
pub const ARG_MAX: usize = 128 * 1024;
/// The most argument plus environment strings.
pub const MAX_STRINGS: usize = 4096;

#[derive(Debug)]
pub enum LoadError {
    Program(ProgramError),
    /// The program interpreter (PT_INTERP's) is not one we can load (execve's ELIBBAD).
    Interpreter(ProgramError),
    TooManyArgs,
    OutOfMemory,
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            LoadError::Program(e) => write!(f, "{e}"),
            LoadError::Interpreter(e) => write!(f, "its program interpreter: {e}"),
            LoadError::TooManyArgs => write!(f, "too many or too long arguments"),
            LoadError::OutOfMemory => write!(f, "out of memory"),
        }
    }
}

impl From<OutOfMemory> for LoadError {
    fn from(_: OutOfMemory) -> Self {
        LoadError::OutOfMemory
    }
}

impl From<RegionError> for LoadError {
    fn from(e: RegionError) -> Self {
        match e {
            RegionError::OutOfMemory => LoadError::OutOfMemory,
            _ => LoadError::Program(ProgramError::SegmentOutsideUserSpace(0)),
        }
    }
}

/// argv or envp, gathered into kernel memory (from the caller's, for execve): the strings back
/// to back, and where each ends.
#[derive(Default)]
pub struct Strings {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Strings {
    pub fn push(&mut self, s: &[u8]) -> Result<(), LoadError> {
        if self.ends.len() >= MAX_STRINGS || self.bytes.len() + s.len() + 1 > ARG_MAX {
            return Err(LoadError::TooManyArgs);
        }
        self.bytes
            .try_reserve(s.len() + 1)
            .map_err(|_| LoadError::OutOfMemory)?;
        self.ends
            .try_reserve(1)
            .map_err(|_| LoadError::OutOfMemory)?;
        self.bytes.extend_from_slice(s);
        self.bytes.push(0);
        self.ends.push(self.bytes.len());
        Ok(())
    }

    /// Starts a string built by `extend` and finished by `end`.
    pub fn begin(&mut self) -> Result<(), LoadError> {
        if self.ends.len() >= MAX_STRINGS {
            return Err(LoadError::TooManyArgs);
        }
        self.ends.try_reserve(1).map_err(|_| LoadError::OutOfMemory)
    }

    pub fn extend(&mut self, part: &[u8]) -> Result<(), LoadError> {
        if self.bytes.len() + part.len() + 1 > ARG_MAX {
            return Err(LoadError::TooManyArgs);
        }
        self.bytes
            .try_reserve(part.len())
            .map_err(|_| LoadError::OutOfMemory)?;
        self.bytes.extend_from_slice(part);
        Ok(())
    }

    pub fn end(&mut self) -> Result<(), LoadError> {
        self.extend(&[])?;
        self.bytes
            .try_reserve(1)
            .map_err(|_| LoadError::OutOfMemory)?;
        self.bytes.push(0);
        self.ends.push(self.bytes.len());
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Each string with its NUL.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let s = &self.bytes[start..end];
            start = end;
            s
        })
    }

    fn total(&self) -> usize {
        self.bytes.len()
    }
}

/// A loaded program, ready to run: its address space, entry point and initial stack pointer.
pub struct Image {
    pub mm: Karc<AddressSpace>,
    pub entry: u64,
    pub rsp: u64,
    /// Where the argument strings are in the new address space, and their bytes (NULs
    /// included): /proc/PID/cmdline reads them there, as Linux's does.
    pub args: (u64, u64),
}

/// Where a program's bytes are.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// In the boot module (an archive file): its pages can be mapped straight into the program.
    Archive(&'static [u8]),
    /// Anywhere else (a file written since boot, gathered into the heap): copied.
    Copy(&'a [u8]),
}

/// A program that passed `abi::elf::check_program`, ready for `load`: checked once, and asked
/// for its interpreter before loading (the caller finds that file).
pub struct Program<'a> {
    elf: Elf<'a>,
    file_phys: Option<u64>,
}

impl<'a> Program<'a> {
    #[inline]
    pub fn check(source: Source<'a>) -> Result<Program<'a>, LoadError> {
        let (file, file_phys) = source.split();
        let elf = elf::check_program(file, USER_END).map_err(LoadError::Program)?;
        Ok(Program { elf, file_phys })
    }

    /// The path its PT_INTERP names (None for a static program).
    pub fn interpreter(&self) -> Option<&'a [u8]> {
        self.elf.interpreter()
    }
}

/// Loads `program` into a new address space with `argv` and `envp`, with `interpreter` (the
/// file its PT_INTERP names, which the caller found) when it has one. `execfn` is the path it
/// was run by (AT_EXECFN).
pub fn load(
    program: Program,
    interpreter: Option<Source>,
    argv: &Strings,
    envp: &Strings,
    execfn: &[u8],
) -> Result<Image, LoadError> {
    let Program { elf, file_phys } = program;
    if argv.total() + envp.total() + execfn.len() + 1 > ARG_MAX {
        return Err(LoadError::TooManyArgs);
    }
    let mm = AddressSpace::new()?;
    let bias = elf.load_bias();
    let image_end = map_image(&mm, &elf, file_phys, bias)?;
    mm.set_heap(align_up(image_end, PAGE_SIZE));
    mm.add_region(Region {
        start: USER_STACK_TOP - STACK_MAX,
        end: USER_STACK_TOP,
        prot: PROT_READ | PROT_WRITE,
        backing: Backing::Anon,
        shared: false,
    })?;
    let entry = elf.entry + bias;
    // Where the process starts, and AT_BASE: the interpreter's entry and bias, or the program's.
    let (start, interp_bias) = match interpreter {
        None => (entry, 0),
        Some(source) => {
            let (file, file_phys) = source.split();
            let (ld, ld_bias) = interpreter_image(file)?;
            map_image(&mm, &ld, file_phys, ld_bias)?;
            (ld.entry + ld_bias, ld_bias)
        }
    };
    let phdr = phdr_vaddr(&elf) + bias;
    let at = Aux {
        entry,
        phdr,
        phnum: elf.phnum as u64,
        base: interp_bias,
    };
    let (rsp, args_at) = build_stack(&mm, argv, envp, execfn, &at)?;
    Ok(Image {
        mm,
        entry: start,
        rsp,
        args: (args_at, argv.total() as u64),
    })
}

impl<'a> Source<'a> {
    /// The bytes, and their physical address when they can be mapped in place.
    fn split(self) -> (&'a [u8], Option<u64>) {
        match self {
            Source::Archive(f) => (f, Some(f.as_ptr() as u64 - PHYS_OFFSET)),
            Source::Copy(f) => (f, None),
        }
    }
}

/// Checks a program interpreter where it will go: its span ending at the mmap area's top,
/// where Linux puts `ld.so` too (top-down mmap then places the libraries it maps below it).
/// Returns it and its load bias.
fn interpreter_image(file: &[u8]) -> Result<(Elf<'_>, u64), LoadError> {
    elf::check_interpreter(file, MMAP_TOP, USER_END).map_err(LoadError::Interpreter)
}

/// Maps an image's PT_LOAD segments moved by `bias`: backed by the file's own pages when
/// `file_phys` says where they are and the layout allows it, else copied. Returns the end of
/// the highest segment.
fn map_image(
    mm: &AddressSpace,
    elf: &Elf,
    file_phys: Option<u64>,
    bias: u64,
) -> Result<u64, LoadError> {
    let Some(file_phys) = file_phys.filter(|&p| mappable(elf, p)) else {
        return load_by_copying(mm, elf, bias);
    };
    let mut image_end = 0;
    for seg in elf.loads() {
        let vaddr = seg.vaddr + bias;
        let start = align_down(vaddr, PAGE_SIZE);
        let skip = vaddr - start;
        mm.add_region(Region {
            start,
            end: align_up(vaddr + seg.memsz, PAGE_SIZE),
            prot: prot(&seg),
            backing: Backing::File {
                phys: file_phys + seg.offset - skip,
                len: seg.filesz + skip,
            },
            shared: false,
        })?;
        image_end = image_end.max(vaddr + seg.memsz);
    }
    Ok(image_end)
}

fn prot(seg: &ProgramHeader) -> u8 {
    let mut p = PROT_READ;
    if seg.flags & PF_W != 0 {
        p |= PROT_WRITE;
    }
    if seg.flags & PF_X != 0 {
        p |= PROT_EXEC;
    }
    p
}

/// Whether every segment can be backed by the file's own pages: the file's data starts on a
/// page, each segment's file offset and address agree within a page (as ELF requires for
/// mapping), and no two segments share a page.
fn mappable(elf: &Elf, file_phys: u64) -> bool {
    if !file_phys.is_multiple_of(PAGE_SIZE) {
        return false;
    }
    let mut prev_end = 0;
    for seg in elf.loads() {
        if seg.offset % PAGE_SIZE != seg.vaddr % PAGE_SIZE {
            return false;
        }
        let start = align_down(seg.vaddr, PAGE_SIZE);
        if start < prev_end {
            return false;
        }
        prev_end = align_up(seg.vaddr + seg.memsz, PAGE_SIZE);
    }
    true
}

/// The address of the program headers in memory, for AT_PHDR: where the segment that holds
/// them in the file puts them.
fn phdr_vaddr(elf: &Elf) -> u64 {
    elf.loads()
        .find(|s| s.offset <= elf.phoff && elf.phoff < s.offset + s.filesz)
        .map_or(0, |s| s.vaddr + (elf.phoff - s.offset))
}

/// The old way, for archives whose files are not page-aligned: anonymous regions (segments that
/// share a page merged into one, with both permissions), every page made and filled now.
fn load_by_copying(mm: &AddressSpace, elf: &Elf, bias: u64) -> Result<u64, LoadError> {
    let mut spans: Vec<(u64, u64, u8)> = Vec::new();
    for seg in elf.loads() {
        let (start, end) = (
            align_down(seg.vaddr + bias, PAGE_SIZE),
            align_up(seg.vaddr + bias + seg.memsz, PAGE_SIZE),
        );
        spans.try_reserve(1).map_err(|_| LoadError::OutOfMemory)?;
        match spans.last_mut() {
            Some(last) if start < last.1 => {
                last.1 = last.1.max(end);
                last.2 |= prot(&seg);
            }
            _ => spans.push((start, end, prot(&seg))),
        }
    }
    let mut image_end = 0;
    for &(start, end, prot) in &spans {
        mm.add_region(Region {
            start,
            end,
            prot,
            backing: Backing::Anon,
            shared: false,
        })?;
        image_end = image_end.max(end);
    }
    // Only the pages that hold file bytes are made now (as many as the file has: a segment
    // whose memsz is huge costs nothing until touched); the rest are zero pages on demand.
    for seg in elf.loads() {
        let vaddr = seg.vaddr + bias;
        let mut page = align_down(vaddr, PAGE_SIZE);
        while page < vaddr + seg.filesz {
            let frame = match translate_user(mm.pml4, page, false) {
                Some(pa) => pa,
                None => {
                    let span = spans.iter().find(|s| s.0 <= page && page < s.1);
                    let p = span.map_or(prot(&seg), |s| s.2);
                    let frame = FRAMES.lock().alloc_zeroed().ok_or(LoadError::OutOfMemory)?;
                    if let Err(e) = mm.map_now(page, frame, p & PROT_WRITE != 0, p & PROT_EXEC != 0)
                    {
                        FRAMES.lock().release(frame);
                        return Err(e.into());
                    }
                    frame
                }
            };
            // The part of the segment's file bytes that lands in this page.
            let from = page.max(vaddr);
            let to = (page + PAGE_SIZE).min(vaddr + seg.filesz);
            let data = elf.data(&seg);
            let src = &data[(from - vaddr) as usize..(to - vaddr) as usize];
            // SAFETY: `frame` is a frame of this new address space (made just now or by an
            // earlier segment sharing the page), in the direct map; [from, to) lies within
            // this one page.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    src.as_ptr(),
                    phys_to_virt(frame + (from - page)) as *mut u8,
                    src.len(),
                )
            };
            page += PAGE_SIZE;
        }
    }
    Ok(image_end)
}

/// What the auxiliary vector tells a program about its image: its entry point and program
/// headers (in memory), and its interpreter's load bias (0 without one).
struct Aux {
    entry: u64,
    phdr: u64,
    phnum: u64,
    base: u64,
}

/// Fills the top of the stack as a System V program expects at its entry: argc, argv[],
/// NULL, envp[], NULL, the auxiliary vector, and above them the strings and 16 random bytes.
/// Returns the stack pointer and where the argument strings start.
/// Returns the initial RSP (16-byte aligned, at argc). Only the pages this touches are made.
fn build_stack(
    mm: &AddressSpace,
    argv: &Strings,
    envp: &Strings,
    execfn: &[u8],
    at: &Aux,
) -> Result<(u64, u64), LoadError> {
    const AT_NULL: u64 = 0;
    const AT_PHDR: u64 = 3;
    const AT_PHENT: u64 = 4;
    const AT_PHNUM: u64 = 5;
    const AT_PAGESZ: u64 = 6;
    const AT_BASE: u64 = 7;
    const AT_ENTRY: u64 = 9;
    const AT_UID: u64 = 11;
    const AT_EUID: u64 = 12;
    const AT_GID: u64 = 13;
    const AT_EGID: u64 = 14;
    const AT_PLATFORM: u64 = 15;
    const AT_HWCAP: u64 = 16;
    const AT_CLKTCK: u64 = 17;
    const AT_SECURE: u64 = 23;
    const AT_RANDOM: u64 = 25;
    const AT_EXECFN: u64 = 31;
    const AT_SYSINFO_EHDR: u64 = 33;
    const PLATFORM: &[u8] = b"x86_64\0";

    // The block from the top down: random bytes, "x86_64", execfn, the strings; then (16-byte
    // aligned) the vectors.
    let strings = argv.total() + envp.total() + execfn.len() + 1;
    let mut top = USER_STACK_TOP - 16;
    let random_at = top;
    top -= PLATFORM.len() as u64;
    let platform_at = top;
    top -= (execfn.len() + 1) as u64;
    let execfn_at = top;
    top -= (strings - execfn.len() - 1) as u64;
    let strings_at = top;
    let auxv: [(u64, u64); 18] = [
        (AT_PHDR, at.phdr),
        (AT_PHENT, 56),
        (AT_PHNUM, at.phnum),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_BASE, at.base),
        (AT_ENTRY, at.entry),
        (AT_UID, 0),
        (AT_EUID, 0),
        (AT_GID, 0),
        (AT_EGID, 0),
        (AT_SECURE, 0),
        (AT_CLKTCK, 100),
        (AT_HWCAP, crate::cpu::cpuid(1, 0).edx as u64),
        (AT_RANDOM, random_at),
        (AT_PLATFORM, platform_at),
        (AT_EXECFN, execfn_at),
        (AT_SYSINFO_EHDR, crate::vdso::BASE),
        (AT_NULL, 0),
    ];
    let words = 1 + argv.len() + 1 + envp.len() + 1 + 2 * auxv.len();
    let rsp = (top - words as u64 * 8) & !15;
    if USER_STACK_TOP - rsp > STACK_MAX / 2 {
        return Err(LoadError::TooManyArgs);
    }

    // Lay it all out in a kernel buffer, then copy it in page by page.
    let len = (USER_STACK_TOP - rsp) as usize;
    let mut block: Vec<u8> = Vec::new();
    block
        .try_reserve_exact(len)
        .map_err(|_| LoadError::OutOfMemory)?;
    block.resize(len, 0);
    let at = |va: u64| (va - rsp) as usize;
    let seed = crate::cpu::rdtsc();
    block[at(random_at)..at(random_at) + 8].copy_from_slice(&seed.rotate_left(17).to_le_bytes());
    block[at(random_at) + 8..at(random_at) + 16]
        .copy_from_slice(&(seed ^ 0x9e37_79b9_7f4a_7c15).to_le_bytes());
    block[at(platform_at)..at(platform_at) + PLATFORM.len()].copy_from_slice(PLATFORM);
    block[at(execfn_at)..at(execfn_at) + execfn.len()].copy_from_slice(execfn);
    let mut w = at(rsp);
    let mut put = |block: &mut Vec<u8>, v: u64| {
        block[w..w + 8].copy_from_slice(&v.to_le_bytes());
        w += 8;
    };
    put(&mut block, argv.len() as u64);
    let mut s = strings_at;
    for list in [argv, envp] {
        for string in list.iter() {
            let o = at(s);
            block[o..o + string.len()].copy_from_slice(string);
            put(&mut block, s);
            s += string.len() as u64;
        }
        put(&mut block, 0);
    }
    for (k, v) in auxv {
        put(&mut block, k);
        put(&mut block, v);
    }

    let mut page = align_down(rsp, PAGE_SIZE);
    while page < USER_STACK_TOP {
        let frame = FRAMES.lock().alloc_zeroed().ok_or(LoadError::OutOfMemory)?;
        if let Err(e) = mm.map_now(page, frame, true, false) {
            FRAMES.lock().release(frame);
            return Err(e.into());
        }
        let from = page.max(rsp);
        let to = page + PAGE_SIZE;
        // SAFETY: `frame` is a fresh frame of the new address space, in the direct map; the
        // bytes [from, to) lie in this page and in `block`.
        unsafe {
            core::ptr::copy_nonoverlapping(
                block[at(from)..].as_ptr(),
                phys_to_virt(frame + (from - page)) as *mut u8,
                (to - from) as usize,
            )
        };
        page += PAGE_SIZE;
    }
    Ok((rsp, strings_at))
}
