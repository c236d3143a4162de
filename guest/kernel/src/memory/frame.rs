//! Physical page frames.
//!
//! Guest RAM starts out zeroed, so a frame that has never been handed out is already a zero page.
//! We hand those out first (a bump pointer over "fresh" memory) and zero only frames that come back
//! through `free` and are used again. Zeroing a page costs ~0.7M cycles in emulated ring 0 on
//! kvm_pvm, so this keeps a process spawn cheap; the free list keeps memory from leaking.
//!
//! Frames are reference-counted, because fork shares them copy-on-write: `alloc_*` returns a
//! frame with one reference, `share` adds one, `release` drops one and frees the frame with the
//! last. The counts live in an array taken from fresh (zero) memory at boot, so it needs no
//! initialising; a count of 0 means "not ours" (a page of the boot module mapped into a
//! program, say), which `share` and `release` leave alone.

use super::{phys_to_virt, PAGE_SIZE};
use crate::sync::IrqLock;

const MAX_RANGES: usize = 8;

#[derive(Clone, Copy)]
struct Range {
    start: u64,
    end: u64,
}

pub struct FrameAllocator {
    fresh: [Range; MAX_RANGES],
    nfresh: usize,
    /// Singly-linked list of freed frames, the link stored in the frame itself.
    free_head: u64,
    pub free_frames: u64,
    pub total_frames: u64,
    /// One count per frame below `refs_frames` (virtual address in the direct map; 0 before
    /// `init_refcounts`).
    refs: u64,
    refs_frames: u64,
}

pub static FRAMES: IrqLock<FrameAllocator> = IrqLock::new(
    "frames",
    FrameAllocator {
        fresh: [Range { start: 0, end: 0 }; MAX_RANGES],
        nfresh: 0,
        free_head: 0,
        free_frames: 0,
        total_frames: 0,
        refs: 0,
        refs_frames: 0,
    },
);

impl FrameAllocator {
    /// Adds RAM `[start, end)` minus the `reserved` ranges (kernel image, boot modules, low 1 MiB).
    pub fn add_ram(&mut self, start: u64, end: u64, reserved: &[(u64, u64)]) {
        let (pieces, n) = kcore::ranges::subtract::<MAX_RANGES>(start, end, reserved);
        for r in &pieces[..n] {
            if self.nfresh < MAX_RANGES {
                self.fresh[self.nfresh] = Range {
                    start: r.start,
                    end: r.end,
                };
                self.nfresh += 1;
                self.total_frames += r.pages();
                self.free_frames += r.pages();
            }
        }
    }

    /// Takes the reference-count array for RAM below `ram_end` from fresh memory: physically
    /// contiguous frames of the first fresh range large enough. Called once, after `add_ram`.
    pub fn init_refcounts(&mut self, ram_end: u64) -> bool {
        let frames = ram_end / PAGE_SIZE;
        let pages = (frames * 4).div_ceil(PAGE_SIZE);
        let Some(r) = self.fresh[..self.nfresh]
            .iter_mut()
            .find(|r| (r.end - r.start) / PAGE_SIZE >= pages)
        else {
            return false;
        };
        self.refs = phys_to_virt(r.start);
        self.refs_frames = frames;
        r.start += pages * PAGE_SIZE;
        self.free_frames -= pages;
        true
    }

    #[inline]
    fn count(&self, frame: u64) -> Option<&core::sync::atomic::AtomicU32> {
        let i = frame / PAGE_SIZE;
        if i >= self.refs_frames {
            return None;
        }
        // SAFETY: `refs` is an array of `refs_frames` u32 in memory reserved for it at boot
        // (`init_refcounts`); AtomicU32 has u32's layout, and the lock serialises access anyway.
        Some(unsafe { &*(self.refs as *const core::sync::atomic::AtomicU32).add(i as usize) })
    }

    fn set_count(&self, frame: u64, n: u32) {
        if let Some(c) = self.count(frame) {
            c.store(n, core::sync::atomic::Ordering::Relaxed);
        }
    }

    /// How many references `frame` has (0: not an allocated frame of ours).
    pub fn refcount(&self, frame: u64) -> u32 {
        self.count(frame)
            .map_or(0, |c| c.load(core::sync::atomic::Ordering::Relaxed))
    }

    /// One more reference to an allocated frame (a copy-on-write mapping in a forked child).
    pub fn share(&mut self, frame: u64) {
        if let Some(c) = self.count(frame) {
            let n = c.load(core::sync::atomic::Ordering::Relaxed);
            if n != 0 {
                c.store(n + 1, core::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Drops a reference; the last one frees the frame. Frames that are not ours (count 0) are
    /// left alone.
    pub fn release(&mut self, frame: u64) {
        let n = self.refcount(frame);
        match n {
            0 => {}
            1 => self.free(frame),
            _ => self.set_count(frame, n - 1),
        }
    }

    /// A zeroed 4 KiB frame, or `None` when memory is exhausted.
    pub fn alloc_zeroed(&mut self) -> Option<u64> {
        if let Some(f) = self.take_fresh() {
            self.set_count(f, 1);
            return Some(f);
        }
        let f = self.alloc_dirty()?;
        // SAFETY: `f` is a frame we own, mapped in the direct map; 512 qwords cover it.
        unsafe { core::ptr::write_bytes(phys_to_virt(f) as *mut u64, 0, 512) };
        Some(f)
    }

    /// A frame whose contents do not matter (the caller overwrites all of it).
    pub fn alloc_dirty(&mut self) -> Option<u64> {
        if self.free_head != 0 {
            let f = self.free_head;
            // SAFETY: freed frames hold the next link in their first qword (see `free`).
            self.free_head = unsafe { *(phys_to_virt(f) as *const u64) };
            self.free_frames -= 1;
            self.set_count(f, 1);
            return Some(f);
        }
        let f = self.take_fresh()?;
        self.set_count(f, 1);
        Some(f)
    }

    /// A never-used frame: still zero from boot.
    fn take_fresh(&mut self) -> Option<u64> {
        let r = self.fresh[..self.nfresh]
            .iter_mut()
            .find(|r| r.start < r.end)?;
        let f = r.start;
        r.start += PAGE_SIZE;
        self.free_frames -= 1;
        Some(f)
    }

    /// Frees a frame whatever its count (page tables and kernel stacks, which are never shared).
    pub fn free(&mut self, frame: u64) {
        self.set_count(frame, 0);
        // SAFETY: the caller gives up `frame`; its first qword becomes the list link.
        unsafe { *(phys_to_virt(frame) as *mut u64) = self.free_head };
        self.free_head = frame;
        self.free_frames += 1;
    }
}
