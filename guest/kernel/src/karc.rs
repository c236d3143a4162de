//! `Karc<T>`: a reference-counted shared pointer, like `alloc::sync::Arc`, whose constructor
//! reports running out of memory (`Arc::try_new` is not stable yet). Open files shared by
//! several descriptor tables, pipes, and address spaces shared by a vfork child use it.

use alloc::boxed::Box;
use core::ops::Deref;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::memory::heap::try_box;
use crate::memory::paging::OutOfMemory;

struct Inner<T> {
    refs: AtomicUsize,
    value: T,
}

pub struct Karc<T> {
    inner: NonNull<Inner<T>>,
}

// SAFETY: as Arc: shared `&T` across contexts needs `T: Sync`, moving the last owner (which drops
// `T`) needs `T: Send`.
unsafe impl<T: Sync + Send> Send for Karc<T> {}
// SAFETY: as above.
unsafe impl<T: Sync + Send> Sync for Karc<T> {}

impl<T> Karc<T> {
    pub fn try_new(value: T) -> Result<Karc<T>, OutOfMemory> {
        let b = try_box(Inner {
            refs: AtomicUsize::new(1),
            value,
        })?;
        Ok(Karc {
            inner: NonNull::from(Box::leak(b)),
        })
    }

    /// Whether another `Karc` points at the same value (a table shared by threads, say).
    pub fn is_shared(&self) -> bool {
        self.inner().refs.load(Ordering::Acquire) > 1
    }

    fn inner(&self) -> &Inner<T> {
        // SAFETY: the allocation lives while any Karc to it does, and this is one.
        unsafe { self.inner.as_ref() }
    }
}

impl<T> Clone for Karc<T> {
    fn clone(&self) -> Karc<T> {
        self.inner().refs.fetch_add(1, Ordering::Relaxed);
        Karc { inner: self.inner }
    }
}

impl<T> Deref for Karc<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T> Drop for Karc<T> {
    fn drop(&mut self) {
        if self.inner().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        core::sync::atomic::fence(Ordering::Acquire);
        // SAFETY: that was the last reference; the pointer came from `Box::leak` in `try_new`.
        drop(unsafe { Box::from_raw(self.inner.as_ptr()) });
    }
}
