//! /proc: the files programs read for the machine's state (`meminfo` for free and top,
//! `stat` for top, `uptime`, `loadavg`, `cpuinfo`, `version`, `mounts` for df and mount) and a directory per process, /proc/PID, with
//! `stat`, `status`, `cmdline` and `comm` (what ps reads), `maps` (its address space, a
//! line a region, as `cat /proc/self/maps` shows it on Linux) and `fd/` (a link per open
//! descriptor, named by its number, to what it is open on: `ls -l /proc/self/fd`). Each file is a `Kind::Generated`
//! node of the tree; opening one writes its text into a snapshot that the reads then take, as
//! a read of Linux's seq files sees one moment.
//!
//! The machine's files are made at boot (fs/boot.rs). The per-process directories are brought
//! up to date with the process table only when someone looks into /proc (a path under it, or
//! a listing of it: `refresh`), so fork and exit pay nothing for them.

use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::fs::{fd_links, fs, Frames};
use crate::memory::frame::FRAMES;
use crate::percpu;
use crate::process::{State, TASKS};
use crate::time;
use abi::Errno;
use kcore::fs::{Dir, Fs, Ino, Kind, Last};

/// The machine's files, by the number their nodes carry (below 256: no process's).
pub const FILES: [(&[u8], u32); 7] = [
    (b"meminfo", MEMINFO),
    (b"uptime", UPTIME),
    (b"loadavg", LOADAVG),
    (b"cpuinfo", CPUINFO),
    (b"version", VERSION),
    (b"stat", STAT_ALL),
    (b"mounts", MOUNTS),
];
const MEMINFO: u32 = 0;
const UPTIME: u32 = 1;
const LOADAVG: u32 = 2;
const CPUINFO: u32 = 3;
const VERSION: u32 = 4;
const STAT_ALL: u32 = 5;
const MOUNTS: u32 = 6;

/// A process's files: node number `pid << 8 | file`.
const PID_FILES: [(&[u8], u32); 7] = [
    (b"stat", STAT),
    (b"status", STATUS),
    (b"cmdline", CMDLINE),
    (b"comm", COMM),
    (b"maps", MAPS),
    (b"mounts", PID_MOUNTS),
    (b"mountinfo", MOUNTINFO),
];
const STAT: u32 = 0;
const STATUS: u32 = 1;
const CMDLINE: u32 = 2;
const COMM: u32 = 3;
const MAPS: u32 = 4;
/// /proc/self/mounts (Linux's /proc/mounts links there) and mountinfo (what GNU df and
/// libmount read): the one file system.
const PID_MOUNTS: u32 = 5;
const MOUNTINFO: u32 = 6;

/// The process table's generation the per-process directories were last brought to.
static LAST_REFRESH: AtomicU64 = AtomicU64::new(u64::MAX);

/// /proc's inode (0 before boot made it).
static ROOT_INO: AtomicU32 = AtomicU32::new(0);

pub fn set_root(ino: Ino) {
    ROOT_INO.store(ino, Relaxed);
}

/// Whether a path (from a system call; `cwd`, the working directory) reaches into /proc,
/// whose per-process directories must then be brought up to date first. Asked of every path
/// a system call takes, so written to be a few instructions for the others (no memcmp).
#[inline(always)]
pub fn looks_into(path: &[u8], cwd: impl FnOnce() -> Ino) -> bool {
    match path {
        [b'/', b'p', b'r', b'o', b'c'] | [b'/', b'p', b'r', b'o', b'c', b'/', ..] => true,
        [b'/', b'd', b'e', b'v', b'/', rest @ ..] => dev_fd_index(rest).is_some(),
        [b'/', ..] | [] => false,
        _ => {
            let root = ROOT_INO.load(Relaxed);
            root != 0 && cwd() == root
        }
    }
}

