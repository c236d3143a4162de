//! ELF64 validation, shared by the VMM (the kernel image, and `--user` programs before boot) and
//! the kernel (every program it loads). Everything is checked against the file's bounds with
//! overflow-safe arithmetic: any byte string gives `Ok` or a typed error, never a panic or an
//! out-of-bounds read (property-tested).

use core::fmt;

pub const EM_X86_64: u16 = 62;
pub const ET_EXEC: u16 = 2;
pub const ET_DYN: u16 = 3;
pub const PT_LOAD: u32 = 1;
pub const PT_DYNAMIC: u32 = 2;
pub const PT_INTERP: u32 = 3;
pub const PT_NOTE: u32 = 4;
pub const PT_PHDR: u32 = 6;
pub const PT_TLS: u32 = 7;
pub const PT_GNU_STACK: u32 = 0x6474_e551;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;
const EHDR_LEN: usize = 64;
const PHDR_LEN: usize = 56;
/// More program headers than this is not a program anyone built (Linux allows 64 KiB of them).
pub const MAX_PHDRS: usize = 128;
const PAGE: u64 = 4096;
/// Where a position-independent executable (ET_DYN: a static PIE, Rust's default for musl) is
/// loaded: Linux's ELF_ET_DYN_BASE on x86-64 without address randomisation.
pub const PIE_BASE: u64 = 0x5555_5555_4000;

/// Why a file is not an ELF64 x86-64 image we can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// No `\x7fELF` magic.
    NotElf,
    /// Shorter than its header says.
    Truncated,
    /// ELFCLASS32.
    Elf32,
    UnknownClass(u8),
    BigEndian,
    /// e_machine is not x86-64.
    WrongMachine(u16),
    /// e_phentsize is not 56.
    BadPhdrSize(u16),
    TooManyPhdrs(u16),
    /// The program-header table lies outside the file.
    PhdrsOutsideFile,
    /// Program header `n`'s data lies outside the file.
    SegmentOutsideFile(usize),
    /// Program header `n` (PT_LOAD) has p_filesz > p_memsz.
    FileszOverMemsz(usize),
    /// Program header `n`'s addresses wrap around.
    SegmentWraps(usize),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            ElfError::NotElf => write!(f, "not an ELF file (bad magic)"),
            ElfError::Truncated => write!(f, "truncated ELF header"),
            ElfError::Elf32 => write!(
                f,
                "is a 32-bit ELF (ELFCLASS32); a 64-bit x86-64 ELF is needed"
            ),
            ElfError::UnknownClass(c) => write!(f, "unknown ELF class {c}"),
            ElfError::BigEndian => write!(
                f,
                "is a big-endian ELF; a little-endian x86-64 ELF is needed"
            ),
            ElfError::WrongMachine(m) => {
                write!(
                    f,
                    "ELF for machine {m} ({}), not x86-64 (62)",
                    machine_name(m)
                )
            }
            ElfError::BadPhdrSize(n) => write!(f, "program header size is {n}, not 56"),
            ElfError::TooManyPhdrs(n) => write!(f, "{n} program headers (at most {MAX_PHDRS})"),
            ElfError::PhdrsOutsideFile => write!(f, "program headers lie outside the file"),
            ElfError::SegmentOutsideFile(i) => write!(f, "segment {i} data lies outside the file"),
            ElfError::FileszOverMemsz(i) => write!(f, "segment {i} has p_filesz > p_memsz"),
            ElfError::SegmentWraps(i) => write!(f, "segment {i} wraps around the address space"),
        }
    }
}

pub fn machine_name(m: u16) -> &'static str {
    match m {
        3 => "i386",
        8 => "MIPS",
        20 => "PowerPC",
        21 => "PowerPC64",
        40 => "ARM",
        62 => "x86-64",
        183 => "AArch64",
        243 => "RISC-V",
        _ => "unknown",
    }
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// One program header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramHeader {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

