//! The kernel heap, for what has no fixed size: the task table, and later open files, pipes and
//! the file system. `talc` does the allocating; we give it a virtual region (PML4 slot 509,
//! shared by every address space like the rest of the kernel half) and map frames into it a
//! chunk at a time when it runs out.
//!
//! Out of memory is an error, never a crash: `try_box` and `Vec::try_reserve` report it, and
//! kernel code uses only those (an infallible `Box::new` would panic when RAM runs out).

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{null_mut, NonNull};

use alloc::boxed::Box;
use talc::base::Talc;
use talc::source::Source;
use talc::DefaultBinning;

use super::frame::FRAMES;
use super::paging::{self, OutOfMemory};
use super::PAGE_SIZE;
use crate::sync::IrqLock;

/// PML4 slot 509.
pub const HEAP_BASE: u64 = 0xffff_fe80_0000_0000;
/// The region's size: a whole PML4 slot (RAM runs out long before).
const HEAP_LIMIT: u64 = 1 << 39;
/// Grow by at least this much at a time (64 KiB): each growth maps pages one by one.
const GROW_MIN: u64 = 16 * PAGE_SIZE;

/// Where the mapped part of the heap region ends, and talc's end of its heap (None before the
/// first growth).
#[derive(Debug)]
pub struct Grow {
    mapped_end: u64,
    heap_end: Option<NonNull<u8>>,
}

// SAFETY: only the `HEAP` lock's holder touches it.
unsafe impl Send for Grow {}

// SAFETY: `acquire` hands talc only memory it has just mapped (writable, kernel-only, used for
// nothing else), contiguous with what it gave before.
unsafe impl Source for Grow {
    fn acquire<B: talc::base::binning::Binning>(
        talc: &mut Talc<Self, B>,
        layout: Layout,
    ) -> Result<(), ()> {
        let want = (layout.size() + layout.align() + 4096) as u64;
        let grow = want.next_multiple_of(PAGE_SIZE).max(GROW_MIN);
        let start = talc.source.mapped_end;
        let mut end = start;
        while end < start + grow && end < HEAP_BASE + HEAP_LIMIT {
            let Some(frame) = FRAMES.lock().alloc_dirty() else {
                break;
            };
            let flags = paging::WRITABLE | paging::nx();
            if paging::map(paging::kernel_pml4(), end, frame, flags).is_err() {
                FRAMES.lock().free(frame);
                break;
            }
            end += PAGE_SIZE;
        }
        if end == start {
            return Err(());
        }
        talc.source.mapped_end = end;
        let heap_end = match talc.source.heap_end {
            // SAFETY: [HEAP_BASE, end) is mapped, ours, and used by nothing else.
            None => unsafe { talc.claim(HEAP_BASE as *mut u8, (end - HEAP_BASE) as usize) },
            // SAFETY: `old` is the end talc returned last time; the memory up to `end` was just
            // mapped after it.
            Some(old) => Some(unsafe { talc.extend(old, end as *mut u8) }),
        };
        talc.source.heap_end = heap_end;
        heap_end.map(|_| ()).ok_or(())
    }
}

/// Small blocks are kept by size in free lists in front of talc: a list's head is popped
/// (alloc) or pushed (dealloc) in a few instructions, where talc's binning takes ~150 (~220k
/// cycles on a software KVM), and most of the kernel's allocations are small (names, open
/// files, pipe ends, process-table entries). A freed small block stays in its list for the
/// next block of its size and is never given back to talc.
const SMALL: [usize; 9] = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
/// Every small block is aligned to this (what talc is asked for); a layout that wants more
/// goes to talc.
const SMALL_ALIGN: usize = 16;

/// The list for `layout`, if it is a small one.
#[inline(always)]
fn small_class(layout: Layout) -> Option<usize> {
    if layout.size() > SMALL[SMALL.len() - 1] || layout.align() > SMALL_ALIGN {
        return None;
    }
    let bits = usize::BITS - (layout.size().max(SMALL[0]) - 1).leading_zeros();
    Some(bits as usize - SMALL[0].trailing_zeros() as usize)
}

pub struct Heap {
    talc: Talc<Grow, DefaultBinning>,
    /// Each list's first free block; a free block's first 8 bytes point to the next (or null).
    free: [*mut u8; SMALL.len()],
}

// SAFETY: the free lists' blocks are the heap's own memory, touched only by the `HEAP` lock's
// holder.
unsafe impl Send for Heap {}

pub struct KernelHeap(IrqLock<Heap>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(IrqLock::new(
    "heap",
    Heap {
        talc: Talc::new(Grow {
            mapped_end: HEAP_BASE,
            heap_end: None,
        }),
        free: [null_mut(); SMALL.len()],
    },
));

// SAFETY: talc's contract: `allocate` returns memory valid for `layout`, `deallocate` takes back
// what it gave; the lock makes each call exclusive. A small block is talc's block of its list's
// size (at least the layout's, and SMALL_ALIGN-aligned, at least the layout's alignment), handed
// out once at a time: a block is either in a list or held by one caller.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut h = self.0.lock();
        let layout = match small_class(layout) {
            Some(c) => {
                let head = h.free[c];
                if !head.is_null() {
                    // SAFETY: a free block of this list: its first 8 bytes (aligned) hold the
                    // next free one, written by `dealloc`.
                    h.free[c] = unsafe { head.cast::<*mut u8>().read() };
                    return head;
                }
                // SAFETY: SMALL_ALIGN is a power of two and SMALL[c] a multiple of it.
                unsafe { Layout::from_size_align_unchecked(SMALL[c], SMALL_ALIGN) }
            }
            None => layout,
        };
        // SAFETY: a non-zero-size layout (GlobalAlloc's contract, and SMALL's sizes).
        unsafe { h.talc.allocate(layout) }.map_or(null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let mut h = self.0.lock();
        match small_class(layout) {
            Some(c) => {
                // SAFETY: `ptr` is a block of this list (the same layout gives the same list),
                // at least 16 bytes and aligned to 16, no longer used by its caller.
                unsafe { ptr.cast::<*mut u8>().write(h.free[c]) };
                h.free[c] = ptr;
            }
            // SAFETY: `ptr` came from talc with this layout (GlobalAlloc's contract).
            None => unsafe { h.talc.deallocate(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Within one list's size, the block already fits.
        // SAFETY: `new_size` with the old alignment is a valid layout (GlobalAlloc's contract).
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if let (Some(a), Some(b)) = (small_class(layout), small_class(new)) {
            if a == b {
                return ptr;
            }
        }
        // SAFETY: a non-zero new size (GlobalAlloc's contract for realloc).
        let out = unsafe { self.alloc(new) };
        if !out.is_null() {
            // SAFETY: both blocks are valid for the smaller size and distinct (a fresh block);
            // `ptr` is then given back with its own layout.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, out, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        out
    }
}

/// `Box::new` that reports running out of memory instead of panicking.
pub fn try_box<T>(value: T) -> Result<Box<T>, OutOfMemory> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Ok(Box::new(value));
    }
    // SAFETY: a non-zero-size layout.
    let p = unsafe { alloc::alloc::alloc(layout) } as *mut T;
    if p.is_null() {
        return Err(OutOfMemory);
    }
    // SAFETY: `p` is fresh memory for one `T`, allocated by the global allocator with `T`'s
    // layout, which is what `Box::from_raw` requires.
    unsafe {
        p.write(value);
        Ok(Box::from_raw(p))
    }
}

/// Bytes of RAM the heap has mapped so far (for the report).
pub fn mapped_bytes() -> u64 {
    HEAP.0.lock().talc.source.mapped_end - HEAP_BASE
}