/// `/proc/self/NAME` as `/proc/PID/NAME` (the caller's process), as Linux's /proc/self link
/// leads there; /proc/self/exe, which is a node of its own, and anything else are left.
pub fn self_to_pid(path: &mut Vec<u8>, tgid: u32) -> Result<(), Errno> {
    const SELF: &[u8] = b"/proc/self/";
    // /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr: links to /proc/self/fd..., which the
    // tree cannot follow (only the caller knows which process "self" is), taken here.
    let dev: Vec<u8>;
    let rest = match path.strip_prefix(b"/dev/").and_then(dev_fd_index) {
        Some(i) => {
            let (name, target) = DEV_FD[i];
            let under_self = &target[SELF.len()..];
            let tail = &path[5 + name.len()..];
            let mut d = Vec::new();
            d.try_reserve_exact(under_self.len() + tail.len())
                .map_err(|_| Errno::ENOMEM)?;
            d.extend_from_slice(under_self);
            d.extend_from_slice(tail);
            dev = d;
            &dev[..]
        }
        None => match path.strip_prefix(SELF) {
            Some(rest) => rest,
            None => return Ok(()),
        },
    };
    if rest.is_empty() || rest == b"exe" || rest.starts_with(b"exe/") {
        return Ok(());
    }
    let mut digits = [0u8; 10];
    let pid = decimal(tgid, &mut digits);
    let mut out = Vec::new();
    out.try_reserve_exact(path.len() + pid.len())
        .map_err(|_| Errno::ENOMEM)?;
    out.extend_from_slice(b"/proc/");
    out.extend_from_slice(pid);
    out.push(b'/');
    out.extend_from_slice(rest);
    *path = out;
    Ok(())
}

/// /dev's links into the caller's descriptors (bash's <(cmd) opens /dev/fd/63): their names
/// in /dev and their targets, which fs/boot.rs makes them with and `self_to_pid` follows.
pub const DEV_FD: [(&[u8], &[u8]); 4] = [
    (b"fd", b"/proc/self/fd"),
    (b"stdin", b"/proc/self/fd/0"),
    (b"stdout", b"/proc/self/fd/1"),
    (b"stderr", b"/proc/self/fd/2"),
];

/// Which of `DEV_FD` a path after `/dev/` is, or begins (`fd/3`).
#[inline(always)]
fn dev_fd_index(rest: &[u8]) -> Option<usize> {
    DEV_FD.iter().position(|(name, _)| {
        rest.strip_prefix(*name)
            .is_some_and(|tail| tail.is_empty() || (tail[0] == b'/' && *name == b"fd"))
    })
}

/// /proc's inode, for getdents (which refreshes it before a listing starts).
pub fn root() -> Ino {
    ROOT_INO.load(Relaxed)
}

