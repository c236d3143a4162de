//! Processes (OSTEP 5, the process API): who am I, fork and its relatives, wait, exit, process
//! groups and sessions, kill; and `start`, which makes a process from a program of the archive
//! (for boot, and our own `spawn`).

use core::sync::atomic::Ordering::Relaxed;

use super::exec::{copy_strings, default_env};
use super::{pml4, SysResult};
use crate::exit;
use crate::file::{FdTable, Files};
use crate::karc::Karc;
use crate::loader::{self, LoadError, Strings};
use crate::percpu::current;
use crate::process::{Process, SpawnError, State, Tasks, Wait, TASKS};
use crate::scheduler;
use crate::signal::send;
use crate::signal::state;
use crate::signal::state::{SigHandlers, SigInfo, SI_TKILL};
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_str_from_user, copy_to_user, copy_to_user_in, StrError};
use crate::wakeup;
use abi::signal::{NSIG, SIGCHLD};
use abi::Errno;
use kcore::fs::Ino;

/// getpid: the process's id, which is its thread group's (the first thread's tid).
pub fn sys_getpid(_f: &mut TrapFrame) -> SysResult {
    Ok(current().tgid() as u64)
}

pub fn sys_getppid(_f: &mut TrapFrame) -> SysResult {
    Ok(current().parent.load(Relaxed) as u64)
}

/// gettid: this thread's own id.
pub fn sys_gettid(_f: &mut TrapFrame) -> SysResult {
    Ok(current().pid() as u64)
}

/// set_tid_address(ptr): where to write 0 at exit; returns the tid.
pub fn sys_set_tid_address(f: &mut TrapFrame) -> SysResult {
    current().clear_tid.store(f.rdi, Relaxed);
    Ok(current().pid() as u64)
}

pub fn sys_sched_yield(_f: &mut TrapFrame) -> SysResult {
    scheduler::yield_now();
    Ok(0)
}

/// exit: ends the calling thread (the process, if it was the last).
pub fn sys_exit(f: &mut TrapFrame) -> SysResult {
    exit::exit_thread(((f.rdi & 0xff) << 8) as u32);
    Ok(0) // goes to a frame nobody will return to
}

/// exit_group: ends every thread of the process.
pub fn sys_exit_group(f: &mut TrapFrame) -> SysResult {
    exit::exit_current(((f.rdi & 0xff) << 8) as u32);
    Ok(0)
}

/// Errors of making a process, as fork, spawn and execve report them.
impl From<SpawnError> for Errno {
    fn from(e: SpawnError) -> Errno {
        match e {
            SpawnError::NoSlot => Errno::EAGAIN,
            SpawnError::OutOfMemory => Errno::ENOMEM,
        }
    }
}

impl From<LoadError> for Errno {
    fn from(e: LoadError) -> Errno {
        match e {
            LoadError::Program(_) => Errno::ENOEXEC,
            LoadError::Interpreter(_) => Errno::ELIBBAD,
            LoadError::TooManyArgs => Errno::E2BIG,
            LoadError::OutOfMemory => Errno::ENOMEM,
        }
    }
}

// fork, vfork and clone. The child starts as a copy of the parent's complete trap frame (the
// slow exit made it whole), returning 0 from the call.

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_SYSVSEM: u64 = 0x40000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_DETACHED: u64 = 0x400000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;
/// The flags we take (the rest are EINVAL): those glibc and musl use for fork, vfork,
/// posix_spawn and pthread_create.
const SUPPORTED: u64 = CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_VFORK
    | CLONE_PARENT
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_DETACHED
    | CLONE_CHILD_SETTID
    | 0xff;

pub fn sys_fork(f: &mut TrapFrame) -> SysResult {
    clone(f, SIGCHLD as u64, 0, 0, 0, 0)
}

pub fn sys_vfork(f: &mut TrapFrame) -> SysResult {
    clone(f, CLONE_VM | CLONE_VFORK | SIGCHLD as u64, 0, 0, 0, 0)
}

/// clone(flags, stack, parent_tid, child_tid, tls): x86-64's argument order.
pub fn sys_clone(f: &mut TrapFrame) -> SysResult {
    let (flags, stack, ptid, ctid, tls) = (f.rdi, f.rsi, f.rdx, f.r10, f.r8);
    clone(f, flags, stack, ptid, ctid, tls)
}

