//! init: pid 1. With no arguments, the default demo: it starts the other programs from `/bin`
//! with fork and execve (`fork_exec`), in groups, waits for each with wait4 and checks it
//! ended as expected:
//!
//! 1. `hello` writes a line and exits 0;
//! 2. `spin A` and `spin B` compute without system calls (the timer must preempt them: their
//!    lines interleave) while `divzero` (SIGFPE), `privileged` (cli: SIGSEGV), `readkernel`
//!    (SIGSEGV) are killed and `badptr` gets EFAULT for each bad pointer (exit 0): the rest go on;
//! 3. `ping` and `pong` pass the CPU back and forth with sched_yield;
//! 4. `fpu A` and `fpu B` check that each keeps its own SSE/x87 registers.
//!
//! One line per check ("init: pid 5 divzero killed by SIGFPE, as expected"); exit 0 iff all
//! passed.
//!
//! `init PROG ARGS...` instead runs `/bin/PROG` (how `vmm --shell` runs `sh`) and exits with its
//! status (128 + the signal if it was killed), which powers the VM off.
//!
//! Either way init stays pid 1 and reaps orphans: the kernel re-parents a process whose parent
//! died to pid 1, and only a wait by pid 1 frees its zombie.
#![no_std]
#![no_main]

use core::ffi::CStr;
use lde_user::WaitStatus::{Exited, Killed};
use lde_user::{
    Args, Envp, Errno, MAX_ARGS, SIGFPE, SIGSEGV, WaitStatus, eprintln, execve, exit_group, fork,
    println, waitpid,
};

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

/// `/bin/NAME`, NUL-terminated, in `buf`.
fn bin_path<'a>(buf: &'a mut [u8; 128], name: &[u8]) -> Option<&'a CStr> {
    let prefix = b"/bin/";
    let end = prefix.len() + name.len();
    if end >= buf.len() || name.contains(&0) {
        return None;
    }
    buf[..prefix.len()].copy_from_slice(prefix);
    buf[prefix.len()..end].copy_from_slice(name);
    buf[end] = 0;
    CStr::from_bytes_with_nul(&buf[..=end]).ok()
}

/// Starts `/bin/NAME` with argv = [NAME, args...]: fork, then execve in the child, which says
/// why and exits 127 if the exec fails. (Not `fork_exec`: that waits for the exec to succeed,
/// and init starts a group's jobs back to back, so that they compete for the CPU from the
/// start.)
fn start(name: &CStr, args: &[&CStr], envp: Envp) -> Result<i32, Errno> {
    let mut path = [0u8; 128];
    let path = bin_path(&mut path, name.to_bytes()).ok_or(Errno::ENAMETOOLONG)?;
    let mut argv: [&CStr; MAX_ARGS - 1] = [c""; MAX_ARGS - 1];
    if args.len() + 1 > argv.len() {
        return Err(Errno::E2BIG);
    }
    argv[0] = name;
    argv[1..=args.len()].copy_from_slice(args);
    let pid = fork()?;
    if pid == 0 {
        let e = execve(path, &argv[..=args.len()], envp);
        eprintln!("init: cannot run {}: {e}", path.to_str().unwrap_or("?"));
        exit_group(127);
    }
    Ok(pid)
}

