//! Typed wrappers for the system calls of our kernel's ABI (all Linux x86-64, except `spawn`).
//! Errors come back as `Err(Errno)`.

use crate::errno::Errno;
use crate::process::WaitStatus;
use crate::syscall::{nr, syscall0, syscall1, syscall2, syscall3, syscall4};
use core::ffi::{CStr, c_char};

/// Write `buf` to `fd`; returns how many bytes were written.
pub fn write(fd: i32, buf: &[u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel only reads `buf.len()` bytes from `buf`, which we own.
    Errno::from_ret(unsafe { syscall3(nr::WRITE, fd as usize, buf.as_ptr() as usize, buf.len()) })
}

/// Write all of `buf`, calling `write` again after short writes.
pub fn write_all(fd: i32, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match write(fd, buf)? {
            0 => return Err(Errno::EFAULT),
            n => buf = &buf[n..],
        }
    }
    Ok(())
}

/// Read into `buf` from `fd` (0 = console input); returns how many bytes were read.
pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which we borrow mutably.
    Errno::from_ret(unsafe {
        syscall3(nr::READ, fd as usize, buf.as_mut_ptr() as usize, buf.len())
    })
}

/// One buffer of a `writev`, laid out as Linux's `struct iovec`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IoVec<'a> {
    base: *const u8,
    len: usize,
    _buf: core::marker::PhantomData<&'a [u8]>,
}

impl<'a> IoVec<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        IoVec {
            base: buf.as_ptr(),
            len: buf.len(),
            _buf: core::marker::PhantomData,
        }
    }
}

/// Write several buffers in one call (as musl's printf does); returns the total written.
pub fn writev(fd: i32, bufs: &[IoVec]) -> Result<usize, Errno> {
    // SAFETY: each IoVec borrows a live buffer; the kernel only reads them.
    Errno::from_ret(unsafe {
        syscall3(nr::WRITEV, fd as usize, bufs.as_ptr() as usize, bufs.len())
    })
}

/// `ioctl(fd, request, arg)`. Our kernel has no devices to control: expect -ENOTTY.
///
/// # Safety
/// `arg` may be a pointer the kernel writes through, as `request` says.
pub unsafe fn ioctl(fd: i32, request: usize, arg: usize) -> Result<usize, Errno> {
    // SAFETY: forwarded to the caller.
    Errno::from_ret(unsafe { syscall3(nr::IOCTL, fd as usize, request, arg) })
}

/// Give the CPU to another ready process (if any).
pub fn sched_yield() {
    // SAFETY: no arguments, no memory touched.
    unsafe { syscall0(nr::SCHED_YIELD) };
}

/// A time, as Linux's `struct timespec`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

impl Timespec {
    pub fn from_nanos(ns: u64) -> Self {
        Timespec {
            sec: (ns / 1_000_000_000) as i64,
            nsec: (ns % 1_000_000_000) as i64,
        }
    }

    pub fn as_nanos(&self) -> u64 {
        self.sec as u64 * 1_000_000_000 + self.nsec as u64
    }
}

/// Block for (at least) `duration`.
pub fn nanosleep(duration: &Timespec) -> Result<(), Errno> {
    // SAFETY: the kernel reads the Timespec; the remaining-time pointer is NULL.
    Errno::from_ret(unsafe { syscall2(nr::NANOSLEEP, duration as *const _ as usize, 0) })
        .map(|_| ())
}

/// Block for (at least) `ms` milliseconds.
pub fn sleep_ms(ms: u64) -> Result<(), Errno> {
    nanosleep(&Timespec::from_nanos(ms * 1_000_000))
}

pub const CLOCK_REALTIME: i32 = 0;
pub const CLOCK_MONOTONIC: i32 = 1;

/// Read clock `clock` (CLOCK_MONOTONIC or CLOCK_REALTIME).
pub fn clock_gettime(clock: i32) -> Result<Timespec, Errno> {
    let mut t = Timespec::default();
    // SAFETY: the kernel writes one Timespec into `t`.
    Errno::from_ret(unsafe {
        syscall2(nr::CLOCK_GETTIME, clock as usize, &mut t as *mut _ as usize)
    })
    .map(|_| t)
}

/// Nanoseconds on the monotonic clock (0 if it cannot be read).
pub fn monotonic_ns() -> u64 {
    clock_gettime(CLOCK_MONOTONIC).map_or(0, |t| t.as_nanos())
}

/// This process's id.
pub fn getpid() -> i32 {
    // SAFETY: no arguments, no memory touched.
    unsafe { syscall0(nr::GETPID) as i32 }
}

