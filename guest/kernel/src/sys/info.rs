//! What C libraries ask about the machine and the process at start-up and often after: uname,
//! getrandom, resource limits, the one user (root), sysinfo, times and getrusage, CPU affinity
//! and scheduling parameters (one CPU, one policy), prctl's names, membarrier.

use alloc::vec::Vec;
use core::sync::atomic::Ordering::Relaxed;

use super::{pml4, SysResult};
use crate::percpu::current;
use crate::process::{Process, TASKS};
use crate::time;
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_from_user, copy_str_from_user, copy_to_user};
use abi::Errno;

/// The release we claim: new enough for glibc's and musl's checks (glibc refuses to start under
/// a kernel older than its configured minimum, 3.2 on Debian), and what the calls here follow.
const RELEASE: &str = abi::machine::KERNEL_RELEASE;

/// uname(buf): six fields of 65 bytes.
pub fn sys_uname(f: &mut TrapFrame) -> SysResult {
    let mut u = [0u8; 6 * 65];
    let fields: [&[u8]; 6] = [
        b"Linux",
        b"lde",
        RELEASE.as_bytes(),
        b"#1 lde (Limited Direct Execution)",
        b"x86_64",
        b"(none)",
    ];
    for (i, v) in fields.iter().enumerate() {
        u[i * 65..i * 65 + v.len()].copy_from_slice(v);
    }
    copy_to_user(pml4(), f.rdi, &u)?;
    Ok(0)
}

