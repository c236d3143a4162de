//! execve (OSTEP 5): the caller's image replaced by a program's. Everything that can fail is done
//! before the point of no return (the path, the arguments, loading the new image into a fresh
//! address space); after it the old address space goes, close-on-exec descriptors close,
//! handled signals go back to their default, and the registers start clean at the entry point.

use core::sync::atomic::Ordering::Relaxed;

use alloc::vec::Vec;

use super::{pml4, SysResult};
use crate::exit;
use crate::file::Files;
use crate::fs;
use crate::gdt::{USER_CODE, USER_DATA};
use crate::karc::Karc;
use crate::loader::{self, Source, Strings};
use crate::percpu::current;
use crate::process::{Process, Wait, TASKS};
use crate::scheduler;
use crate::signal::state::SigHandlers;
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_from_user, read_u64};
use abi::Errno;
use kcore::fs::{Ino, Kind};

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

/// How many `#!` interpreters may stand in line (Linux's BINPRM_MAX_RECURSION).
const MAX_INTERPRETERS: usize = 4;
/// How much of a `#!` line counts (Linux's BINPRM_BUF_SIZE).
const SHEBANG_MAX: usize = 256;

/// Why a program did not load: the tree's error, or the loader's (which boot reports in words).
pub enum ExecError {
    Fs(Errno),
    /// The program interpreter that PT_INTERP names could not be found or opened.
    Interpreter(Errno),
    Load(loader::LoadError),
}

impl From<Errno> for ExecError {
    fn from(e: Errno) -> Self {
        ExecError::Fs(e)
    }
}

impl From<loader::LoadError> for ExecError {
    fn from(e: loader::LoadError) -> Self {
        ExecError::Load(e)
    }
}

impl From<ExecError> for Errno {
    fn from(e: ExecError) -> Errno {
        match e {
            ExecError::Fs(e) | ExecError::Interpreter(e) => e,
            ExecError::Load(e) => e.into(),
        }
    }
}

impl core::fmt::Display for ExecError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            ExecError::Fs(e) => write!(f, "{e}"),
            ExecError::Interpreter(e) => write!(f, "its program interpreter (PT_INTERP): {e}"),
            ExecError::Load(e) => write!(f, "{e}"),
        }
    }
}

/// A program found and loaded, ready to replace a process's image.
pub struct Loaded {
    pub image: loader::Image,
    /// Its inode (held once, for the process's `exe`).
    pub ino: Ino,
}

/// Finds the program at `path` (from `start`), follows `#!` lines to their interpreter, and
/// loads it with `argv` and `envp`. Errors as execve's: ENOENT, EACCES (a directory, a file
/// without an x bit), ENOEXEC (neither ELF nor `#!`), ELOOP (too many interpreters).
pub fn load_program(
    start: Ino,
    path: &[u8],
    argv: Strings,
    envp: &Strings,
) -> Result<Loaded, ExecError> {
    let mut path_buf: Vec<u8>;
    let mut argv = argv;
    let mut path = path;
    let execfn_len = path.len().min(80);
    let mut execfn = [0u8; 80];
    execfn[..execfn_len].copy_from_slice(&path[..execfn_len]);
    for _ in 0..=MAX_INTERPRETERS {
        let (ino, head, head_len) = {
            let t = fs::fs();
            let ino = fs::resolve(&t, start, path, true)?;
            let node = t.get(ino)?;
            if !matches!(node.kind, Kind::File(_)) || node.perm & 0o111 == 0 {
                return Err(Errno::EACCES.into());
            }
            let mut head = [0u8; SHEBANG_MAX];
            let mut n = 0;
            let _ = t.read(ino, 0, SHEBANG_MAX as u64, |p: &[u8]| {
                head[n..n + p.len()].copy_from_slice(p);
                n += p.len();
                Ok::<(), ()>(())
            });
            (ino, head, n)
        };
        let head = &head[..head_len];
        if head.starts_with(b"#!") {
            let interp_arg = parse_shebang(head);
            let (interp, arg) = interp_arg.ok_or(Errno::ENOEXEC)?;
            let mut next = Strings::default();
            next.push(interp)?;
            if let Some(a) = arg {
                next.push(a)?;
            }
            next.push(path)?;
            for s in argv.iter().skip(1) {
                next.push(&s[..s.len() - 1])?;
            }
            argv = next;
            let mut p = Vec::new();
            if p.try_reserve_exact(interp.len()).is_err() {
                return Err(Errno::ENOMEM.into());
            }
            p.extend_from_slice(interp);
            path_buf = p;
            path = &path_buf;
            continue;
        }
        let execfn = &execfn[..execfn_len];
        let bytes = file_bytes(ino)?;
        let program = loader::Program::check(bytes.source())?;
        let image = match program.interpreter() {
            None => loader::load(program, None, &argv, envp, execfn)?,
            Some(ld_path) => {
                let ld = find_interpreter(ld_path)
                    .and_then(file_bytes)
                    .map_err(ExecError::Interpreter)?;
                loader::load(program, Some(ld.source()), &argv, envp, execfn)?
            }
        };
        fs::hold(ino);
        return Ok(Loaded { image, ino });
    }
    Err(Errno::ELOOP.into())
}