/// A validated ELF64 x86-64 image: header and program headers are within the file, and every
/// segment's file range and address ranges are sane (not yet: where it may be loaded).
#[derive(Clone, Copy, Debug)]
pub struct Elf<'a> {
    bytes: &'a [u8],
    pub kind: u16,
    pub entry: u64,
    pub phoff: u64,
    pub phnum: usize,
    /// The first PT_INTERP header's data (offset, size), noted while `parse` checks them all.
    interp: Option<(u64, u64)>,
}

impl<'a> Elf<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Elf<'a>, ElfError> {
        if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
            return Err(ElfError::NotElf);
        }
        if bytes.len() < 20 {
            return Err(ElfError::Truncated);
        }
        match bytes[4] {
            1 => return Err(ElfError::Elf32),
            2 => {}
            c => return Err(ElfError::UnknownClass(c)),
        }
        if bytes[5] != 1 {
            return Err(ElfError::BigEndian);
        }
        let machine = u16_at(bytes, 18);
        if machine != EM_X86_64 {
            return Err(ElfError::WrongMachine(machine));
        }
        if bytes.len() < EHDR_LEN {
            return Err(ElfError::Truncated);
        }
        let phoff = u64_at(bytes, 32);
        let phentsize = u16_at(bytes, 54);
        let phnum = u16_at(bytes, 56);
        if phnum as usize > MAX_PHDRS {
            return Err(ElfError::TooManyPhdrs(phnum));
        }
        if phnum != 0 && phentsize as usize != PHDR_LEN {
            return Err(ElfError::BadPhdrSize(phentsize));
        }
        (phnum as u64)
            .checked_mul(PHDR_LEN as u64)
            .and_then(|n| n.checked_add(phoff))
            .filter(|&end| end <= bytes.len() as u64)
            .ok_or(ElfError::PhdrsOutsideFile)?;
        let mut elf = Elf {
            bytes,
            kind: u16_at(bytes, 16),
            entry: u64_at(bytes, 24),
            phoff,
            phnum: phnum as usize,
            interp: None,
        };
        for (i, ph) in elf.program_headers().enumerate() {
            if ph.kind == PT_INTERP && elf.interp.is_none() {
                elf.interp = Some((ph.offset, ph.filesz));
            }
            ph.offset
                .checked_add(ph.filesz)
                .filter(|&e| e <= bytes.len() as u64)
                .ok_or(ElfError::SegmentOutsideFile(i))?;
            if ph.kind == PT_LOAD && ph.filesz > ph.memsz {
                return Err(ElfError::FileszOverMemsz(i));
            }
            if ph.vaddr.checked_add(ph.memsz).is_none() || ph.paddr.checked_add(ph.memsz).is_none()
            {
                return Err(ElfError::SegmentWraps(i));
            }
        }
        Ok(elf)
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn program_headers(&self) -> impl Iterator<Item = ProgramHeader> + 'a {
        let (bytes, phoff) = (self.bytes, self.phoff as usize);
        (0..self.phnum).map(move |i| {
            let p = phoff + i * PHDR_LEN;
            // One bounds check for the whole header (`parse` checked they are all inside the
            // file); the fields are then fixed offsets into an array, plain loads. A kernel
            // decodes every header several times per exec.
            let h: &[u8; PHDR_LEN] = bytes[p..p + PHDR_LEN]
                .try_into()
                .expect("a PHDR_LEN slice is a PHDR_LEN array");
            let w = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
            let q = |o: usize| {
                u64::from_le_bytes([
                    h[o],
                    h[o + 1],
                    h[o + 2],
                    h[o + 3],
                    h[o + 4],
                    h[o + 5],
                    h[o + 6],
                    h[o + 7],
                ])
            };
            ProgramHeader {
                kind: w(0),
                flags: w(4),
                offset: q(8),
                vaddr: q(16),
                paddr: q(24),
                filesz: q(32),
                memsz: q(40),
                align: q(48),
            }
        })
    }

    pub fn loads(&self) -> impl Iterator<Item = ProgramHeader> + 'a {
        self.program_headers().filter(|p| p.kind == PT_LOAD)
    }

    /// The file bytes of a program header (in bounds: `parse` checked every one).
    pub fn data(&self, ph: &ProgramHeader) -> &'a [u8] {
        &self.bytes[ph.offset as usize..(ph.offset + ph.filesz) as usize]
    }

    /// The 32-bit physical entry point of the Xen PVH note, if a PT_NOTE segment has one.
    pub fn pvh_entry(&self) -> Option<u64> {
        self.program_headers()
            .filter(|p| p.kind == PT_NOTE)
            .find_map(|p| find_pvh_note(self.data(&p)))
    }

    /// What to add to the addresses in the file (segments, entry) to get the loaded ones: 0
    /// for ET_EXEC; for ET_DYN, what puts its first segment's page at `PIE_BASE`.
    pub fn load_bias(&self) -> u64 {
        if self.kind != ET_DYN {
            return 0;
        }
        let first = self.loads().map(|p| p.vaddr).min().unwrap_or(0) & !(PAGE - 1);
        PIE_BASE.saturating_sub(first)
    }

    pub fn has_interp(&self) -> bool {
        self.interp.is_some()
    }

    /// The path of the program interpreter (the dynamic linker, `/lib64/ld-linux-x86-64.so.2`)
    /// that PT_INTERP names, without its NUL; None without PT_INTERP, or when its bytes are not
    /// a path (`check_program` refuses such a program).
    pub fn interpreter(&self) -> Option<&'a [u8]> {
        let (offset, size) = self.interp?;
        // In bounds: `parse` checked every header's data against the file.
        let data = &self.bytes[offset as usize..(offset + size) as usize];
        let (nul, path) = data.split_last()?;
        let good = *nul == 0 && !path.is_empty() && path.len() < PATH_MAX && !path.contains(&0);
        good.then_some(path)
    }

    /// The bias that puts this image's first page at `base` (ET_DYN), or 0 (ET_EXEC, which
    /// goes where its addresses say).
    pub fn bias_at(&self, base: u64) -> u64 {
        if self.kind != ET_DYN {
            return 0;
        }
        let first = self.loads().map(|p| p.vaddr).min().unwrap_or(0) & !(PAGE - 1);
        base.wrapping_sub(first)
    }

    /// The bytes from the first segment's page to the end of the last segment, page-rounded:
    /// the room a position-independent image needs (0 when a segment's end overflows).
    pub fn span(&self) -> u64 {
        let first = self.loads().map(|p| p.vaddr).min().unwrap_or(0) & !(PAGE - 1);
        let end = self
            .loads()
            .map(|p| {
                p.vaddr
                    .checked_add(p.memsz)
                    .and_then(|e| e.checked_add(PAGE - 1))
            })
            .try_fold(0u64, |m, e| e.map(|e| m.max(e & !(PAGE - 1))));
        end.map_or(0, |e| e.saturating_sub(first))
    }
}

