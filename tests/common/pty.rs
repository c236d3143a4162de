//! A real pseudo-terminal for tests: a child runs as the session leader with the pty's slave as
//! its controlling terminal and standard streams, as a login shell's would; the test types at
//! the master and reads what the child shows. The test keeps a slave descriptor of its own, so
//! it can read the terminal's mode (tcgetattr) before, during and after the child's run.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
    child: Child,
    /// The terminal's mode before the child started.
    pub initial: Mode,
    /// Everything read from the master so far, and how much `expect` has passed over.
    pub seen: Vec<u8>,
    cursor: usize,
}

/// A terminal's mode, as the fields that matter to the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub cc: [u8; 32],
}

fn check(r: libc::c_int, what: &str) {
    assert!(r >= 0, "{what}: {}", std::io::Error::last_os_error());
}

impl Pty {
    /// Starts `cmd` on a new pseudo-terminal of `rows` × `cols`.
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> Pty {
        let (mut m, mut s) = (0, 0);
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors into the locals; the termios pointer may be
        // null (the default mode) and `ws` is a valid winsize.
        check(
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) },
            "openpty",
        );
        // SAFETY: both descriptors were just opened and are owned by nothing else.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        // SAFETY: F_SETFL on our own descriptor.
        check(
            unsafe { libc::fcntl(m, libc::F_SETFL, libc::O_NONBLOCK) },
            "fcntl",
        );
        let initial = mode_of(&slave);
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        cmd.stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        // SAFETY: between fork and exec the child only calls async-signal-safe functions:
        // setsid and ioctl on its own standard input, the pty's slave.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("cannot start the program on the pty");
        Pty {
            master,
            slave,
            child,
            initial,
            seen: Vec::new(),
            cursor: 0,
        }
    }

    /// The terminal's mode now.
    pub fn mode(&self) -> Mode {
        mode_of(&self.slave)
    }

    /// Types `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        // SAFETY: write of a valid buffer to our master descriptor.
        let n = unsafe { libc::write(self.master.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        assert_eq!(n, bytes.len() as isize, "write to the pty master");
    }

    /// Resizes the terminal (the child's foreground group gets SIGWINCH).
    pub fn resize(&mut self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads the valid local winsize.
        check(
            unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
            "TIOCSWINSZ",
        );
    }

    /// Reads what is there within `wait`; whether anything came.
    fn pump(&mut self, wait: Duration) -> bool {
        let mut p = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        unsafe { libc::poll(&mut p, 1, wait.as_millis() as i32) };
        let mut buf = [0u8; 4096];
        // SAFETY: read into a valid local buffer from our master descriptor.
        let n = unsafe { libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            self.seen.extend_from_slice(&buf[..n as usize]);
        }
        // Else EAGAIN: nothing yet (EIO does not come: our own slave descriptor stays open,
        // and the child's exit is found by try_wait).
        n > 0
    }

    /// Waits until `needle` appears after what earlier calls matched; returns what came
    /// before it since then. Panics with everything seen if it does not come in `secs`.
    #[track_caller]
    pub fn expect(&mut self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let hay = &self.seen[self.cursor..];
            if let Some(at) = find(hay, needle.as_bytes()) {
                let before = String::from_utf8_lossy(&hay[..at]).into_owned();
                self.cursor += at + needle.len();
                return before;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} did not appear within {secs} s; the terminal showed:\n{}",
                self.shown()
            );
            self.pump(Duration::from_millis(50));
        }
    }

    /// Everything the terminal showed, for messages.
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Waits for the child's exit (reading its output meanwhile).
    #[track_caller]
    pub fn wait(&mut self, secs: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                while self.pump(Duration::from_millis(0)) {}
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the program did not exit within {secs} s; the terminal showed:\n{}",
                    self.shown()
                );
            }
            self.pump(Duration::from_millis(50));
        }
    }

    /// Sends `sig` to the child.
    pub fn kill(&mut self, sig: libc::c_int) {
        // SAFETY: kill(2) of our own child's pid.
        check(
            unsafe { libc::kill(self.child.id() as libc::pid_t, sig) },
            "kill",
        );
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mode_of(slave: &OwnedFd) -> Mode {
    // SAFETY: tcgetattr fills the zeroed local termios.
    let t = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        check(libc::tcgetattr(slave.as_raw_fd(), &mut t), "tcgetattr");
        t
    };
    Mode {
        iflag: t.c_iflag,
        oflag: t.c_oflag,
        cflag: t.c_cflag,
        lflag: t.c_lflag,
        cc: t.c_cc,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