/// The interpreter and its optional argument from a `#!` line (Linux's rules: blanks around
/// the interpreter skipped, the rest of the line one argument).
fn parse_shebang(head: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let line = &head[2..];
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !blank(b))?;
    let line = &line[start..];
    let end = line.iter().position(blank).unwrap_or(line.len());
    let (interp, rest) = line.split_at(end);
    let rest = rest.trim_ascii();
    Some((interp, (!rest.is_empty()).then_some(rest)))
}

/// A file's bytes for the loader: the archive's own pages (mapped into the program), or, for a
/// file written since boot, a copy gathered into the heap.
enum FileBytes {
    Archive(&'static [u8]),
    Heap(Vec<u8>),
}

impl FileBytes {
    fn source(&self) -> Source<'_> {
        match self {
            FileBytes::Archive(data) => Source::Archive(data),
            FileBytes::Heap(data) => Source::Copy(data),
        }
    }
}

#[inline]
fn file_bytes(ino: Ino) -> Result<FileBytes, Errno> {
    let static_data = fs::fs().static_data(ino);
    Ok(match static_data {
        Some(data) => FileBytes::Archive(data),
        None => FileBytes::Heap(gather(ino)?),
    })
}

/// The program interpreter's file, as Linux's binfmt_elf opens it: ENOENT when it is missing
/// (the famous "No such file or directory" of a program that is there), EACCES when it is not
/// an executable file.
fn find_interpreter(path: &[u8]) -> Result<Ino, Errno> {
    let start = fs::start_dir(fs::AT_FDCWD as u64, path)?;
    let t = fs::fs();
    let ino = fs::resolve(&t, start, path, true)?;
    let node = t.get(ino)?;
    if !matches!(node.kind, Kind::File(_)) || node.perm & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    Ok(ino)
}

/// A written file's bytes, gathered into the heap for the loader to copy.
fn gather(ino: Ino) -> Result<Vec<u8>, Errno> {
    let t = fs::fs();
    let size = t.get(ino)?.size() as usize;
    let mut data = Vec::new();
    data.try_reserve_exact(size).map_err(|_| Errno::ENOMEM)?;
    let _ = t.read(ino, 0, size as u64, |p: &[u8]| {
        data.extend_from_slice(p);
        Ok::<(), ()>(())
    });
    Ok(data)
}

