//! Ctrl-C while the guest runs: gdb sends a byte (0x03) while the vCPU thread is inside KVM_RUN,
//! which does not return on its own until the guest makes an exit. So the kernel tells us:
//! the socket is put in O_ASYNC mode, owned by the vCPU thread (F_SETOWN_EX, F_OWNER_TID) with a
//! real-time signal (F_SETSIG), so every arrival of data from gdb signals that thread. The
//! handler sets the vCPU's `kvm_run.immediate_exit`: KVM_RUN then returns EINTR whether the
//! signal interrupted it or came just before it was entered (KVM checks the flag on entry), so
//! no byte is missed. The vCPU loop clears the flag and reads what gdb sent (`mod.rs`).
//!
//! Nothing of this exists without `--gdb`: no handler, no signal, no flag.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use kvm_ioctls::VcpuFd;
use libc::{c_int, c_void, siginfo_t};

use super::GdbError;

// From <linux/fcntl.h>; the libc crate exports these for musl but not for glibc targets.
const F_SETSIG: c_int = 10;
const F_SETOWN_EX: c_int = 15;
const F_OWNER_TID: c_int = 0;
#[repr(C)]
struct FOwnerEx {
    kind: c_int,
    pid: libc::pid_t,
}

/// The vCPU's `immediate_exit` byte while a gdb session is armed, else null.
static IMMEDIATE_EXIT: AtomicPtr<u8> = AtomicPtr::new(ptr::null_mut());

extern "C" fn on_gdb_data(_: c_int, _: *mut siginfo_t, _: *mut c_void) {
    let p = IMMEDIATE_EXIT.load(Ordering::SeqCst);
    if !p.is_null() {
        // SAFETY: `p` points into the vCPU's kvm_run mapping, which outlives the `Kick` that
        // published it (the debugger drops its Kick, nulling the pointer, before the VcpuFd). A
        // volatile byte store is async-signal-safe.
        unsafe { p.write_volatile(1) };
    }
}

/// Armed for one gdb connection; disarms when dropped.
pub struct Kick(());

impl Kick {
    /// Must be called on the vCPU thread: the signals go to the calling thread.
    pub fn arm(vcpu: &mut VcpuFd, socket: c_int) -> Result<Kick, GdbError> {
        let os = |what: &'static str| GdbError::Kick(what, std::io::Error::last_os_error());
        let signal = vmm_sys_util::signal::SIGRTMIN();
        // SAFETY: a zeroed sigaction is a valid empty one; we fill in the handler (a plain
        // `extern "C"` function that only does an atomic load and a byte store), SA_SIGINFO for
        // its three-argument form, and SA_RESTART so that blocking reads and writes elsewhere in
        // the thread are restarted (KVM_RUN is not: it returns EINTR, as we want).
        let ok = unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_gdb_data as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(signal, &act, ptr::null_mut()) == 0
        };
        if !ok {
            return Err(os("sigaction"));
        }
        IMMEDIATE_EXIT.store(&mut vcpu.get_kvm_run().immediate_exit, Ordering::SeqCst);
        let kick = Kick(());
        let owner = FOwnerEx {
            kind: F_OWNER_TID,
            // SAFETY: gettid has no preconditions.
            pid: unsafe { libc::gettid() },
        };
        // SAFETY: fcntl on a socket we own, with an integer or a pointer to a live f_owner_ex.
        unsafe {
            if libc::fcntl(socket, F_SETSIG, signal) != 0 {
                return Err(os("fcntl(F_SETSIG)"));
            }
            if libc::fcntl(socket, F_SETOWN_EX, &owner as *const FOwnerEx) != 0 {
                return Err(os("fcntl(F_SETOWN_EX)"));
            }
            let flags = libc::fcntl(socket, libc::F_GETFL);
            if flags < 0 || libc::fcntl(socket, libc::F_SETFL, flags | libc::O_ASYNC) != 0 {
                return Err(os("fcntl(O_ASYNC)"));
            }
        }
        Ok(kick)
    }
}

impl Drop for Kick {
    fn drop(&mut self) {
        IMMEDIATE_EXIT.store(ptr::null_mut(), Ordering::SeqCst);
    }
}
