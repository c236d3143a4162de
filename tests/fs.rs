//! The file system: C programs per call family (tests/c/fs_*.c) run first on the host Linux,
//! in a scratch directory, then in our guest, in /tmp; each prints one line per check, and the
//! guest must print the same lines the host did, all checks as expected (exit status 0). Then
//! what only a guest can do: fill RAM with a file (ENOSPC, and the kernel goes on), the boot
//! archive's read-only files, `--file`, a `#!` script started at boot, our small programs.
//!
//! musl-gcc is required (Debian's musl-tools): without it these tests fail, saying so.

mod common;
use common::lde;

use common::scratch_dir;
use lde::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const INSTALL: &str = "musl-gcc is required for these tests: sudo apt-get install musl-tools";
const PROGRAMS: &[&str] = &[
    "fs_open",
    "fs_dirs",
    "fs_stat",
    "fs_links",
    "fs_poll",
    "fs_exec",
    "fs_fill",
    "fs_rofs",
    "fs_tools",
    "fs_pollcon",
    "fs_maps",
    "fs_procfd",
];

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-fs")
}

/// Builds the fs_*.c programs once (static, non-PIE).
fn build_all() -> &'static Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = out_dir();
        std::fs::create_dir_all(&dir).unwrap();
        for name in PROGRAMS {
            let src = repo_root().join("tests/c").join(format!("{name}.c"));
            let out = Command::new("musl-gcc")
                .args(["-static", "-O2", "-o"])
                .arg(dir.join(name))
                .arg(&src)
                .output()
                .map_err(|e| format!("{INSTALL} (cannot run musl-gcc: {e})"))?;
            if !out.status.success() {
                return Err(format!(
                    "musl-gcc {}: {}",
                    src.display(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(())
    })
}

#[track_caller]
fn c_prog(name: &str) -> PathBuf {
    if let Err(e) = build_all() {
        panic!("{e}");
    }
    out_dir().join(name)
}

/// `--file` arguments that put our small programs in the guest's /bin (over the default ones).
fn tools(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .flat_map(|n| {
            [
                "--file".to_string(),
                format!("{}:/bin/{n}", prog(n).display()),
            ]
        })
        .collect()
}

/// The lines of `out` that `name` printed (its checks).
fn check_lines(out: &str, name: &str) -> Vec<String> {
    let prefix = format!("{name}: ");
    out.lines()
        .filter(|l| l.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// Runs `name DIR` on the host (a fresh scratch directory), then `name /tmp` in the guest with
/// `extra` vmm arguments; both must pass every check and print the same check lines.
fn same_on_host_and_guest(name: &str, extra: &[String]) -> Run {
    let prog = c_prog(name);
    let dir = scratch_dir(&format!("fs_host_{name}"));
    let host = Command::new(&prog).arg(&dir).output().unwrap();
    let host_out = String::from_utf8_lossy(&host.stdout).into_owned();
    assert!(
        host.status.success(),
        "{name} fails on the host Linux itself:\n{host_out}"
    );
    let host_lines = check_lines(&host_out, name);
    assert!(host_lines.len() > 10, "{host_out}");

    let mut args = vec!["--user".to_string(), format!("{} /tmp", prog.display())];
    args.extend_from_slice(extra);
    let run = run_vmm_lde(&args);
    run.assert_status(0);
    let guest_lines = check_lines(&run.stdout, name);
    for (h, g) in host_lines.iter().zip(&guest_lines) {
        assert_eq!(h, g, "the guest differs from Linux\n{}", run.dump());
    }
    assert_eq!(
        host_lines.len(),
        guest_lines.len(),
        "as many checks\n{}",
        run.dump()
    );
    run
}

#[test]
fn open_read_write_seek_truncate_as_on_linux() {
    let run = same_on_host_and_guest("fs_open", &[]);
    run.assert_line("fs_open: O_EXCL on an existing file: EEXIST");
    run.assert_line("fs_open: read a directory: EISDIR");
    run.assert_line("fs_open: regrown part is zeros = 1");
    run.assert_line("fs_open: posix_fadvise on a pipe is ESPIPE = 1");
}

#[test]
fn directories_and_names_as_on_linux() {
    let run = same_on_host_and_guest("fs_dirs", &[]);
    run.assert_line("fs_dirs: rmdir a non-empty directory: ENOTEMPTY");
    run.assert_line("fs_dirs: `..` at the root is the root = 1");
    run.assert_line("fs_dirs: listed 300 files = 300");
    run.assert_line("fs_dirs: a name of 255 bytes: ok");
    run.assert_line("fs_dirs: a name of 256 bytes: ENAMETOOLONG");
}

#[test]
fn stat_access_chmod_readlink_as_on_linux() {
    let run = same_on_host_and_guest("fs_stat", &[]);
    run.assert_line("fs_stat: it names this program = 1");
}

#[test]
fn symbolic_links_as_on_linux() {
    let run = same_on_host_and_guest("fs_links", &[]);
    run.assert_line("fs_links: relative to the link's directory: ok");
    run.assert_line("fs_links: a path through a loop: ELOOP");
}

#[test]
fn proc_self_maps_as_on_linux() {
    let run = same_on_host_and_guest("fs_maps", &[]);
    run.assert_line("fs_maps: split: the middle page = 1");
    run.assert_line("fs_maps: named by the file's path, at its offset = 1");
}

#[test]
fn proc_self_fd_as_on_linux() {
    let run = same_on_host_and_guest("fs_procfd", &[]);
    run.assert_line("fs_procfd: a pipe's read end is pipe:[its st_ino] = 1");
    run.assert_line("fs_procfd: its link is gone: ENOENT");
}

#[test]
fn poll_and_select_as_on_linux() {
    let run = same_on_host_and_guest("fs_poll", &[]);
    run.assert_line("fs_poll: poll waits for the child's write = 1");
}

#[test]
fn execve_runs_scripts_and_written_programs_as_on_linux() {
    // /bin/echo is the script's interpreter: the host's, and ours in the guest (one of the
    // default programs beside a --user program; put there with --file as well, which replaces
    // the default, as a user's own build of it would).
    let run = same_on_host_and_guest("fs_exec", &tools(&["echo"]));
    run.assert_line("from-script ./s.sh a b");
    run.assert_line("./t.sh only");
    run.assert_line("fs_exec: the copy runs, with arg1");
}

#[test]
fn filling_ram_with_a_file_is_enospc_and_the_kernel_goes_on() {
    let run = run_vmm_lde([
        "--memory".to_string(),
        "32".to_string(),
        "--user".to_string(),
        format!("{} /tmp", c_prog("fs_fill").display()),
    ]);
    run.assert_status(0);
    let line = run.assert_line("fs_fill: wrote ");
    assert!(line.ends_with("then ENOSPC"), "{line}");
    let kib: u64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(
        (8 * 1024..32 * 1024).contains(&kib),
        "most of 32 MiB: {line}"
    );
    run.assert_line("fs_fill: recovered: written again, forked a child");
    run.assert_no_line("kernel panic");
}

#[test]
fn archive_files_are_read_only_and_file_puts_a_host_file_in_the_tree() {
    let dir = scratch_dir("fs_rofs");
    let data = common::write_file(&dir, "data.txt", b"host data\nsecond line\n");
    let run = run_vmm_lde([
        "--user".to_string(),
        c_prog("fs_rofs").display().to_string(),
        "--file".to_string(),
        format!("{}:/etc/data", data.display()),
    ]);
    run.assert_status(0);
    run.assert_line("fs_rofs: open for writing: Read-only file system");
    run.assert_line("fs_rofs: which is writable: ok");

    // Without a guest path, the file goes to the root under its own name.
    let run = run_vmm_lde([
        "--user".to_string(),
        format!("{} /data.txt", prog("cat").display()),
        "--file".to_string(),
        data.display().to_string(),
    ]);
    run.assert_status(0);
    run.assert_line("host data");
    run.assert_line("second line");

    let out = common::run_vmm(["--file".to_string(), format!("{}:relative", data.display())]);
    common::assert_one_line_error(&out, 2, "vmm: error: ", "must be absolute");
    let out = common::run_vmm(["--file", "/no/such/file:/x"]);
    common::assert_one_line_error(&out, 3, "vmm: error: ", "no such file");
}

#[test]
fn file_with_a_directory_brings_its_whole_tree() {
    // 300 files in one directory (indexed by the tree past 32 entries), one nested three deep,
    // a link to a file (its bytes) and one to a directory (not followed).
    let dir = scratch_dir("fs_dir_tree");
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("many")).unwrap();
    std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
    for i in 0..300 {
        std::fs::write(tree.join(format!("many/f{i}")), format!("file {i}\n")).unwrap();
    }
    std::fs::write(tree.join("a/b/c/deep.txt"), "deep\n").unwrap();
    std::os::unix::fs::symlink("a/b/c/deep.txt", tree.join("link.txt")).unwrap();
    std::os::unix::fs::symlink("a", tree.join("dirlink")).unwrap();
    // One program a run: the VM stops when pid 1 exits.
    let with = |cmd: String| {
        run_vmm_lde([
            "--user".to_string(),
            cmd,
            "--file".to_string(),
            format!("{}:/data", tree.display()),
        ])
    };
    let run = with(format!(
        "{} /data/many/f0 /data/many/f299 /data/a/b/c/deep.txt /data/link.txt",
        prog("cat").display()
    ));
    run.assert_status(0);
    for line in ["file 0", "file 299", "deep"] {
        run.assert_line(line);
    }
    assert_eq!(
        run.stdout.lines().filter(|l| *l == "deep").count(),
        2,
        "the link's bytes too\n{}",
        run.dump()
    );
    let run = with(format!("{} /data /data/many", prog("ls").display()));
    run.assert_status(0);
    assert!(
        !run.stdout.contains("dirlink"),
        "a link to a directory is left out\n{}",
        run.dump()
    );
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with('f') && l[1..].parse::<u32>().is_ok())
            .count(),
        300,
        "ls lists the 300\n{}",
        run.dump()
    );
}

#[test]
fn a_script_placed_with_file_starts_at_boot_through_its_interpreter() {
    // START names the script by its path; the kernel runs /bin/echo with the script's path.
    let dir = scratch_dir("fs_script");
    let script = common::write_file(&dir, "hello.sh", b"#!/bin/echo said:\n");
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    let mut w = abi::cpio::CpioWriter::page_aligned();
    w.add_file("START", b"/scripts/hello.sh one two\n");
    w.add_file("echo", &std::fs::read(prog("echo")).unwrap());
    let initrd = common::write_file(&dir, "script.cpio", &w.finish());
    // --initrd and --file do not mix: the archive is built here the way --file writes it.
    let with_file = vmm::initrd::add_files(
        &std::fs::read(&initrd).unwrap(),
        &[
            vmm::initrd::ExtraFile::parse(&format!("{}:/scripts/hello.sh", script.display()))
                .unwrap(),
        ],
    )
    .unwrap();
    let initrd = common::write_file(&dir, "with-file.cpio", &with_file);
    let run = run_vmm_lde(["--initrd".as_ref(), initrd.as_os_str()]);
    run.assert_status(0);
    run.assert_line("said: /scripts/hello.sh one two");
}

#[test]
fn the_small_programs_work_together() {
    // ls, cat, echo, mkdir, rm and wc: the default programs, in /bin beside a --user one.
    let run = run_vmm_lde([
        "--user".to_string(),
        format!("{} /tmp", c_prog("fs_tools").display()),
    ]);
    run.assert_status(0);
    for line in [
        r#"fs_tools: "/bin/mkdir", "-p", "w/a/b" -> 0"#,
        "mkdir: cannot create directory 'w/a': EEXIST (17)",
        r#"fs_tools: "/bin/mkdir", "w/a" -> 1"#,
        "hello file system",
        "no newline",
        "      1       3      18 w/a/b/greeting",
        "      0       2      10 w/a/two",
        "      1       5      28 total",
        "-rw-r--r--   1       18 greeting",
        "cat: w/missing: ENOENT (2)",
        "rm: cannot remove 'w': EISDIR (21)",
        r#"fs_tools: "/bin/rm", "-r", "w" -> 0"#,
        r#"fs_tools: "/bin/rm", "-f", "w/nothing" -> 0"#,
    ] {
        run.assert_line(line);
    }
    // `ls w/a` lists b then two (the order they were made in); after rm -r only . and ..
    let lines: Vec<&str> = run.lines().collect();
    let at = lines.iter().position(|l| *l == "b").expect("ls w/a");
    assert_eq!(lines[at + 1], "two", "\n{}", run.dump());
    let at = lines.iter().position(|l| *l == ".").expect("ls -a");
    assert_eq!(lines[at + 1], "..");
    assert!(lines[at + 2].starts_with("fs_tools: \"/bin/ls\", \"-a\""));
}

/// Starts `cmd` with its standard input a pipe, types `line` into it after `delay`, closes it,
/// and collects the output.
fn type_after(mut cmd: Command, delay: std::time::Duration, line: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(delay);
    stdin.write_all(line).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn poll_waits_for_console_input() {
    let prog = c_prog("fs_pollcon");
    let delay = std::time::Duration::from_millis(500);
    let host = type_after(Command::new(&prog), delay, b"typed\n");
    let mut vmm = common::vmm();
    vmm.args(["--timeout", "30", "--user"]).arg(&prog);
    let guest = type_after(vmm, delay, b"typed\n");
    for (who, out) in [("host", &host), ("guest", &guest)] {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{who}: {stdout}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with("fs_pollcon: poll "))
            .unwrap_or_else(|| panic!("{who}: {stdout}"));
        assert!(
            line.starts_with("fs_pollcon: poll 1 after "),
            "{who}: {line}"
        );
        assert!(line.ends_with(" ms, read 'typed'"), "{who}: {line}");
        let ms: u64 = line.split_whitespace().nth(4).unwrap().parse().unwrap();
        assert!(
            (100..9000).contains(&ms),
            "{who}: it waited for the line: {line}"
        );
        assert!(
            stdout.contains("fs_pollcon: a poll of 50 ms before the line: 0"),
            "{who}: {stdout}"
        );
    }
}