fn clone(f: &mut TrapFrame, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> SysResult {
    if flags & !SUPPORTED != 0 || (flags & 0xff) as u32 > NSIG {
        return Err(Errno::EINVAL);
    }
    // Linux's rules: a thread shares the signal handlers, which needs a shared address space.
    let thread = flags & CLONE_THREAD != 0;
    if (thread && flags & CLONE_SIGHAND == 0)
        || (flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0)
    {
        return Err(Errno::EINVAL);
    }
    let me = current();
    let mm = me.mm().ok_or(Errno::ENOMEM)?;
    let mm = if flags & CLONE_VM != 0 {
        mm
    } else {
        mm.fork()?
    };
    let files = match me.files() {
        Some(fs) if flags & CLONE_FILES != 0 => fs,
        Some(fs) => {
            let copy = fs.0.lock().try_clone()?;
            Files::new(copy)?
        }
        None => Files::new(FdTable::default())?,
    };
    let handlers = match me.handlers() {
        Some(h) if flags & CLONE_SIGHAND != 0 => h,
        Some(h) => h.try_clone()?,
        None => Karc::try_new(SigHandlers::new()).map_err(|_| Errno::ENOMEM)?,
    };
    let mut t = TASKS.lock();
    // A new thread's parent is its process's; a new process's is the caller's process (so a
    // thread's exit orphans no one).
    let parent = if thread || flags & CLONE_PARENT != 0 {
        me.parent.load(Relaxed)
    } else {
        me.tgid()
    };
    let leader = t.find_pid(me.tgid()).ok_or(Errno::EAGAIN)?;
    if thread && leader.group_exit.load(Relaxed) != 0 {
        return Err(Errno::EAGAIN); // the process is exiting or exec'ing
    }
    let child = t.alloc(me.name().as_str(), parent)?;
    let pid = child.pid();
    if thread {
        child.tgid.store(me.tgid(), Relaxed);
        leader.threads.fetch_add(1, Relaxed);
    }
    child.pgid.store(me.pgid.load(Relaxed), Relaxed);
    child.sid.store(me.sid.load(Relaxed), Relaxed);
    child.args_at.store(me.args_at.load(Relaxed), Relaxed);
    child.args_len.store(me.args_len.load(Relaxed), Relaxed);
    {
        // The child is in the same directory and runs the same program: both held once more.
        let (cwd, exe) = (me.cwd.load(Relaxed), me.exe.load(Relaxed));
        let mut fs = crate::fs::fs();
        fs.hold(cwd);
        fs.hold(exe);
        child.cwd.store(cwd, Relaxed);
        child.exe.store(exe, Relaxed);
        child.umask.store(me.umask.load(Relaxed), Relaxed);
    }
    *child.rlimits.lock() = *me.rlimits.lock();
    child
        .no_new_privs
        .store(me.no_new_privs.load(Relaxed), Relaxed);
    child
        .sig_blocked
        .store(me.sig_blocked.load(Relaxed), Relaxed);
    // A task that shares the caller's memory but runs on a stack of its own must not inherit
    // the alternate signal stack (two tasks would take signals on one stack).
    if flags & CLONE_VM == 0 || flags & CLONE_VFORK != 0 {
        child.sig.lock().altstack = me.sig.lock().altstack;
    }
    let fs = if flags & CLONE_SETTLS != 0 {
        tls
    } else {
        me.fs_base.load(Relaxed)
    };
    child.fs_base.store(fs, Relaxed);
    if flags & CLONE_CHILD_CLEARTID != 0 {
        child.clear_tid.store(ctid, Relaxed);
    }
    // The parent's FPU registers are live in the CPU: they become the child's saved ones.
    // SAFETY: the child is an Embryo: nothing else uses its FXSAVE area (16-byte aligned).
    unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) child.fpu_ptr(), options(nostack)) };
    let mut frame = *f;
    frame.rax = 0;
    if stack != 0 {
        frame.rsp = stack;
    }
    // SAFETY: the child is an Embryo; its frame is ours to write.
    unsafe { *child.frame_mut() = frame };
    if flags & CLONE_CHILD_SETTID != 0 {
        let _ = copy_to_user_in(&mm, ctid, &pid.to_le_bytes());
    }
    {
        let mut r = child.res.lock();
        r.files = Some(files);
        r.handlers = Some(handlers);
    }
    child.set_mm(Some(mm));
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = copy_to_user(pml4(), ptid, &pid.to_le_bytes());
    }
    wakeup::make_ready(&mut t, child);
    if crate::trace_events::on() {
        crate::trace_events::start(pid, flags);
    }
    if flags & CLONE_VFORK != 0 {
        // The parent waits until the child execs or exits (it borrows the address space).
        child.vfork_parent.store(me.slot, Relaxed);
        f.rax = pid as u64;
        scheduler::block(t, Wait::Vfork);
    }
    Ok(pid as u64)
}

