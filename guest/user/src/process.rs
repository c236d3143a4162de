//! Unix processes, as the Linux x86-64 calls give them: fork, execve, wait (with stops and
//! continues), pipes and descriptors, kill, process groups, and the few signal calls a shell
//! needs. Everything is a thin, typed wrapper; `fork_exec` is the only composite (what
//! posix_spawn does, with plain fork).

use crate::errno::Errno;
use crate::syscall::{nr, syscall0, syscall1, syscall2, syscall3, syscall4};
use core::ffi::{CStr, c_char};

/// Most argv entries the wrappers here pass (argv[0] included), as arrays on the stack.
pub const MAX_ARGS: usize = 64;

/// An environment for execve: a NULL-terminated array of "NAME=value" strings that lives as
/// long as the program (its own initial environment, from [`Args::envp`](crate::Args::envp)),
/// or none.
#[derive(Clone, Copy)]
pub struct Envp(*const *const c_char);

impl Envp {
    /// No environment at all.
    pub const fn empty() -> Envp {
        static NONE: [usize; 1] = [0];
        Envp(NONE.as_ptr() as *const *const c_char)
    }

    /// # Safety
    /// `p` must point at a NULL-terminated array of NUL-terminated strings that stay alive and
    /// unchanged for the rest of the program.
    pub const unsafe fn from_raw(p: *const *const c_char) -> Envp {
        Envp(p)
    }

    fn as_ptr(self) -> *const *const c_char {
        self.0
    }
}

/// Creates a child: a copy of this process (copy-on-write on our kernel). Returns the child's
/// pid in the parent and 0 in the child. The runtime has no threads and no locks, so the
/// child may do anything the parent could.
pub fn fork() -> Result<i32, Errno> {
    // SAFETY: fork touches no memory of ours; both processes return here with their own copy.
    Errno::from_ret(unsafe { syscall0(nr::FORK) }).map(|pid| pid as i32)
}

/// Replaces this program with `path`, run with `argv` (argv[0] first) and `envp`. Returns only
/// if that failed, with why (ENOENT, ENOEXEC, E2BIG, EFAULT, ...).
pub fn execve(path: &CStr, argv: &[&CStr], envp: Envp) -> Errno {
    if argv.len() >= MAX_ARGS {
        return Errno::E2BIG;
    }
    let mut ptrs: [*const c_char; MAX_ARGS] = [core::ptr::null(); MAX_ARGS];
    for (slot, a) in ptrs.iter_mut().zip(argv) {
        *slot = a.as_ptr();
    }
    // SAFETY: path and every argv string are NUL-terminated and alive for the call; `ptrs` is
    // NULL-terminated (argv.len() < MAX_ARGS); `envp` is valid by its constructor's contract.
    let ret = unsafe {
        syscall3(
            nr::EXECVE,
            path.as_ptr() as usize,
            ptrs.as_ptr() as usize,
            envp.as_ptr() as usize,
        )
    };
    Errno::from_ret(ret).err().unwrap_or(Errno::EINVAL)
}

/// A descriptor change to make in the child of [`fork_exec`] before it execs.
#[derive(Clone, Copy, Debug)]
pub enum FdAction {
    /// dup2(from, to), then close `from` (if it differs).
    Move { from: i32, to: i32 },
    /// close(fd).
    Close(i32),
}

/// fork, then in the child: `setpgid(0, pgid)` when `pgid` is given (0: a group of its own),
/// the descriptor `actions` in order, and execve. Returns the child's pid once the exec has
/// succeeded, or the exec's error (the child then exits 127 and is reaped here), as
/// posix_spawn does. A close-on-exec pipe carries the error back: it reads end-of-file
/// exactly when the exec succeeded.
pub fn fork_exec(
    path: &CStr,
    argv: &[&CStr],
    envp: Envp,
    actions: &[FdAction],
    pgid: Option<i32>,
) -> Result<i32, Errno> {
    let (r, w) = pipe2(O_CLOEXEC)?;
    let pid = match fork() {
        Ok(pid) => pid,
        Err(e) => {
            let _ = close(r);
            let _ = close(w);
            return Err(e);
        }
    };
    if pid == 0 {
        let _ = close(r);
        let mut err = Errno(0);
        if let Some(g) = pgid
            && let Err(e) = setpgid(0, g)
        {
            err = e;
        }
        for a in actions {
            if err.0 != 0 {
                break;
            }
            let res = match *a {
                FdAction::Move { from, to } if from == to => clear_cloexec(from),
                FdAction::Move { from, to } => dup2(from, to).and_then(|_| close(from)),
                FdAction::Close(fd) => close(fd),
            };
            if let Err(e) = res {
                err = e;
            }
        }
        if err.0 == 0 {
            err = execve(path, argv, envp);
        }
        let _ = crate::write_all(w, &err.0.to_ne_bytes());
        crate::exit_group(127)
    }
    let _ = close(w);
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match crate::read(r, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    let _ = close(r);
    if got == 4 {
        let _ = waitpid(pid, 0);
        return Err(Errno(i32::from_ne_bytes(buf)));
    }
    Ok(pid)
}

/// How a child ended or changed, decoded from Linux's wait status word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStatus {
    /// It exited (or returned from main) with this code.
    Exited(i32),
    /// It was killed by this signal (SIGFPE, SIGSEGV...).
    Killed(i32),
    /// It was killed by this signal and dumped core (the status's 0x80 bit).
    Dumped(i32),
    /// It was stopped by this signal (seen with WUNTRACED).
    Stopped(i32),
    /// It was continued by SIGCONT (seen with WCONTINUED).
    Continued,
}

