//! The contracts between the VMM (`vmm/`), our kernel (`guest/kernel/`), the ring-3 programs
//! (`guest/user/`), the floor guest (`guest/floor/`) and the tests: one crate, one copy of each.
//!
//! - [`syscall`], [`errno`], [`signal`]: the Linux x86-64 ABI numbers, plus our own calls;
//! - [`machine`]: I/O ports, exit statuses, CPUID leaves, the PVH boot structures;
//! - [`cpio`]: the program archive's format (reader; the writer with the `std` feature);
//! - [`elf`]: ELF64 validation, and what makes a program loadable;
//! - [`rtc`]: the CMOS real-time clock's registers, and the calendar to read them;
//! - [`start`]: the archive's START manifest;
//! - [`bench`]: `vmm bench`'s workload, summary and BENCH line;
//! - [`trace`]: the kernel's event records for `vmm --trace`;
//! - [`termios`]: the terminal's `struct termios`, `struct winsize` and ioctl numbers;
//! - [`virtio`]: the virtio console's place, registers and ring layout.
//!
//! `no_std`, no allocation; the `std` feature adds what only the host needs.
#![no_std]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod bench;
pub mod cpio;
pub mod elf;
pub mod errno;
pub mod fs;
pub mod machine;
pub mod rtc;
pub mod signal;
pub mod start;
pub mod syscall;
pub mod termios;
pub mod trace;
pub mod virtio;

pub use errno::Errno;
