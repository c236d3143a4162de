//! Program entry: `_start` and the System V initial stack.
//!
//! The kernel (or Linux) enters `_start` with rsp pointing at:
//!
//! ```text
//! rsp ->  argc
//!         argv[0] .. argv[argc-1], NULL
//!         envp[0] .. , NULL
//!         auxv: (type, value) pairs, ending with (AT_NULL = 0, _)
//! ```
//!
//! and no other register defined. `_start` hands that pointer to Rust, calls the program's
//! `main` (registered with [`entry!`](crate::entry)) and exits with its return value.

use core::ffi::{CStr, c_char};

/// Entry point. Clear rbp (the end of the frame-pointer chain), pass the initial stack pointer as
/// the first argument, align the stack to 16 bytes as the ABI requires at a `call`, and call
/// [`start_rust`], which never returns.
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "xor ebp, ebp",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {start}",
        "ud2",
        start = sym start_rust,
    )
}

unsafe extern "Rust" {
    /// The program's main function, defined by [`entry!`](crate::entry).
    fn __lde_user_main(args: Args) -> i32;
}

/// Read argc and argv from the initial stack, run `main`, and exit with its status.
unsafe extern "C" fn start_rust(sp: *const usize) -> ! {
    // SAFETY: the kernel put argc at the initial stack pointer, followed by argv (argc pointers
    // and a NULL); `_start` passes that pointer unchanged.
    let args = unsafe {
        Args {
            argc: *sp,
            argv: sp.add(1) as *const *const c_char,
        }
    };
    // SAFETY: `entry!` defines this symbol with exactly this signature.
    let status = unsafe { __lde_user_main(args) };
    crate::sys::exit_group(status)
}

/// Declare the program's main function: `lde_user::entry!(main);` with `fn main(args: Args) -> i32`.
/// The returned value is the exit status.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        fn __lde_user_main(args: $crate::Args) -> i32 {
            let main: fn($crate::Args) -> i32 = $main;
            main(args)
        }
    };
}

/// The command-line arguments, environment and auxiliary vector, read in place from the initial
/// stack (which lives as long as the program).
#[derive(Clone, Copy)]
pub struct Args {
    argc: usize,
    argv: *const *const c_char,
}

impl Args {
    /// argc.
    pub fn len(&self) -> usize {
        self.argc
    }

    /// True when argc is 0 (possible: a kernel may start a program with no argv at all).
    pub fn is_empty(&self) -> bool {
        self.argc == 0
    }

    /// argv[i] as bytes (without the NUL), or None past the end.
    pub fn get_bytes(&self, i: usize) -> Option<&'static [u8]> {
        if i >= self.argc {
            return None;
        }
        // SAFETY: i < argc, so argv[i] is a valid pointer to a NUL-terminated string on the
        // initial stack, which is never freed or written.
        unsafe { Some(CStr::from_ptr(*self.argv.add(i)).to_bytes()) }
    }

    /// argv[i] as text ("?" if it is not UTF-8), or None past the end.
    pub fn get(&self, i: usize) -> Option<&'static str> {
        self.get_bytes(i)
            .map(|b| core::str::from_utf8(b).unwrap_or("?"))
    }

    /// argv[i] parsed as a number, or `default` if absent or not a number.
    pub fn get_number(&self, i: usize, default: u64) -> u64 {
        self.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
    }

    /// All arguments, argv[0] first.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        (0..self.argc).filter_map(|i| self.get(i))
    }

    /// Is argv[argc] the NULL the ABI promises?
    pub fn argv_null_terminated(&self) -> bool {
        // SAFETY: argv has argc + 1 entries.
        unsafe { (*self.argv.add(self.argc)).is_null() }
    }

    /// The environment as execve takes it (the initial stack lives as long as the program).
    pub fn envp(&self) -> crate::process::Envp {
        // SAFETY: envp starts right after argv's NULL, is NULL-terminated, and the initial
        // stack is never freed or changed by this runtime.
        unsafe { crate::process::Envp::from_raw(self.argv.add(self.argc + 1)) }
    }

    /// The environment strings ("NAME=value").
    pub fn env(&self) -> impl Iterator<Item = &'static [u8]> {
        // SAFETY: envp starts right after argv's NULL and ends with its own NULL.
        let mut p = unsafe { self.argv.add(self.argc + 1) };
        core::iter::from_fn(move || {
            // SAFETY: p stays within envp, stopping at its NULL.
            unsafe {
                if (*p).is_null() {
                    return None;
                }
                let s = CStr::from_ptr(*p).to_bytes();
                p = p.add(1);
                Some(s)
            }
        })
    }

    /// The auxiliary vector as (type, value) pairs, without the final AT_NULL.
    pub fn auxv(&self) -> impl Iterator<Item = (usize, usize)> {
        // SAFETY: auxv starts after envp's NULL.
        let mut p = unsafe { self.argv.add(self.argc + 1) };
        // SAFETY: skip the environment, stopping at its NULL.
        unsafe {
            while !(*p).is_null() {
                p = p.add(1);
            }
        }
        // SAFETY: step over envp's NULL.
        let mut p = unsafe { p.add(1) as *const usize };
        core::iter::from_fn(move || {
            // SAFETY: auxv is a list of pairs ending with type AT_NULL (0); we stop there.
            unsafe {
                let (key, value) = (*p, *p.add(1));
                if key == 0 {
                    return None;
                }
                p = p.add(2);
                Some((key, value))
            }
        })
    }
}
