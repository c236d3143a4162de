//! The process operations `vmm bench` times and counts (issue 8): fork + exit + wait,
//! fork + exec + exit + wait of `exit0` (the smallest program of the archive), and a pipe round
//! trip with a forked partner on the same CPU (the OSTEP chapter 6 homework's context switch:
//! two processes pass a byte through two pipes). The host does the same in
//! vmm/src/bench/host.rs.

use lde_user::syscall::{nr, syscall0, syscall1, syscall3};
use lde_user::{Errno, exit_group, wait4};

/// The programs exec'd by [`fork_exec_wait`]; the bench's archive has them.
pub const EXIT0: &core::ffi::CStr = c"/bin/exit0";
/// exit0 with 2 MiB of code it never touches: exec must not pay for a program's size.
pub const EXIT0_PADDED: &core::ffi::CStr = c"/bin/exit0_padded";

fn fork() -> Result<i32, Errno> {
    // SAFETY: fork takes no argument; the child returns here on a copy of our memory.
    Errno::from_ret(unsafe { syscall0(nr::FORK) }).map(|p| p as i32)
}

/// fork; the child exits 0 at once; the parent waits for it.
pub fn fork_exit_wait() -> Result<(), Errno> {
    match fork()? {
        0 => exit_group(0),
        child => wait4(child).map(drop),
    }
}

/// fork; the child execs `path` (exit0 or its padded twin), which exits 0; the parent waits.
pub fn fork_exec_wait(path: &core::ffi::CStr) -> Result<(), Errno> {
    match fork()? {
        0 => {
            let argv = [c"exit0".as_ptr(), core::ptr::null()];
            let envp = [core::ptr::null::<core::ffi::c_char>()];
            // SAFETY: the path and both arrays are NUL- or NULL-terminated and alive for the
            // call; on success nothing of this program runs again.
            unsafe {
                syscall3(
                    nr::EXECVE,
                    path.as_ptr() as usize,
                    argv.as_ptr() as usize,
                    envp.as_ptr() as usize,
                )
            };
            exit_group(127)
        }
        child => match wait4(child)? {
            (_, lde_user::WaitStatus::Exited(0)) => Ok(()),
            // exit0 exits 0; anything else is our exit 127: the exec failed.
            _ => Err(Errno::ENOEXEC),
        },
    }
}

fn read1(fd: i32, b: &mut [u8; 1]) -> isize {
    // SAFETY: a one-byte read into a local buffer.
    unsafe { syscall3(nr::READ, fd as usize, b.as_mut_ptr() as usize, 1) }
}

fn write1(fd: i32, b: &[u8; 1]) -> isize {
    // SAFETY: a one-byte write from a local buffer.
    unsafe { syscall3(nr::WRITE, fd as usize, b.as_ptr() as usize, 1) }
}

fn close(fd: i32) {
    // SAFETY: closes one of our own descriptors.
    unsafe { syscall1(nr::CLOSE, fd as usize) };
}

fn pipe() -> Result<[i32; 2], Errno> {
    let mut fds = [0i32; 2];
    // SAFETY: the kernel writes two descriptors into `fds`.
    Errno::from_ret(unsafe { syscall1(nr::PIPE, fds.as_mut_ptr() as usize) })?;
    Ok(fds)
}

/// A forked partner that answers every byte written to it with a byte back.
pub struct PipePartner {
    child: i32,
    to_child: i32,
    from_child: i32,
}

impl PipePartner {
    pub fn start() -> Result<PipePartner, Errno> {
        let ab = pipe()?;
        let ba = pipe()?;
        let child = fork()?;
        if child == 0 {
            // Our copies of the parent's ends: closed, so that the parent's close is EOF here.
            close(ab[1]);
            close(ba[0]);
            let mut b = [0u8; 1];
            while read1(ab[0], &mut b) == 1 {
                write1(ba[1], &b);
            }
            exit_group(0);
        }
        close(ab[0]);
        close(ba[1]);
        Ok(PipePartner {
            child,
            to_child: ab[1],
            from_child: ba[0],
        })
    }

    /// A byte there and back: two context switches (the parent blocks in its read, the child
    /// in its next one).
    pub fn round_trip(&self) -> bool {
        let mut b = [1u8; 1];
        write1(self.to_child, &b) == 1 && read1(self.from_child, &mut b) == 1
    }

    /// Ends the partner (its read sees EOF) and reaps it.
    pub fn stop(self) {
        close(self.to_child);
        close(self.from_child);
        let _ = wait4(self.child);
    }
}
