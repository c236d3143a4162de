//! The guest's devices and the port/MMIO dispatch that routes a VM exit to them.

pub mod bench_port;
pub mod console_input;
pub mod console_status;
pub mod entropy_port;
pub mod exit_port;
pub mod io_bus;
pub mod rtc_cmos;
pub mod serial;
pub mod virtio_console;
pub mod virtio_mmio;