/// The longest path PT_INTERP may hold, its NUL included (Linux's PATH_MAX).
pub const PATH_MAX: usize = 4096;

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
        if ntype == crate::machine::pvh::XEN_ELFNOTE_PHYS32_ENTRY && name == b"Xen\0" && descsz >= 4
        {
            // The descriptor is 4 or 8 bytes; the entry is the low 32 bits either way.
            return Some(u32_at(notes, name_end) as u64);
        }
        notes = &notes[desc_end..];
    }
    None
}

/// Why a valid ELF is not a program our kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramError {
    Elf(ElfError),
    /// PT_INTERP does not hold a path: a NUL-terminated string, shorter than `PATH_MAX`.
    BadInterpreterPath,
    /// The program interpreter has PT_INTERP itself (a dynamic linker must not need one).
    NestedInterpreter,
    /// Neither ET_EXEC nor ET_DYN (a relocatable object, a core file...).
    NotExecutable(u16),
    NoLoadSegment,
    /// PT_LOAD `n` lies outside user space (below the first page or above `user_end`).
    SegmentOutsideUserSpace(usize),
    EntryOutsideUserSpace(u64),
}

impl From<ElfError> for ProgramError {
    fn from(e: ElfError) -> Self {
        ProgramError::Elf(e)
    }
}

