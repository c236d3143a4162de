//! Four-level x86-64 page tables: the kernel's half (shared by every address space) and one user
//! half per process.
//!
//! Kernel layout (PML4 slots, each 512 GiB; the same entries are copied into every process's PML4,
//! all supervisor-only, so a user program can neither read nor run the kernel):
//!   256  `PHYS_OFFSET`        direct map of RAM, never executable
//!   509  `HEAP_BASE`          the kernel heap (memory/heap.rs), grown on demand
//!   510  `KERNEL_STACKS`      per-process kernel stacks, each under an unmapped guard page;
//!                             the local APIC's registers when it is used through MMIO
//!   511  `KERNEL_VMA`         the kernel image: text read+execute, rodata read-only, data no-exec
//! User programs own slots 0..256 of their own PML4.
//!
//! The walking itself is `kcore::pagetable` (tested on the host); this file gives it the direct
//! map and the frame allocator, and builds the kernel's half at boot.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::frame::FRAMES;
use super::{phys_to_virt, KERNEL_VMA, PAGE_SIZE};
use kcore::pagetable::{self as pt, PhysMem, ADDR_MASK, PML4_LEVEL};
pub use kcore::pagetable::{
    OutOfMemory, GLOBAL, HUGE, NO_CACHE, NO_EXECUTE, PRESENT, USER, USER_END, WRITABLE,
    WRITE_THROUGH,
};

pub const KERNEL_STACKS: u64 = 0xffff_ff00_0000_0000;
pub const LAPIC_MMIO: u64 = 0xffff_ff00_4000_0000;
/// PML4 slots that belong to the kernel, copied into every new address space: the direct map,
/// the heap, the kernel stacks and MMIO, the image. Their PDPTs exist from boot on, so what is
/// mapped under them later is seen by every address space.
const KERNEL_SLOTS: [usize; 4] = [256, 509, 510, 511];
/// User programs own PML4 slots 0..256.
const USER_SLOTS: core::ops::Range<usize> = 0..256;

/// What `NO_EXECUTE` means to the CPU: 0 until EFER.NXE is known to be on (else it would be a
/// reserved bit and every access through such an entry would fault). Set once at boot.
static NX_BIT: AtomicU64 = AtomicU64::new(0);

#[inline]
pub fn nx() -> u64 {
    NX_BIT.load(Relaxed)
}

/// The kernel's own PML4: the boot one from boot.rs, fixed up by `init_kernel_space`.
static KERNEL_PML4: AtomicU64 = AtomicU64::new(0);

#[inline]
pub fn kernel_pml4() -> u64 {
    KERNEL_PML4.load(Relaxed)
}

/// Physical memory as the page-table code sees it: every frame through the direct map, new
/// tables from the frame allocator.
pub struct DirectMap;

impl PhysMem for DirectMap {
    #[inline(always)]
    fn read(&self, table: u64, index: usize) -> u64 {
        // SAFETY: `table` is a page-table frame (ours, or the boot tables) and `index` < 512
        // (`pt::index` masks it); the direct map covers all RAM. A plain read of one entry.
        unsafe { (phys_to_virt(table) as *const u64).add(index).read() }
    }
    #[inline(always)]
    fn write(&self, table: u64, index: usize, entry: u64) {
        TABLE_WRITES.fetch_add(1, Relaxed);
        // SAFETY: as in `read`; page tables are edited only with interrupts off, by the task
        // that owns the address space (or at boot), so no other writer races.
        unsafe { (phys_to_virt(table) as *mut u64).add(index).write(entry) }
    }
    fn alloc_table(&self) -> Option<u64> {
        FRAMES.lock().alloc_zeroed()
    }
    fn free_frame(&self, frame: u64) {
        FRAMES.lock().free(frame)
    }
}

/// Page-table entries written since boot, in any address space: a `TranslationCache` entry is
/// good only while this has not moved, so no mapping can change under one unseen (every
/// entry is written through `DirectMap::write`, and teardowns count too: `free_user_space`).
static TABLE_WRITES: AtomicU64 = AtomicU64::new(0);

/// One user translation remembered, as a TLB would: the pipe's direct hand-over translates
/// the same two buffers on every round of a ping-pong, and a four-level walk is ~56
/// instructions. Valid while no page-table entry anywhere has been written since it was
/// filled (`TABLE_WRITES`), which also covers a new address space reusing the frame of an old
/// PML4. Atomics because another task (a pipe's writer) uses the reader's.
pub struct TranslationCache {
    pml4: AtomicU64,
    /// The page, with bit 0 set for a write access.
    key: AtomicU64,
    frame: AtomicU64,
    writes: AtomicU64,
}

