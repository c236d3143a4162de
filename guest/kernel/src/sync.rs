//! How kernel state is shared, so that every mutable access is exclusive by construction:
//!
//! - [`IrqLock`]: state that is changed as a whole (the task table, the frame allocator, the
//!   console). Taking it masks interrupts and sets a held flag; taking it again while held is
//!   re-entry, a kernel bug, and panics naming the lock instead of handing out a second `&mut`.
//!   With one CPU nothing else can contend, so the flag is all the lock needs; when a second CPU
//!   arrives the flag becomes a spinlock that remembers its owner (to tell re-entry from
//!   contention), and no caller changes.
//! - Atomics (`Relaxed`, plain loads and stores on x86) for single values that hot paths read
//!   without a lock: the running task, its counters, the timer's deadline.
//! - [`BootOnce`]: set once during boot, read-only afterwards (the clock, the program archive).
//!
//! Per-CPU state lives in `percpu.rs`. Nothing is reached through a `&'static mut`.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

pub struct IrqLock<T> {
    name: &'static str,
    held: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the held flag admits one guard at a time (a second `lock` panics), so at most one
// `&mut T` exists; interrupts stay masked while the guard lives, so no handler on this CPU can
// interleave. `T: Send` because the value may be used from whichever context holds the lock.
unsafe impl<T: Send> Sync for IrqLock<T> {}

pub struct IrqGuard<'a, T> {
    lock: &'a IrqLock<T>,
    was_enabled: bool,
}

impl<T> IrqLock<T> {
    pub const fn new(name: &'static str, value: T) -> Self {
        Self {
            name,
            held: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    #[inline]
    pub fn lock(&self) -> IrqGuard<'_, T> {
        let was_enabled = x86_64::instructions::interrupts::are_enabled();
        if was_enabled {
            x86_64::instructions::interrupts::disable();
        }
        if self.held.swap(true, Ordering::Acquire) {
            reentered(self.name);
        }
        IrqGuard {
            lock: self,
            was_enabled,
        }
    }

    /// For the panic handler only: the value, whether or not the lock is held (the code that
    /// panicked may hold it, and will never run again).
    ///
    /// # Safety
    /// Only on the way to powering off, with interrupts masked: nothing else runs after this.
    #[allow(clippy::mut_from_ref)] // the point: the only way around a lock held by dead code
    pub unsafe fn steal(&self) -> &mut T {
        // SAFETY: per the contract, the holder (if any) never resumes.
        unsafe { &mut *self.value.get() }
    }
}

#[cold]
#[inline(never)]
fn reentered(name: &str) -> ! {
    panic!("lock {name} taken while already held (re-entry)")
}

impl<T> Deref for IrqGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (see the `Sync` impl).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for IrqGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and `&mut self` makes this borrow unique.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for IrqGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.held.store(false, Ordering::Release);
        if self.was_enabled {
            x86_64::instructions::interrupts::enable();
        }
    }
}

/// A value set once at boot and only read afterwards.
pub struct BootOnce<T> {
    set: AtomicBool,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written once, before `set` is published (Release), and only read after
// `set` is seen (Acquire); after that it is never written again, so shared reads are fine.
unsafe impl<T: Sync + Send> Sync for BootOnce<T> {}

impl<T> BootOnce<T> {
    pub const fn new() -> Self {
        Self {
            set: AtomicBool::new(false),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Sets the value; a second call is a kernel bug.
    pub fn init(&self, value: T) -> &T {
        if self.set.load(Ordering::Acquire) {
            panic!("BootOnce set twice");
        }
        // SAFETY: not set yet, and boot runs on one CPU with interrupts off: nobody reads.
        unsafe { (*self.value.get()).write(value) };
        self.set.store(true, Ordering::Release);
        self.get()
    }

    /// The value; reading it before `init` is a kernel bug.
    #[inline]
    pub fn get(&self) -> &T {
        if !self.set.load(Ordering::Acquire) {
            unset();
        }
        // SAFETY: set (checked above), and never written again.
        unsafe { (*self.value.get()).assume_init_ref() }
    }
}

#[cold]
#[inline(never)]
fn unset() -> ! {
    panic!("BootOnce read before it was set")
}
