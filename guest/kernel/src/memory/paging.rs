//! Four-level x86-64 page tables: the kernel's half (shared by every address space) and one user
//! half per process.
//!
//! Kernel layout (PML4 slots, each 512 GiB; the same entries are copied into every process's PML4,
//! all supervisor-only, so a user program can neither read nor run the kernel):
//!   256  `PHYS_OFFSET`        direct map of RAM, never executable
//!   510  `KERNEL_STACKS`      per-process kernel stacks, each under an unmapped guard page;
//!                             the local APIC's registers when it is used through MMIO
//!   511  `KERNEL_VMA`         the kernel image: text read+execute, rodata read-only, data no-exec
//! User programs own slots 0..256 of their own PML4.

use super::frame::FRAMES;
use super::{phys_to_virt, KERNEL_VMA, PAGE_SIZE};

pub const PRESENT: u64 = 1 << 0;
pub const WRITABLE: u64 = 1 << 1;
pub const USER: u64 = 1 << 2;
pub const WRITE_THROUGH: u64 = 1 << 3;
pub const NO_CACHE: u64 = 1 << 4;
pub const HUGE: u64 = 1 << 7;
pub const GLOBAL: u64 = 1 << 8;
pub const NO_EXECUTE: u64 = 1 << 63;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

pub const KERNEL_STACKS: u64 = 0xffff_ff00_0000_0000;
pub const LAPIC_MMIO: u64 = 0xffff_ff00_4000_0000;
/// PML4 slots that belong to the kernel: copied into every new address space.
const KERNEL_SLOTS: [usize; 3] = [256, 510, 511];
pub const USER_END: u64 = 0x0000_8000_0000_0000;

#[derive(Debug, Clone, Copy)]
pub struct OutOfMemory;

/// What `NO_EXECUTE` means to the CPU: 0 until EFER.NXE is known to be on (else it would be a
/// reserved bit and every access through such an entry would fault).
static mut NX_BIT: u64 = 0;

pub fn nx() -> u64 {
    // SAFETY: written once in `init_kernel_space` before any other reader.
    unsafe { NX_BIT }
}

/// The kernel's own PML4: the boot one from boot.rs, fixed up by `init_kernel_space`.
static mut KERNEL_PML4: u64 = 0;

pub fn kernel_pml4() -> u64 {
    // SAFETY: written once at boot.
    unsafe { KERNEL_PML4 }
}

#[inline]
fn table(paddr: u64) -> &'static mut [u64; 512] {
    // SAFETY: `paddr` is a page-table frame we allocated (or the boot tables); the direct map
    // covers all RAM. One CPU and IF=0 in the kernel paths that edit tables: no aliasing writer.
    unsafe { &mut *(phys_to_virt(paddr) as *mut [u64; 512]) }
}

fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * level)) & 0x1ff) as usize
}

/// The page-table entry for `va` in the last level, creating the intermediate tables. The walk
/// starts at `root`, a table of level `top` (3: a PML4).
fn walk_create(
    root: u64,
    top: u32,
    va: u64,
    table_flags: u64,
) -> Result<&'static mut u64, OutOfMemory> {
    let mut t = root;
    for level in (1..=top).rev() {
        let e = &mut table(t)[index(va, level)];
        if *e & PRESENT == 0 {
            let f = FRAMES.lock().alloc_zeroed().ok_or(OutOfMemory)?;
            *e = f | table_flags;
        }
        t = *e & ADDR_MASK;
    }
    Ok(&mut table(t)[index(va, 0)])
}

/// Maps the 4 KiB page at `va` to frame `pa` in `pml4`.
pub fn map(pml4: u64, va: u64, pa: u64, flags: u64) -> Result<(), OutOfMemory> {
    let table_flags = PRESENT | WRITABLE | if va < USER_END { USER } else { 0 };
    *walk_create(pml4, 3, va, table_flags)? = pa | flags | PRESENT;
    Ok(())
}

/// Translates a user address: `Some(physical address)` only if every level is present and
/// user-accessible (and writable, when `write`). This is what makes user pointers safe to use:
/// the check is against the caller's own mappings, not against an address range.
pub fn translate_user(pml4: u64, va: u64, write: bool) -> Option<u64> {
    if va >= USER_END {
        return None;
    }
    let need = PRESENT | USER | if write { WRITABLE } else { 0 };
    let mut t = pml4;
    for level in (0..4).rev() {
        let e = table(t)[index(va, level)];
        if e & need != need {
            return None;
        }
        if level == 0 {
            return Some((e & ADDR_MASK) | (va & 0xfff));
        }
        if e & HUGE != 0 {
            let size = 1u64 << (12 + 9 * level);
            return Some((e & ADDR_MASK & !(size - 1)) | (va & (size - 1)));
        }
        t = e & ADDR_MASK;
    }
    None
}

/// The flag bits of the last-level entry for user page `va` (0 if it has none).
pub fn leaf_flags(pml4: u64, va: u64) -> u64 {
    let mut t = pml4;
    for level in (1..4).rev() {
        let e = table(t)[index(va, level)];
        if e & PRESENT == 0 || e & HUGE != 0 {
            return 0;
        }
        t = e & ADDR_MASK;
    }
    table(t)[index(va, 0)] & !ADDR_MASK
}

