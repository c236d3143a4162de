//! The only code that touches user memory: copy to and from user space, after checking.
//!
//! A user pointer is trusted for nothing. Every byte range is checked, overflow-safe, against the
//! caller's own page table: each page must be mapped, user-accessible and (for a copy to user)
//! writable. A kernel address, a non-canonical one, an unmapped page or a range that wraps
//! around fails with `Fault`, which the system calls turn into -EFAULT. Only then is the memory
//! touched, through its user address, with RFLAGS.AC set when SMAP is on (so that any other
//! kernel access to user memory faults).

use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crate::memory::address_space::{AddressSpace, Fault as MmFault};
use crate::memory::paging::{translate_user, LeafTableCache, USER_END};
use crate::memory::PAGE_SIZE;
use kcore::user_range;

#[derive(Debug, Clone, Copy)]
pub struct Fault;

/// SMAP is on (set once at boot): user accesses must set RFLAGS.AC.
static SMAP: AtomicBool = AtomicBool::new(false);

pub fn set_smap(on: bool) {
    SMAP.store(on, Relaxed);
}

/// Checks that `[addr, addr + len)` is user memory of `pml4`, writable if `write`: in user space
/// without wrapping (`kcore::user_range`), and every page mapped for the access. A page that is
/// not there yet but belongs to a region of the running process (a stack or heap page never
/// touched, a copy-on-write page about to be written) is made present first, as the page-fault
/// handler would for the program itself.
pub fn check(pml4: u64, addr: u64, len: u64, write: bool) -> Result<(), Fault> {
    for page in user_range::pages(addr, len).map_err(|_| Fault)? {
        if translate_user(pml4, page, write).is_none() {
            fault_in(pml4, page, write)?;
        }
    }
    Ok(())
}

#[cold]
fn fault_in(pml4: u64, page: u64, write: bool) -> Result<(), Fault> {
    let p = crate::percpu::current();
    if p.pml4() != pml4 {
        return Err(Fault);
    }
    let mm = p.mm().ok_or(Fault)?;
    match mm.handle_fault(page, write, false) {
        MmFault::Resolved if translate_user(pml4, page, write).is_some() => Ok(()),
        _ => Err(Fault),
    }
}

/// The physical address of user address `addr` in `mm`, made present for the access if a
/// region allows it (for writing into another process: its page tables, not ours).
fn phys_in(mm: &AddressSpace, addr: u64, write: bool) -> Result<u64, Fault> {
    if let Some(pa) = translate_user(mm.pml4, addr, write) {
        return Ok(pa);
    }
    match mm.handle_fault(addr, write, false) {
        MmFault::Resolved => translate_user(mm.pml4, addr, write).ok_or(Fault),
        _ => Err(Fault),
    }
}

/// The pages of `[addr, addr + len)`, user memory of the address space we run in (`pml4`)
/// readable from user mode, as physical pieces, for a device to read the user's bytes where
/// they are (the virtio console's write). A page not present yet but in a region of ours is
/// made present, as `check` does for a copy. The pages must stay mapped while the device
/// reads them: one CPU, interrupts off until it is done.
pub struct PagesForRead {
    pml4: u64,
    pages: crate::memory::paging::UserPagesIter,
}

impl PagesForRead {
    /// `None` when the range wraps or leaves user space. `cache` may know the page table of
    /// the range's start, and learns the last one walked to (`done`).
    #[inline(always)]
    pub fn new(pml4: u64, addr: u64, len: u64, cache: &LeafTableCache) -> Option<PagesForRead> {
        let mut pages = crate::memory::paging::user_pages(pml4, addr, len, false)?;
        if let Some(table) = cache.get(pml4, addr) {
            pages = pages.starting_in(table);
        }
        Some(PagesForRead { pml4, pages })
    }

    /// Hands the page table in use to `cache` for the next call.
    #[inline(always)]
    pub fn done(&self, cache: &mut LeafTableCache) {
        cache.put(self.pml4, &self.pages);
    }