// Waiting for children.

const WNOHANG: u64 = 1;
const WUNTRACED: u64 = 2;
const WSTOPPED: u64 = 2;
const WEXITED: u64 = 4;
const WCONTINUED: u64 = 8;
const WNOWAIT: u64 = 0x0100_0000;
const WNOTHREAD: u64 = 0x2000_0000;
const WALL: u64 = 0x4000_0000;
const WCLONE: u64 = 0x8000_0000;

#[derive(Clone, Copy)]
enum Which {
    Any,
    Pid(u32),
    Group(u32),
}

/// What a wait found: the child, and the status and si_code to report.
struct Found {
    child: &'static Process,
    status: u32,
    code: i32,
    exited: bool,
}

/// The first child of the caller matching `which` with something to report, as `options`
/// asks: an exit (WEXITED), a stop (WSTOPPED), a continue (WCONTINUED). Err(ECHILD) when the
/// caller has no such child at all.
fn find_child(t: &Tasks, which: Which, options: u64) -> Result<Option<Found>, Errno> {
    let me = current().tgid();
    let mut any = false;
    for c in t.live() {
        // Processes only: a thread is not a child (and a zombie leader waits for its threads).
        if c.parent.load(Relaxed) != me || !c.is_leader() {
            continue;
        }
        let wanted = match which {
            Which::Any => true,
            Which::Pid(p) => c.pid() == p,
            Which::Group(g) => c.pgid.load(Relaxed) == g,
        };
        if !wanted {
            continue;
        }
        any = true;
        let state = c.state();
        if state == State::Zombie && c.threads.load(Relaxed) == 0 && options & WEXITED != 0 {
            let w = c.wait_status.load(Relaxed);
            let (code, status) = if w & 0x7f != 0 {
                (state::CLD_KILLED, w & 0x7f)
            } else {
                (state::CLD_EXITED, (w >> 8) & 0xff)
            };
            return Ok(Some(Found {
                child: c,
                status: w,
                code: code | (status as i32) << 16,
                exited: true,
            }));
        }
        let report = c.stop_report.load(Relaxed);
        if report & 0xff == 0x7f && options & WSTOPPED != 0 {
            return Ok(Some(Found {
                child: c,
                status: report,
                code: state::CLD_STOPPED | ((report >> 8) as i32) << 16,
                exited: false,
            }));
        }
        if report == 0xffff && options & WCONTINUED != 0 {
            return Ok(Some(Found {
                child: c,
                status: report,
                code: state::CLD_CONTINUED | (abi::signal::SIGCONT as i32) << 16,
                exited: false,
            }));
        }
    }
    if any {
        Ok(None)
    } else {
        Err(Errno::ECHILD)
    }
}

/// Marks a found child as reported: a zombie is reaped, a stop or continue forgotten.
fn consume(t: &mut Tasks, found: &Found) {
    if found.exited {
        exit::reap(t, found.child);
    } else {
        found.child.stop_report.store(0, Relaxed);
    }
}