impl WaitStatus {
    /// Decode Linux's status word: `code << 8` for an exit, the signal (| 0x80 with a core
    /// dump) for a kill, `sig << 8 | 0x7f` for a stop, 0xffff for a continue.
    pub fn decode(status: i32) -> Self {
        if status == 0xffff {
            WaitStatus::Continued
        } else if status & 0xff == 0x7f {
            WaitStatus::Stopped((status >> 8) & 0xff)
        } else if status & 0x7f == 0 {
            WaitStatus::Exited((status >> 8) & 0xff)
        } else if status & 0x80 != 0 {
            WaitStatus::Dumped(status & 0x7f)
        } else {
            WaitStatus::Killed(status & 0x7f)
        }
    }

    /// The status a shell gives it in `$?`: the exit code, or 128 + the signal.
    pub fn shell_status(self) -> i32 {
        match self {
            WaitStatus::Exited(c) => c,
            WaitStatus::Killed(s) | WaitStatus::Dumped(s) | WaitStatus::Stopped(s) => 128 + s,
            WaitStatus::Continued => 128 + abi::signal::SIGCONT as i32,
        }
    }

    /// The signal that killed it, core dump or not.
    pub fn kill_signal(self) -> Option<i32> {
        match self {
            WaitStatus::Killed(s) | WaitStatus::Dumped(s) => Some(s),
            _ => None,
        }
    }
}

impl core::fmt::Display for WaitStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match *self {
            WaitStatus::Exited(code) => write!(f, "exited with {code}"),
            WaitStatus::Killed(sig) => write!(f, "killed by {}", crate::signal_name(sig)),
            WaitStatus::Dumped(sig) => {
                write!(f, "killed by {} (core dumped)", crate::signal_name(sig))
            }
            WaitStatus::Stopped(sig) => write!(f, "stopped by {}", crate::signal_name(sig)),
            WaitStatus::Continued => write!(f, "continued"),
        }
    }
}

/// wait4 options.
pub const WNOHANG: i32 = 1;
pub const WUNTRACED: i32 = 2;
pub const WCONTINUED: i32 = 8;

/// Waits for child `pid` (> 0), any child (-1), or any in process group -pid (< -1; 0: the
/// caller's group), with `options` (WNOHANG, WUNTRACED, WCONTINUED). `Ok(None)` when WNOHANG
/// found nothing to report; ECHILD when there is no such child.
pub fn waitpid(pid: i32, options: i32) -> Result<Option<(i32, WaitStatus)>, Errno> {
    let mut status: i32 = 0;
    // SAFETY: the kernel writes one i32 into `status`; rusage NULL.
    let ret = unsafe {
        syscall4(
            nr::WAIT4,
            pid as usize,
            &mut status as *mut i32 as usize,
            options as usize,
            0,
        )
    };
    match Errno::from_ret(ret)? {
        0 => Ok(None),
        child => Ok(Some((child as i32, WaitStatus::decode(status)))),
    }
}

/// pipe2 flags.
pub const O_CLOEXEC: i32 = abi::fs::open::O_CLOEXEC as i32;
pub const O_NONBLOCK: i32 = abi::fs::open::O_NONBLOCK as i32;

/// A pipe: (read end, write end).
pub fn pipe2(flags: i32) -> Result<(i32, i32), Errno> {
    let mut fds = [0i32; 2];
    // SAFETY: the kernel writes two i32s into `fds`.
    Errno::from_ret(unsafe { syscall2(nr::PIPE2, fds.as_mut_ptr() as usize, flags as usize) })?;
    Ok((fds[0], fds[1]))
}

