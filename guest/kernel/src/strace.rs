//! `strace=1` on the kernel command line: one console line for every system call, its
//! arguments and its result, as strace prints them (roughly: arguments in hex, results in
//! decimal or an errno name), so a user can see why a program stopped. A call that blocks
//! prints "= ? (blocks)" and its line again when it runs once more; the calls the slow exit
//! runs (fork, execve, rt_sigreturn) print their result from there.

use crate::percpu::current;
use crate::syscall_table::SYSCALL_TABLE;
use crate::trap_frame::TrapFrame;
use abi::syscall::{name, nr};
use abi::Errno;

/// How many arguments to show (Linux's signatures; 3 unless listed).
fn args_of(n: usize) -> usize {
    match n {
        nr::GETPID
        | nr::GETPPID
        | nr::GETTID
        | nr::FORK
        | nr::VFORK
        | nr::PAUSE
        | nr::SCHED_YIELD
        | nr::SETSID
        | nr::GETPGRP
        | nr::RT_SIGRETURN => 0,
        nr::EXIT
        | nr::EXIT_GROUP
        | nr::CLOSE
        | nr::BRK
        | nr::DUP
        | nr::ALARM
        | nr::SET_TID_ADDRESS => 1,
        nr::MUNMAP
        | nr::PIPE2
        | nr::ARCH_PRCTL
        | nr::CLOCK_GETTIME
        | nr::KILL
        | nr::DUP2
        | nr::NANOSLEEP
        | nr::SETPGID
        | nr::SIGALTSTACK
        | nr::TKILL => 2,
        nr::WAIT4
        | nr::RT_SIGACTION
        | nr::RT_SIGPROCMASK
        | nr::OPENAT
        | nr::PREAD64
        | nr::PWRITE64
        | nr::NEWFSTATAT
        | nr::SENDFILE
        | nr::PRLIMIT64 => 4,
        nr::CLONE | nr::MREMAP | nr::WAITID | nr::PPOLL => 5,
        nr::MMAP | nr::FUTEX | nr::PSELECT6 => 6,
        _ => 3,
    }
}

/// Every system call while strace is on (syscall.rs puts this in every entry of its table):
/// print, run the real entry, print the result.
pub extern "C" fn traced(f: &mut TrapFrame) {
    let n = f.rax as usize;
    let p = current();
    let a = [f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9];
    let shown = &a[..args_of(n)];
    crate::print!("strace: {} {}: {}(", p.pid(), p.name(), name(n));
    for (i, v) in shown.iter().enumerate() {
        crate::print!("{}{v:#x}", if i == 0 { "" } else { ", " });
    }
    let rip = f.rip;
    let handler = SYSCALL_TABLE
        .get(n)
        .copied()
        .unwrap_or(crate::syscall_table::sys_nosys);
    handler(f);
    if n == nr::EXIT || n == nr::EXIT_GROUP {
        crate::println!(") = ?");
    } else if crate::sys::deferred(n as u64) {
        crate::println!(") ...");
    } else if f.rip != rip {
        crate::println!(") = ? (blocks)");
    } else {
        crate::println!(") = {}", Result(f.rax));
    }
}

/// The end of a call the slow exit ran.
pub fn deferred_result(n: u64, rax: u64) {
    let p = current();
    crate::println!(
        "strace: {} {}: ... {} = {}",
        p.pid(),
        p.name(),
        name(n as usize),
        Result(rax)
    );
}

struct Result(u64);

impl core::fmt::Display for Result {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match Errno::from_ret(self.0 as isize) {
            Ok(v) if v > 0xffff_ffff => write!(f, "{v:#x}"),
            Ok(v) => write!(f, "{v}"),
            Err(e) => write!(f, "-1 {}", e.name()),
        }
    }
}
