//! The vDSO: a small shared object the kernel maps into every process so that reading the clock
//! does not trap (Limited Direct Execution's own idea: don't enter the kernel when you don't have
//! to). A system call costs ~60 µs on kvm_pvm; `__vdso_clock_gettime` costs a `rdtsc`.
//!
//! Two kinds of page, the same frames in every process (nothing is copied per exec):
//! - the **data page** (`Data`, a page-aligned static of the kernel), mapped read-only at
//!   `DATA_VA`: what turns a TSC reading into CLOCK_MONOTONIC and CLOCK_REALTIME, kept by the
//!   kernel under a sequence count (`publish`);
//! - the **image** (`image.rs`), mapped read+execute at `BASE`, just above the data page, and
//!   announced by AT_SYSINFO_EHDR: an ELF shared object as libc looks for one (musl's
//!   `__vdsosym`, glibc's `setup_vdso`, Go's runtime), exporting `__vdso_clock_gettime`,
//!   `__vdso_gettimeofday`, `__vdso_time` and `__vdso_getcpu` at version LINUX_2.6.
//!
//! Both are kernel-image frames, mapped in every address space through one page table of their
//! own (`TABLE`) that all processes share: neither regions nor page faults are involved, so
//! fork, exec and exit pay nothing for them. munmap, mprotect and madvise leave them alone
//! (Linux would let a process unmap its vDSO; nothing needs that).

mod image;

use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::Release};

use crate::memory::layout::VDSO_CHUNK as CHUNK;
use crate::memory::paging::{self, DirectMap, OutOfMemory, PRESENT, USER, WRITABLE};
use crate::memory::{align_up, kernel_virt_to_phys, PAGE_SIZE};
use kcore::pagetable::{self as pt, PhysMem};

/// Where the data page goes in every process: at the start of the 2 MiB between the mmap area
/// and the stack, with room for an image of up to `IMAGE_PAGES_MAX` pages above it.
pub const DATA_VA: u64 = CHUNK;
/// Where the image goes (AT_SYSINFO_EHDR). The image's code finds the data page one page below
/// its own ELF header.
pub const BASE: u64 = DATA_VA + PAGE_SIZE;
const IMAGE_PAGES_MAX: u64 = 3;

/// `ns = ((tsc - boot_tsc) * mult) >> SHIFT`, in the kernel (`time::monotonic_ns`) and in the
/// image alike, so both give the same nanosecond for the same TSC.
pub const SHIFT: u32 = 32;

/// The data page. Its layout is a contract with the image's code (offsets passed to it as
/// constants) and is described in docs/conventions.md.
#[repr(C, align(4096))]
pub struct Data {
    /// Odd while the kernel is changing the rest; readers retry until they read the same even
    /// value before and after.
    seq: AtomicU32,
    _pad: u32,
    /// The TSC at boot: CLOCK_MONOTONIC's zero.
    boot_tsc: AtomicU64,
    /// Nanoseconds per TSC tick, times 2^SHIFT.
    mult: AtomicU64,
    /// CLOCK_REALTIME - CLOCK_MONOTONIC, in nanoseconds (the command line's `epoch=`).
    realtime_offset: AtomicU64,
    /// The TSC frequency in Hz (for programs that want it; the image does not read it).
    tsc_hz: AtomicU64,
}

static DATA: Data = Data {
    seq: AtomicU32::new(0),
    _pad: 0,
    boot_tsc: AtomicU64::new(0),
    mult: AtomicU64::new(0),
    realtime_offset: AtomicU64::new(0),
    tsc_hz: AtomicU64::new(0),
};

/// Writes the clock's parameters into the data page. A reader in ring 3 that was preempted in
/// the middle sees the count change and reads again.
pub fn publish(boot_tsc: u64, mult: u64, tsc_hz: u64, realtime_offset: u64) {
    let seq = DATA.seq.load(Relaxed);
    DATA.seq.store(seq.wrapping_add(1) | 1, Relaxed);
    fence(Release);
    DATA.boot_tsc.store(boot_tsc, Relaxed);
    DATA.mult.store(mult, Relaxed);
    DATA.tsc_hz.store(tsc_hz, Relaxed);
    DATA.realtime_offset.store(realtime_offset, Relaxed);
    DATA.seq.store((seq | 1).wrapping_add(1), Release);
}

/// The page table of the vDSO's 2 MiB (`CHUNK`), the same one in every address space: built
/// once at boot, entered in each new address space's page directory (`install`), and never
/// walked by fork, teardown or any mapping call (no region covers it), so a process costs no
/// table, no entries to copy and none to free for it. Its entries are read-only, so no process
/// can change what another one sees; the hardware's accessed bits are the only writes.
#[repr(C, align(4096))]
struct Table([AtomicU64; 512]);

static TABLE: Table = Table([const { AtomicU64::new(0) }; 512]);

/// Fills the shared table: the data page read-only and not executable, the image read and
/// execute. Once, at boot, after the kernel's page tables (which decide whether NX exists).
pub fn init() {
    let (start, len) = image::bytes();
    let pages = align_up(len, PAGE_SIZE) / PAGE_SIZE;
    assert!(pages <= IMAGE_PAGES_MAX, "vDSO image larger than its room");
    let data = kernel_virt_to_phys(&DATA as *const Data as u64);
    let slot = |va: u64| &TABLE.0[pt::index(va, 0)];
    slot(DATA_VA).store(data | PRESENT | USER | paging::nx(), Relaxed);
    let image = kernel_virt_to_phys(start);
    for i in 0..pages {
        slot(BASE + i * PAGE_SIZE).store((image + i * PAGE_SIZE) | PRESENT | USER, Relaxed);
    }
}

/// Where the data page and the image are in every process: `(data, image, image_end)`
/// (/proc/PID/maps shows them as `[vvar]` and `[vdso]`, as Linux does).
pub fn layout() -> (u64, u64, u64) {
    let (_, len) = image::bytes();
    (DATA_VA, BASE, BASE + align_up(len, PAGE_SIZE))
}

/// Enters the shared table in a fresh address space (`pml4` has no user entries yet), making
/// the page-map and page-directory tables on the way; the stack, in the same 1 GiB, uses them
/// too. Returns nothing to undo: the teardown frees those two tables with the stack's.
pub fn install(pml4: u64) -> Result<(), OutOfMemory> {
    let m = DirectMap;
    let flags = PRESENT | WRITABLE | USER;
    let table = kernel_virt_to_phys(&TABLE as *const Table as u64);
    let mut t = pml4;
    for level in [pt::PML4_LEVEL, 2] {
        let i = pt::index(CHUNK, level);
        let e = m.read(t, i);
        t = if e & PRESENT != 0 {
            e & pt::ADDR_MASK
        } else {
            let next = m.alloc_table().ok_or(OutOfMemory)?;
            m.write(t, i, next | flags);
            next
        };
    }
    m.write(t, pt::index(CHUNK, 1), table | flags);
    Ok(())
}

/// Takes the shared table out of `pml4` before its teardown, so that no walk frees it.
pub fn uninstall(pml4: u64) {
    let m = DirectMap;
    let mut t = pml4;
    for level in [pt::PML4_LEVEL, 2] {
        let e = m.read(t, pt::index(CHUNK, level));
        if e & PRESENT == 0 {
            return;
        }
        t = e & pt::ADDR_MASK;
    }
    m.write(t, pt::index(CHUNK, 1), 0);
}