impl fmt::Display for ProgramError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            ProgramError::Elf(e) => e.fmt(f),
            ProgramError::BadInterpreterPath => write!(
                f,
                "PT_INTERP does not hold an interpreter's path (a NUL-terminated string)"
            ),
            ProgramError::NestedInterpreter => write!(
                f,
                "the program interpreter asks for an interpreter itself (has PT_INTERP)"
            ),
            ProgramError::NotExecutable(t) => write!(f, "not an executable (e_type {t})"),
            ProgramError::NoLoadSegment => write!(f, "no PT_LOAD segment"),
            ProgramError::SegmentOutsideUserSpace(i) => {
                write!(f, "segment {i} lies outside user space")
            }
            ProgramError::EntryOutsideUserSpace(e) => {
                write!(f, "entry point {e:#x} lies outside user space")
            }
        }
    }
}

/// Checks that `bytes` is an x86-64 executable our kernel can load: ET_EXEC, or ET_DYN (a PIE,
/// static or asking for an interpreter), whose segments all lie in user space `[4096,
/// user_end)` once loaded (at `Elf::load_bias`). A dynamically linked program's PT_INTERP must
/// hold a path; the interpreter it names is checked by `check_interpreter`.
pub fn check_program(bytes: &[u8], user_end: u64) -> Result<Elf<'_>, ProgramError> {
    let elf = Elf::parse(bytes)?;
    if elf.has_interp() && elf.interpreter().is_none() {
        return Err(ProgramError::BadInterpreterPath);
    }
    check_placed(elf, elf.load_bias(), user_end)
}

/// Checks that `bytes` is a program interpreter (a dynamic linker such as glibc's `ld.so`) that
/// can be loaded with its span ending at `top` (ET_DYN, where Linux puts it too: below the
/// mmap area's top; an ET_EXEC one goes where its addresses say) within user space: an
/// executable without PT_INTERP of its own. Returns it and its load bias (AT_BASE).
pub fn check_interpreter(
    bytes: &[u8],
    top: u64,
    user_end: u64,
) -> Result<(Elf<'_>, u64), ProgramError> {
    let elf = Elf::parse(bytes)?;
    if elf.has_interp() {
        return Err(ProgramError::NestedInterpreter);
    }
    let base = top
        .checked_sub(elf.span())
        .ok_or(ProgramError::SegmentOutsideUserSpace(0))?;
    let bias = elf.bias_at(base);
    check_placed(elf, bias, user_end).map(|elf| (elf, bias))
}

