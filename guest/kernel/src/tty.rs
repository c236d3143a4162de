//! The console as a terminal: its input, the line discipline (kcore::tty) that edits it, the
//! foreground process group its signal keys go to, its window size, and its ioctls.
//!
//! Input comes by interrupt: the UART raises IRQ 4 when bytes arrive (routed through the
//! IOAPIC, ioapic.rs); the handler runs each byte through the discipline, echoes in one string
//! write per batch, posts Ctrl-C's SIGINT (and Ctrl-\'s SIGQUIT, Ctrl-Z's SIGTSTP) to the
//! foreground process group, and wakes the readers once a line (or, in raw mode, a byte) is
//! there. When the host's input has ended (our VMM's console-status port says so,
//! docs/conventions.md), the last partial line is readable and reads past it return 0.
//!
//! Sessions: the console starts as the controlling terminal of pid 1's session, with pid 1's
//! group in the foreground (a serial console is init's terminal here, unlike Linux's
//! /dev/console, so that Ctrl-C works without a getty). A process belongs to the console's
//! session if its sid is the console's; TIOCSCTTY moves the console to the caller's session
//! (stealing it from a session that has no live process left, or when arg is 1, as root may).
//! Job control, as on Linux: a read from a background group of the terminal's session stops
//! that group with SIGTTIN, a tcsetattr or TIOCSPGRP with SIGTTOU, and the call runs again once
//! the group is continued (with the signal ignored or blocked, the read fails with EIO and the
//! change goes ahead; an orphaned group gets EIO). With TOSTOP set, a write from the
//! background is stopped by SIGTTOU too (without it, or with SIGTTOU ignored, it is written).
//! When the session leader whose terminal the console is exits (or gives it up with
//! TIOCNOTTY), the console is no one's terminal and its foreground group is hung up: SIGHUP
//! (and SIGCONT after TIOCNOTTY, the leader living on), as Linux's disassociate_ctty does.
//! Another session leader's TIOCSCTTY then takes it.

use crate::process::{State, TASKS};
use crate::sync::{CpuCell, IrqLock};
use crate::sys_result::SysResult;
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_from_user, copy_to_user};
use crate::uart::UART;
use abi::machine::{console_status, port};
use abi::termios::{ioctl, Termios, WinSize, ECHO, TERMIOS_SIZE};
use abi::Errno;
use core::sync::atomic::Ordering::Relaxed;
use kcore::tty::{Echo, LineDiscipline};
use x86_64::instructions::port::Port;

struct Tty {
    ld: LineDiscipline,
    /// The host's input has ended (after the bytes already taken in).
    ended: bool,
    /// Input waits in the UART because the discipline is full (`should_throttle`); a read
    /// that makes room takes it in. The VMM sends no more until the UART is drained, so no
    /// byte of a large paste or pipe is lost.
    stalled: bool,
    /// The wait queue of blocked readers (the scheduler's), or u32::MAX before `enable_input`.
    queue: u32,
    /// Interrupts work (the IOAPIC is there): else reads poll.
    irq: bool,
    /// The session whose controlling terminal this is (0: none), and its foreground group.
    session: u32,
    pgrp: u32,
    winsize: WinSize,
    /// A non-canonical read waiting with VTIME: its pid and deadline (TSC). Any input
    /// restarts the timer (VTIME is an inter-byte timeout when VMIN > 0). At the deadline the
    /// read runs again and finds it passed. A read a signal ended may leave its deadline here:
    /// the same process's next VTIME read, if no byte comes in between, then ends early.
    vtime: Option<(u32, u64)>,
}

static TTY: IrqLock<Tty> = IrqLock::new(
    "console tty",
    Tty {
        ld: LineDiscipline::new(),
        ended: false,
        stalled: false,
        queue: u32::MAX,
        irq: false,
        session: 1,
        pgrp: 1,
        winsize: WinSize {
            rows: 0,
            cols: 0,
            xpixel: 0,
            ypixel: 0,
        },
        vtime: None,
    },
);

/// Echoed bytes, gathered to go out as one string write (a VM exit, not one per byte).
struct EchoOut {
    buf: [u8; 128],
    len: usize,
}

