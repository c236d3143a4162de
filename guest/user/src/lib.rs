//! `lde_user`: the whole runtime a ring-3 program needs on our kernel, in a few hundred lines.
//!
//! It speaks only the Linux x86-64 system-call ABI, so every program built with it also runs
//! directly on a Linux host. Copy it to write your own program:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! use lde_user::{Args, println};
//!
//! lde_user::entry!(main);
//!
//! fn main(args: Args) -> i32 {
//!     println!("hello from {}", args.get(0).unwrap_or("?"));
//!     0 // the exit status
//! }
//! ```
//!
//! - [`start`]: `_start`, which reads the System V initial stack and calls your `main`;
//! - [`syscall`]: the raw `syscall` and `int 0x80` instructions and the call numbers;
//! - [`sys`]: typed wrappers (write, read, writev, sched_yield, nanosleep, getpid, exit, wait4, ...);
//! - [`fs`]: the file-system calls (open, mkdir, unlink, stat, directory listing);
//! - [`vdso`]: the functions of the vDSO the kernel maps (AT_SYSINFO_EHDR);
//! - [`process`]: fork, execve, `fork_exec`, waitpid and `WaitStatus`, pipe2, dup2, close, kill,
//!   process groups, signal dispositions and the mask;
//! - [`print!`] / [`println!`]: formatted output to fd 1;
//! - a panic handler that prints the message and its location and exits with status 101.
#![no_std]

pub mod errno;
pub mod fs;
pub mod print;
pub mod process;
pub mod start;
pub mod sys;
pub mod syscall;
pub mod vdso;

pub use errno::Errno;
pub use process::*;
pub use start::Args;
pub use sys::*;

/// The panic handler: print "panicked at FILE:LINE:COLUMN:" and the message, and exit with
/// status 101, as a Rust program with std does.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("{info}");
    sys::exit_group(101)
}