/// Brings /proc's per-process directories up to date with the process table: one for every
/// process (a thread group's leader, zombies too), none for a pid that is gone; and the
/// descriptor links of process `fds_of` (the one a path names: `fd_dir_of`), only its, since
/// each look at another's goes through a path that names it. Out of memory leaves it as far as
/// it got.
pub fn refresh(fds_of: Option<u32>) {
    let root = ROOT_INO.load(Relaxed);
    if root == 0 {
        return;
    }
    let mut live: Vec<u32> = Vec::new();
    let generation;
    {
        let tasks = TASKS.lock();
        generation = tasks.generation;
        for p in tasks.live().filter(|p| p.is_leader()) {
            if live.try_reserve(1).is_err() {
                return;
            }
            live.push(p.pid());
        }
    }
    // The open descriptors of process `fds_of`, gathered before the tree's lock is taken;
    // None when its links are up to date already.
    let open = fds_of
        .filter(|pid| live.contains(pid))
        .and_then(|pid| open_descriptors(pid).map(|fds| (pid, fds)));
    if open.is_none() && LAST_REFRESH.load(Relaxed) == generation {
        return; // no process made or gone since the last look, no links to remake
    }
    let mut t = fs();
    // The directories of pids no longer there, by name.
    let mut gone: Vec<u32> = Vec::new();
    let mut pos = 0;
    while let Ok(Some((next, _, name, _))) = t.readdir(root, pos) {
        pos = next;
        if let Some(pid) = pid_of(name) {
            if !live.contains(&pid) && gone.try_reserve(1).is_ok() {
                gone.push(pid);
            }
        }
    }
    let mut name = [0u8; 10];
    for pid in gone {
        let dir_name = decimal(pid, &mut name);
        let Ok(dir) = t.lookup_in(root, dir_name) else {
            continue;
        };
        for (file, _) in PID_FILES {
            let _ = t.unlink(&Last {
                dir,
                name: file,
                trailing_slash: false,
            });
        }
        if let Ok(fd_dir) = t.lookup_in(dir, b"fd") {
            remove_closed(&mut t, fd_dir, &[]);
            let _ = t.rmdir(&Last {
                dir,
                name: b"fd",
                trailing_slash: false,
            });
        }
        let _ = t.rmdir(&Last {
            dir: root,
            name: decimal(pid, &mut name),
            trailing_slash: false,
        });
    }
    for pid in live {
        let dir_name = decimal(pid, &mut name);
        if t.lookup_in(root, dir_name).is_ok() {
            continue;
        }
        let Ok(dir) = t.create(root, dir_name, Kind::Dir(Dir::default()), 0o555) else {
            return;
        };
        for (file, which) in PID_FILES {
            if t.create(dir, file, Kind::Generated(pid << 8 | which), 0o444)
                .is_err()
            {
                return;
            }
        }
    }
    LAST_REFRESH.store(generation, Relaxed);
    // The descriptors change all the time: their links are brought up to date at each look,
    // an unchanged one left as it is (a listing in progress, `ls -l` looking at each entry
    // and so refreshing the tree between its reads, must not see it made anew).
    if let Some((pid, fds)) = open {
        let Ok(dir) = t.lookup_in(root, decimal(pid, &mut name)) else {
            return;
        };
        let fd_dir = match t.lookup_in(dir, b"fd") {
            Ok(d) => d,
            Err(_) => match t.create(dir, b"fd", Kind::Dir(Dir::default()), 0o500) {
                Ok(d) => d,
                Err(_) => return,
            },
        };
        remove_closed(&mut t, fd_dir, &fds);
        for i in fds {
            let mut num = [0u8; 10];
            let fd_name = decimal(i as u32, &mut num);
            if t.lookup_in(fd_dir, fd_name).is_ok() {
                continue; // kept: a listing in progress must not see it made anew
            }
            let link = Kind::FdLink { pid, fd: i as u32 };
            if t.create(fd_dir, fd_name, link, 0o700).is_err() {
                return;
            }
        }
    }
}

/// Process `pid`'s open descriptors, or None when its /proc/PID/fd links were made from its
/// table as it is (a look at /proc/PID/fd is a few system calls into it, each of which
/// refreshes).
fn open_descriptors(pid: u32) -> Option<Vec<usize>> {
    let p = TASKS.lock().find_process(pid)?;
    let files = p.files()?;
    let table = files.0.lock();
    if p.fd_links_gen.swap(table.generation(), Relaxed) == table.generation() {
        return None;
    }
    let mut fds = Vec::new();
    for (i, _) in table.iter() {
        if fds.try_reserve(1).is_err() {
            p.fd_links_gen.store(u64::MAX, Relaxed); // not all made: again next time
            break;
        }
        fds.push(i);
    }
    Some(fds)
}

/// readlink of /proc/PID/fd/N into `buf`: the text Linux gives (a file's path, with
/// " (deleted)" once unlinked; `pipe:[N]`; a device's path). Its length.
pub fn fd_link_text(tree: &Fs<Frames>, pid: u32, fd: u32, buf: &mut [u8]) -> Result<usize, Errno> {
    let put = |buf: &mut [u8], s: &[u8]| {
        let n = s.len().min(buf.len());
        buf[..n].copy_from_slice(&s[..n]);
        n
    };
    Ok(match fd_links::fd_target(pid, fd)? {
        fd_links::Target::Text(s) => put(buf, s.as_bytes()),
        fd_links::Target::Pipe(id) => {
            let mut w = Text(Vec::new());
            write!(w, "pipe:[{id}]").map_err(|_| Errno::ENOMEM)?;
            put(buf, &w.0)
        }
        fd_links::Target::Inode(ino) => match tree.path_of(ino, buf) {
            Ok(n) => n,
            Err(Errno::ERANGE) => return Err(Errno::ENAMETOOLONG),
            Err(_) => put(buf, b"(deleted)"),
        },
    })
}

