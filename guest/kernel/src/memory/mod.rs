//! Memory: the kernel's address-space layout, physical frames and page tables.

pub mod address_space;
pub mod frame;
pub mod heap;
pub mod layout;
pub mod paging;

/// Where the kernel sees all of physical memory (the direct map, PML4 slot 256).
pub const PHYS_OFFSET: u64 = 0xffff_8000_0000_0000;
/// Where the kernel image is linked (PML4 slot 511): virtual = KERNEL_VMA + physical.
pub const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;
pub const PAGE_SIZE: u64 = 4096;

#[inline]
pub const fn phys_to_virt(paddr: u64) -> u64 {
    paddr + PHYS_OFFSET
}

/// The physical address of something in the kernel image.
#[inline]
pub fn kernel_virt_to_phys(vaddr: u64) -> u64 {
    vaddr - KERNEL_VMA
}

pub const fn align_up(x: u64, a: u64) -> u64 {
    (x + a - 1) & !(a - 1)
}

pub const fn align_down(x: u64, a: u64) -> u64 {
    x & !(a - 1)
}
