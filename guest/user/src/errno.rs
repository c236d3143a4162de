//! Linux error numbers. System calls return `-errno` in rax; the wrappers in [`crate::sys`]
//! turn that into `Err(Errno)`. The type and its constants are the contracts crate's.

pub use abi::errno::Errno;
