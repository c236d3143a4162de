//! execve (OSTEP 5): the caller's image replaced by a program's. Everything that can fail is done
//! before the point of no return (the path, the arguments, loading the new image into a fresh
//! address space); after it the old address space goes, close-on-exec descriptors close,
//! handled signals go back to their default, and the registers start clean at the entry point.

use core::sync::atomic::Ordering::Relaxed;

use super::{pml4, user_path, SysResult};
use crate::exit;
use crate::file::Files;
use crate::gdt::{USER_CODE, USER_DATA};
use crate::initrd;
use crate::karc::Karc;
use crate::loader::{self, Strings};
use crate::percpu::current;
use crate::process::{Process, Wait, NO_EXE, TASKS};
use crate::scheduler;
use crate::signal::SigHandlers;
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_from_user, read_u64};
use abi::Errno;

/// PATH_MAX: a path argument's most bytes, with its NUL.
pub const PATH_MAX: usize = 4096;

/// The environment the programs started at boot get.
pub fn default_env() -> Result<Strings, Errno> {
    let mut env = Strings::default();
    env.push(b"PATH=/bin")?;
    env.push(b"HOME=/")?;
    env.push(b"TERM=linux")?;
    Ok(env)
}

/// Copies a NULL-terminated array of C strings (argv, envp) from the caller: EFAULT for a bad
/// pointer, E2BIG past `loader::ARG_MAX`. Strings come in pieces that stay within a page, so a
/// string that ends just before an unmapped page is fine.
pub fn copy_strings(array: u64, out: &mut Strings) -> Result<(), Errno> {
    for i in 0.. {
        let ptr = read_u64(pml4(), array.wrapping_add(i * 8))?;
        if ptr == 0 {
            return Ok(());
        }
        out.begin()?;
        let mut at = ptr;
        loop {
            let in_page = (4096 - (at & 4095)) as usize;
            let mut chunk = [0u8; 256];
            let k = in_page.min(chunk.len());
            copy_from_user(pml4(), &mut chunk[..k], at)?;
            match chunk[..k].iter().position(|&b| b == 0) {
                Some(nul) => {
                    out.extend(&chunk[..nul])?;
                    break;
                }
                None => out.extend(&chunk[..k])?,
            }
            at = at.checked_add(k as u64).ok_or(Errno::EFAULT)?;
        }
        out.end()?;
    }
    Ok(())
}

/// The trap frame that "returns" into a fresh program: ring 3 at `entry`, interrupts on, every
/// other register 0.
pub fn initial_frame(entry: u64, rsp: u64) -> TrapFrame {
    TrapFrame {
        rip: entry,
        cs: USER_CODE as u64,
        rflags: 0x202,
        rsp,
        ss: USER_DATA as u64,
        ..TrapFrame::default()
    }
}

/// execve in a multithreaded process (Linux's de_thread): the other threads are killed, and
/// the call runs again once they are gone; the caller, the new program's only thread, then
/// takes the process's pid. Returns whether the caller must wait first.
fn dethread(f: &mut TrapFrame) -> Result<bool, Errno> {
    let me = current();
    let mut t = TASKS.lock();
    let Some(leader) = t.find_pid(me.tgid()) else {
        return Ok(false);
    };
    let g = leader.group_exit.load(Relaxed);
    if leader.threads.load(Relaxed) > 1 {
        if g & exit::GROUP_EXIT != 0 || (g & exit::GROUP_EXEC != 0 && g & 0xffff != me.slot) {
            return Err(Errno::EAGAIN); // the process is ending: this thread is being killed
        }
        if g == 0 {
            leader.group_exit.store(exit::GROUP_EXEC | me.slot, Relaxed);
            exit::kill_other_threads(&mut t, me);
        }
        scheduler::block_restartable(t, f, Wait::Group);
        return Ok(true);
    }
    leader.group_exit.store(0, Relaxed);
    if !core::ptr::eq(leader, me) {
        me.stats.absorb(&leader.stats);
        me.pid.store(leader.pid(), Relaxed);
        me.threads.store(1, Relaxed);
        me.group_exit.store(0, Relaxed);
        t.release(leader);
    }
    Ok(false)
}

/// The descriptor table and signal handlers become the caller's own if another process
/// shares them (clone with CLONE_FILES or CLONE_SIGHAND but not a thread): exec must not
/// close or reset another process's. Returns the handlers.
fn unshare(me: &Process) -> Result<Karc<SigHandlers>, Errno> {
    let files = me.files().ok_or(Errno::ENOMEM)?;
    let handlers = me.handlers().ok_or(Errno::ENOMEM)?;
    let files = if files.is_shared() {
        Some(Files::new(files.0.lock().try_clone()?)?)
    } else {
        None
    };
    let handlers = if handlers.is_shared() {
        handlers.try_clone()?
    } else {
        handlers
    };
    let mut r = me.res.lock();
    if let Some(fs) = files {
        r.files = Some(fs);
    }
    r.handlers = Some(handlers.clone());
    Ok(handlers)
}

/// execve(path, argv, envp).
pub fn sys_execve(f: &mut TrapFrame) -> SysResult {
    let me = current();
    let mut path = [0u8; PATH_MAX];
    let n = user_path(f.rdi, &mut path)?;
    let path = &path[..n];
    let archive = initrd::archive();
    let index = if path == b"/proc/self/exe" {
        Some(me.exe.load(Relaxed)).filter(|&i| i != NO_EXE)
    } else {
        archive.lookup(path)
    }
    .ok_or(Errno::ENOENT)?;
    let file = archive.get(index).ok_or(Errno::ENOENT)?;
    let mut argv = Strings::default();
    if f.rsi != 0 {
        copy_strings(f.rsi, &mut argv)?;
    }
    let mut envp = Strings::default();
    if f.rdx != 0 {
        copy_strings(f.rdx, &mut envp)?;
    }
    let execfn = if path == b"/proc/self/exe" {
        let mut b = [0u8; 80];
        let s = super::process::execfn_for(&mut b, file.name);
        let mut v = [0u8; 80];
        v[..s.len()].copy_from_slice(s);
        (v, s.len())
    } else {
        let mut v = [0u8; 80];
        let k = path.len().min(80);
        v[..k].copy_from_slice(&path[..k]);
        (v, k)
    };
    let image = loader::load(file.data, &argv, &envp, &execfn.0[..execfn.1])?;
    if dethread(f)? {
        return Ok(f.rax); // runs again once the other threads are gone
    }
    let handlers = unshare(me)?;

    // The point of no return.
    // SAFETY: loads the new address space's PML4 (it maps the kernel half like every other);
    // the old one stays alive until dropped below.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) image.mm.pml4, options(nostack)) };
    let old = me.set_mm(Some(image.mm));
    drop(old);
    let closing = me.files().map(|fs| fs.0.lock().take_cloexec());
    drop(closing);
    handlers.reset_handled();
    {
        let mut s = me.sig.lock();
        s.altstack = crate::signal::TaskSignals::new().altstack;
        s.saved_mask = None;
    }
    me.set_name(file.name);
    me.exe.store(index, Relaxed);
    me.fs_base.store(0, Relaxed);
    scheduler::load_fs_base(0);
    me.clear_tid.store(0, Relaxed);
    *f = initial_frame(image.entry, image.rsp);
    exit::release_vfork_parent(&mut TASKS.lock(), me);
    Ok(0)
}
