//! Debian's busybox-static, unmodified: its `sh` runs a script of pipelines of its applets
//! (which it runs by re-executing /proc/self/exe), redirections into /tmp, a background job
//! killed and waited for, and `ls`, `cat`, `wc`, `sort`, `seq`, `test`, `kill`. Each script's
//! output is checked against the host's busybox running the same script. busybox-static is
//! installed by the test command.

mod common;
use common::lde::*;
use common::scratch_dir;

use std::path::PathBuf;
use std::process::Command;

fn busybox() -> PathBuf {
    let p = PathBuf::from("/bin/busybox");
    assert!(
        p.is_file(),
        "busybox-static is required: sudo apt-get install busybox-static"
    );
    p
}

/// Runs `script` with busybox sh on the host (in a scratch directory standing in for /tmp) and
/// in the guest (the script at /tmp/script.sh); returns both outputs.
fn both(test: &str, script: &str) -> (String, Run) {
    let dir = scratch_dir(test);
    // The guest's console carries stderr too: so does the host's stdout here.
    let host_script = format!(
        "exec 2>&1\n{}",
        script.replace("/tmp/", &format!("{}/", dir.display()))
    );
    let host = Command::new(busybox())
        .args(["sh", "-c", &host_script])
        .output()
        .unwrap();
    let path = common::write_file(&dir, "script.sh", script.as_bytes());
    let run = run_vmm_lde([
        "--file".to_string(),
        format!("{}:/tmp/script.sh", path.display()),
        "--user".to_string(),
        format!("{} sh /tmp/script.sh", busybox().display()),
    ]);
    (String::from_utf8_lossy(&host.stdout).into_owned(), run)
}

/// The lines the script printed in the guest: between the boot banner and the report.
fn script_output(run: &Run) -> String {
    let mut out = String::new();
    let mut on = false;
    for line in run.lines() {
        if line.starts_with("--- process report") {
            break;
        }
        if on {
            out.push_str(line);
            out.push('\n');
        }
        if line.starts_with("  timer ") {
            on = true;
        }
    }
    out
}

#[test]
fn busybox_sh_runs_pipelines_of_its_applets() {
    let script = "seq 10 | sort -rn | head -n 3\n\
                  echo hello world | wc -w\n\
                  test 3 -gt 2 && echo three is more\n\
                  echo \"status $?\"\n";
    let (host, run) = both("busybox_pipes", script);
    run.assert_status(0);
    assert_eq!(script_output(&run), host, "\n{}", run.dump());
    assert_eq!(host, "10\n9\n8\n2\nthree is more\nstatus 0\n");
}