/// Makes `new` a copy of `old` (closing what `new` was); returns `new`.
pub fn dup2(old: i32, new: i32) -> Result<i32, Errno> {
    // SAFETY: descriptor numbers only.
    Errno::from_ret(unsafe { syscall2(nr::DUP2, old as usize, new as usize) }).map(|fd| fd as i32)
}

pub fn close(fd: i32) -> Result<(), Errno> {
    // SAFETY: a descriptor number only.
    Errno::from_ret(unsafe { syscall1(nr::CLOSE, fd as usize) }).map(|_| ())
}

const F_SETFD: usize = 2;

/// Clears FD_CLOEXEC on `fd`, so that it survives execve.
pub fn clear_cloexec(fd: i32) -> Result<(), Errno> {
    // SAFETY: fcntl(F_SETFD, 0) on a descriptor number only.
    Errno::from_ret(unsafe { syscall3(nr::FCNTL, fd as usize, F_SETFD, 0) }).map(|_| ())
}

/// Sends `sig` to pid (> 0), process group -pid (< -1), the caller's group (0) or everyone it
/// may signal (-1).
pub fn kill(pid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: numbers only.
    Errno::from_ret(unsafe { syscall2(nr::KILL, pid as usize, sig as usize) }).map(|_| ())
}

pub fn getppid() -> i32 {
    // SAFETY: no arguments, no memory touched.
    unsafe { syscall0(nr::GETPPID) as i32 }
}

/// Puts process `pid` (0: the caller) into group `pgid` (0: a group named by its pid).
pub fn setpgid(pid: i32, pgid: i32) -> Result<(), Errno> {
    // SAFETY: numbers only.
    Errno::from_ret(unsafe { syscall2(nr::SETPGID, pid as usize, pgid as usize) }).map(|_| ())
}

pub fn getpgrp() -> i32 {
    // SAFETY: no arguments, no memory touched.
    unsafe { syscall0(nr::GETPGRP) as i32 }
}

/// A signal's disposition, for [`signal`].
#[derive(Clone, Copy, Debug)]
pub enum Disposition {
    Default,
    Ignore,
    /// Run this function (SA_RESTART: interrupted calls restart).
    Handler(extern "C" fn(i32)),
}

/// Linux's `struct kernel_sigaction` for rt_sigaction.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

const SA_RESTORER: u64 = 0x0400_0000;
const SA_RESTART: u64 = 0x1000_0000;

/// Where a handler returns: rt_sigreturn, which restores what the signal interrupted.
#[unsafe(naked)]
unsafe extern "C" fn restore_rt() -> ! {
    core::arch::naked_asm!("mov eax, 15", "syscall", "ud2")
}

/// Sets what `sig` does; returns whether it had been ignored before (a shell keeps signals
/// ignored that its parent ignored).
pub fn signal(sig: i32, what: Disposition) -> Result<bool, Errno> {
    let (handler, flags) = match what {
        Disposition::Default => (0, SA_RESTORER),
        Disposition::Ignore => (1, SA_RESTORER),
        Disposition::Handler(f) => (f as *const () as usize, SA_RESTORER | SA_RESTART),
    };
    let new = KernelSigaction {
        handler,
        flags,
        restorer: restore_rt as *const () as usize,
        mask: 0,
    };
    let mut old = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: the kernel reads `new` and writes `old`, both ours, with the 8-byte signal set
    // Linux x86-64 uses; a handler runs on this stack and returns through `restore_rt`.
    Errno::from_ret(unsafe {
        syscall4(
            nr::RT_SIGACTION,
            sig as usize,
            &new as *const KernelSigaction as usize,
            &mut old as *mut KernelSigaction as usize,
            8,
        )
    })?;
    Ok(old.handler == 1)
}

/// rt_sigprocmask's `how`.
pub const SIG_BLOCK: i32 = 0;
pub const SIG_UNBLOCK: i32 = 1;
pub const SIG_SETMASK: i32 = 2;

/// The bit of `sig` in a signal set.
pub const fn sigbit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// Changes the signal mask (`how`: SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK); returns the old one.
pub fn sigprocmask(how: i32, set: u64) -> Result<u64, Errno> {
    let mut old = 0u64;
    // SAFETY: the kernel reads `set` and writes `old`, 8 bytes each, both ours.
    Errno::from_ret(unsafe {
        syscall4(
            nr::RT_SIGPROCMASK,
            how as usize,
            &set as *const u64 as usize,
            &mut old as *mut u64 as usize,
            8,
        )
    })?;
    Ok(old)
}