/// wait4(pid, status, options, rusage): pid > 0 that child, -1 any, 0 the caller's group,
/// < -1 group -pid. WNOHANG, WUNTRACED, WCONTINUED.
pub fn sys_wait4(f: &mut TrapFrame) -> SysResult {
    let (pid, status_at, options, rusage) = (f.rdi as i32, f.rsi, f.rdx, f.r10);
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(Errno::EINVAL);
    }
    let which = match pid {
        -1 => Which::Any,
        0 => Which::Group(current().pgid.load(Relaxed)),
        p if p < 0 => Which::Group(p.unsigned_abs()),
        p => Which::Pid(p as u32),
    };
    let mut t = TASKS.lock();
    match find_child(&t, which, options | WEXITED)? {
        Some(found) => {
            if status_at != 0 {
                copy_to_user(pml4(), status_at, &found.status.to_le_bytes())?;
            }
            if rusage != 0 {
                write_rusage(rusage, found.child)?;
            }
            let pid = found.child.pid();
            consume(&mut t, &found);
            Ok(pid as u64)
        }
        None if options & WNOHANG != 0 => Ok(0),
        None => {
            scheduler::block_restartable(t, f, Wait::Child);
            Ok(f.rax)
        }
    }
}

/// `struct rusage` with the child's CPU time as its user time, the rest 0.
fn write_rusage(at: u64, child: &Process) -> Result<(), Errno> {
    let mut r = [0u8; 144];
    let us = crate::time::cycles_to_ns(child.stats.cpu_cycles.load(Relaxed)) / 1000;
    r[..8].copy_from_slice(&(us / 1_000_000).to_le_bytes());
    r[8..16].copy_from_slice(&(us % 1_000_000).to_le_bytes());
    copy_to_user(pml4(), at, &r)?;
    Ok(())
}

/// waitid(idtype, id, infop, options, rusage): P_ALL, P_PID, P_PGID; WEXITED, WSTOPPED,
/// WCONTINUED, WNOHANG, WNOWAIT. Fills infop's siginfo.
pub fn sys_waitid(f: &mut TrapFrame) -> SysResult {
    const P_ALL: u64 = 0;
    const P_PID: u64 = 1;
    const P_PGID: u64 = 2;
    let (idtype, id, infop, options, rusage) = (f.rdi, f.rsi as u32, f.rdx, f.r10, f.r8);
    let known = WNOHANG | WSTOPPED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE;
    if options & !known != 0 || options & (WEXITED | WSTOPPED | WCONTINUED) == 0 {
        return Err(Errno::EINVAL);
    }
    let which = match idtype {
        P_ALL => Which::Any,
        P_PID if id > 0 => Which::Pid(id),
        P_PGID => Which::Group(if id == 0 {
            current().pgid.load(Relaxed)
        } else {
            id
        }),
        _ => return Err(Errno::EINVAL),
    };
    let mut t = TASKS.lock();
    let mut info = [0u8; 128];
    match find_child(&t, which, options)? {
        Some(found) => {
            info[..4].copy_from_slice(&(SIGCHLD as i32).to_le_bytes());
            info[8..12].copy_from_slice(&(found.code & 0xffff).to_le_bytes());
            info[16..20].copy_from_slice(&found.child.pid().to_le_bytes());
            info[24..28].copy_from_slice(&(found.code >> 16).to_le_bytes());
            if infop != 0 {
                copy_to_user(pml4(), infop, &info)?;
            }
            if rusage != 0 {
                write_rusage(rusage, found.child)?;
            }
            if options & WNOWAIT == 0 {
                consume(&mut t, &found);
            }
            Ok(0)
        }
        None if options & WNOHANG != 0 => {
            if infop != 0 {
                copy_to_user(pml4(), infop, &info)?;
            }
            Ok(0)
        }
        None => {
            scheduler::block_restartable(t, f, Wait::Child);
            Ok(f.rax)
        }
    }
}

// Process groups and sessions (job control).

fn target(t: &Tasks, pid: u64) -> Result<&'static Process, Errno> {
    match pid as i32 {
        0 => Ok(current()),
        p if p < 0 => Err(Errno::ESRCH),
        // A zombie is still there until reaped: Linux answers getpgid, getsid and setpgid
        // for it.
        p => t.find_pid(p as u32).ok_or(Errno::ESRCH),
    }
}

pub fn sys_getpgid(f: &mut TrapFrame) -> SysResult {
    let t = TASKS.lock();
    Ok(target(&t, f.rdi)?.pgid.load(Relaxed) as u64)
}

pub fn sys_getpgrp(_f: &mut TrapFrame) -> SysResult {
    Ok(current().pgid.load(Relaxed) as u64)
}

pub fn sys_getsid(f: &mut TrapFrame) -> SysResult {
    let t = TASKS.lock();
    Ok(target(&t, f.rdi)?.sid.load(Relaxed) as u64)
}

