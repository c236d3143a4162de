//! The parts of our kernel that are plain logic: no instructions of their own, no hardware, no
//! statics. The kernel (`guest/kernel`) calls them with its own memory and locks; the host runs
//! their unit tests (`cargo test` at the repository's root), which the kernel's bare-metal
//! target cannot.
//!
//! - [`cmdline`]: the kernel command line's settings;
//! - [`clock_scale`]: TSC cycles to nanoseconds and back, as the kernel's clock and the vDSO
//!   scale them;
//! - [`ranges`]: free RAM as the boot memory map minus what is reserved;
//! - [`pagetable`]: four-level x86-64 page tables over any physical memory;
//! - [`user_range`]: the checks every user pointer passes before the kernel touches it;
//! - [`runqueue`]: the scheduler's FIFO of runnable tasks;
//! - [`regions`]: a process's map of memory regions;
//! - [`footprint`]: where an address space may have page tables;
//! - [`ring`]: the byte ring of pipes;
//! - [`fs`]: the in-memory file system's tree, paths and file data;
//! - [`tty`]: the console's line discipline (canonical editing, echo, signal keys, raw mode).
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod clock_scale;
pub mod cmdline;
pub mod footprint;
pub mod fs;
pub mod pagetable;
pub mod ranges;
pub mod regions;
pub mod ring;
pub mod runqueue;
pub mod tty;
pub mod user_range;