/// A new address space: an empty user half and the kernel's half.
pub fn new_address_space() -> Result<u64, OutOfMemory> {
    let pml4 = FRAMES.lock().alloc_zeroed().ok_or(OutOfMemory)?;
    let k = table(kernel_pml4());
    let t = table(pml4);
    for slot in KERNEL_SLOTS {
        t[slot] = k[slot];
    }
    Ok(pml4)
}

/// Frees the user half of `pml4` (tables and the frames they map) and the PML4 itself.
pub fn free_address_space(pml4: u64) {
    fn free_level(t: u64, level: u32) {
        let mut frames = FRAMES.lock();
        for &e in table(t).iter() {
            if e & PRESENT == 0 {
                continue;
            }
            let next = e & ADDR_MASK;
            if level > 0 {
                drop(frames);
                free_level(next, level - 1);
                frames = FRAMES.lock();
            } else {
                frames.free(next);
            }
        }
        frames.free(t);
    }
    for slot in 0..256 {
        let e = table(pml4)[slot];
        if e & PRESENT != 0 {
            free_level(e & ADDR_MASK, 2);
        }
    }
    FRAMES.lock().free(pml4);
}

extern "C" {
    static boot_pml4: u8;
    static __kernel_text_start: u8;
    static __kernel_rodata_start: u8;
    static __kernel_data_start: u8;
    static __kernel_end: u8;
}

/// Replaces the boot mapping with the kernel's final one: the direct map extended to all of RAM
/// and made non-executable, the kernel image mapped page by page with its sections' permissions,
/// the kernel-stack slot prepared, and the identity map used by the boot trampoline removed.
pub fn init_kernel_space(
    ram_end: u64,
    has_nx: bool,
    has_1g_pages: bool,
) -> Result<(), OutOfMemory> {
    // SAFETY: linker-script symbols; only their addresses are taken. `.boot` is linked at its
    // physical address, so `boot_pml4`'s address is physical.
    let (pml4, text, rodata, data, end) = unsafe {
        (
            &boot_pml4 as *const u8 as u64,
            &__kernel_text_start as *const u8 as u64,
            &__kernel_rodata_start as *const u8 as u64,
            &__kernel_data_start as *const u8 as u64,
            &__kernel_end as *const u8 as u64,
        )
    };
    // SAFETY: written once, here, before any reader.
    unsafe {
        KERNEL_PML4 = pml4;
        if has_nx {
            NX_BIT = NO_EXECUTE;
        }
    }
    let nx = nx();
    let root = table(pml4);

    // Direct map: the boot tables cover the first GiB; add the rest of RAM.
    let pdpt = root[256] & ADDR_MASK;
    let gib = 1u64 << 30;
    let mut base = gib;
    while base < ram_end {
        let e = &mut table(pdpt)[(base >> 30) as usize];
        if has_1g_pages {
            *e = base | PRESENT | WRITABLE | HUGE;
        } else {
            let pd = FRAMES.lock().alloc_zeroed().ok_or(OutOfMemory)?;
            for (i, pde) in table(pd).iter_mut().enumerate() {
                *pde = (base + ((i as u64) << 21)) | PRESENT | WRITABLE | HUGE;
            }
            *e = pd | PRESENT | WRITABLE;
        }
        base += gib;
    }
    root[256] |= nx;

    // Kernel image: 4 KiB pages with per-section permissions, built under a fresh PDPT that
    // replaces the boot one only when complete (we are running from the old one).
    let image_pdpt = FRAMES.lock().alloc_zeroed().ok_or(OutOfMemory)?;
    let mut va = text;
    while va < end {
        // One walk per 2 MiB; the page-table entries within it are written in a plain loop.
        let first = walk_create(image_pdpt, 2, va, PRESENT | WRITABLE)? as *mut u64;
        let last = end.min((va | 0x1f_ffff) + 1);
        let mut i = 0;
        while va < last {
            let flags = if va < rodata {
                GLOBAL
            } else if va < data {
                GLOBAL | nx
            } else {
                GLOBAL | WRITABLE | nx
            };
            // SAFETY: `first` is the entry for the first page of this 2 MiB range in its page
            // table, and `va` stays inside the range, so `first + i` stays inside that table.
            unsafe { *first.add(i) = (va - KERNEL_VMA) | flags | PRESENT };
            i += 1;
            va += PAGE_SIZE;
        }
    }
    root[511] = image_pdpt | PRESENT | WRITABLE;

    // Kernel stacks and MMIO: make sure slot 510 exists before any address space copies it.
    let stacks_pdpt = FRAMES.lock().alloc_zeroed().ok_or(OutOfMemory)?;
    root[510] = stacks_pdpt | PRESENT | WRITABLE | nx;

    // The identity map was only for the jump to the higher half.
    root[0] = 0;
    // SAFETY: the new tables map everything the kernel uses (its image, the direct map, the boot
    // stack in .bss); reloading CR3 flushes the stale entries.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) pml4, options(nostack)) };
    Ok(())
}

/// Maps one 4 KiB uncached page of device memory at `va` in the kernel half.
pub fn map_mmio(va: u64, pa: u64) -> Result<(), OutOfMemory> {
    map(
        kernel_pml4(),
        va,
        pa,
        WRITABLE | NO_CACHE | WRITE_THROUGH | nx(),
    )?;
    // SAFETY: invalidates one TLB entry for a page we just mapped.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) va, options(nostack)) };
    Ok(())
}
