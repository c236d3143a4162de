//! The one lock this uniprocessor kernel needs: a cell that disables interrupts while held.
//!
//! With one CPU, the only thing that can interleave with kernel code is an interrupt handler, so
//! "disable interrupts" is the whole of mutual exclusion (OSTEP 6.4, "Worried about concurrency?").
//! Trap handlers already run with IF clear, so on hot paths this costs one `pushf` and one test.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

pub struct IrqLock<T> {
    value: UnsafeCell<T>,
}

// SAFETY: one CPU, and the guard keeps interrupts off, so at most one `&mut T` exists at a time.
unsafe impl<T: Send> Sync for IrqLock<T> {}

pub struct IrqGuard<'a, T> {
    lock: &'a IrqLock<T>,
    was_enabled: bool,
}

impl<T> IrqLock<T> {
    pub const fn new(value: T) -> Self {
        Self {
            value: UnsafeCell::new(value),
        }
    }

    pub fn lock(&self) -> IrqGuard<'_, T> {
        let was_enabled = x86_64::instructions::interrupts::are_enabled();
        if was_enabled {
            x86_64::instructions::interrupts::disable();
        }
        IrqGuard {
            lock: self,
            was_enabled,
        }
    }
}

impl<T> Deref for IrqGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: interrupts are off while the guard lives and there is one CPU.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for IrqGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; the guard is the only way to the value.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for IrqGuard<'_, T> {
    fn drop(&mut self) {
        if self.was_enabled {
            x86_64::instructions::interrupts::enable();
        }
    }
}
