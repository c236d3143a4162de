//! The raw system-call instructions.
//!
//! Linux x86-64 ABI: rax = number; arguments in rdi, rsi, rdx, r10, r8, r9; the result comes
//! back in rax (`-errno` on failure). The `syscall` instruction itself overwrites rcx (the return
//! address) and r11 (the saved RFLAGS), so both are clobbered. Everything else is preserved.
//!
//! These functions are `unsafe`: a system call can do anything to the process (write into any of
//! its memory, unmap it...). Prefer the typed wrappers in [`crate::sys`].

use core::arch::asm;

/// System-call numbers (Linux x86-64, plus our own `SPAWN` and `BENCH`).
pub use abi::syscall::nr;

/// Make system call `n` with six arguments through the `syscall` instruction.
///
/// # Safety
/// The call must not break the memory safety of the program: any pointer passed must be valid
/// for what the kernel does with it (or deliberately invalid, to test the kernel's checks).
#[inline(always)]
pub unsafe fn syscall6(
    n: usize,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the caller vouches for the call's effect; the asm follows the kernel's register
    // contract exactly (inputs in rax/rdi/rsi/rdx/r10/r8/r9, rcx and r11 clobbered, no stack use).
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a1, in("rsi") a2, in("rdx") a3, in("r10") a4, in("r8") a5, in("r9") a6,
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Same as [`syscall6`], through the `int 0x80` trap gate instead of the `syscall` instruction.
/// On our kernel it takes the same numbers and registers (the classic trap-table path).
/// **On Linux `int 0x80` is the i386 ABI, with other numbers**: only use it to test our kernel.
///
/// # Safety
/// As for [`syscall6`]; also, on a Linux host the number means a different (i386) call.
#[inline(always)]
pub unsafe fn int80_syscall6(
    n: usize,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> isize {
    let ret: isize;
    // SAFETY: as in syscall6. Linux's i386 entry path may zero r8-r11, so we treat them (and
    // rcx, for symmetry with `syscall`) as clobbered.
    unsafe {
        asm!(
            "int 0x80",
            inlateout("rax") n as isize => ret,
            in("rdi") a1, in("rsi") a2, in("rdx") a3,
            inlateout("r10") a4 => _, inlateout("r8") a5 => _, inlateout("r9") a6 => _,
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// # Safety
/// See [`syscall6`].
#[inline(always)]
pub unsafe fn syscall0(n: usize) -> isize {
    // SAFETY: forwarded to the caller.
    unsafe { syscall6(n, 0, 0, 0, 0, 0, 0) }
}

/// # Safety
/// See [`syscall6`].
#[inline(always)]
pub unsafe fn syscall1(n: usize, a1: usize) -> isize {
    // SAFETY: forwarded to the caller.
    unsafe { syscall6(n, a1, 0, 0, 0, 0, 0) }
}

/// # Safety
/// See [`syscall6`].
#[inline(always)]
pub unsafe fn syscall2(n: usize, a1: usize, a2: usize) -> isize {
    // SAFETY: forwarded to the caller.
    unsafe { syscall6(n, a1, a2, 0, 0, 0, 0) }
}

/// # Safety
/// See [`syscall6`].
#[inline(always)]
pub unsafe fn syscall3(n: usize, a1: usize, a2: usize, a3: usize) -> isize {
    // SAFETY: forwarded to the caller.
    unsafe { syscall6(n, a1, a2, a3, 0, 0, 0) }
}

/// # Safety
/// See [`syscall6`].
#[inline(always)]
pub unsafe fn syscall4(n: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    // SAFETY: forwarded to the caller.
    unsafe { syscall6(n, a1, a2, a3, a4, 0, 0) }
}
