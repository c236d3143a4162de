//! `vmm`: a micro-VMM on KVM that boots a PVH guest kernel with one vCPU, a 16550 serial
//! console and an exit port. `vmm::run` boots a `VmConfig`; see `vmm.rs` for the boot path.

pub mod bench;
pub mod boot;
pub mod cpuid;
pub mod devices;
pub mod error;
pub mod event_loop;
pub mod exit_stats;
pub mod gdb;
pub mod guest_clock;
pub mod guest_stats;
pub mod initrd;
pub mod kernel_lane;
pub mod kvm_stats;
pub mod lapic;
pub mod layout;
pub mod step_count;
pub mod terminal;
pub mod timeline;
pub mod trace_json;
pub mod trap_names;
pub mod vcpu;
pub mod vm;
pub mod vmm;

pub use error::{Error, Result};
pub use vmm::{run, VmConfig};