/// An executable's type, and its segments and entry within user space once moved by `bias`.
fn check_placed(elf: Elf<'_>, bias: u64, user_end: u64) -> Result<Elf<'_>, ProgramError> {
    match elf.kind {
        ET_EXEC | ET_DYN => {}
        t => return Err(ProgramError::NotExecutable(t)),
    }
    let mut any = false;
    for (i, ph) in elf.program_headers().enumerate() {
        if ph.kind != PT_LOAD {
            continue;
        }
        any = true;
        let start = ph.vaddr.checked_add(bias);
        let end = start.and_then(|s| s.checked_add(ph.memsz));
        match (start, end) {
            (Some(s), Some(e)) if s >= PAGE && e <= user_end => {}
            _ => return Err(ProgramError::SegmentOutsideUserSpace(i)),
        }
    }
    if !any {
        return Err(ProgramError::NoLoadSegment);
    }
    match elf.entry.checked_add(bias) {
        Some(e) if (PAGE..user_end).contains(&e) => {}
        _ => return Err(ProgramError::EntryOutsideUserSpace(elf.entry)),
    }
    Ok(elf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    /// A minimal executable: one PT_LOAD of the whole file at `vaddr`, entry at its start.
    fn program(kind: u16, vaddr: u64) -> Vec<u8> {
        let mut f = vec![0u8; 0x100];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[16..18].copy_from_slice(&kind.to_le_bytes());
        f[18..20].copy_from_slice(&62u16.to_le_bytes());
        f[24..32].copy_from_slice(&(vaddr + 0x80).to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&1u16.to_le_bytes());
        let ph = 64;
        f[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        f[ph + 4..ph + 8].copy_from_slice(&(PF_R | PF_X).to_le_bytes());
        f[ph + 16..ph + 24].copy_from_slice(&vaddr.to_le_bytes());
        f[ph + 24..ph + 32].copy_from_slice(&vaddr.to_le_bytes());
        f[ph + 32..ph + 40].copy_from_slice(&0x100u64.to_le_bytes());
        f[ph + 40..ph + 48].copy_from_slice(&0x100u64.to_le_bytes());
        f
    }

    const USER_END: u64 = 0x8000_0000_0000;

    #[test]
    fn a_static_program_passes() {
        let p = program(ET_EXEC, 0x40_0000);
        let elf = check_program(&p, USER_END).unwrap();
        assert_eq!(elf.entry, 0x40_0080);
        assert_eq!(elf.loads().count(), 1);
        assert_eq!(elf.data(&elf.loads().next().unwrap()).len(), 0x100);
    }

    #[test]
    fn a_static_pie_is_loaded_at_the_pie_base() {
        let mut p = program(ET_DYN, 0);
        p[24..32].copy_from_slice(&0x80u64.to_le_bytes()); // e_entry
        let elf = check_program(&p, USER_END).unwrap();
        assert_eq!(elf.load_bias(), PIE_BASE);
    }

    /// `program` with a second header, PT_INTERP, holding `path` (at most 63 bytes) at 0xc0.
    fn with_interp(kind: u16, path: &[u8]) -> Vec<u8> {
        let mut p = program(kind, if kind == ET_DYN { 0 } else { 0x40_0000 });
        if kind == ET_DYN {
            p[24..32].copy_from_slice(&0x80u64.to_le_bytes());
        }
        p[56..58].copy_from_slice(&2u16.to_le_bytes());
        let ph = 64 + 56;
        p[ph..ph + 4].copy_from_slice(&PT_INTERP.to_le_bytes());
        p[ph + 8..ph + 16].copy_from_slice(&0xc0u64.to_le_bytes());
        p[ph + 32..ph + 40].copy_from_slice(&(path.len() as u64).to_le_bytes());
        p[0xc0..0xc0 + path.len()].copy_from_slice(path);
        p
    }

    #[test]
    fn a_dynamically_linked_program_names_its_interpreter() {
        let p = with_interp(ET_DYN, b"/lib64/ld-linux-x86-64.so.2\0");
        let elf = check_program(&p, USER_END).unwrap();
        assert_eq!(elf.interpreter(), Some(&b"/lib64/ld-linux-x86-64.so.2"[..]));
        assert_eq!(elf.load_bias(), PIE_BASE);
        assert_eq!(program(ET_EXEC, 0x40_0000).len(), 0x100);
        assert_eq!(
            check_program(&program(ET_EXEC, 0x40_0000), USER_END)
                .unwrap()
                .interpreter(),
            None
        );
        // Not a path: no NUL at the end, a NUL inside, empty.
        for bad in [&b"/lib/ld.so"[..], b"/lib\0/ld.so\0", b"\0", b""] {
            let p = with_interp(ET_EXEC, bad);
            assert_eq!(
                check_program(&p, USER_END).err(),
                Some(ProgramError::BadInterpreterPath),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_interpreter_goes_at_its_base_and_needs_none_itself() {
        let ld = program(ET_DYN, 0);
        let base = 0x7fff_f000_0000;
        // Its one page just below `top`.
        let top = base + 0x1000;
        let (elf, bias) = check_interpreter(&ld, top, USER_END).unwrap();
        assert_eq!(elf.bias_at(base), base);
        assert_eq!(bias, base);
        assert_eq!(elf.span(), 0x1000);
        assert_eq!(
            check_interpreter(&ld, USER_END - 0x80 + 0x1000, USER_END).err(),
            Some(ProgramError::SegmentOutsideUserSpace(0))
        );
        let nested = with_interp(ET_DYN, b"/lib/ld.so\0");
        assert_eq!(
            check_interpreter(&nested, top, USER_END).err(),
            Some(ProgramError::NestedInterpreter)
        );
        // A fixed-address interpreter stays where its addresses say.
        let fixed = program(ET_EXEC, 0x40_0000);
        let (elf, bias) = check_interpreter(&fixed, top, USER_END).unwrap();
        assert_eq!(elf.bias_at(base), 0);
        assert_eq!(bias, 0);
    }

    #[test]
    fn each_defect_is_named() {
        let good = program(ET_EXEC, 0x40_0000);
        let check = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut p = good.clone();
            f(&mut p);
            check_program(&p, USER_END).map(|_| ())
        };
        use ElfError::*;
        assert_eq!(check(&|p| p[0] = 0), Err(ProgramError::Elf(NotElf)));
        assert_eq!(check(&|p| p[4] = 1), Err(ProgramError::Elf(Elf32)));
        assert_eq!(check(&|p| p[5] = 2), Err(ProgramError::Elf(BigEndian)));
        assert_eq!(
            check(&|p| p[18] = 3),
            Err(ProgramError::Elf(WrongMachine(3)))
        );
        assert_eq!(
            check(&|p| p[54] = 32),
            Err(ProgramError::Elf(BadPhdrSize(32)))
        );
        assert_eq!(
            check(&|p| p[32] = 0xf0),
            Err(ProgramError::Elf(PhdrsOutsideFile))
        );
        assert_eq!(
            check(&|p| p[64 + 33] = 0x10),
            Err(ProgramError::Elf(SegmentOutsideFile(0)))
        );
        assert_eq!(check(&|p| p[16] = 4), Err(ProgramError::NotExecutable(4)));
        assert_eq!(check(&|p| p[16] = 1), Err(ProgramError::NotExecutable(1)));
        assert_eq!(check(&|p| p[64] = 3), Err(ProgramError::BadInterpreterPath));
        assert_eq!(check(&|p| p[64] = 6), Err(ProgramError::NoLoadSegment));
        assert_eq!(
            check(&|p| p[64 + 23] = 0x80),
            Err(ProgramError::SegmentOutsideUserSpace(0))
        );
        assert_eq!(
            check_program(&good[..30], USER_END).err(),
            Some(ProgramError::Elf(Truncated))
        );
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(elf) = Elf::parse(&bytes) {
                for ph in elf.program_headers() {
                    prop_assert!(elf.data(&ph).len() as u64 == ph.filesz);
                }
                let _ = elf.pvh_entry();
            }
            let _ = check_program(&bytes, USER_END);
            if let Ok((elf, _)) = check_interpreter(&bytes, 0x7fff_f000_0000, USER_END) {
                let _ = elf.span();
            }
        }

        #[test]
        fn mutated_programs_never_panic(flips in proptest::collection::vec((0usize..0x100, any::<u8>()), 1..12)) {
            let mut p = program(ET_EXEC, 0x40_0000);
            for (at, b) in flips {
                p[at] = b;
            }
            if let Ok(elf) = check_program(&p, USER_END) {
                let bias = elf.load_bias();
                for ph in elf.loads() {
                    prop_assert!(ph.vaddr + bias >= PAGE && ph.vaddr + bias + ph.memsz <= USER_END);
                    prop_assert!(ph.offset + ph.filesz <= p.len() as u64);
                }
            }
        }
    }
}
