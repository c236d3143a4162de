//! The host terminal, when the VMM's standard input is one: for the run, its line editing,
//! echo, signal keys and input translation (ICANON, ECHO, ISIG, IEXTEN, IXON, ICRNL) are off,
//! so every key reaches the guest's own line discipline, which echoes and edits; output
//! processing (OPOST, `\n` to `\r\n`) stays on, since the guest's output path does none.
//!
//! The mode is put back on every way out: `RawMode`'s drop (the guest's exit, a VMM error,
//! a panic that unwinds), an `atexit` hook (`std::process::exit` after `--timeout` or Ctrl-A x
//! skips destructors), and handlers for the signals that end or stop a process (SIGTERM,
//! SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGALRM, SIGUSR1/2, and the crashes SIGSEGV, SIGBUS,
//! SIGFPE, SIGILL, SIGABRT): each restores the saved mode, then dies of its signal as it would
//! have (a shell sees 128 + the signal). SIGTSTP puts the mode back while the VMM is stopped
//! and raw mode again when it continues. SIGWINCH is noted for the event loop
//! (`winch_fd`), which passes the new size to the guest.
//!
//! Only a VMM in the terminal's foreground process group changes its mode: one started in the
//! background leaves it alone (tcsetattr would stop it with SIGTTOU).

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Once;

use libc::{c_int, termios};

/// The mode to put back; written once, before `ACTIVE` is set, read by handlers.
static mut SAVED: MaybeUninit<termios> = MaybeUninit::uninit();
/// The raw mode, for SIGCONT after SIGTSTP.
static mut RAW: MaybeUninit<termios> = MaybeUninit::uninit();
/// Raw mode is on: `SAVED` holds the mode to restore.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Where the SIGWINCH handler writes (an EventFd), or -1.
static WINCH_FD: AtomicI32 = AtomicI32::new(-1);

const FATAL_SIGNALS: [c_int; 13] = [
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGABRT,
];

/// Raw mode on stdin while this lives.
pub struct RawMode(());

impl RawMode {
    /// Puts stdin's terminal in raw mode; `None` if stdin is not a terminal, or is one this
    /// process is in the background of.
    pub fn enter() -> Option<RawMode> {
        // SAFETY: isatty, tcgetpgrp and getpgrp only query; tcgetattr writes the termios we
        // pass, a valid local.
        let saved = unsafe {
            if libc::isatty(0) != 1 || libc::tcgetpgrp(0) != libc::getpgrp() {
                return None;
            }
            let mut t = MaybeUninit::<termios>::uninit();
            if libc::tcgetattr(0, t.as_mut_ptr()) != 0 {
                return None;
            }
            t.assume_init()
        };
        let mut raw = saved;
        raw.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG | libc::IEXTEN);
        raw.c_iflag &= !(libc::IXON | libc::ICRNL | libc::INLCR | libc::IGNCR);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: SAVED and RAW are written before ACTIVE is set (and only here, once a run:
        // `enter` is called before any handler that reads them can run for this mode).
        unsafe {
            (*std::ptr::addr_of_mut!(SAVED)).write(saved);
            (*std::ptr::addr_of_mut!(RAW)).write(raw);
        }
        install_handlers();
        ACTIVE.store(true, Ordering::SeqCst);
        // SAFETY: `raw` is a valid termios for fd 0.
        if unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw) } != 0 {
            ACTIVE.store(false, Ordering::SeqCst);
            return None;
        }
        Some(RawMode(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the saved mode back, if raw mode is on. Async-signal-safe (tcsetattr is).
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        // SAFETY: ACTIVE was set, so SAVED was written; tcsetattr reads it. TCSANOW, not
        // TCSADRAIN: output processing is the same in both modes, and draining could wait
        // forever on a terminal nobody reads.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, (*std::ptr::addr_of!(SAVED)).as_ptr());
        }
    }
}

/// Whether raw mode is on (the guest then echoes, and Ctrl-A is the escape key).
pub fn is_raw() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

/// The terminal's size as the guest's window-size port gives it: rows | cols << 16, from
/// stdin's terminal, else stdout's; 0 without one.
pub fn window_size() -> u32 {
    for fd in [0, 1] {
        let mut ws = MaybeUninit::<libc::winsize>::zeroed();
        // SAFETY: TIOCGWINSZ writes a winsize into the valid local `ws`.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, ws.as_mut_ptr()) } == 0 {
            // SAFETY: zero-initialised and filled by a successful ioctl.
            let ws = unsafe { ws.assume_init() };
            return u32::from(ws.ws_row) | u32::from(ws.ws_col) << 16;
        }
    }
    0
}

/// Makes SIGWINCH write to `fd` (an EventFd the event loop watches).
pub fn set_winch_fd(fd: c_int) {
    WINCH_FD.store(fd, Ordering::SeqCst);
    install_handlers();
}

extern "C" fn on_fatal(sig: c_int) {
    restore();
    // SAFETY: the handler was installed with SA_RESETHAND | SA_NODEFER, so the default action
    // is back and not blocked: raising the signal again ends the process as it would have.
    unsafe {
        libc::raise(sig);
    }
}

extern "C" fn on_tstp(_sig: c_int) {
    let was_raw = ACTIVE.load(Ordering::SeqCst);
    restore();
    // SAFETY: SIGSTOP cannot be caught; we continue here after SIGCONT. RAW was written
    // before ACTIVE was first set.
    unsafe {
        libc::raise(libc::SIGSTOP);
        if was_raw {
            ACTIVE.store(true, Ordering::SeqCst);
            libc::tcsetattr(0, libc::TCSANOW, (*std::ptr::addr_of!(RAW)).as_ptr());
        }
    }
}

extern "C" fn on_winch(_sig: c_int) {
    let fd = WINCH_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let one: u64 = 1;
        // SAFETY: write(2) of 8 valid bytes to an EventFd; async-signal-safe.
        unsafe { libc::write(fd, std::ptr::addr_of!(one).cast(), 8) };
    }
}

extern "C" fn at_exit() {
    restore();
}

fn handle(sig: c_int, handler: extern "C" fn(c_int), flags: c_int) {
    // SAFETY: a zeroed sigaction with a valid handler address and flags, and an empty mask;
    // the handlers only call async-signal-safe functions.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = handler as usize;
        act.sa_flags = flags;
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaction(sig, &act, std::ptr::null_mut());
    }
}

fn install_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for sig in FATAL_SIGNALS {
            // SIGPIPE is ignored by Rust's runtime (writes get EPIPE): keep it so.
            // SAFETY: querying the current disposition into a valid local.
            let ignored = unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                libc::sigaction(sig, std::ptr::null(), &mut old);
                old.sa_sigaction == libc::SIG_IGN
            };
            if !ignored {
                handle(sig, on_fatal, libc::SA_RESETHAND | libc::SA_NODEFER);
            }
        }
        handle(libc::SIGTSTP, on_tstp, libc::SA_RESTART);
        handle(libc::SIGWINCH, on_winch, libc::SA_RESTART);
        // SAFETY: registering a plain extern "C" function with no arguments.
        unsafe { libc::atexit(at_exit) };
    });
}