impl TranslationCache {
    pub const fn new() -> TranslationCache {
        TranslationCache {
            pml4: AtomicU64::new(0),
            key: AtomicU64::new(0),
            frame: AtomicU64::new(0),
            writes: AtomicU64::new(u64::MAX),
        }
    }

    /// `translate_user`, from memory when the entry is still good.
    #[inline(always)]
    pub fn translate_user(&self, pml4: u64, va: u64, write: bool) -> Option<u64> {
        // Read before the walk: a table write during or after it makes the entry stale.
        let writes = TABLE_WRITES.load(Relaxed);
        let key = (va & !(PAGE_SIZE - 1)) | write as u64;
        if self.writes.load(Relaxed) == writes
            && self.key.load(Relaxed) == key
            && self.pml4.load(Relaxed) == pml4
        {
            return Some(self.frame.load(Relaxed) | (va & (PAGE_SIZE - 1)));
        }
        let pa = translate_user(pml4, va, write)?;
        self.pml4.store(pml4, Relaxed);
        self.key.store(key, Relaxed);
        self.frame.store(pa & !(PAGE_SIZE - 1), Relaxed);
        self.writes.store(writes, Relaxed);
        Some(pa)
    }
}

/// Maps the 4 KiB page at `va` to frame `pa` in `pml4`.
#[inline]
pub fn map(pml4: u64, va: u64, pa: u64, flags: u64) -> Result<(), OutOfMemory> {
    pt::map(&DirectMap, pml4, va, pa, flags)
}

/// Unmaps the 4 KiB kernel page at `va` and returns the frame it mapped, if it was mapped.
/// The intermediate tables stay (kernel tables are shared by every address space).
pub fn unmap_kernel(va: u64) -> Option<u64> {
    let slot = pt::leaf(&DirectMap, kernel_pml4(), va)?;
    let e = slot.read(&DirectMap);
    if e & PRESENT == 0 {
        return None;
    }
    slot.write(&DirectMap, 0);
    // SAFETY: drops this CPU's one cached translation of a page just unmapped. (A second CPU
    // will need a shootdown here.)
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) va, options(nostack)) };
    Some(e & ADDR_MASK)
}

/// Translates a user address: `Some(physical address)` only if every level is present and
/// user-accessible (and writable, when `write`). This is what makes user pointers safe to use:
/// the check is against the caller's own mappings, not against an address range.
#[inline]
pub fn translate_user(pml4: u64, va: u64, write: bool) -> Option<u64> {
    pt::translate_user(&DirectMap, pml4, va, write)
}

/// The page table that maps one 2 MiB stretch of a user address space, remembered as a TLB
/// would: the console's writes come from the same buffer again and again, and the upper three
/// levels of a walk are ~45 instructions. Good while no page-table entry anywhere has been
/// written since it was filled (`TABLE_WRITES`, as for `TranslationCache`).
pub struct LeafTableCache {
    pml4: u64,
    region: u64,
    table: u64,
    writes: u64,
}

impl LeafTableCache {
    pub const fn new() -> LeafTableCache {
        LeafTableCache {
            pml4: 0,
            region: u64::MAX,
            table: 0,
            writes: u64::MAX,
        }
    }

    /// The page table mapping `va` in `pml4`, if remembered and still good.
    #[inline(always)]
    pub fn get(&self, pml4: u64, va: u64) -> Option<u64> {
        (self.writes == TABLE_WRITES.load(Relaxed) && self.pml4 == pml4 && self.region == va >> 21)
            .then_some(self.table)
    }

    /// Remembers the table `pages` last walked to, if any.
    #[inline(always)]
    pub fn put(&mut self, pml4: u64, pages: &UserPagesIter) {
        let (table, end) = pages.table();
        if end != 0 {
            *self = LeafTableCache {
                pml4,
                region: (end >> 21) - 1,
                table,
                writes: TABLE_WRITES.load(Relaxed),
            };
        }
    }
}

/// The iterator `user_pages` returns.
pub type UserPagesIter = pt::UserPages<'static, DirectMap>;

/// `kcore::pagetable::user_pages` in `pml4`: each user page of a range as a physical piece,
/// one walk per page table.
#[inline(always)]
pub fn user_pages(
    pml4: u64,
    va: u64,
    len: u64,
    write: bool,
) -> Option<pt::UserPages<'static, DirectMap>> {
    pt::user_pages(&DirectMap, pml4, va, len, write)
}

/// A new address space: an empty user half and the kernel's half.
pub fn new_address_space() -> Result<u64, OutOfMemory> {
    let pml4 = FRAMES.lock().alloc_zeroed().ok_or(OutOfMemory)?;
    let k = kernel_pml4();
    for slot in KERNEL_SLOTS {
        DirectMap.write(pml4, slot, DirectMap.read(k, slot));
    }
    Ok(pml4)
}

