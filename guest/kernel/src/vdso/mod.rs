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
//! Both are ordinary file-backed regions over kernel-image frames (frames the allocator does not
//! own, so fork shares them and munmap never frees them), made present on first touch.

mod image;

use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::Release};

use crate::memory::address_space::{AddressSpace, MMAP_TOP};
use crate::memory::{align_up, kernel_virt_to_phys, PAGE_SIZE};
use kcore::regions::{Backing, Region, RegionError, PROT_EXEC, PROT_READ};

/// Where the data page goes in every process: at the top of the mmap area, below the stack's
/// guard page, with room for an image of up to `IMAGE_PAGES_MAX` pages above it.
pub const DATA_VA: u64 = MMAP_TOP - (1 + IMAGE_PAGES_MAX) * PAGE_SIZE;
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

/// Maps the data page and the image into a new address space (at exec, and for the programs
/// started at boot; fork copies the regions with the rest).
pub fn map(mm: &AddressSpace) -> Result<(), RegionError> {
    let (start, len) = image::bytes();
    let pages = align_up(len, PAGE_SIZE) / PAGE_SIZE;
    if pages > IMAGE_PAGES_MAX {
        return Err(RegionError::Invalid);
    }
    mm.add_region(Region {
        start: DATA_VA,
        end: DATA_VA + PAGE_SIZE,
        prot: PROT_READ,
        backing: Backing::File {
            phys: kernel_virt_to_phys(&DATA as *const Data as u64),
            len: PAGE_SIZE,
        },
        shared: false,
    })?;
    mm.add_region(Region {
        start: BASE,
        end: BASE + pages * PAGE_SIZE,
        prot: PROT_READ | PROT_EXEC,
        backing: Backing::File {
            phys: kernel_virt_to_phys(start),
            len: pages * PAGE_SIZE,
        },
        shared: false,
    })
}
