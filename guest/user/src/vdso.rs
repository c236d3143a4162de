//! The vDSO the kernel maps into every process (AT_SYSINFO_EHDR): finding one of its functions
//! the way a C library does (musl's `__vdsosym`): the ELF header, PT_LOAD for the base,
//! PT_DYNAMIC for the symbol table, its string table and DT_HASH's symbol count.

use crate::Args;

const AT_SYSINFO_EHDR: usize = 33;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;

/// The address of the vDSO's ELF header, if the kernel mapped one.
pub fn image(args: &Args) -> Option<usize> {
    args.auxv()
        .find(|&(k, _)| k == AT_SYSINFO_EHDR)
        .map(|(_, v)| v)
        .filter(|&v| v != 0)
}

/// The address of the vDSO's symbol `name`, if it exports it.
pub fn symbol(args: &Args, name: &[u8]) -> Option<usize> {
    let eh = image(args)?;
    // SAFETY: the kernel maps a whole, well-formed ELF image at AT_SYSINFO_EHDR for the life of
    // the process; every read below stays inside the tables its headers describe.
    unsafe {
        let rd16 = |a: usize| core::ptr::read_unaligned(a as *const u16);
        let rd32 = |a: usize| core::ptr::read_unaligned(a as *const u32);
        let rd64 = |a: usize| core::ptr::read_unaligned(a as *const u64);
        if rd32(eh) != u32::from_le_bytes(*b"\x7fELF") {
            return None;
        }
        let (phoff, phentsize, phnum) = (rd64(eh + 32) as usize, rd16(eh + 54), rd16(eh + 56));
        let (mut base, mut dynamic) = (None, None);
        for i in 0..phnum as usize {
            let ph = eh + phoff + i * phentsize as usize;
            let (kind, offset, vaddr) = (rd32(ph), rd64(ph + 8) as usize, rd64(ph + 16) as usize);
            match kind {
                PT_LOAD if base.is_none() => base = Some(eh + offset - vaddr),
                PT_DYNAMIC => dynamic = Some(eh + offset),
                _ => {}
            }
        }
        let (base, mut d) = (base?, dynamic?);
        let (mut strtab, mut symtab, mut hash) = (None, None, None);
        loop {
            let (tag, value) = (rd64(d), rd64(d + 8) as usize);
            match tag {
                0 => break,
                DT_STRTAB => strtab = Some(base + value),
                DT_SYMTAB => symtab = Some(base + value),
                DT_HASH => hash = Some(base + value),
                _ => {}
            }
            d += 16;
        }
        let (strtab, symtab, hash) = (strtab?, symtab?, hash?);
        for i in 0..rd32(hash + 4) as usize {
            let sym = symtab + i * 24;
            if rd16(sym + 6) == 0 {
                continue; // undefined
            }
            let s = core::ffi::CStr::from_ptr((strtab + rd32(sym) as usize) as *const _);
            if s.to_bytes() == name {
                return Some(base + rd64(sym + 8) as usize);
            }
        }
        None
    }
}