    /// The next piece (physical address, bytes): as many contiguous pages as follow each
    /// other in one page table, up to `max` bytes (`UserPages::next_run`); `Ok(None)` at the
    /// end, `Err` at a page that is not user memory.
    #[inline(always)]
    pub fn next(&mut self, max: u64) -> Result<Option<(u64, u64)>, Fault> {
        loop {
            if let Some(piece) = self.pages.next_run(max) {
                return Ok(Some(piece));
            }
            if self.pages.done() {
                return Ok(None);
            }
            fault_in(self.pml4, self.pages.at() & !(PAGE_SIZE - 1), false)?;
            self.pages.rewalk();
        }
    }
}

/// The pieces of `[addr, addr + len)` in the address space `mm` (which need not be the one
/// we run in), each within one user page, made present (and writable, for `write`) if a region
/// allows: `f(physical address, offset into the range, length)` for each, in order.
fn pieces_in(
    mm: &AddressSpace,
    addr: u64,
    len: usize,
    write: bool,
    mut f: impl FnMut(u64, usize, usize),
) -> Result<(), Fault> {
    user_range::pages(addr, len as u64).map_err(|_| Fault)?;
    let mut done = 0usize;
    while done < len {
        let at = addr + done as u64;
        let n = ((PAGE_SIZE - (at & (PAGE_SIZE - 1))) as usize).min(len - done);
        f(phys_in(mm, at, write)?, done, n);
        done += n;
    }
    Ok(())
}

/// Copies `src` to user address `dst` of the address space `mm`, which need not be the one we
/// run in (a pipe writer handing its bytes straight to a blocked reader): page by page,
/// through the direct map.
pub fn copy_to_user_in(mm: &AddressSpace, dst: u64, src: &[u8]) -> Result<(), Fault> {
    pieces_in(mm, dst, src.len(), true, |pa, done, n| {
        // SAFETY: `pa` starts `n` bytes that stay within one user page of `mm`, present and
        // writable (pieces_in checked); the direct map covers all RAM; one CPU, interrupts
        // off, so nothing unmaps it meanwhile.
        unsafe {
            core::ptr::copy_nonoverlapping(
                src[done..].as_ptr(),
                crate::memory::phys_to_virt(pa) as *mut u8,
                n,
            )
        }
    })
}

/// Copies user bytes at `src` of the address space `mm` (not the one we run in: another
/// process's arguments, /proc/PID/cmdline) into `dst`, page by page through the direct map.
pub fn copy_from_user_in(mm: &AddressSpace, dst: &mut [u8], src: u64) -> Result<(), Fault> {
    pieces_in(mm, src, dst.len(), false, |pa, done, n| {
        // SAFETY: `pa` starts `n` bytes within one present, readable user page of `mm`
        // (pieces_in checked); the direct map covers all RAM; one CPU, interrupts off, so
        // nothing unmaps it meanwhile.
        unsafe {
            core::ptr::copy_nonoverlapping(
                crate::memory::phys_to_virt(pa) as *const u8,
                dst[done..].as_mut_ptr(),
                n,
            )
        }
    })
}

/// Runs `f` with user-memory access allowed (SMAP's RFLAGS.AC set).
///
/// AC is set and cleared through `pushf`/`popf` rather than `stac`/`clac`: kvm_pvm reports SMAP
/// but cannot emulate `stac` (the VM dies with an emulation failure), and for SMAP the two are
/// the same thing: `stac` is a short way of setting RFLAGS.AC.
#[inline(always)]
fn with_user_access<R>(f: impl FnOnce() -> R) -> R {
    const AC: u64 = 1 << 18;
    // SAFETY: only RFLAGS.AC changes (interrupts stay off: IF is whatever it was).
    unsafe {
        if SMAP.load(Relaxed) {
            core::arch::asm!("pushfq", "or qword ptr [rsp], {ac}", "popfq", ac = const AC);
        }
        let r = f();
        if SMAP.load(Relaxed) {
            core::arch::asm!("pushfq", "and qword ptr [rsp], {mask}", "popfq", mask = const !AC as i64 as i32);
        }
        r
    }
}