#[test]
fn busybox_redirects_into_tmp_and_kills_a_background_job() {
    let script = "echo one > /tmp/o; echo two >> /tmp/o\n\
                  wc -l < /tmp/o\n\
                  cat /tmp/o\n\
                  ls /tmp/ | grep -c '^o$'\n\
                  sleep 5 &\n\
                  kill $!\n\
                  wait $!\n\
                  echo \"killed: $?\"\n\
                  sleep 0.1 & wait\n\
                  echo waited\n";
    let (host, run) = both("busybox_redirect", script);
    run.assert_status(0);
    // Whether ash reports "Terminated" for the killed job depends on whether the kill came
    // before or after the child exec'd sleep: a race on the host as in the guest.
    let without_report = |s: &str| {
        s.lines()
            .filter(|l| *l != "Terminated")
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    assert_eq!(
        without_report(&script_output(&run)),
        without_report(&host),
        "\n{}",
        run.dump()
    );
    assert!(host.contains("killed: 143"), "{host}");
}

#[test]
fn busybox_finds_users_times_the_date_and_random_bytes() {
    // /etc/passwd and /etc/group (the default set's), utimensat (touch), the CMOS clock's date,
    // /dev/urandom and symbolic links (an applet run by a link's name, as busybox installs
    // itself): what applets of every day take for granted.
    let script = "export TZ=UTC\n\
                  whoami; id -un; id -gn\n\
                  touch /tmp/t && echo touched\n\
                  touch -d '2001-09-09 01:46:40' /tmp/t && stat -c %Y /tmp/t\n\
                  ls -l /tmp/t | cut -c1-10,15-30\n\
                  test $(date +%s) -gt 1700000000 && echo the date is set\n\
                  head -c 16 /dev/urandom | wc -c\n\
                  ln -s t /tmp/l && readlink /tmp/l && cat /tmp/l\n\
                  ln -s /bin/busybox /tmp/echo && /tmp/echo an applet by its link\n";
    let (host, run) = both("busybox_everyday", script);
    run.assert_status(0);
    assert_eq!(script_output(&run), host, "\n{}", run.dump());
    assert!(host.contains("1000000000\n"), "{host}");
}

#[test]
fn busybox_reads_the_machine_from_proc() {
    // The guest's own numbers (the host's differ): free and uptime read /proc/meminfo and
    // /proc/uptime, the others are cat'ed, ps and top read /proc/PID, a reaped process's
    // directory is gone, df and mount read /proc/mounts.
    let run = run_vmm_lde([
        "--user".to_string(),
        format!(
            "{} sh -c 'free; uptime; cat /proc/version /proc/loadavg /proc/cpuinfo; \
             echo x > /proc/uptime || echo refused; \
             sleep 1 & ps; grep -e PPid -e VmRSS /proc/self/status; kill $!; wait; \
             ls /proc/$! || echo gone; top -b -n 1; df; mount; ls -l /proc/self/fd/; \
             hostname -f'",
            busybox().display()
        ),
    ]);
    run.assert_status(0);
    let out = script_output(&run);
    let mem: Vec<u64> = out
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .unwrap_or_else(|| panic!("no Mem: line\n{out}"))
        .split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect();
    // 512 MiB of RAM less the first MiB, the kernel and the archive: most of it free.
    assert!(
        (400_000..524_288).contains(&mem[0]) && mem[2] > 400_000 && mem[0] == mem[1] + mem[2],
        "{mem:?}\n{out}"
    );
    assert!(out.contains(" up 0 min,"), "{out}");
    assert!(out.contains("Linux version 6.1.0-lde"), "{out}");
    assert!(out.contains("0.00 0.00 0.00 "), "{out}");
    assert!(out.contains("processor\t: 0\n"), "{out}");
    assert!(out.contains("Permission denied\nrefused\n"), "{out}");
    // ps, from /proc/PID: pid 1 with its arguments, the sleep beside it (shown as `{exe}
    // sleep 1` when busybox ran the applet by re-executing /proc/self/exe, as on Linux).
    assert!(
        out.contains("    1 root     busybox sh -c free; uptime;"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains(" root ") && l.ends_with("sleep 1")),
        "{out}"
    );
    assert!(
        out.contains("PPid:\t1\n"),
        "/proc/self is the caller's\n{out}"
    );
    assert!(
        out.contains("VmRSS:\t") && !out.contains("VmRSS:\t0 kB"),
        "/proc/PID/status counts its pages\n{out}"
    );
    assert!(out.contains("No such file or directory\ngone\n"), "{out}");
    // top (/proc/stat and /proc/PID/stat), df (/proc/mounts and statfs), hostname -f
    // (/etc/hosts).
    assert!(out.contains("% idle "), "{out}");
    assert!(out.contains("top -b -n 1\n"), "{out}");
    assert!(out.contains("\ntmpfs ") && out.contains("% /\n"), "{out}");
    assert!(out.contains("tmpfs on / type tmpfs (rw)\n"), "{out}");
    // ls -l /proc/self/fd: lstat and readlink of each entry look into /proc again, and the
    // links that did not change are kept (a first version made them anew each time, and the
    // listing never ended).
    assert!(out.contains(" 1 -> /dev/console\n"), "{out}");
    assert!(out.ends_with("lde\n"), "{out}");
}

#[test]
fn dmesg_shows_the_kernels_lines() {
    // The kernel log (klog.rs, syslog(2)): the boot banner and a killed program's line, each
    // stamped; dmesg -c empties it.
    let run = run_vmm_lde([
        "--user".to_string(),
        format!(
            "{} sh -c '/bin/divzero; dmesg; dmesg -c > /dev/null; dmesg | wc -c'",
            busybox().display()
        ),
    ]);
    run.assert_status(0);
    let out = script_output(&run);
    let stamped = |text: &str| {
        out.lines()
            .any(|l| l.starts_with('[') && l.contains("] ") && l.ends_with(text))
    };
    assert!(stamped("lde kernel: booted by PVH"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with('[') && l.contains("] kernel: killed pid 2 (divzero)")),
        "{out}"
    );
    assert!(out.ends_with("\n0\n"), "dmesg -c cleared it\n{out}");
}

#[test]
fn busybox_sh_reads_its_script_from_a_pipe() {
    let script = "seq 3 | sort -rn\necho done\n";
    let out = common::run_vmm_with_input(
        [
            "--timeout".to_string(),
            TIMEOUT_SECS.to_string(),
            "--user".to_string(),
            format!("{} sh", busybox().display()),
        ],
        script.as_bytes(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The end of the pipe ends the shell: no --timeout. (The guest's console is a terminal
    // even when the VMM's stdin is a pipe, so busybox prompts, as on a serial console.)
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("3\n2\n1\n"), "{stdout}");
    assert!(stdout.contains("done\n"), "{stdout}");
}

#[test]
fn busybox_sh_interactively_with_line_editing_and_ctrl_c() {
    use common::pty::Pty;
    let mut cmd = common::vmm();
    cmd.args(["--timeout", "90", "--user"])
        .arg(format!("{} sh -i", busybox().display()));
    let mut pty = Pty::spawn(cmd, 24, 80);
    let before = pty.initial;
    pty.expect("# ", 60);
    // busybox edits the line itself, in raw mode: a typo erased with Backspace (DEL).
    pty.send(b"echo hellx\x7fo there\r");
    pty.expect("hello there", 30);
    pty.expect("# ", 30);
    // Ctrl-C interrupts a running program; the shell goes on.
    pty.send(b"sleep 20\r");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    pty.send(b"\x03");
    pty.expect("# ", 30);
    pty.send(b"echo after $?\r");
    pty.expect("after 130", 30);
    pty.send(b"exit 0\r");
    let status = pty.wait(60);
    assert_eq!(status.code(), Some(0), "{}", pty.shown());
    assert_eq!(pty.mode(), before, "the terminal's mode changed");
}
