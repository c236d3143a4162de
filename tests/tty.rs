//! The console as a terminal, driven through a real pseudo-terminal (common/pty.rs): a C program
//! (tests/tty/ttyprobe.c) is typed at on the host's own Linux tty first and then in our guest
//! under the VMM, and must see the same: a line edited with erase and kill, Ctrl-D as
//! end-of-file, Ctrl-C as SIGINT, raw mode's single unechoed keys and VTIME, the window size and
//! SIGWINCH. And the VMM leaves the host terminal's mode as it found it, however it ends: the
//! guest's exit, --timeout, a guest triple fault, SIGTERM, SIGHUP, Ctrl-A x.

mod common;

use common::pty::{Mode, Pty};
use common::{code_triple_fault, make_elf, scratch_dir, vmm, write_file, ElfSpec};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const INSTALL: &str = "musl-gcc is required for these tests: sudo apt-get install musl-tools";

/// tests/tty/ttyprobe.c, built once with musl-gcc.
fn probe() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tty");
            std::fs::create_dir_all(&dir).unwrap();
            let exe = dir.join("ttyprobe");
            let src =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tty/ttyprobe.c");
            let out = Command::new("musl-gcc")
                .args(["-static", "-O2", "-o"])
                .arg(&exe)
                .arg(&src)
                .output()
                .unwrap_or_else(|e| panic!("{INSTALL} ({e})"));
            assert!(
                out.status.success(),
                "musl-gcc failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            exe
        })
        .clone()
}

/// A signal that comes before the program has entered its read would not interrupt it: give
/// it time to get there after saying it is about to.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(500));
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Where {
    Host,
    Guest,
}

fn command(at: Where, mode: &str) -> Command {
    match at {
        Where::Host => {
            let mut c = Command::new(probe());
            c.arg(mode);
            c
        }
        Where::Guest => {
            let mut c = vmm();
            c.arg("--user")
                .arg(format!("{} {mode}", probe().display()))
                .args(["--timeout", "60"]);
            c
        }
    }
}

/// The VMM puts the terminal in raw mode: no line editing, echo or signal keys of the host's.
fn assert_raw(m: &Mode) {
    let off = libc::ICANON | libc::ECHO | libc::ISIG;
    assert_eq!(m.lflag & off, 0, "lflag {:#o}", m.lflag);
    assert_eq!(m.iflag & (libc::ICRNL | libc::IXON), 0);
    assert_ne!(m.oflag & libc::OPOST, 0, "output processing stays on");
}

/// Runs `mode` on a fresh pty at `at`, lets `drive` type at it; for the guest, checks the
/// terminal is raw while the VMM runs and as before once it has exited. Returns the status.
fn session(at: Where, mode: &str, drive: impl FnOnce(&mut Pty)) -> std::process::ExitStatus {
    eprintln!("--- {mode} on the {at:?}");
    let mut pty = Pty::spawn(command(at, mode), 30, 100);
    let before = pty.initial;
    drive(&mut pty);
    if at == Where::Guest {
        assert_raw(&pty.mode());
    }
    let status = pty.wait(60);
    assert_eq!(pty.mode(), before, "{at:?}: the terminal's mode changed");
    status
}

fn both(mode: &str, drive: impl Fn(&mut Pty, Where)) -> [std::process::ExitStatus; 2] {
    [Where::Host, Where::Guest].map(|at| session(at, mode, |p| drive(p, at)))
}

#[test]
fn a_typo_erased_a_line_killed_and_ctrl_d_as_end_of_file() {
    let st = both("lines", |p, _| {
        p.expect("isatty 1 1 pipe 0 ENOTTY", 30);
        p.send(b"ecjo\x7f\x7fho hi\x7fi\r");
        // The screen followed the edits (the guest's echo, the host's \n to \r\n).
        p.expect("ecjo\x08 \x08\x08 \x08ho hi\x08 \x08i\r\n", 10);
        p.expect("got 8 [echo hi\\x0a]", 10);
        p.send(b"junk\x15ok\r");
        p.expect("got 3 [ok\\x0a]", 10);
        p.send(b"abc\x04");
        p.expect("got 3 [abc]", 10);
        p.send(b"\x04");
        p.expect("got 0 []", 10);
    });
    for s in st {
        assert_eq!(s.code(), Some(0), "{s:?}");
    }
}

