//! init: pid 1 of the default demo. It starts the other programs by name with our own `spawn`
//! call (1000), in groups, waits for each with wait4 and checks it ended as expected:
//!
//! 1. `hello` writes a line and exits 0;
//! 2. `spin A` and `spin B` compute without system calls (the timer must preempt them: their
//!    lines interleave) while `divzero` (SIGFPE), `privileged` (cli: SIGSEGV), `readkernel`
//!    (SIGSEGV) are killed and `badptr` gets EFAULT for each bad pointer (exit 0): the rest go on;
//! 3. `ping` and `pong` pass the CPU back and forth with sched_yield;
//! 4. `fpu A` and `fpu B` check that each keeps its own SSE/x87 registers.
//!
//! One line per check ("init: divzero killed by SIGFPE, as expected"); exit 0 iff all passed.
//! On Linux `spawn` is ENOSYS: init reports it and exits 1.
#![no_std]
#![no_main]

use core::ffi::CStr;
use lde_user::WaitStatus::{Exited, Killed};
use lde_user::{Args, SIGFPE, SIGSEGV, WaitStatus, println, spawn, wait4};

lde_user::entry!(main);

/// A program to start, and how it must end.
struct Job {
    name: &'static CStr,
    args: &'static [&'static CStr],
    expect: WaitStatus,
}

const fn job(name: &'static CStr, args: &'static [&'static CStr], expect: WaitStatus) -> Job {
    Job { name, args, expect }
}

/// The demo: the jobs of a group run concurrently; groups run one after the other.
const GROUPS: &[&[Job]] = &[
    &[job(c"hello", &[], Exited(0))],
    &[
        job(c"spin", &[c"A"], Exited(0)),
        job(c"spin", &[c"B"], Exited(0)),
        job(c"divzero", &[], Killed(SIGFPE)),
        job(c"privileged", &[c"cli"], Killed(SIGSEGV)),
        job(c"readkernel", &[], Killed(SIGSEGV)),
        job(c"badptr", &[], Exited(0)),
    ],
    &[job(c"ping", &[], Exited(0)), job(c"pong", &[], Exited(0))],
    &[
        job(c"fpu", &[c"A"], Exited(0)),
        job(c"fpu", &[c"B"], Exited(0)),
    ],
];

/// "spin A": the job's name and arguments, for messages.
struct Label<'a>(&'a Job);

impl core::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "{}", self.0.name.to_str().unwrap_or("?"))?;
        for arg in self.0.args {
            write!(f, " {}", arg.to_str().unwrap_or("?"))?;
        }
        Ok(())
    }
}

/// Start every job of `group`, then wait for each; returns how many ended as expected.
fn run_group(group: &[Job]) -> usize {
    let mut pids = [None; 8];
    for (job, pid) in group.iter().zip(&mut pids) {
        match spawn(job.name, job.args) {
            Ok(p) => *pid = Some(p),
            Err(e) => println!("init: cannot spawn {}: {e}", Label(job)),
        }
    }
    let mut passed = 0;
    for (job, pid) in group.iter().zip(pids) {
        let Some(pid) = pid else { continue };
        match wait4(pid) {
            Ok((_, status)) if status == job.expect => {
                println!("init: {} {status}, as expected", Label(job));
                passed += 1;
            }
            Ok((_, status)) => println!("init: {} {status}, expected {}", Label(job), job.expect),
            Err(e) => println!("init: wait4({pid}) for {} failed: {e}", Label(job)),
        }
    }
    passed
}

fn main(_args: Args) -> i32 {
    let total: usize = GROUPS.iter().map(|g| g.len()).sum();
    let passed: usize = GROUPS.iter().map(|g| run_group(g)).sum();
    if passed == total {
        println!("init: all {total} checks passed");
        0
    } else {
        println!("init: {} of {total} checks failed", total - passed);
        1
    }
}