/// syslog(type, buf, len), as glibc's klogctl and busybox's dmesg call it: the kernel log
/// (klog.rs). Reading is allowed to everyone (one user, root).
pub fn sys_syslog(f: &mut TrapFrame) -> SysResult {
    const CLOSE: u64 = 0;
    const OPEN: u64 = 1;
    const READ: u64 = 2;
    const READ_ALL: u64 = 3;
    const READ_CLEAR: u64 = 4;
    const CLEAR: u64 = 5;
    const CONSOLE_OFF: u64 = 6;
    const CONSOLE_LEVEL: u64 = 8;
    const SIZE_UNREAD: u64 = 9;
    const SIZE_BUFFER: u64 = 10;
    let (kind, buf, len) = (f.rdi as u32 as u64, f.rsi, f.rdx as i32);
    match kind {
        CLOSE | OPEN | CONSOLE_OFF..=CONSOLE_LEVEL => Ok(0),
        CLEAR => {
            crate::klog::clear();
            Ok(0)
        }
        SIZE_UNREAD => Ok(crate::klog::unread() as u64),
        SIZE_BUFFER => Ok(crate::klog::CAPACITY as u64),
        READ | READ_ALL | READ_CLEAR => {
            if buf == 0 || len < 0 {
                return Err(Errno::EINVAL);
            }
            let mut out = Vec::new();
            let n = (len as usize).min(crate::klog::CAPACITY);
            out.try_reserve_exact(n).map_err(|_| Errno::ENOMEM)?;
            out.resize(n, 0);
            let got = match kind {
                READ => crate::klog::read_unread(&mut out),
                _ => crate::klog::read_all(&mut out, kind == READ_CLEAR),
            };
            copy_to_user(pml4(), buf, &out[..got])?;
            Ok(got as u64)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// getrandom(buf, len, flags): from the kernel's generator (random.rs), which never blocks
/// once seeded at boot. Written in pieces, so a huge request is not held in kernel memory.
pub fn sys_getrandom(f: &mut TrapFrame) -> SysResult {
    const GRND_NONBLOCK: u64 = 1;
    const GRND_RANDOM: u64 = 2;
    const GRND_INSECURE: u64 = 4;
    let (buf, len, flags) = (f.rdi, f.rsi.min(i32::MAX as u64), f.rdx);
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE)
    {
        return Err(Errno::EINVAL);
    }
    crate::random::fill_user(pml4(), buf, len)
}

// Resource limits: kept per process (inherited by fork), reported; the kernel's own limits
// (the stack's 8 MiB, 1,024 descriptors, the process table) are what the defaults say.

const RLIM_INFINITY: u64 = u64::MAX;
const RLIMIT_NLIMITS: usize = 16;
const RLIMIT_STACK: usize = 3;
const RLIMIT_CORE: usize = 4;
const RLIMIT_NPROC: usize = 6;
const RLIMIT_NOFILE: usize = 7;

fn default_limit(resource: usize) -> (u64, u64) {
    match resource {
        RLIMIT_STACK => (
            crate::memory::layout::STACK_MAX,
            crate::memory::layout::STACK_MAX,
        ),
        RLIMIT_CORE => (0, RLIM_INFINITY),
        RLIMIT_NPROC => {
            let max = TASKS.lock().max as u64;
            (max, max)
        }
        RLIMIT_NOFILE => (crate::file::MAX_FDS as u64, crate::file::MAX_FDS as u64),
        _ => (RLIM_INFINITY, RLIM_INFINITY),
    }
}

/// The limit of `p` for `resource`: what it set, or the default.
fn limit_of(p: &Process, resource: usize) -> (u64, u64) {
    p.rlimits.lock()[resource].unwrap_or_else(|| default_limit(resource))
}

/// prlimit64(pid, resource, new, old).
pub fn sys_prlimit64(f: &mut TrapFrame) -> SysResult {
    let (pid, resource, new, old) = (f.rdi as u32, f.rsi as usize, f.rdx, f.r10);
    prlimit(pid, resource, new, old)
}

pub fn sys_getrlimit(f: &mut TrapFrame) -> SysResult {
    prlimit(0, f.rdi as usize, 0, f.rsi)
}

pub fn sys_setrlimit(f: &mut TrapFrame) -> SysResult {
    prlimit(0, f.rdi as usize, f.rsi, 0)
}

fn prlimit(pid: u32, resource: usize, new: u64, old: u64) -> SysResult {
    if resource >= RLIMIT_NLIMITS {
        return Err(Errno::EINVAL);
    }
    let p: &Process = if pid == 0 {
        current()
    } else {
        TASKS.lock().find_pid(pid).ok_or(Errno::ESRCH)?
    };
    let set = if new != 0 {
        let mut b = [0u8; 16];
        copy_from_user(pml4(), &mut b, new)?;
        let soft = u64::from_le_bytes(b[..8].try_into().unwrap());
        let hard = u64::from_le_bytes(b[8..].try_into().unwrap());
        if soft > hard {
            return Err(Errno::EINVAL);
        }
        Some((soft, hard))
    } else {
        None
    };
    let was = limit_of(p, resource);
    if old != 0 {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&was.0.to_le_bytes());
        b[8..].copy_from_slice(&was.1.to_le_bytes());
        copy_to_user(pml4(), old, &b)?;
    }
    if let Some(v) = set {
        p.rlimits.lock()[resource] = Some(v);
    }
    Ok(0)
}

// One user, root: every id is 0, and only 0 can be set.

pub fn sys_zero(_f: &mut TrapFrame) -> SysResult {
    Ok(0)
}

/// setuid, setgid, setfsuid's relatives with one id: 0 (or -1, "unchanged") only.
pub fn sys_set_id(f: &mut TrapFrame) -> SysResult {
    ids_are_root(&[f.rdi])
}

/// setreuid/setregid(a, b) and setresuid/setresgid(a, b, c).
pub fn sys_set_ids(f: &mut TrapFrame) -> SysResult {
    ids_are_root(&[f.rdi, f.rsi, f.rdx])
}

fn ids_are_root(ids: &[u64]) -> SysResult {
    if ids
        .iter()
        .all(|&id| id as u32 == 0 || id as u32 == u32::MAX)
    {
        Ok(0)
    } else {
        Err(Errno::EPERM) // there are no other users to become
    }
}

/// getresuid/getresgid(a, b, c): three zeros.
pub fn sys_get_res_ids(f: &mut TrapFrame) -> SysResult {
    for at in [f.rdi, f.rsi, f.rdx] {
        copy_to_user(pml4(), at, &0u32.to_le_bytes())?;
    }
    Ok(0)
}

/// setgroups(n, list): only the empty list (root in no supplementary group).
pub fn sys_setgroups(f: &mut TrapFrame) -> SysResult {
    if f.rdi == 0 {
        Ok(0)
    } else {
        Err(Errno::EPERM)
    }
}

// The machine and the time a process used.

/// sysinfo(info): uptime, RAM, the number of tasks.
pub fn sys_sysinfo(f: &mut TrapFrame) -> SysResult {
    let (total, free) = {
        let fr = crate::memory::frame::FRAMES.lock();
        (fr.total_frames * 4096, fr.free_frames * 4096)
    };
    let procs = TASKS.lock().live().count() as u16;
    let mut s = [0u8; 112];
    let uptime = time::monotonic_ns() / 1_000_000_000;
    s[0..8].copy_from_slice(&uptime.to_le_bytes());
    s[32..40].copy_from_slice(&total.to_le_bytes());
    s[40..48].copy_from_slice(&free.to_le_bytes());
    s[80..82].copy_from_slice(&procs.to_le_bytes());
    s[104..108].copy_from_slice(&1u32.to_le_bytes()); // mem_unit
    copy_to_user(pml4(), f.rdi, &s)?;
    Ok(0)
}

/// Clock ticks (AT_CLKTCK, 100 a second) of CPU time.
fn ticks(cycles: u64) -> u64 {
    time::cycles_to_ns(cycles) / 10_000_000
}

/// times(buf): the caller's CPU time as user time (the kernel does not split out system time:
/// its own work is on the caller's account), children's as 0; returns ticks since boot.
pub fn sys_times(f: &mut TrapFrame) -> SysResult {
    crate::scheduler::charge_running();
    if f.rdi != 0 {
        let mut t = [0u8; 32];
        let user = ticks(current().stats.cpu_cycles.load(Relaxed));
        t[..8].copy_from_slice(&user.to_le_bytes());
        copy_to_user(pml4(), f.rdi, &t)?;
    }
    Ok(time::monotonic_ns() / 10_000_000)
}

/// getrusage(who, usage): RUSAGE_SELF and RUSAGE_THREAD give the CPU time as user time;
/// RUSAGE_CHILDREN zeros.
pub fn sys_getrusage(f: &mut TrapFrame) -> SysResult {
    const RUSAGE_CHILDREN: i32 = -1;
    const RUSAGE_SELF: i32 = 0;
    const RUSAGE_THREAD: i32 = 1;
    let mut r = [0u8; 144];
    match f.rdi as i32 {
        RUSAGE_SELF | RUSAGE_THREAD => {
            crate::scheduler::charge_running();
            let us = time::cycles_to_ns(current().stats.cpu_cycles.load(Relaxed)) / 1000;
            r[..8].copy_from_slice(&(us / 1_000_000).to_le_bytes());
            r[8..16].copy_from_slice(&(us % 1_000_000).to_le_bytes());
        }
        RUSAGE_CHILDREN => {}
        _ => return Err(Errno::EINVAL),
    }
    copy_to_user(pml4(), f.rsi, &r)?;
    Ok(0)
}

// Scheduling: one CPU, one policy (SCHED_OTHER's round robin).

fn task_exists(pid: u64) -> Result<(), Errno> {
    if pid == 0 || TASKS.lock().find_pid(pid as u32).is_some() {
        Ok(())
    } else {
        Err(Errno::ESRCH)
    }
}

/// sched_getaffinity(pid, len, mask): CPU 0; returns the bytes written (one word).
pub fn sys_sched_getaffinity(f: &mut TrapFrame) -> SysResult {
    task_exists(f.rdi)?;
    if f.rsi < 8 || !f.rsi.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    copy_to_user(pml4(), f.rdx, &1u64.to_le_bytes())?;
    Ok(8)
}

/// sched_setaffinity(pid, len, mask): any mask that includes CPU 0.
pub fn sys_sched_setaffinity(f: &mut TrapFrame) -> SysResult {
    task_exists(f.rdi)?;
    if f.rsi == 0 {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; 1];
    copy_from_user(pml4(), &mut b, f.rdx)?;
    if b[0] & 1 == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

const SCHED_OTHER: u64 = 0;
const SCHED_FIFO: u64 = 1;
const SCHED_RR: u64 = 2;
const SCHED_BATCH: u64 = 3;
const SCHED_IDLE: u64 = 5;

/// sched_getparam(pid, param): priority 0.
pub fn sys_sched_getparam(f: &mut TrapFrame) -> SysResult {
    task_exists(f.rdi)?;
    copy_to_user(pml4(), f.rsi, &0u32.to_le_bytes())?;
    Ok(0)
}

/// sched_setparam(pid, param): SCHED_OTHER takes only priority 0.
pub fn sys_sched_setparam(f: &mut TrapFrame) -> SysResult {
    task_exists(f.rdi)?;
    let mut b = [0u8; 4];
    copy_from_user(pml4(), &mut b, f.rsi)?;
    if i32::from_le_bytes(b) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

pub fn sys_sched_getscheduler(f: &mut TrapFrame) -> SysResult {
    task_exists(f.rdi)?;
    Ok(SCHED_OTHER)
}

/// sched_setscheduler(pid, policy, param): the normal policies with priority 0; the real-time
/// ones are refused (EPERM), since our scheduler has no priorities.
pub fn sys_sched_setscheduler(f: &mut TrapFrame) -> SysResult {
    task_exists(f.rdi)?;
    let mut b = [0u8; 4];
    copy_from_user(pml4(), &mut b, f.rdx)?;
    let prio = i32::from_le_bytes(b);
    match f.rsi & !0x4000_0000 {
        // (SCHED_RESET_ON_FORK may be or-ed in)
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE if prio == 0 => Ok(0),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Err(Errno::EINVAL),
        SCHED_FIFO | SCHED_RR => Err(Errno::EPERM),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_sched_get_priority_max(f: &mut TrapFrame) -> SysResult {
    match f.rdi {
        SCHED_FIFO | SCHED_RR => Ok(99),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_sched_get_priority_min(f: &mut TrapFrame) -> SysResult {
    match f.rdi {
        SCHED_FIFO | SCHED_RR => Ok(1),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// sched_rr_get_interval(pid, ts): one time slice.
pub fn sys_sched_rr_get_interval(f: &mut TrapFrame) -> SysResult {
    task_exists(f.rdi)?;
    let ns = 1_000_000_000 / crate::timer::TIMER.hz.get().max(1);
    let mut ts = [0u8; 16];
    ts[8..].copy_from_slice(&ns.to_le_bytes());
    copy_to_user(pml4(), f.rsi, &ts)?;
    Ok(0)
}

/// getpriority(which, who): every task has nice 0, which the raw call returns as 20 - nice.
pub fn sys_getpriority(f: &mut TrapFrame) -> SysResult {
    if f.rdi > 2 {
        return Err(Errno::EINVAL);
    }
    Ok(20)
}

/// setpriority(which, who, nice): accepted, as for root, and without effect: the scheduler has
/// no priorities (getpriority keeps saying nice 0).
pub fn sys_setpriority(f: &mut TrapFrame) -> SysResult {
    if f.rdi > 2 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// getcpu(cpu, node, cache): CPU 0 of node 0.
pub fn sys_getcpu(f: &mut TrapFrame) -> SysResult {
    for at in [f.rdi, f.rsi] {
        if at != 0 {
            copy_to_user(pml4(), at, &0u32.to_le_bytes())?;
        }
    }
    Ok(0)
}

// prctl and membarrier.

const PR_SET_PDEATHSIG: u64 = 1;
const PR_GET_PDEATHSIG: u64 = 2;
const PR_GET_DUMPABLE: u64 = 3;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_NAME: u64 = 15;
const PR_GET_NAME: u64 = 16;
const PR_CAPBSET_READ: u64 = 23;
const PR_SET_NO_NEW_PRIVS: u64 = 38;
const PR_GET_NO_NEW_PRIVS: u64 = 39;

/// prctl(option, ...): the thread's name, and the flags programs commonly set and read (kept
/// only as far as reading them back).
pub fn sys_prctl(f: &mut TrapFrame) -> SysResult {
    let me = current();
    match f.rdi {
        PR_SET_NAME => {
            let mut buf = [0u8; crate::process::NAME_LEN];
            let n = match copy_str_from_user(pml4(), &mut buf, f.rsi) {
                Ok(n) => n,
                Err(crate::uaccess::StrError::Fault) => return Err(Errno::EFAULT),
                Err(crate::uaccess::StrError::TooLong) => buf.len() - 1, // truncated, as Linux
            };
            let name = core::str::from_utf8(&buf[..n]).unwrap_or("?");
            me.set_name(name);
            Ok(0)
        }
        PR_GET_NAME => {
            let name = me.name();
            copy_to_user(pml4(), f.rsi, &name.0)?;
            Ok(0)
        }
        PR_SET_PDEATHSIG if f.rsi <= abi::signal::NSIG as u64 => Ok(0),
        PR_GET_PDEATHSIG => {
            copy_to_user(pml4(), f.rsi, &0u32.to_le_bytes())?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(1),
        PR_SET_DUMPABLE if f.rsi <= 1 => Ok(0),
        PR_CAPBSET_READ if f.rsi <= 40 => Ok(1),
        PR_SET_NO_NEW_PRIVS if f.rsi == 1 => {
            me.no_new_privs.store(true, Relaxed);
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => Ok(me.no_new_privs.load(Relaxed) as u64),
        _ => Err(Errno::EINVAL),
    }
}

/// membarrier(cmd, flags, cpu): with one CPU every command is already satisfied by the system
/// call itself (a full barrier on this CPU), so the supported ones just return.
pub fn sys_membarrier(f: &mut TrapFrame) -> SysResult {
    const QUERY: u64 = 0;
    const GLOBAL: u64 = 1;
    const GLOBAL_EXPEDITED: u64 = 2;
    const REGISTER_GLOBAL_EXPEDITED: u64 = 4;
    const PRIVATE_EXPEDITED: u64 = 8;
    const REGISTER_PRIVATE_EXPEDITED: u64 = 16;
    const SUPPORTED: u64 = GLOBAL
        | GLOBAL_EXPEDITED
        | REGISTER_GLOBAL_EXPEDITED
        | PRIVATE_EXPEDITED
        | REGISTER_PRIVATE_EXPEDITED;
    if f.rsi != 0 {
        return Err(Errno::EINVAL);
    }
    match f.rdi {
        QUERY => Ok(SUPPORTED),
        c if c.count_ones() == 1 && c & SUPPORTED != 0 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}