/// setpgid(pid, pgid): the caller or one of its children joins (or starts) a group in its
/// session.
pub fn sys_setpgid(f: &mut TrapFrame) -> SysResult {
    let me = current();
    // A pgid of 0 means the pid, so setpgid(-1, 0) asks for group -1: EINVAL, as on Linux,
    // before any lookup of the pid.
    let asked = if f.rsi == 0 { f.rdi } else { f.rsi };
    if (asked as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let t = TASKS.lock();
    let p = target(&t, f.rdi)?;
    let p = t.find_pid(p.tgid()).unwrap_or(p); // a thread stands for its process
    if p.tgid() != me.tgid() && p.parent.load(Relaxed) != me.tgid() {
        return Err(Errno::ESRCH);
    }
    let sid = me.sid.load(Relaxed);
    if p.sid.load(Relaxed) != sid || p.sid.load(Relaxed) == p.pid() {
        return Err(Errno::EPERM); // another session, or a session leader
    }
    let pgid = if f.rsi == 0 { p.pid() } else { f.rsi as u32 };
    let exists = pgid == p.pid()
        || t.live()
            .any(|q| q.pgid.load(Relaxed) == pgid && q.sid.load(Relaxed) == sid);
    if !exists {
        return Err(Errno::EPERM);
    }
    for q in t.group(p.tgid()) {
        q.pgid.store(pgid, Relaxed);
    }
    Ok(0)
}

/// setsid: a new session and group led by the caller, unless it leads a group already.
pub fn sys_setsid(_f: &mut TrapFrame) -> SysResult {
    let me = current();
    let t = TASKS.lock();
    let pid = me.tgid();
    if t.live().any(|q| q.pgid.load(Relaxed) == pid) {
        return Err(Errno::EPERM);
    }
    for q in t.group(pid) {
        q.sid.store(pid, Relaxed);
        q.pgid.store(pid, Relaxed);
    }
    Ok(pid as u64)
}

// Sending signals.

/// kill(pid, sig): pid > 0 that process; 0 the caller's group; -1 every process but pid 1 and
/// the caller; < -1 group -pid. Signal 0 only checks that there is someone to send to.
pub fn sys_kill(f: &mut TrapFrame) -> SysResult {
    let (pid, sig) = (f.rdi as i32, f.rsi);
    if sig > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    let sig = sig as u32;
    let me = current();
    let info = SigInfo::user(sig, me.tgid());
    let mut t = TASKS.lock();
    if pid > 0 {
        // A thread's tid names its process here, as on Linux.
        let p = t.find_pid(pid as u32).ok_or(Errno::ESRCH)?;
        let p = t.find_pid(p.tgid()).unwrap_or(p);
        send::post_process(&mut t, p, sig, info);
        return Ok(0);
    }
    let group = match pid {
        0 => Some(me.pgid.load(Relaxed)),
        -1 => None,
        p => Some(p.unsigned_abs()),
    };
    let mut sent = false;
    for slot in 0..t.slot_count() {
        let p = t.get(slot);
        if matches!(p.state(), State::Unused | State::Embryo) || !p.is_leader() {
            continue;
        }
        if p.state() == State::Zombie && p.threads.load(Relaxed) == 0 {
            continue;
        }
        let hit = match group {
            Some(g) => p.pgid.load(Relaxed) == g,
            None => p.pid() != 1 && p.pid() != me.tgid(),
        };
        if hit {
            send::post_process(&mut t, p, sig, info);
            sent = true;
        }
    }
    if sent {
        Ok(0)
    } else {
        Err(Errno::ESRCH)
    }
}

fn kill_thread(tgid: Option<u32>, tid: u64, sig: u64) -> SysResult {
    if sig > NSIG as u64 || tid as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    let mut t = TASKS.lock();
    let p = t.find_pid(tid as u32).ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|g| g != p.tgid()) {
        return Err(Errno::ESRCH);
    }
    let info = SigInfo {
        code: SI_TKILL,
        ..SigInfo::user(sig as u32, current().tgid())
    };
    send::post(&mut t, p, sig as u32, info);
    Ok(0)
}

