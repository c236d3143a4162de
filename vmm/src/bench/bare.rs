//! The bare KVM_RUN loop: the floor guest booted by the same code as `vmm` boots a kernel
//! (`vmm::boot`), but run by a loop that does nothing per exit beyond what it must: a write to
//! the bench port 0xf5 goes straight back into KVM_RUN, serial bytes are appended to a buffer,
//! 0xf4 ends the run. No device bus, no locks, no vCPU thread and event loop. Comparing the floor's port-exit round
//! trip here with the same guest on our VMM gives the cost of our VMM's exit dispatch.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use kvm_ioctls::VcpuExit;

use crate::boot::loader::KernelImage;
use crate::boot::pvh::Cmdline;
use crate::error::{Error, Result};
use crate::vmm::{boot, Booted};

use crate::devices::bench_port::BENCH_PORT;
const EXIT_PORT: u16 = abi::machine::port::EXIT;
const COM1: u16 = abi::machine::port::COM1;

/// Boots `kernel` (a PVH ELF) and returns what it wrote to COM1's data register, once it has
/// written to the exit port; an error if it crashes or takes longer than `timeout`.
pub fn run_bare(kernel: &[u8], timeout: Duration) -> Result<String> {
    let kernel = kernel.to_vec();
    let (tx, rx) = mpsc::channel();
    // Its own thread, so that a guest that never exits cannot hang the bench (the thread is
    // abandoned then; the process ends soon after).
    std::thread::Builder::new()
        .name("bare-vcpu".into())
        .spawn(move || {
            let _ = tx.send(boot_and_run(&kernel));
        })
        .map_err(|e| Error::Internal(format!("cannot start the bare vCPU thread: {e}")))?;
    rx.recv_timeout(timeout).map_err(|_| {
        Error::Internal("the floor guest did not finish on the bare KVM_RUN loop".into())
    })?
}

fn boot_and_run(image: &[u8]) -> Result<String> {
    let kernel = KernelImage::parse(Path::new("<floor guest>"), image)?;
    // The VM (`_vm`) must outlive the vCPU's runs: it owns the guest's RAM.
    let Booted {
        vm: _vm, mut vcpu, ..
    } = boot(&kernel, 64, &Cmdline::default(), None)?;
    let mut console = Vec::new();
    loop {
        match vcpu.run() {
            Ok(VcpuExit::IoOut(BENCH_PORT, _)) => {}
            Ok(VcpuExit::IoOut(COM1, data)) => console.extend_from_slice(data),
            Ok(VcpuExit::IoOut(EXIT_PORT, _)) => break,
            Ok(VcpuExit::IoOut(..)) | Ok(VcpuExit::Hlt) => {}
            Ok(VcpuExit::IoIn(_, data)) => data.fill(0xff),
            Ok(other) => {
                return Err(Error::GuestCrash(format!(
                    "the floor guest on the bare KVM_RUN loop: unexpected exit {other:?}"
                )))
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {}
            Err(e) => return Err(Error::KvmIoctl("KVM_RUN", e)),
        }
    }
    Ok(String::from_utf8_lossy(&console).into_owned())
}
