//! Where things go in every process's half of the address space, from the top: the stack, the
//! guard page below it, the vDSO's 2 MiB, then the mmap area down to `MMAP_MIN`. The loader,
//! the address space and the vDSO all place things by these.

use super::PAGE_SIZE;

/// The top of the user stack; the stack region is the `STACK_MAX` below it, and the page below
/// that stays unmapped (the guard).
pub const USER_STACK_TOP: u64 = 0x0000_7fff_ffff_f000;
pub const STACK_MAX: u64 = 8 << 20;

/// The 2 MiB (one last-level page table's reach) below the one the stack's guard page is in:
/// the vDSO's, whose page table every address space shares (`crate::vdso`).
pub const VDSO_CHUNK: u64 =
    ((USER_STACK_TOP - STACK_MAX - PAGE_SIZE) & !(TABLE_SPAN - 1)) - TABLE_SPAN;
pub const VDSO_END: u64 = VDSO_CHUNK + TABLE_SPAN;
const TABLE_SPAN: u64 = 2 << 20;

/// Where mmap puts regions without a fixed address: below the vDSO, above the first 64 KiB
/// (Linux's mmap_min_addr).
pub const MMAP_MIN: u64 = 0x1_0000;
pub const MMAP_TOP: u64 = VDSO_CHUNK;