/// tkill(tid, sig): one thread.
pub fn sys_tkill(f: &mut TrapFrame) -> SysResult {
    kill_thread(None, f.rdi, f.rsi)
}

/// tgkill(tgid, tid, sig).
pub fn sys_tgkill(f: &mut TrapFrame) -> SysResult {
    if f.rdi as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    kill_thread(Some(f.rdi as u32), f.rsi, f.rdx)
}

// Starting programs of the tree.

/// Makes a ready process of a loaded program (inode `exe`, held for it), a child of `parent`,
/// with the descriptors `files`.
pub fn start_image(
    exe: Ino,
    name: &str,
    image: loader::Image,
    parent: u32,
    files: Karc<Files>,
) -> Result<&'static Process, Errno> {
    let handlers = match Karc::try_new(SigHandlers::new()) {
        Ok(h) => h,
        Err(_) => {
            crate::fs::release(exe);
            return Err(Errno::ENOMEM);
        }
    };
    let mut t = TASKS.lock();
    let p = match t.alloc(name, parent) {
        Ok(p) => p,
        Err(e) => {
            drop(t);
            crate::fs::release(exe);
            return Err(e.into());
        }
    };
    p.exe.store(exe, Relaxed);
    if parent != 0 {
        if let Some(pp) = t.find_pid(parent) {
            p.pgid.store(pp.pgid.load(Relaxed), Relaxed);
            p.sid.store(pp.sid.load(Relaxed), Relaxed);
        }
    }
    let frame = super::exec::initial_frame(image.entry, image.rsp);
    p.args_at.store(image.args.0, Relaxed);
    p.args_len.store(image.args.1, Relaxed);
    // SAFETY: `p` is an Embryo: its frame is ours to write.
    unsafe { *p.frame_mut() = frame };
    {
        let mut r = p.res.lock();
        r.files = Some(files);
        r.handlers = Some(handlers);
    }
    p.set_mm(Some(image.mm));
    wakeup::make_ready(&mut t, p);
    Ok(p)
}

/// "/bin/NAME": where the archive's program NAME is.
pub fn program_path(name: &str) -> Result<alloc::vec::Vec<u8>, Errno> {
    let mut p = alloc::vec::Vec::new();
    p.try_reserve_exact(5 + name.len())
        .map_err(|_| Errno::ENOMEM)?;
    p.extend_from_slice(b"/bin/");
    p.extend_from_slice(name.as_bytes());
    Ok(p)
}

/// spawn(name, argv): our own call, which starts archive program `name` as a child of the
/// caller, with its descriptors. `argv` is a NULL-terminated array of C strings, or NULL for
/// argv = [name]. (fork + execve do the same the Unix way; spawn stays because it is one trap
/// instead of two, and it is how the demo started before fork existed.)
pub fn sys_spawn(f: &mut TrapFrame) -> SysResult {
    let mut name_buf = [0u8; 256];
    let n = match copy_str_from_user(pml4(), &mut name_buf, f.rdi) {
        Ok(n) => n,
        Err(StrError::Fault) => return Err(Errno::EFAULT),
        Err(StrError::TooLong) => return Err(Errno::ENOENT), // longer than any name we have
    };
    let name = core::str::from_utf8(&name_buf[..n]).map_err(|_| Errno::ENOENT)?;
    if name.is_empty() || name.contains('/') {
        return Err(Errno::ENOENT);
    }
    let mut argv = Strings::default();
    if f.rsi == 0 {
        argv.push(name.as_bytes())?;
    } else {
        copy_strings(f.rsi, &mut argv)?;
    }
    // spawn's own limits (docs/conventions.md): 32 arguments, 2 KiB of strings.
    if argv.len() > 32 || argv.iter().map(|s| s.len()).sum::<usize>() > 2048 {
        return Err(Errno::E2BIG);
    }
    let envp = default_env()?;
    let me = current();
    let files = me.files().ok_or(Errno::EBADF)?;
    let copy = files.0.lock().try_clone()?;
    let files = Files::new(copy)?;
    let path = program_path(name)?;
    let loaded =
        super::exec::load_program(kcore::fs::ROOT, &path, argv, &envp).map_err(Errno::from)?;
    let child = start_image(loaded.ino, name, loaded.image, me.tgid(), files)?;
    Ok(child.pid() as u64)
}