impl EchoOut {
    fn flush(&mut self) {
        if self.len > 0 {
            crate::console::write_kernel(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Echo for EchoOut {
    fn echo(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(self.buf.len()) {
            if self.len + chunk.len() > self.buf.len() {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
    }
}

/// The console-status port (`abi::machine::console_status`); 0xff from a VMM without it.
fn host_status() -> Option<u8> {
    // SAFETY: reading the status port has no side effect.
    let v = unsafe { Port::<u8>::new(port::CONSOLE_STATUS).read() };
    (v != 0xff).then_some(v)
}

/// The host terminal's size (`port::CONSOLE_WINSIZE`); `None` from a VMM without the port
/// (it reads all ones: QEMU, whose isa-debug-exit also answers the status port, with 0).
fn host_winsize() -> Option<WinSize> {
    // SAFETY: reading the window-size port only clears the VMM's "changed" flag.
    let v = unsafe { Port::<u32>::new(port::CONSOLE_WINSIZE).read() };
    (v != u32::MAX).then_some(WinSize {
        rows: v as u16,
        cols: (v >> 16) as u16,
        ..WinSize::default()
    })
}

/// Sets up console input: its wait queue, the UART's interrupt through the IOAPIC, the window
/// size. Our VMM's input that is not a terminal (a pipe, a file) gets no echo: it would
/// otherwise appear twice in the output. Without an IOAPIC reads poll instead.
pub fn enable_input() {
    let Ok(queue) = TASKS.lock().alloc_queue() else {
        return;
    };
    let irq = crate::ioapic::route(
        abi::machine::port::COM1_IRQ,
        crate::trap_frame::CONSOLE_VECTOR,
    );
    let ours = crate::virtio_console::window_size(false).or_else(host_winsize);
    let status = host_status();
    {
        let mut t = TTY.lock();
        t.queue = queue;
        t.irq = irq && !crate::virtio_console::polled();
        if let Some(ws) = ours {
            t.winsize = ws;
        }
        if status.is_some_and(|s| s & console_status::HOST_TERMINAL == 0) {
            let mut tio = *t.ld.termios();
            tio.lflag &= !ECHO;
            set_termios(&mut t, tio);
        }
    }
    if irq {
        UART.lock().enable_rx_interrupt();
    }
    poll_input();
}

/// Linux's job control at the terminal (tty_check_change): a process of the terminal's
/// session but not of its foreground group may not read it (`sig` SIGTTIN) or change it
/// (SIGTTOU: tcsetattr, tcsetpgrp). Its group is sent `sig` (true: the caller backs the call
/// up to run again once the group is continued). If `sig` is ignored or blocked, a read fails
/// with EIO and a change goes ahead (false); an orphaned group gets EIO, as nobody could
/// continue it. Everyone else goes ahead (false).
fn job_control(me: &crate::process::Process, sig: u32) -> Result<bool, Errno> {
    let (session, fg) = {
        let t = TTY.lock();
        (t.session, t.pgrp)
    };
    let pgid = me.pgid.load(Relaxed);
    if session == 0 || me.sid.load(Relaxed) != session || fg == 0 || pgid == fg {
        return Ok(false);
    }
    if crate::signal::send::ignored_or_blocked(me, sig) {
        return if sig == abi::signal::SIGTTIN {
            Err(Errno::EIO)
        } else {
            Ok(false)
        };
    }
    if crate::signal::send::group_is_orphaned(me) {
        return Err(Errno::EIO);
    }
    signal_group(pgid, sig);
    Ok(true)
}

/// Whether ioctl `req` changes the terminal (job control applies: `job_control_ioctl`).
fn changes_the_terminal(req: u64) -> bool {
    matches!(
        req,
        ioctl::TCSETS | ioctl::TCSETSW | ioctl::TCSETSF | ioctl::TIOCSPGRP
    )
}

/// A write of the console: from the background with TOSTOP set, SIGTTOU (see `job_control`).
pub fn job_control_write() -> Result<bool, Errno> {
    if !TOSTOP.get() {
        return Ok(false);
    }
    job_control(crate::percpu::current(), abi::signal::SIGTTOU)
}

/// Whether the terminal's TOSTOP is set: a copy of the termios flag, kept by `set_termios`,
/// so that every console write tests one byte instead of taking the terminal's lock.
static TOSTOP: CpuCell<bool> = CpuCell::new(Termios::DEFAULT.lflag & abi::termios::TOSTOP != 0);

/// The one way the kernel changes the terminal's mode: the line discipline's, and the copy
/// of TOSTOP that writes read.
fn set_termios(t: &mut Tty, tio: Termios) {
    t.ld.set_termios(tio);
    TOSTOP.set(tio.lflag & abi::termios::TOSTOP != 0);
}

/// An ioctl of the console from the background: SIGTTOU for a change (see `job_control`).
/// Returns whether the caller stops (its call runs again when continued).
pub fn job_control_ioctl(req: u64) -> Result<bool, Errno> {
    if !changes_the_terminal(req) {
        return Ok(false);
    }
    job_control(crate::percpu::current(), abi::signal::SIGTTOU)
}

/// Sends `sig` to every process of group `pgrp`, as the kernel (SI_KERNEL).
fn signal_group(pgrp: u32, sig: u32) {
    crate::signal::send::post_pgrp(&mut TASKS.lock(), pgrp, sig);
}

/// Runs the console's input (console::read_input) through the discipline, 16 bytes (the
/// UART FIFO's depth) at a time;
/// returns whether there was anything. The signals it asks for are added to `signals`.
fn drain(t: &mut Tty, echo: &mut EchoOut, signals: &mut u64) -> bool {
    let mut got = false;
    loop {
        let mut bytes = [0u8; 16];
        // Never take in more than fits: what does not stays in the UART or the virtio buffer.
        let max =
            t.ld.intake_room()
                .map_or(bytes.len(), |r| r.min(bytes.len()));
        if max == 0 {
            t.stalled = true;
            return got;
        }
        let n = crate::console::read_input(&mut bytes[..max]);
        for &b in &bytes[..n] {
            if let Some(sig) = t.ld.receive(b, echo) {
                *signals |= 1 << sig;
            }
        }
        got |= n > 0;
        if n < max {
            return got;
        }
    }
}

/// Runs the console's input (the UART's, the virtio console's) through the discipline; notes
/// the end of the host's input and a new window size; echoes, signals, wakes readers.
fn poll_input() {
    let mut t = TTY.lock();
    let mut echo = EchoOut {
        buf: [0; 128],
        len: 0,
    };
    let mut signals = 0u64;
    let mut got = drain(&mut t, &mut echo, &mut signals);
    if let Some(status) = host_status() {
        if !t.ended && status & console_status::INPUT_ENDED != 0 {
            // The status is set only after the last byte reached the UART: drain it once more.
            drain(&mut t, &mut echo, &mut signals);
        }
        if !t.ended && !t.stalled && status & console_status::INPUT_ENDED != 0 {
            t.ended = true;
            t.ld.end_of_input();
            got = true;
        }
        if !crate::virtio_console::active() && status & console_status::WINSIZE_CHANGED != 0 {
            let ws = host_winsize().unwrap_or_default();
            if ws != t.winsize {
                t.winsize = ws;
                signals |= 1 << abi::signal::SIGWINCH;
            }
        }
    }
    // The virtio console's configuration space has the size (its change interrupt said so):
    // no status port needed, so QEMU's device counts too.
    if crate::virtio_console::active() {
        if let Some(ws) = crate::virtio_console::window_size(true) {
            if ws != t.winsize {
                t.winsize = ws;
                signals |= 1 << abi::signal::SIGWINCH;
            }
        }
    }
    echo.flush();
    if got {
        t.vtime = None;
    }
    let (q, pgrp) = (t.queue, t.pgrp);
    drop(t);
    if signals != 0 && pgrp != 0 {
        for sig in 1..64 {
            if signals & (1 << sig) != 0 {
                signal_group(pgrp, sig);
            }
        }
    }
    if (got || signals != 0) && q != u32::MAX {
        let mut tasks = TASKS.lock();
        crate::wakeup::wake_all(&mut tasks, q);
        crate::wakeup::wake_pollers(&mut tasks);
    }
}

/// The console's interrupt (the UART's or the virtio console's: one vector).
pub fn interrupt() {
    crate::console::take_interrupt();
    poll_input();
}

fn poll_if_no_irq() {
    if !TTY.lock().irq {
        poll_input();
    }
}

/// FIONREAD: bytes a read could take now.
pub fn available() -> usize {
    poll_if_no_irq();
    TTY.lock().ld.bytes_readable()
}

/// Whether a read would return now without waiting (poll's POLLIN): input, its end, or no
/// way to wait for more (no IOAPIC: reads then return what there is, maybe nothing). A raw
/// read with VMIN > 1 may still wait for more bytes, as on Linux.
pub fn readable() -> bool {
    poll_if_no_irq();
    let t = TTY.lock();
    t.ld.readable() || t.ended || !t.irq
}

/// read(2) of the console. Canonical mode: one line, once it is complete. Raw mode: VMIN and
/// VTIME as POSIX says (MIN bytes, or what came before the TIME timer ran out).
pub fn read(f: &mut TrapFrame, buf: u64, count: u64, nonblock: bool) -> SysResult {
    let me = crate::percpu::current();
    let pml4 = me.pml4();
    // The whole buffer must be writable user memory, even if less arrives (as on Linux).
    crate::uaccess::check(pml4, buf, count, true)?;
    if count == 0 {
        return Ok(0);
    }
    if job_control(me, abi::signal::SIGTTIN)? {
        // Stopped by SIGTTIN on the way out; the read runs again when continued.
        f.rip -= 2;
        return Ok(f.rax);
    }
    poll_if_no_irq();
    let pid = me.pid();
    let mut t = TTY.lock();
    let canonical = t.ld.canonical();
    let (vmin, vtime) = t.ld.vmin_vtime();
    let have = t.ld.waiting();
    let timed = !canonical && vtime > 0 && (vmin == 0 || have > 0);
    let my_deadline = t.vtime.filter(|v| v.0 == pid).map(|v| v.1);
    let timed_out = timed && my_deadline.is_some_and(|d| crate::cpu::rdtsc() >= d);
    let ready = t.ended
        || if canonical {
            t.ld.readable()
        } else if vmin == 0 {
            have > 0 || vtime == 0 || timed_out
        } else {
            have >= (vmin as u64).min(count) as usize || timed_out
        };
    if ready {
        if my_deadline.is_some() {
            t.vtime = None;
        }
        drop(t);
        return take_input(pml4, buf, count);
    }
    if !t.irq {
        return Ok(0); // no way to wait for more (no IOAPIC): nothing now is end-of-file
    }
    if nonblock {
        return Err(Errno::EAGAIN);
    }
    let q = t.queue;
    let timeout = if timed {
        let deadline = my_deadline.unwrap_or_else(|| {
            let ns = vtime as u64 * 100_000_000;
            crate::cpu::rdtsc().saturating_add(crate::time::ns_to_cycles(ns))
        });
        t.vtime = Some((pid, deadline));
        // At the deadline the call runs again (rax back to its number), and finds it passed.
        Some((deadline, f.rax))
    } else {
        None
    };
    drop(t);
    crate::scheduler::wait_in_until(
        TASKS.lock(),
        f,
        q,
        crate::signal::state::RESTART_SYSCALL,
        timeout,
    );
    Ok(f.rax)
}

/// Copies readable input to the user's buffer, a kernel buffer's worth at a time, up to the
/// end of the line in canonical mode.
fn take_input(pml4: u64, buf: u64, count: u64) -> SysResult {
    let mut done = 0u64;
    loop {
        let mut tmp = [0u8; 256];
        let want = ((count - done) as usize).min(tmp.len());
        let (n, more, stalled) = {
            let mut t = TTY.lock();
            let (n, more) = t.ld.read(&mut tmp[..want]);
            (n, more, core::mem::take(&mut t.stalled))
        };
        if stalled {
            poll_input(); // there is room now: what waited in the UART comes in
        }
        copy_to_user(pml4, buf + done, &tmp[..n])?;
        done += n as u64;
        if !more || done == count {
            return Ok(done);
        }
    }
}

/// The leader of session `sid` ended (exit.rs) or gave the terminal up (TIOCNOTTY): if the
/// console is that session's terminal it becomes no one's. Returns the foreground group it
/// had, for the caller to hang up.
pub fn session_leader_left(sid: u32) -> Option<u32> {
    let mut t = TTY.lock();
    if t.session == 0 || t.session != sid {
        return None;
    }
    let pgrp = core::mem::take(&mut t.pgrp);
    t.session = 0;
    (pgrp != 0).then_some(pgrp)
}

/// Whether the caller's session is the console's (the console is its controlling terminal).
fn is_my_terminal(t: &Tty) -> bool {
    let sid = crate::percpu::current().sid.load(Relaxed);
    t.session != 0 && t.session == sid
}

/// ioctl(2) on the console.
pub fn ioctl(req: u64, arg: u64) -> SysResult {
    let me = crate::percpu::current();
    let pml4 = me.pml4();
    match req {
        ioctl::TCGETS => {
            let bytes = TTY.lock().ld.termios().to_bytes();
            copy_to_user(pml4, arg, &bytes)?;
            Ok(0)
        }
        ioctl::TCSETS | ioctl::TCSETSW | ioctl::TCSETSF => {
            let mut bytes = [0u8; TERMIOS_SIZE];
            copy_from_user(pml4, &mut bytes, arg)?;
            // Output is written synchronously: TCSETSW's "after output drains" is now.
            let mut t = TTY.lock();
            if req == ioctl::TCSETSF {
                t.ld.flush_input();
            }
            set_termios(&mut t, Termios::from_bytes(&bytes));
            let q = t.queue;
            drop(t);
            // Leaving canonical mode can make a partial line readable.
            if q != u32::MAX {
                let mut tasks = TASKS.lock();
                crate::wakeup::wake_all(&mut tasks, q);
                crate::wakeup::wake_pollers(&mut tasks);
            }
            Ok(0)
        }
        ioctl::TIOCGWINSZ => {
            let ws = TTY.lock().winsize;
            copy_to_user(pml4, arg, &ws.to_bytes())?;
            Ok(0)
        }
        ioctl::TIOCSWINSZ => {
            let mut bytes = [0u8; 8];
            copy_from_user(pml4, &mut bytes, arg)?;
            let ws = WinSize::from_bytes(&bytes);
            let mut t = TTY.lock();
            let changed = t.winsize != ws;
            t.winsize = ws;
            let pgrp = t.pgrp;
            drop(t);
            if changed && pgrp != 0 {
                signal_group(pgrp, abi::signal::SIGWINCH);
            }
            Ok(0)
        }
        ioctl::TIOCGPGRP => {
            let t = TTY.lock();
            if !is_my_terminal(&t) {
                return Err(Errno::ENOTTY);
            }
            let pgrp = t.pgrp;
            drop(t);
            copy_to_user(pml4, arg, &pgrp.to_le_bytes())?;
            Ok(0)
        }
        ioctl::TIOCGSID => {
            let t = TTY.lock();
            if !is_my_terminal(&t) {
                return Err(Errno::ENOTTY);
            }
            let sid = t.session;
            drop(t);
            copy_to_user(pml4, arg, &sid.to_le_bytes())?;
            Ok(0)
        }
        ioctl::TIOCSPGRP => {
            let mut bytes = [0u8; 4];
            copy_from_user(pml4, &mut bytes, arg)?;
            let pgrp = i32::from_le_bytes(bytes);
            let mut t = TTY.lock();
            if !is_my_terminal(&t) {
                return Err(Errno::ENOTTY);
            }
            if pgrp < 0 {
                return Err(Errno::EINVAL);
            }
            let session = t.session;
            let tasks = TASKS.lock();
            let mut members = tasks
                .live()
                .filter(|p| p.state() != State::Zombie && p.pgid.load(Relaxed) == pgrp as u32);
            match members.next() {
                None => Err(Errno::ESRCH),
                Some(p) if p.sid.load(Relaxed) != session => Err(Errno::EPERM),
                Some(_) => {
                    t.pgrp = pgrp as u32;
                    Ok(0)
                }
            }
        }
        ioctl::TIOCSCTTY => {
            let (pid, sid, pgid) = (me.pid(), me.sid.load(Relaxed), me.pgid.load(Relaxed));
            let mut t = TTY.lock();
            if t.session == sid && sid != 0 {
                return Ok(0);
            }
            if pid != sid {
                return Err(Errno::EPERM);
            }
            let owner = t.session;
            let owner_alive = owner != 0
                && TASKS
                    .lock()
                    .live()
                    .any(|p| p.state() != State::Zombie && p.sid.load(Relaxed) == owner);
            if owner_alive && arg != 1 {
                return Err(Errno::EPERM);
            }
            t.session = sid;
            t.pgrp = pgid;
            Ok(0)
        }
        ioctl::TIOCNOTTY => {
            if !is_my_terminal(&TTY.lock()) {
                return Err(Errno::ENOTTY);
            }
            let sid = me.sid.load(Relaxed);
            if me.pid() == sid {
                if let Some(pgrp) = session_leader_left(sid) {
                    let mut tasks = TASKS.lock();
                    crate::signal::send::post_pgrp(&mut tasks, pgrp, abi::signal::SIGHUP);
                    crate::signal::send::post_pgrp(&mut tasks, pgrp, abi::signal::SIGCONT);
                }
            }
            Ok(0)
        }
        ioctl::FIONREAD => {
            let n = available() as u32;
            copy_to_user(pml4, arg, &n.to_le_bytes())?;
            Ok(0)
        }
        ioctl::TCFLSH => match arg {
            ioctl::TCIFLUSH | ioctl::TCIOFLUSH => {
                TTY.lock().ld.flush_input();
                Ok(0)
            }
            ioctl::TCOFLUSH => Ok(0),
            _ => Err(Errno::EINVAL),
        },
        ioctl::TIOCOUTQ => {
            copy_to_user(pml4, arg, &0u32.to_le_bytes())?;
            Ok(0)
        }
        // Break and flow control: nothing to do on a virtual line.
        ioctl::TCSBRK | ioctl::TCXONC => Ok(0),
        _ => Err(Errno::ENOTTY),
    }
}