/// Copies `dst.len()` bytes from user address `src` of the current address space `pml4`.
pub fn copy_from_user(pml4: u64, dst: &mut [u8], src: u64) -> Result<(), Fault> {
    check(pml4, src, dst.len() as u64, false)?;
    with_user_access(|| {
        // SAFETY: the range was just checked to be mapped user memory of the address space we
        // run in; it cannot be unmapped concurrently (one CPU, interrupts off).
        unsafe { core::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) }
    });
    Ok(())
}

/// Checks `[src, src + len)` once, then hands it to `f` in pieces of at most `N` bytes (copied
/// into a kernel buffer, so `f` never touches user memory). A bad range fails before `f` runs.
pub fn read_user_chunks<const N: usize>(
    pml4: u64,
    src: u64,
    len: u64,
    mut f: impl FnMut(&[u8]),
) -> Result<(), Fault> {
    check(pml4, src, len, false)?;
    let mut chunk = [0u8; N];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(N as u64) as usize;
        with_user_access(|| {
            // SAFETY: the whole range was checked above against the address space we run in,
            // and nothing can unmap it meanwhile (one CPU, interrupts off).
            unsafe {
                core::ptr::copy_nonoverlapping((src + done) as *const u8, chunk.as_mut_ptr(), n)
            }
        });
        f(&chunk[..n]);
        done += n as u64;
    }
    Ok(())
}

/// Copies `src` to user address `dst` of the current address space `pml4`.
pub fn copy_to_user(pml4: u64, dst: u64, src: &[u8]) -> Result<(), Fault> {
    check(pml4, dst, src.len() as u64, true)?;
    with_user_access(|| {
        // SAFETY: as in `copy_from_user`, and the pages were checked writable.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) }
    });
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrError {
    /// The string runs into memory the caller may not read.
    Fault,
    /// No NUL within `buf.len()` bytes.
    TooLong,
}

/// Reads a NUL-terminated string into `buf` (without the NUL); returns its length. Checks the
/// page table once per page, not once per byte.
pub fn copy_str_from_user(pml4: u64, buf: &mut [u8], src: u64) -> Result<usize, StrError> {
    let mut done = 0;
    while done < buf.len() {
        let at = src.checked_add(done as u64).ok_or(StrError::Fault)?;
        let in_page = (PAGE_SIZE - (at & (PAGE_SIZE - 1))) as usize;
        let n = in_page.min(buf.len() - done);
        copy_from_user(pml4, &mut buf[done..done + n], at).map_err(|_| StrError::Fault)?;
        if let Some(nul) = buf[done..done + n].iter().position(|&b| b == 0) {
            return Ok(done + nul);
        }
        done += n;
    }
    Err(StrError::TooLong)
}

/// The two bytes at `rip`, where the task's instruction just raised #UD: the CPU fetched them to
/// decode it, so they are mapped and readable by the task, and no page-table walk is needed.
/// Returns `None` when they straddle a page boundary (the caller then uses `copy_from_user`).
#[inline]
pub fn read_faulting_insn(rip: u64) -> Option<[u8; 2]> {
    if rip >= USER_END - 1 || rip & (PAGE_SIZE - 1) == PAGE_SIZE - 1 {
        return None;
    }
    // SAFETY: see above: the page holding `rip` and `rip + 1` is the task's, present and
    // user-readable, in the address space we run in; user access is allowed only around the read.
    Some(with_user_access(|| unsafe {
        core::ptr::read_volatile(rip as *const [u8; 2])
    }))
}

pub fn read_u64(pml4: u64, addr: u64) -> Result<u64, Fault> {
    let mut b = [0u8; 8];
    copy_from_user(pml4, &mut b, addr)?;
    Ok(u64::from_le_bytes(b))
}
