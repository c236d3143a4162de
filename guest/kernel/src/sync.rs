//! How kernel state is shared, so that every mutable access is exclusive by construction:
//!
//! - [`IrqLock`]: state that is changed as a whole (the task table, the frame allocator, the
//!   console). Taking it sets a held flag; taking it again while held is re-entry, a kernel
//!   bug, and panics naming the lock instead of handing out a second `&mut`. The kernel runs
//!   with interrupts masked everywhere but the idle loop's `hlt` (trap gates mask them, SFMASK
//!   does for `syscall`), so the lock need not mask them itself: debug builds check that they
//!   are, and in any build an interrupt handler that took a lock held by the code it
//!   interrupted would panic on the flag, never alias. With one CPU nothing else can contend,
//!   so the flag is all the lock needs; when a second CPU arrives it becomes a spinlock that
//!   remembers its owner (to tell re-entry from contention), and no caller changes.
//! - Atomics (`Relaxed`, plain loads and stores on x86) for single values that hot paths read
//!   without a lock and that another CPU may one day touch: a process's pid, its counters.
//! - [`CpuCell`]: a single value only its own CPU ever touches (the running task, the timer's
//!   deadline): a `Cell` that may sit in a static, so the hot paths compile to plain moves.
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
// `&mut T` exists, whatever interrupts do (see above). `T: Send` because the value may be used
// from whichever context holds the lock.
unsafe impl<T: Send> Sync for IrqLock<T> {}

pub struct IrqGuard<'a, T> {
    lock: &'a IrqLock<T>,
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
        debug_assert!(
            !x86_64::instructions::interrupts::are_enabled(),
            "lock {} taken with interrupts on",
            self.name
        );
        // One CPU, interrupts masked: nothing can come between the test and the set. (With a
        // second CPU this becomes a compare-and-swap loop.)
        if self.held.load(Ordering::Relaxed) {
            reentered(self.name);
        }
        self.held.store(true, Ordering::Relaxed);
        core::sync::atomic::compiler_fence(Ordering::Acquire);
        IrqGuard { lock: self }
    }

    /// The lock if it is free, None if it is held (by code this one interrupted or called
    /// into: the kernel log, which a panic in the middle of an append must not re-enter).
    #[inline]
    pub fn try_lock(&self) -> Option<IrqGuard<'_, T>> {
        if self.held.load(Ordering::Relaxed) {
            return None;
        }
        self.held.store(true, Ordering::Relaxed);
        core::sync::atomic::compiler_fence(Ordering::Acquire);
        Some(IrqGuard { lock: self })
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
        core::sync::atomic::compiler_fence(Ordering::Release);
        self.lock.held.store(false, Ordering::Relaxed);
    }
}

/// A value that only its own CPU reads and writes, with interrupts masked (every kernel path but
/// the idle loop's `hlt`, which touches none). Like `Cell`, it hands out copies, never
/// references, so no borrow can be held across another access.
/// `repr(transparent)`: laid out as a `T`, so the entry stubs (trap_entry.rs) can read one, or
/// an array of them, by address.
#[repr(transparent)]
pub struct CpuCell<T: Copy>(UnsafeCell<T>);

// SAFETY: the value is only used by the CPU it belongs to (per-CPU data, reached through
// `percpu::this()`, or state of this CPU's timer), with interrupts masked, so no two accesses
// ever overlap; and no reference to the inside escapes `get`/`set`.
unsafe impl<T: Copy> Sync for CpuCell<T> {}

impl<T: Copy> CpuCell<T> {
    pub const fn new(v: T) -> Self {
        CpuCell(UnsafeCell::new(v))
    }

    #[inline(always)]
    pub fn get(&self) -> T {
        // SAFETY: see the `Sync` impl: no access overlaps this read.
        unsafe { *self.0.get() }
    }

    #[inline(always)]
    pub fn set(&self, v: T) {
        // SAFETY: see the `Sync` impl: no access overlaps this write.
        unsafe { *self.0.get() = v }
    }

    #[inline(always)]
    pub fn replace(&self, v: T) -> T {
        let old = self.get();
        self.set(v);
        old
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

    /// The value, or None before `init`.
    #[inline]
    pub fn try_get(&self) -> Option<&T> {
        // SAFETY: set (checked just now), and never written again.
        self.set
            .load(Ordering::Acquire)
            .then(|| unsafe { (*self.value.get()).assume_init_ref() })
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
