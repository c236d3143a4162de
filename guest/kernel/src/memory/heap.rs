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

pub struct KernelHeap(IrqLock<Talc<Grow, DefaultBinning>>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(IrqLock::new(
    "heap",
    Talc::new(Grow {
        mapped_end: HEAP_BASE,
        heap_end: None,
    }),
));

// SAFETY: talc's contract: `allocate` returns memory valid for `layout`, `deallocate` takes back
// what it gave; the lock makes each call exclusive.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: a non-zero-size layout (GlobalAlloc's contract).
        unsafe { self.0.lock().allocate(layout) }.map_or(null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout (GlobalAlloc's contract).
        unsafe { self.0.lock().deallocate(ptr, layout) }
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
    HEAP.0.lock().source.mapped_end - HEAP_BASE
}
