//! Our shell (guest/user/src/bin/sh.rs) under init, as `vmm --shell` boots it: scripts fed to
//! the VMM's stdin, which reaches the shell through the console and whose end (the
//! console-status port) ends it. Where a script means the same to any POSIX shell, it also runs
//! through the host's /bin/sh, and both must print what the test expects: the expectations are
//! checked against a real shell, not only against ours. The same shell also runs under QEMU
//! TCG, where the ordinary `syscall` path is taken (there the script comes through `sh -c`:
//! QEMU has no console-status port, so its console input never ends).

mod common;
use common::lde;

use common::scratch_dir;
use lde::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// What a `vmm --shell` run printed and how it ended.
struct Shell {
    run: Run,
}

impl Shell {
    /// The shell's own output: the console between the kernel's banner and its report, without
    /// the kernel's lines about killed processes.
    fn output(&self) -> String {
        console_output(&self.run.stdout)
    }
}

/// The lines after the banner's last line ("  timer ...") up to the report, minus "kernel: ".
fn console_output(stdout: &str) -> String {
    let mut out = String::new();
    let mut in_banner = true;
    for line in stdout.lines() {
        let line = line.trim_end_matches('\r');
        if in_banner {
            in_banner = !line.starts_with("  timer ");
            continue;
        }
        if line.starts_with("--- process report") {
            break;
        }
        if line.starts_with("kernel: ") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Runs `vmm --shell` with `script` on its stdin (then closed).
fn guest_sh(script: &str) -> Shell {
    let mut child = common::vmm()
        .args(["--timeout", &TIMEOUT_SECS.to_string(), "--shell"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vmm");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Shell {
        run: Run {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            wall: std::time::Duration::ZERO,
            command: format!("vmm --shell <<< {script:?}"),
        },
    }
}

/// A shell of the host on the same script: (status, stdout, stderr).
fn host_sh(shell: &Path, script: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(shell)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the host's /bin/sh");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `script` prints `want` and ends with `status`, on the host's /bin/sh and on ours. Our
/// console carries standard error too: `stderr` are the lines both shells write there (checked
/// in the host's stderr, and taken out of the guest's console).
#[track_caller]
fn same_on_host_and_guest(script: &str, want: &str, status: i32, stderr: &[&str]) -> Shell {
    same_on(Path::new("/bin/sh"), script, want, status, stderr)
}

#[track_caller]
fn same_on(host: &Path, script: &str, want: &str, status: i32, stderr: &[&str]) -> Shell {
    let (host_status, host_out, host_err) = host_sh(host, script);
    assert_eq!(
        (host_status, host_out.as_str()),
        (Some(status), want),
        "the host's {} disagrees with the test (stderr: {host_err})",
        host.display()
    );
    let guest = guest_sh(script);
    let mut out: Vec<String> = guest.output().lines().map(str::to_string).collect();
    for line in stderr {
        assert!(
            host_err.contains(line),
            "host stderr {host_err:?} lacks {line:?}"
        );
        let at = out.iter().position(|l| l == line);
        assert!(
            at.is_some(),
            "no {line:?} on the console\n{}",
            guest.run.dump()
        );
        out.remove(at.unwrap());
    }
    let out: String = out.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(out, want, "{}", guest.run.dump());
    guest.run.assert_status(status);
    guest
}

#[test]
fn pipelines_connect_programs() {
    same_on_host_and_guest(
        "echo one two three | wc -w\necho hi | cat | cat | wc -c\necho 'a  b' \"c\" | cat\n",
        "3\n3\na  b c\n",
        0,
        &[],
    );
}

#[test]
fn semicolons_and_the_last_status() {
    same_on_host_and_guest(
        "false; echo $?; true; echo $?\nfalse\necho $?; echo $?\nexit 7 | true; echo $?\n",
        "1\n0\n1\n0\n0\n",
        0,
        &[],
    );
}

/// `&` does not wait: the background sleep is still running when `kill` reaches it, and
/// `wait $!` then reports SIGTERM's 143. `wait` alone waits for every job.
#[test]
fn background_jobs_and_wait() {
    same_on_host_and_guest(
        "sleep 5 & echo started\nkill $!\nwait $!\necho $?\nsleep 0.2 & sleep 0.1 &\nwait\necho waited $?\n",
        "started\n143\nwaited 0\n",
        0,
        &["Terminated"],
    );
}

#[test]
fn exit_status_becomes_the_vmms() {
    same_on_host_and_guest("echo before\nexit 3\necho after\n", "before\n", 3, &[]);
    // Without `exit`, the end of input ends the shell with the last status.
    same_on_host_and_guest("echo last; false", "last\n", 1, &[]);
}

/// A killed program is reported as shells report it, with 128 + the signal as its status.
#[test]
fn a_killed_program_is_reported() {
    let (status, out, err) = host_sh(Path::new("/bin/sh"), "sh -c 'kill -9 $$'\necho $?\n");
    assert_eq!((status, out.as_str()), (Some(0), "137\n"));
    assert!(err.contains("Killed"), "the host's sh says: {err}");
    let guest = guest_sh("sh -c 'kill -9 $$'\necho $?\ndivzero\necho $?\nreadkernel\necho $?\n");
    guest.run.assert_status(0);
    assert_eq!(
        guest.output(),
        "Killed\n137\ndivzero: dividing by zero\nFloating point exception\n136\n\
         readkernel: reading 0xffffffff80100000\nSegmentation fault\n139\n",
        "{}",
        guest.run.dump()
    );
}

#[test]
fn errors_give_shell_statuses_and_a_syntax_error_ends_the_script() {
    // A redirection without its file is a syntax error too, and nothing of its line runs.
    let guest = guest_sh("echo ran; echo a >\necho never\n");
    guest.run.assert_status(2);
    assert_eq!(
        guest.output(),
        "sh: syntax error: a file name is missing after < or >\n"
    );
    let (status, out, _) = host_sh(
        Path::new("/bin/sh"),
        "nosuchprog\necho $?\necho 'open\necho never\n",
    );
    assert_eq!((status, out.as_str()), (Some(2), "127\n"));
    let guest = guest_sh("nosuchprog\necho $?\necho 'open\necho never\n");
    assert_eq!(
        guest.output(),
        "sh: nosuchprog: not found\n127\nsh: syntax error: a ' is not closed\n",
        "{}",
        guest.run.dump()
    );
    guest.run.assert_status(2);
}

/// Console input from a pipe ends the shell; so does no stdin at all (CI), which must not hang.
#[test]
fn console_input_ending_ends_the_shell() {
    same_on_host_and_guest(
        "echo 'echo hi | wc'\necho hi | wc",
        "echo hi | wc\n      1       1       3\n",
        0,
        &[],
    );
    let run = lde::run({
        let mut c = common::vmm();
        c.args(["--timeout", &TIMEOUT_SECS.to_string(), "--shell"])
            .stdin(Stdio::null());
        c
    });
    run.assert_status(0);
    assert_eq!(console_output(&run.stdout), "", "{}", run.dump());
    let report = run.report();
    assert_eq!(report.row(2).name, "sh", "{}", run.dump());
}

/// The programs a line runs read the rest of the input: the shell reads a byte at a time, as
/// bash does (dash reads a pipe in blocks, so the check is against bash).
#[test]
fn a_program_reads_the_lines_after_its_own() {
    same_on(Path::new("/bin/bash"), "wc -l\none\ntwo\n", "2\n", 0, &[]);
}

/// `<`, `>` and `>>` with the kernel's file system (in its writable /tmp), beside bash in a
/// scratch directory of the host.
#[test]
fn redirections_to_and_from_files() {
    let script = |d: &str| {
        format!(
            "echo one > {d}/r1; echo two >> {d}/r1; wc -l < {d}/r1\n\
             cat < {d}/r1 | wc -c > {d}/r2; cat {d}/r2\ncat < {d}/nonexist\necho $?\n"
        )
    };
    let dir = scratch_dir("shell_redirect");
    let _ = std::fs::remove_file(dir.join("r1"));
    let (status, out, err) = host_sh(Path::new("/bin/bash"), &script(dir.to_str().unwrap()));
    assert_eq!(
        (status, out.as_str()),
        (Some(0), "2\n8\n1\n"),
        "bash: {err}"
    );
    let guest = guest_sh(&script("/tmp"));
    guest.run.assert_status(0);
    assert_eq!(
        guest.output(),
        "2\n8\nsh: /tmp/nonexist: ENOENT (2)\n1\n",
        "{}",
        guest.run.dump()
    );
}

/// `--user` beside `--shell` adds a program to /bin.
#[test]
fn user_programs_join_the_default_ones() {
    let dir = scratch_dir("shell_user");
    let greet = dir.join("greet");
    std::fs::copy(prog("hello"), &greet).unwrap();
    let timeout = TIMEOUT_SECS.to_string();
    let out = common::run_vmm_with_input(
        [
            "--timeout".as_ref(),
            timeout.as_ref(),
            "--shell".as_ref(),
            "--user".as_ref(),
            greet.as_os_str(),
        ],
        b"greet | wc -l; echo hi\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(console_output(&stdout), "1\nhi\n", "{stdout}");
}

/// A process whose parent is gone is given to init (pid 1), which reaps it.
#[test]
fn orphans_are_reaped_by_init() {
    let guest = same_on_host_and_guest("sh -c 'sleep 0.3 &'\nsleep 0.6\necho ok\n", "ok\n", 0, &[]);
    let report = guest.run.report();
    let sleeps: Vec<&Row> = report.rows.iter().filter(|r| r.name == "sleep").collect();
    assert_eq!(sleeps.len(), 2, "{}", guest.run.dump());
    for r in sleeps {
        assert_eq!(r.status, "exit 0", "{}", guest.run.dump());
    }
}

/// The same shell under QEMU TCG (scripts/qemu.sh), through the hardware `syscall` path: START
/// runs `init sh -c SCRIPT`, since QEMU's console input never ends.
#[test]
fn the_shell_runs_under_qemu_tcg() {
    require_tool(
        "qemu-system-x86_64",
        "qemu-system-x86_64 is required: sudo apt-get install qemu-system-x86",
    );
    let script =
        // One line: START cannot carry a newline.
        "echo one two three | wc -w; false; echo $?; sleep 5 & kill $!; wait $!; echo $?; \
         divzero; echo $?; sh -c 'sleep 0.2 &'; sleep 0.4; echo done; exit 3";
    let progs = ["init", "sh", "echo", "wc", "sleep", "divzero"];
    let paths: Vec<_> = progs.iter().map(|p| prog(p)).collect();
    let files: Vec<(&str, &std::path::Path)> = progs
        .iter()
        .zip(&paths)
        .map(|(n, p)| (*n, p.as_path()))
        .collect();
    let start = format!("init sh -c {}", abi::start::quote(script).unwrap());
    let dir = scratch_dir("shell_qemu");
    let initrd = common::write_file(&dir, "shell.cpio", &archive(&files, &[&start]));
    let mut c = Command::new(repo_root().join("scripts/qemu.sh"));
    c.env("ACCEL", "tcg")
        .env_remove("QEMU")
        .args(["--timeout", &TIMEOUT_SECS.to_string(), "--initrd"])
        .arg(&initrd);
    let run = lde::run(c);
    run.assert_line("TCGTCGTCGTCG");
    assert_eq!(
        console_output(&run.stdout),
        "3\n1\nTerminated\n143\ndivzero: dividing by zero\nFloating point exception\n136\ndone\n",
        "{}",
        run.dump()
    );
    run.assert_status(3);
}

#[test]
fn cd_changes_the_shells_own_directory() {
    // The shell's builtin: programs it starts afterwards run in the new directory.
    let script = "cd /tmp; echo x > here; ls; cd /nonexistent; echo $?; cd; ls /tmp\n";
    let guest = guest_sh(script);
    guest.run.assert_status(0);
    assert_eq!(
        guest.output(),
        "here\nsh: cd: /nonexistent: ENOENT (2)\n1\nhere\n",
        "{}",
        guest.run.dump()
    );
}