#[test]
fn ctrl_c_interrupts_a_read_flushing_the_line_and_kills_a_sleeper() {
    both("sigint", |p, _| {
        p.expect("waiting", 30);
        settle(); // the program is in its read, not just before it
        p.send(b"partial\x03");
        p.expect("^C", 10);
        p.expect("read -1 EINTR signal 2", 10);
        p.send(b"next\r");
        p.expect("got 5 [next\\x0a]", 10);
    });
    let [host, guest] = both("spin", |p, _| {
        p.expect("spinning", 30);
        p.send(b"\x03");
    });
    assert_eq!(host.signal(), Some(libc::SIGINT), "{host:?}");
    // In the guest pid 1 died of SIGINT: the VMM's status is 128 + 2.
    assert_eq!(guest.code(), Some(130), "{guest:?}");
}

#[test]
fn raw_mode_reads_single_unechoed_keys_and_vtime_times_out() {
    let st = both("raw", |p, _| {
        p.expect("raw\r\n", 30);
        for (key, shown) in [
            ("a", "[a]"),
            ("\x7f", "[\\x7f]"),
            ("\r", "[\\x0a]"),
            ("q", "[q]"),
        ] {
            p.send(key.as_bytes());
            let before = p.expect(&format!("key 1 {shown}"), 10);
            // Nothing but the end of the previous line: the key was not echoed.
            assert!(
                before.trim_matches(['\r', '\n']).is_empty(),
                "{key:?} was echoed: {before:?}"
            );
        }
        p.expect("timeout 0 after VTIME", 10);
        p.expect("restored yes", 10);
        p.expect("foreground yes", 10);
    });
    for s in st {
        assert_eq!(s.code(), Some(0), "{s:?}");
    }
}

#[test]
fn the_window_size_reaches_the_program_and_follows_a_resize() {
    both("winch", |p, _| {
        p.expect("winsize 30 100", 30);
        settle();
        p.resize(40, 120);
        p.expect("winch 40 120 signal 28", 10);
    });
}

#[test]
fn ctrl_c_goes_to_the_foreground_process_group_only() {
    let st = both("job", |p, _| {
        p.expect("child in the foreground", 30);
        settle();
        p.send(b"\x03");
        p.expect("child killed by 2", 10);
        p.expect("foreground before taking it back: child", 10);
        p.expect("parent survived, foreground again", 10);
    });
    for s in st {
        assert_eq!(s.code(), Some(0), "{s:?}");
    }
}

/// Job control at the terminal, as Linux has it: a background group's read stops it with
/// SIGTTIN; made the foreground and continued, the same read takes the key typed; with SIGTTIN
/// ignored, the read fails with EIO. A background tcsetattr is stopped by SIGTTOU, and goes
/// ahead with SIGTTOU ignored.
#[test]
fn a_background_read_is_stopped_by_sigttin_and_a_mode_change_by_sigttou() {
    let st = both("bg", |p, _| {
        p.expect("background reader stopped by 21", 30);
        p.expect("type a line", 10);
        settle();
        p.send(b"k\n");
        p.expect("background read 1 [k]", 10);
        p.expect("ignored SIGTTIN: read -1 I/O error", 10);
        p.expect("background tcsetattr stopped by 22", 10);
        p.expect("background tcsetattr 0", 10);
        p.expect("background write with TOSTOP stopped by 22", 10);
        p.expect("bg done", 10);
    });
    for s in st {
        assert_eq!(s.code(), Some(0), "{s:?}");
    }
}

#[test]
fn a_session_leaders_exit_hangs_up_its_foreground_group() {
    let st = both("hup", |p, _| {
        p.expect("member ready", 30);
        p.expect("member hung up", 20);
        p.expect("terminal back: yes", 10);
        p.expect("hup done", 10);
    });
    for s in st {
        assert_eq!(s.code(), Some(0), "{s:?}");
    }
}

