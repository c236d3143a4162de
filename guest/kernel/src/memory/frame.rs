//! Physical page frames.
//!
//! Guest RAM starts out zeroed, so a frame that has never been handed out is already a zero page.
//! We hand those out first (a bump pointer over "fresh" memory) and zero only frames that come back
//! through `free` and are used again. Zeroing a page costs ~0.7M cycles in emulated ring 0 on
//! kvm_pvm, so this keeps a process spawn cheap; the free list keeps memory from leaking.

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
}

pub static FRAMES: IrqLock<FrameAllocator> = IrqLock::new(
    "frames",
    FrameAllocator {
        fresh: [Range { start: 0, end: 0 }; MAX_RANGES],
        nfresh: 0,
        free_head: 0,
        free_frames: 0,
        total_frames: 0,
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

    /// A zeroed 4 KiB frame, or `None` when memory is exhausted.
    pub fn alloc_zeroed(&mut self) -> Option<u64> {
        if let Some(f) = self.take_fresh() {
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
            return Some(f);
        }
        self.take_fresh()
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

    pub fn free(&mut self, frame: u64) {
        // SAFETY: the caller gives up `frame`; its first qword becomes the list link.
        unsafe { *(phys_to_virt(frame) as *mut u64) = self.free_head };
        self.free_head = frame;
        self.free_frames += 1;
    }
}