/// Waits for `pid`; any other child that ends meanwhile (an orphan given to us) is reaped.
fn wait_reaping(pid: i32) -> Result<WaitStatus, Errno> {
    loop {
        match waitpid(-1, 0) {
            Ok(Some((p, status))) if p == pid => return Ok(status),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Start every job of `group`, then wait for each; returns how many ended as expected. Any
/// child may end first, and orphans given to pid 1 end too: every wait4(-1) result is matched
/// to its job, or is an orphan, reaped.
fn run_group(group: &[Job], envp: Envp) -> usize {
    let mut pids = [None; 8];
    for (job, pid) in group.iter().zip(&mut pids) {
        match start(job.name, job.args, envp) {
            Ok(p) => *pid = Some(p),
            Err(e) => println!("init: cannot start {}: {e}", Label(job)),
        }
    }
    let mut ended: [Option<WaitStatus>; 8] = [None; 8];
    let mut left = pids.iter().flatten().count();
    while left > 0 {
        match waitpid(-1, 0) {
            Ok(Some((p, status))) => {
                if let Some(k) = pids.iter().position(|&q| q == Some(p)) {
                    ended[k] = Some(status);
                    left -= 1;
                }
            }
            Ok(None) | Err(Errno::EINTR) => {}
            Err(e) => {
                println!("init: wait4 failed: {e}");
                break;
            }
        }
    }
    let mut passed = 0;
    for ((job, pid), status) in group.iter().zip(pids).zip(ended) {
        let Some(pid) = pid else { continue };
        match status {
            // "init: pid 5 divzero killed by SIGFPE, as expected": the tests read the demo's
            // plan (pids, programs, how each ends) from these lines, not from a copy of it.
            Some(status) if same_end(status, job.expect) => {
                println!("init: pid {pid} {} {status}, as expected", Label(job));
                passed += 1;
            }
            Some(status) => println!(
                "init: pid {pid} {} {status}, expected {}",
                Label(job),
                job.expect
            ),
            None => println!("init: pid {pid} ({}) was never reaped", Label(job)),
        }
    }
    passed
}

/// A kill is the same end with or without a core dump.
fn same_end(got: WaitStatus, want: WaitStatus) -> bool {
    match (got, want) {
        (WaitStatus::Dumped(a), Killed(b)) => a == b,
        _ => got == want,
    }
}

/// `init PROG ARGS...`: run it, reap orphans until it ends, exit with its status.
fn run_program(args: Args) -> i32 {
    let mut argv: [&CStr; MAX_ARGS - 1] = [c""; MAX_ARGS - 1];
    let n = args.len() - 1;
    if n > argv.len() {
        eprintln!("init: too many arguments");
        return 1;
    }
    for (i, slot) in argv.iter_mut().enumerate().take(n) {
        let bytes = args.get_bytes(i + 1).unwrap_or(b"");
        // SAFETY: argv strings are NUL-terminated on the initial stack, which lives as long as
        // the program; `get_bytes` gave the bytes before that NUL.
        *slot = unsafe { CStr::from_ptr(bytes.as_ptr().cast()) };
    }
    let name = argv[0];
    let pid = match start(name, &argv[1..n], args.envp()) {
        Ok(pid) => {
            // The program gets a process group of its own, in the terminal's foreground: the
            // keys' signals (Ctrl-C) go to it and what it runs, not to init.
            if lde_user::setpgid(pid, pid).is_ok() {
                let pgid = pid;
                // From the background (the last program's group had the terminal), a
                // tcsetpgrp is stopped by SIGTTOU unless ignored, as shells ignore it; only
                // for this call, so the programs we start get it at its default.
                let ttou = lde_user::signal(lde_user::SIGTTOU, lde_user::Disposition::Ignore);
                // SAFETY: TIOCSPGRP reads one int from a local that outlives the call.
                let _ = unsafe {
                    lde_user::syscall::syscall3(
                        lde_user::syscall::nr::IOCTL,
                        0,
                        abi::termios::ioctl::TIOCSPGRP as usize,
                        &pgid as *const i32 as usize,
                    )
                };
                if ttou.is_ok() {
                    let _ = lde_user::signal(lde_user::SIGTTOU, lde_user::Disposition::Default);
                }
            }
            pid
        }
        Err(e) => {
            eprintln!(
                "init: cannot start /bin/{}: {e}",
                name.to_str().unwrap_or("?")
            );
            return 127;
        }
    };
    match wait_reaping(pid) {
        Ok(status) => status.shell_status(),
        Err(e) => {
            eprintln!("init: wait4 for {pid}: {e}");
            1
        }
    }
}

fn main(args: Args) -> i32 {
    if args.len() > 1 {
        return run_program(args);
    }
    let envp = args.envp();
    let total: usize = GROUPS.iter().map(|g| g.len()).sum();
    let passed: usize = GROUPS.iter().map(|g| run_group(g, envp)).sum();
    // Orphans are reaped as they end; none should be left, but a zombie must not outlive us.
    while let Ok(Some(_)) = waitpid(-1, lde_user::WNOHANG) {}
    if passed == total {
        println!("init: all {total} checks passed");
        0
    } else {
        println!("init: {} of {total} checks failed", total - passed);
        1
    }
}