/// The VMM's own ways out: each leaves the terminal as it was (checked by `session`).
#[test]
fn the_terminal_mode_survives_timeout_crash_signals_and_the_escape_key() {
    let mut timeout = vmm();
    timeout
        .arg("--user")
        .arg(format!("{} spin", probe().display()))
        .args(["--timeout", "2"]);
    let mut pty = Pty::spawn(timeout, 24, 80);
    let before = pty.initial;
    pty.expect("spinning", 30);
    assert_raw(&pty.mode());
    assert_eq!(pty.wait(30).code(), Some(124));
    assert_eq!(pty.mode(), before, "after --timeout");

    let dir = scratch_dir("tty_triple_fault");
    let k = write_file(
        &dir,
        "kfault",
        &make_elf(ElfSpec::default(), &code_triple_fault()),
    );
    let mut crash = vmm();
    crash.arg(&k);
    let mut pty = Pty::spawn(crash, 24, 80);
    let before = pty.initial;
    assert_eq!(pty.wait(30).code(), Some(5), "{}", pty.shown());
    pty.expect("guest crashed", 1);
    assert_eq!(pty.mode(), before, "after a triple fault");

    for sig in [libc::SIGTERM, libc::SIGHUP] {
        let mut pty = Pty::spawn(command(Where::Guest, "spin"), 24, 80);
        let before = pty.initial;
        pty.expect("spinning", 30);
        assert_raw(&pty.mode());
        pty.kill(sig);
        assert_eq!(pty.wait(30).signal(), Some(sig));
        assert_eq!(pty.mode(), before, "after signal {sig}");
    }

    let mut pty = Pty::spawn(command(Where::Guest, "lines"), 24, 80);
    let before = pty.initial;
    pty.expect("isatty", 30);
    // Ctrl-A Ctrl-A is one Ctrl-A for the guest; Ctrl-A x leaves.
    pty.send(b"\x01\x01\r");
    pty.expect("got 2 [\\x01\\x0a]", 10);
    pty.send(b"\x01x");
    assert_eq!(pty.wait(30).code(), Some(130));
    pty.expect("Ctrl-A x", 5);
    assert_eq!(pty.mode(), before, "after Ctrl-A x");
}

/// Input from a pipe is not a terminal's: no raw mode, no echo, and its end is end-of-file.
#[test]
fn piped_input_is_not_echoed_and_ends() {
    let mut child = command(Where::Guest, "lines")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"one\ntwo").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("isatty 1 1 pipe 0 ENOTTY"), "{text}");
    let got: Vec<&str> = text.lines().filter(|l| l.starts_with("got")).collect();
    assert_eq!(
        got,
        ["got 4 [one\\x0a]", "got 3 [two]", "got 0 []"],
        "{text}"
    );
    assert!(!text.contains("one\ntwo"), "the input was echoed: {text}");
}

#[test]
fn our_shell_at_a_terminal_edits_survives_ctrl_c_and_ends_at_ctrl_d() {
    // vmm --shell on a pseudo-terminal: the kernel's line discipline edits the line, Ctrl-C
    // reaches the foreground program (sleep) and not the shell, Ctrl-D at a prompt ends it.
    let mut cmd = vmm();
    cmd.args(["--shell", "--timeout", "90"]);
    let mut pty = Pty::spawn(cmd, 24, 80);
    let before = pty.initial;
    pty.expect("$ ", 60);
    pty.send(b"ecjo\x7f\x7fho fixed\r");
    pty.expect("fixed\r\n", 30);
    pty.expect("$ ", 30);
    pty.send(b"sleep 30\r");
    settle();
    settle();
    pty.send(b"\x03");
    pty.expect("$ ", 30);
    pty.send(b"echo status $?\r");
    pty.expect("status 130", 30);
    pty.expect("$ ", 30);
    pty.send(b"\x04");
    // Ctrl-D at the prompt: end of input; the shell exits with the last status (echo's 0).
    let status = pty.wait(60);
    assert_eq!(status.code(), Some(0), "{}", pty.shown());
    assert_eq!(pty.mode(), before, "the terminal's mode changed");
}