/// Frees the user half of `pml4` made inside `footprint` (every table and a reference to each
/// frame they map: a frame shared copy-on-write with another process stays), reading only the
/// entries inside it, and the PML4 itself. The caller promises nothing was mapped outside it
/// (`Regions::footprint`) and `also` (a range with tables but no region: the vDSO's, whose own
/// table the caller has taken out; the tables above it go, if the footprint's did not take them).
pub fn free_user_space(pml4: u64, footprint: &[(u64, u64)], also: (u64, u64)) {
    // Frames go without their entries being written: cached translations go with them.
    TABLE_WRITES.fetch_add(1, Relaxed);
    let mut frames = FRAMES.lock();
    let mem = Teardown(&mut *frames);
    for ranges in [footprint, &[also]] {
        pt::free_ranges(&mem, pml4, ranges, |frame| {
            // SAFETY: see `Teardown`: no other reference to the allocator is live during the
            // call.
            unsafe { (*mem.0).release(frame) }
        });
    }
    // SAFETY: as above.
    unsafe { (*mem.0).free(pml4) };
}

/// The direct map, with the frame allocator's lock taken once for a whole teardown instead of
/// once per frame released. It holds the locked allocator as a pointer because the walk hands
/// frames both to `free_frame` and to the release closure; each use makes a `&mut` that ends
/// with the call, and the walk never nests them (one CPU, interrupts off, no reentry).
struct Teardown(*mut super::frame::FrameAllocator);

impl PhysMem for Teardown {
    #[inline(always)]
    fn read(&self, table: u64, index: usize) -> u64 {
        DirectMap.read(table, index)
    }
    #[inline(always)]
    fn write(&self, table: u64, index: usize, entry: u64) {
        DirectMap.write(table, index, entry)
    }
    fn alloc_table(&self) -> Option<u64> {
        None // a teardown makes no tables
    }
    fn free_frame(&self, frame: u64) {
        // SAFETY: see the type's comment: the pointer is the locked allocator, and no other
        // reference to it is live during this call.
        unsafe { (*self.0).free(frame) }
    }
}

/// Frees the user half of `pml4` (its tables; a reference to each frame they map: a frame
/// shared copy-on-write with another process stays) and the PML4 itself.
pub fn free_address_space(pml4: u64) {
    pt::free_range(&DirectMap, pml4, USER_SLOTS, |frame| {
        FRAMES.lock().release(frame)
    });
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
    KERNEL_PML4.store(pml4, Relaxed);
    if has_nx {
        NX_BIT.store(NO_EXECUTE, Relaxed);
    }
    let nx = nx();
    let m = DirectMap;

    // Direct map: the boot tables cover the first GiB; add the rest of RAM.
    let pdpt = m.read(pml4, 256) & ADDR_MASK;
    let gib = 1u64 << 30;
    let mut base = gib;
    while base < ram_end {
        let e = if has_1g_pages {
            base | PRESENT | WRITABLE | HUGE
        } else {
            let pd = m.alloc_table().ok_or(OutOfMemory)?;
            for i in 0..512 {
                m.write(
                    pd,
                    i,
                    (base + ((i as u64) << 21)) | PRESENT | WRITABLE | HUGE,
                );
            }
            pd | PRESENT | WRITABLE
        };
        m.write(pdpt, (base >> 30) as usize, e);
        base += gib;
    }
    m.write(pml4, 256, m.read(pml4, 256) | nx);

    // Kernel image: 4 KiB pages with per-section permissions, built under a fresh PDPT that
    // replaces the boot one only when complete (we are running from the old one).
    let image_pdpt = m.alloc_table().ok_or(OutOfMemory)?;
    let mut va = text;
    while va < end {
        // One walk per 2 MiB; the page-table entries within it are written in a plain loop.
        let first = pt::walk_create(&m, image_pdpt, PML4_LEVEL - 1, va, PRESENT | WRITABLE)?;
        let last = end.min((va | 0x1f_ffff) + 1);
        let mut i = first.index;
        while va < last {
            let flags = if va < rodata {
                GLOBAL
            } else if va < data {
                GLOBAL | nx
            } else {
                GLOBAL | WRITABLE | nx
            };
            m.write(first.table, i, (va - KERNEL_VMA) | flags | PRESENT);
            i += 1;
            va += PAGE_SIZE;
        }
    }
    m.write(pml4, 511, image_pdpt | PRESENT | WRITABLE);

    // The heap, the kernel stacks and MMIO: their PDPTs exist before any address space copies
    // the kernel's slots.
    for slot in [509, 510] {
        let pdpt = m.alloc_table().ok_or(OutOfMemory)?;
        m.write(pml4, slot, pdpt | PRESENT | WRITABLE | nx);
    }

    // The identity map was only for the jump to the higher half.
    m.write(pml4, 0, 0);
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