/// End this process (thread, on Linux) with `status` (0-255).
pub fn exit(status: i32) -> ! {
    // SAFETY: ends the process; nothing runs after it.
    unsafe { syscall1(nr::EXIT, status as usize) };
    unreachable_exit()
}

/// End the whole process with `status` (0-255); what returning from `main` does.
pub fn exit_group(status: i32) -> ! {
    // SAFETY: ends the process; nothing runs after it.
    unsafe { syscall1(nr::EXIT_GROUP, status as usize) };
    unreachable_exit()
}

/// If exit ever returned, trap (ud2) rather than run on.
fn unreachable_exit() -> ! {
    loop {
        // SAFETY: ud2 raises #UD; the kernel kills the process.
        unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
    }
}

/// ARCH_SET_FS, for [`arch_set_fs`].
pub const ARCH_SET_FS: usize = 0x1002;

/// Set the FS segment base (what libc uses for thread-local storage). This runtime never uses
/// FS itself, so any value is safe here.
pub fn arch_set_fs(base: usize) -> Result<(), Errno> {
    // SAFETY: only FS-relative accesses depend on it, and this runtime makes none.
    Errno::from_ret(unsafe { syscall2(nr::ARCH_PRCTL, ARCH_SET_FS, base) }).map(|_| ())
}

/// Tell the kernel where to clear the thread id when this thread exits; returns the thread id.
///
/// # Safety
/// `tidptr` must stay writable for the rest of the thread's life (or be NULL).
pub unsafe fn set_tid_address(tidptr: *mut i32) -> i32 {
    // SAFETY: forwarded to the caller.
    unsafe { syscall1(nr::SET_TID_ADDRESS, tidptr as usize) as i32 }
}

pub const SIGILL: i32 = abi::signal::SIGILL as i32;
pub const SIGTRAP: i32 = abi::signal::SIGTRAP as i32;
pub const SIGFPE: i32 = abi::signal::SIGFPE as i32;
pub const SIGKILL: i32 = abi::signal::SIGKILL as i32;
pub const SIGSEGV: i32 = abi::signal::SIGSEGV as i32;
pub const SIGPIPE: i32 = abi::signal::SIGPIPE as i32;
pub const SIGTERM: i32 = abi::signal::SIGTERM as i32;
pub const SIGINT: i32 = abi::signal::SIGINT as i32;
pub const SIGQUIT: i32 = abi::signal::SIGQUIT as i32;
pub const SIGTTOU: i32 = abi::signal::SIGTTOU as i32;
pub const SIGCHLD: i32 = abi::signal::SIGCHLD as i32;

/// The name of a signal number, e.g. "SIGSEGV".
pub fn signal_name(sig: i32) -> &'static str {
    abi::signal::name(sig as u32)
}

/// Wait for child `pid` (-1: any child) to end; returns its pid and how it ended.
pub fn wait4(pid: i32) -> Result<(i32, WaitStatus), Errno> {
    let mut status: i32 = 0;
    // SAFETY: the kernel writes one i32 into `status`; options 0, rusage NULL.
    let ret = unsafe {
        syscall4(
            nr::WAIT4,
            pid as usize,
            &mut status as *mut i32 as usize,
            0,
            0,
        )
    };
    Errno::from_ret(ret).map(|child| (child as i32, WaitStatus::decode(status)))
}

/// Most arguments `spawn` passes (argv[0] included).
pub const SPAWN_MAX_ARGS: usize = 16;

/// Our own call (1000): start the archive's program `name` as a child, with
/// argv = [name, args...]; returns its pid. With no `args` it passes a NULL argv, which the
/// kernel treats as [name]. Not on Linux (-ENOSYS there).
pub fn spawn(name: &CStr, args: &[&CStr]) -> Result<i32, Errno> {
    if args.len() + 1 >= SPAWN_MAX_ARGS {
        return Err(Errno::E2BIG);
    }
    let mut argv: [*const c_char; SPAWN_MAX_ARGS] = [core::ptr::null(); SPAWN_MAX_ARGS];
    argv[0] = name.as_ptr();
    for (slot, arg) in argv[1..].iter_mut().zip(args) {
        *slot = arg.as_ptr();
    }
    let argv_ptr = if args.is_empty() {
        0
    } else {
        argv.as_ptr() as usize
    };
    // SAFETY: the kernel reads the NUL-terminated name and the NULL-terminated argv array,
    // both alive for the call; it writes nothing.
    Errno::from_ret(unsafe { syscall2(nr::SPAWN, name.as_ptr() as usize, argv_ptr) })
        .map(|pid| pid as i32)
}