/// Unlinks the links of directory `dir` (a /proc/PID/fd) whose descriptor is no longer in
/// `fds`.
fn remove_closed(t: &mut Fs<Frames>, dir: Ino, fds: &[usize]) {
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut pos = 0;
    while let Ok(Some((next, _, name, _))) = t.readdir(dir, pos) {
        pos = next;
        let open = number(name).is_some_and(|n| fds.contains(&(n as usize)));
        if name == b"." || name == b".." || open {
            continue;
        }
        let mut owned = Vec::new();
        if owned.try_reserve_exact(name.len()).is_err() || names.try_reserve(1).is_err() {
            break;
        }
        owned.extend_from_slice(name);
        names.push(owned);
    }
    for name in names {
        let _ = t.unlink(&Last {
            dir,
            name: &name,
            trailing_slash: false,
        });
    }
}

/// The process whose /proc/PID/fd a path (`self` already taken to the pid) reaches into.
pub fn fd_dir_of(path: &[u8]) -> Option<u32> {
    let rest = path.strip_prefix(b"/proc/")?;
    let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    let after = &rest[end..];
    let fd = after.strip_prefix(b"/fd")?;
    (fd.is_empty() || fd[0] == b'/').then(|| pid_of(&rest[..end]))?
}

/// A directory name that is a pid: decimal digits, no leading zero.
fn pid_of(name: &[u8]) -> Option<u32> {
    number(name).filter(|&n| n != 0)
}

/// A name that is a number as `decimal` writes one: digits, no leading zero ("0" itself is a
/// descriptor's name, never a pid's).
fn number(name: &[u8]) -> Option<u32> {
    let leading_zero = name.len() > 1 && name[0] == b'0';
    if name.is_empty() || name.len() > 9 || leading_zero || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(name.iter().fold(0, |n, &d| n * 10 + (d - b'0') as u32))
}

/// `n` in decimal, in `buf`.
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// A text being written, which runs out of room as an error instead of a panic.
struct Text(Vec<u8>);