/// The last component of a path, for the process's name.
pub fn basename(path: &[u8]) -> &str {
    let trimmed = &path[..path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1)];
    let base = trimmed.rsplit(|&b| b == b'/').next().unwrap_or(b"");
    core::str::from_utf8(base).unwrap_or("?")
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
        // The process's alarm (kept at the leader) survives exec, as on Linux: it moves too.
        let (at, every) = (
            leader.alarm_at.load(Relaxed),
            leader.alarm_interval.load(Relaxed),
        );
        if at != 0 {
            scheduler::set_alarm(&mut t, leader, 0, 0);
            scheduler::set_alarm(&mut t, me, at, every);
        }
        t.release(leader);
    }
    Ok(false)
}

/// The descriptor table and signal handlers become the caller's own if another process
/// shares them (clone with CLONE_FILES or CLONE_SIGHAND but not a thread): exec must not
/// close or reset another process's. Returns the handlers.
fn unshare(me: &Process) -> Result<Karc<SigHandlers>, Errno> {
    // Asked of the process's own references: a clone taken to look would always be a second
    // one, and every exec would copy its descriptor table and its 2 KiB of handlers.
    let (files_shared, handlers_shared) = {
        let r = me.res.lock();
        (
            r.files.as_ref().is_some_and(Karc::is_shared),
            r.handlers.as_ref().is_some_and(Karc::is_shared),
        )
    };
    let files = me.files().ok_or(Errno::ENOMEM)?;
    let handlers = me.handlers().ok_or(Errno::ENOMEM)?;
    let files = if files_shared {
        Some(Files::new(files.0.lock().try_clone()?)?)
    } else {
        None
    };
    let handlers = if handlers_shared {
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

/// `unshare`, unless the caller must wait for its other threads first.
fn unshare_unless(waits: bool, me: &Process) -> Result<Option<Karc<SigHandlers>>, Errno> {
    if waits {
        return Ok(None);
    }
    unshare(me).map(Some)
}

/// execve(path, argv, envp).
pub fn sys_execve(f: &mut TrapFrame) -> SysResult {
    let me = current();
    let path = super::user_path(f.rdi)?;
    let start = fs::start_dir(fs::AT_FDCWD as u64, &path)?;
    let mut argv = Strings::default();
    if f.rsi != 0 {
        copy_strings(f.rsi, &mut argv)?;
    }
    let mut envp = Strings::default();
    if f.rdx != 0 {
        copy_strings(f.rdx, &mut envp)?;
    }
    let Loaded { image, ino } = load_program(start, &path, argv, &envp)?;
    let ready = dethread(f).and_then(|waits| Ok((waits, unshare_unless(waits, me)?)));
    let handlers = match ready {
        Ok((false, Some(h))) => h,
        Ok(_) => {
            fs::release(ino);
            return Ok(f.rax); // runs again once the other threads are gone
        }
        Err(e) => {
            fs::release(ino);
            return Err(e);
        }
    };

    // The point of no return.
    // SAFETY: loads the new address space's PML4 (it maps the kernel half like every other);
    // the old one stays alive until dropped below.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) image.mm.pml4, options(nostack)) };
    me.args_at.store(image.args.0, Relaxed);
    me.args_len.store(image.args.1, Relaxed);
    let old = me.set_mm(Some(image.mm));
    drop(old);
    let closing = me.files().map(|fs| fs.0.lock().take_cloexec());
    drop(closing);
    handlers.reset_handled();
    {
        let mut s = me.sig.lock();
        s.altstack = crate::signal::state::TaskSignals::new().altstack;
        s.saved_mask = None;
    }
    me.set_name(basename(&path));
    if crate::trace_events::on() {
        crate::trace_events::exec(&me.name().0);
    }
    let old_exe = me.exe.swap(ino, Relaxed);
    fs::release(old_exe);
    me.fs_base.store(0, Relaxed);
    scheduler::load_fs_base(0);
    me.clear_tid.store(0, Relaxed);
    *f = initial_frame(image.entry, image.rsp);
    exit::release_vfork_parent(&mut TASKS.lock(), me);
    Ok(0)
}