impl Write for Text {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.try_reserve(s.len()).map_err(|_| core::fmt::Error)?;
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The text of file `which` now (ENOMEM if the heap has no room for it). `tree` is the file
/// tree, whose lock the caller (open) holds.
pub fn generate(which: u32, tree: &Fs<Frames>) -> Result<Vec<u8>, Errno> {
    let mut t = Text(Vec::new());
    write(&mut t, which, tree)?;
    Ok(t.0)
}

fn write(t: &mut Text, which: u32, tree: &Fs<Frames>) -> Result<(), Errno> {
    if which >= 1 << 8 {
        return write_process(t, which >> 8, which & 0xff, tree);
    }
    write_machine(t, which).map_err(|_| Errno::ENOMEM)
}

fn write_machine(t: &mut Text, which: u32) -> core::fmt::Result {
    match which {
        MEMINFO => {
            let (total, free) = {
                let f = FRAMES.lock();
                (f.total_frames * 4, f.free_frames * 4)
            };
            // Everything not free is the kernel's or a program's: no page cache, no swap.
            for (name, kib) in [
                ("MemTotal", total),
                ("MemFree", free),
                ("MemAvailable", free),
                ("Buffers", 0),
                ("Cached", 0),
                ("SwapCached", 0),
                ("SwapTotal", 0),
                ("SwapFree", 0),
                ("Shmem", 0),
            ] {
                let pad = 15usize.saturating_sub(name.len());
                writeln!(t, "{name}:{:pad$}{kib:>8} kB", "")?;
            }
        }
        UPTIME => {
            let up = time::monotonic_ns() / 10_000_000;
            let idle = time::cycles_to_ns(percpu::this().idle_cycles.get()) / 10_000_000;
            writeln!(
                t,
                "{}.{:02} {}.{:02}",
                up / 100,
                up % 100,
                idle / 100,
                idle % 100
            )?;
        }
        LOADAVG => {
            // No load average is kept: zeros, then what runs and what exists, and the last pid.
            let (ready, live, last) = {
                let tasks = TASKS.lock();
                let last = tasks.live().map(|p| p.pid()).max().unwrap_or(0);
                (tasks.ready.len(), tasks.live().count(), last)
            };
            writeln!(t, "0.00 0.00 0.00 {}/{live} {last}", ready + 1)?;
        }
        CPUINFO => {
            let mhz = time::tsc_hz() / 1000;
            writeln!(t, "processor\t: 0")?;
            writeln!(
                t,
                "vendor_id\t: {}",
                crate::cpu::Features::detect().vendor_str()
            )?;
            writeln!(t, "cpu MHz\t\t: {}.{:03}", mhz / 1000, mhz % 1000)?;
            writeln!(t, "cpu cores\t: 1")?;
            writeln!(t)?;
        }
        STAT_ALL => {
            // Clock ticks (100 a second): what is not idle is on the tasks' account, as user
            // time (the kernel's own work is charged to the task it does it for).
            let up = time::monotonic_ns() / 10_000_000;
            let cpu = percpu::this();
            let idle = time::cycles_to_ns(cpu.idle_cycles.get()) / 10_000_000;
            let busy = up.saturating_sub(idle);
            let (forks, ready) = {
                let tasks = TASKS.lock();
                (tasks.next_pid.saturating_sub(1), tasks.ready.len())
            };
            let boot = (time::realtime_ns() - time::monotonic_ns()) / 1_000_000_000;
            for name in ["cpu ", "cpu0"] {
                writeln!(t, "{name} {busy} 0 0 {idle} 0 0 0 0 0 0")?;
            }
            writeln!(t, "intr {}", crate::timer::interrupts())?;
            writeln!(t, "ctxt {}", cpu.switches.get())?;
            writeln!(t, "btime {boot}")?;
            writeln!(t, "processes {forks}")?;
            writeln!(t, "procs_running {}", ready + 1)?;
            writeln!(t, "procs_blocked 0")?;
        }
        // One file system: the tree in RAM, like a tmpfs (statfs says so too).
        MOUNTS => writeln!(t, "tmpfs / tmpfs rw 0 0")?,
        _ => {
            writeln!(
                t,
                "Linux version {} (lde) #1 lde (Limited Direct Execution)",
                abi::machine::KERNEL_RELEASE
            )?;
        }
    }
    Ok(())
}

/// File `file` of process `pid` (ENOENT once it is gone, as Linux's ESRCH at open).
fn write_process(t: &mut Text, pid: u32, file: u32, tree: &Fs<Frames>) -> Result<(), Errno> {
    let (name, state, ppid, pgid, sid, threads, cycles, args, mm) = {
        let tasks = TASKS.lock();
        let p = tasks.find_process(pid).ok_or(Errno::ENOENT)?;
        let threads = tasks.group(pid).count();
        (
            p.name(),
            p.state(),
            p.parent.load(Relaxed),
            p.pgid.load(Relaxed),
            p.sid.load(Relaxed),
            threads,
            p.stats.cpu_cycles.load(Relaxed),
            (p.args_at.load(Relaxed), p.args_len.load(Relaxed)),
            p.mm(),
        )
    };
    let (code, word) = match state {
        State::Running | State::Ready | State::Embryo => ('R', "running"),
        State::Blocked(_) => ('S', "sleeping"),
        State::Stopped => ('T', "stopped"),
        State::Zombie | State::Unused => ('Z', "zombie"),
    };
    // CPU time in clock ticks (100 a second), all of it user time: the kernel's work on a
    // task's behalf is on its account (as times(2) says).
    let ticks = time::cycles_to_ns(cycles) / 10_000_000;
    let (vsize, rss) = mm.as_ref().map_or((0, 0), |m| m.usage());
    let r = match file {
        STAT => {
            // Linux's 52 fields; what is not kept here is 0.
            write!(
                t,
                "{pid} ({name}) {code} {ppid} {pgid} {sid} 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 \
                 {threads} 0 0 {vsize} {rss}"
            )
            .and_then(|()| (0..28).try_for_each(|_| t.write_str(" 0")))
            .and_then(|()| t.write_str("\n"))
        }
        STATUS => writeln!(
            t,
            "Name:\t{name}\nState:\t{code} ({word})\nTgid:\t{pid}\nPid:\t{pid}\nPPid:\t{ppid}\n\
             Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nVmSize:\t{} kB\nVmRSS:\t{} kB\nThreads:\t{threads}",
            vsize / 1024,
            rss * 4
        ),
        // Its arguments where execve put them in its memory (a zombie's are gone: empty, as
        // on Linux), at most a page of them.
        CMDLINE => {
            if let Some(mm) = mm {
                let n = args.1.min(4096) as usize;
                t.0.try_reserve(n).map_err(|_| Errno::ENOMEM)?;
                t.0.resize(n, 0);
                if crate::uaccess::copy_from_user_in(&mm, &mut t.0, args.0).is_err() {
                    t.0.clear(); // it unmapped them: nothing to show
                }
            }
            Ok(())
        }
        MAPS => match mm {
            Some(mm) => return write_maps(t, &mm, tree),
            None => Ok(()),
        },
        PID_MOUNTS => writeln!(t, "tmpfs / tmpfs rw 0 0"),
        MOUNTINFO => writeln!(t, "1 0 0:1 / / rw,relatime shared:1 - tmpfs tmpfs rw"),
        _ => writeln!(t, "{name}"),
    };
    r.map_err(|_| Errno::ENOMEM)
}

/// /proc/PID/maps: `start-end perms offset dev inode name` a region, in address order, as
/// Linux writes it. A mapping of an archive file's own pages (a program's segments, a library
/// its dynamic linker mapped) is named by the file's path, at its offset; the heap, the stack
/// and the vDSO's two pages by Linux's bracketed names; anything else (anonymous, or a file
/// written since boot, which was copied) has no name.
fn write_maps(
    t: &mut Text,
    mm: &crate::memory::address_space::AddressSpace,
    tree: &Fs<Frames>,
) -> Result<(), Errno> {
    use crate::memory::layout::USER_STACK_TOP;
    use crate::memory::PHYS_OFFSET;
    use kcore::regions::{Backing, PROT_EXEC, PROT_READ, PROT_WRITE};
    let (regions, heap_start) = mm.regions().map_err(|_| Errno::ENOMEM)?;
    let (vvar, vdso, vdso_end) = crate::vdso::layout();
    let mut vdso_shown = false;
    let mut path = [0u8; 256];
    let line =
        |t: &mut Text, start: u64, end: u64, perms: [u8; 4], off: u64, ino: u32, name: &[u8]| {
            let perms = core::str::from_utf8(&perms).unwrap_or("----");
            let head_len = t.0.len();
            write!(t, "{start:08x}-{end:08x} {perms} {off:08x} 00:00 {ino}")?;
            if !name.is_empty() {
                // Linux pads the name to column 74.
                let width = t.0.len() - head_len;
                (width..73).try_for_each(|_| t.write_str(" "))?;
                t.write_str(" ")?;
                t.write_str(core::str::from_utf8(name).unwrap_or("?"))?;
            }
            t.write_str("\n")
        };
    let vdso_lines = |t: &mut Text| {
        line(t, vvar, vdso, *b"r--p", 0, 0, b"[vvar]")?;
        line(t, vdso, vdso_end, *b"r-xp", 0, 0, b"[vdso]")
    };
    for r in &regions {
        if !vdso_shown && r.start >= vdso_end {
            vdso_lines(t).map_err(|_| Errno::ENOMEM)?;
            vdso_shown = true;
        }
        let bit = |b: u8, c: u8| if r.prot & b != 0 { c } else { b'-' };
        let perms = [
            bit(PROT_READ, b'r'),
            bit(PROT_WRITE, b'w'),
            bit(PROT_EXEC, b'x'),
            if r.shared { b's' } else { b'p' },
        ];
        let (mut off, mut ino, mut name): (u64, u32, &[u8]) = (0, 0, b"");
        if let Backing::File { phys, .. } = r.backing {
            if let Some((file, at)) = tree.static_file_at(phys + PHYS_OFFSET) {
                if let Ok(n) = tree.path_of(file, &mut path) {
                    (off, ino, name) = (at, file, &path[..n]);
                }
            }
        } else if r.start == heap_start && heap_start != 0 {
            name = b"[heap]";
        } else if r.end == USER_STACK_TOP {
            name = b"[stack]";
        }
        line(t, r.start, r.end, perms, off, ino, name).map_err(|_| Errno::ENOMEM)?;
    }
    if !vdso_shown {
        vdso_lines(t).map_err(|_| Errno::ENOMEM)?;
    }
    Ok(())
}
