//! Ordinary glibc programs, built with gcc as a user would and run unmodified: tests/glibc/work.c
//! with `gcc -static -pthread` (glibc's start-up: rseq, clone3 and their fallbacks, mprotect of
//! RELRO, set_robust_list; stdio, malloc through brk and mmap, pthreads on futexes) and the same
//! file with plain `gcc -pthread`, dynamically linked: the kernel maps glibc's dynamic linker
//! (PT_INTERP), which maps libc.so.6 from the file tree; the VMM packed both from the host.
//! tests/glibc/dynamic.c checks what only a dynamic program does (AT_BASE, dl_iterate_phdr,
//! dlopen), tests/glibc/cpp.cc a C++ program as g++ builds it. Each checks itself and must pass
//! on the host first. gcc, g++ and glibc's libraries come from Debian's gcc, g++ and libc6-dev,
//! which the test command installs; Debian's own bash, coreutils, sed and findutils run too.

mod common;
use common::lde::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// tests/glibc/SOURCE.c built with gcc (or SOURCE.cc with g++) and `flags` into NAME (once per
/// test binary).
fn build(source: &str, name: &str, flags: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    let result = built.entry(name.to_string()).or_insert_with(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("glibc");
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join(name);
        let (compiler, file) = match source.strip_suffix(".cc") {
            Some(_) => ("g++", source.to_string()),
            None => ("gcc", format!("{source}.c")),
        };
        let out = Command::new(compiler)
            .args(flags)
            .args(["-O2", "-pthread", "-o"])
            .arg(&exe)
            .arg(repo_root().join(format!("tests/glibc/{file}")))
            .output()
            .map_err(|e| {
                format!("{compiler} is required (sudo apt-get install gcc g++ libc6-dev): {e}")
            })?;
        if !out.status.success() {
            return Err(format!(
                "{compiler} {flags:?} failed (is libc6-dev installed?):\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(exe)
    });
    match result {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// Whether the ELF file at `path` asks for a program interpreter (is dynamically linked).
fn has_interp(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap();
    abi::elf::Elf::parse(&bytes).unwrap().has_interp()
}

const WORK_LINES: [&str; 3] = [
    "glibc: snprintf: ok",
    "glibc: an 8 MiB block: ok",
    "glibc: every item handed over: ok",
];

#[test]
fn a_gcc_static_glibc_program_runs_unmodified() {
    let exe = build("work", "work-static", &["-static"]);
    assert!(!has_interp(&exe));
    let run = passes_on_host_then_guest(&exe, &[]);
    for line in WORK_LINES {
        run.assert_line(line);
    }
}

#[test]
fn a_plain_gcc_program_runs_with_glibcs_dynamic_linker() {
    let exe = build("work", "work-dynamic", &[]);
    assert!(has_interp(&exe), "plain gcc links dynamically");
    let run = passes_on_host_then_guest(&exe, &[]);
    for line in WORK_LINES {
        run.assert_line(line);
    }
}

#[test]
fn a_dynamic_program_sees_its_interpreter_and_libraries() {
    let exe = build("dynamic", "dynamic", &[]);
    let run = passes_on_host_then_guest(&exe, &[]);
    for line in [
        "dynamic: an interpreter was mapped (AT_BASE): ok",
        "dynamic: libc.so.6 among the loaded objects: ok",
        "dynamic: /proc/self/maps: libc.so.6's code: ok",
        "dynamic: /proc/self/maps: the stack and the vDSO: ok",
        "dynamic: a thread: ok",
        "dynamic: echo run by a forked child",
        "dynamic: fork, and exec of echo from PATH: ok",
    ] {
        run.assert_line(line);
    }
}

#[test]
fn a_g_plus_plus_program_with_threads_and_exceptions() {
    // libstdc++.so.6, libm.so.6 and libgcc_s.so.1 (which unwinds the exception) packed beside
    // libc.so.6, found through DT_NEEDED as the host's dynamic linker finds them.
    let exe = build("cpp.cc", "cpp", &[]);
    let run = passes_on_host_then_guest(&exe, &[]);
    run.assert_line("cpp: 4 std::threads: ok");
    run.assert_line("cpp: an exception unwound through 21 frames: ok");
}

#[test]
fn dlopen_finds_a_library_given_with_file_and_reports_one_that_is_not() {
    let exe = build("dynamic", "dynamic", &[]);
    let libm = "/lib/x86_64-linux-gnu/libm.so.6";
    assert!(Path::new(libm).is_file(), "{libm}: part of libc6");
    let host = Command::new(&exe).arg("dlopen").output().unwrap();
    assert!(
        host.status.success(),
        "the host disagrees with the test itself: {host:?}"
    );

    // Only what the program needs at start is packed: libm is not, so dlopen says so.
    let spec = format!("{} dlopen", exe.display());
    let run = run_user(std::slice::from_ref(&spec));
    run.assert_line(
        "dlopen: not found: libm.so.6: cannot open shared object file: No such file or directory",
    );
    run.assert_status(1);

    // Given with --file at the path the host has it, it is found and called.
    let file = format!("{libm}:{libm}");
    let run = run_vmm_lde(["--user", spec.as_str(), "--file", file.as_str()]);
    run.assert_line("dynamic: dlopen libm.so.6 and call cos through dlsym: ok");
    run.assert_status(0);
}

#[test]
fn a_program_whose_interpreter_is_missing_is_refused_with_a_clear_line() {
    let dir = common::scratch_dir("glibc_no_interp");
    let exe = dir.join("lost");
    let out = Command::new("gcc")
        .args(["-O2", "-Wl,--dynamic-linker=/lib/no-such-ld.so", "-o"])
        .arg(&exe)
        .arg(repo_root().join("tests/c/hello.c"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The VMM looks for it on the host before boot: one line, status 3.
    let out = common::run_vmm(["--user".as_ref(), exe.as_os_str()]);
    common::assert_one_line_error(
        &out,
        3,
        "vmm: error: ",
        "/lib/no-such-ld.so is not on this machine",
    );

    // Packed by another tool, the kernel finds no interpreter: execve's ENOENT, said at boot.
    let cpio = archive(&[("lost", &exe)], &["lost"]);
    let initrd = common::write_file(&dir, "lost.cpio", &cpio);
    let run = run_vmm_lde(["--initrd".as_ref(), initrd.as_os_str()]);
    run.assert_line("kernel: cannot start lost: its program interpreter (PT_INTERP): ENOENT (2)");
    run.assert_no_line("hello from musl");
}

#[test]
fn a_dynamic_program_under_qemu_tcg() {
    // The VMM writes the archive it would boot (the program, ld.so, libc.so.6, the default
    // set); QEMU boots the same kernel with it, on a CPU emulated in full.
    let exe = build("dynamic", "dynamic", &[]);
    let dir = common::scratch_dir("glibc_qemu");
    let initrd = dir.join("dynamic.cpio");
    let out = common::run_vmm([
        "--user".as_ref(),
        exe.as_os_str(),
        "--write-initrd".as_ref(),
        initrd.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // qemu.sh's own packer takes static programs only, and says where to go instead.
    let refused = Command::new(repo_root().join("scripts/qemu.sh"))
        .args([
            "--pack",
            &dir.join("no.cpio").display().to_string(),
            "--user",
        ])
        .arg(&exe)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--write-initrd"),
        "{refused:?}"
    );
    let mut cmd = Command::new(repo_root().join("scripts/qemu.sh"));
    cmd.env("ACCEL", "tcg")
        .args([
            "--timeout",
            &TIMEOUT_SECS.to_string(),
            "--virtio",
            "--initrd",
        ])
        .arg(&initrd);
    let run = run(cmd);
    assert!(!run.stdout.contains("FAIL"), "\n{}", run.dump());
    run.assert_status(0);
    run.assert_line("dynamic: libc.so.6 among the loaded objects: ok");
    run.assert_line("dynamic: fork, and exec of echo from PATH: ok");
}

#[test]
fn debians_own_programs_run_as_they_are() {
    // The host's coreutils, bash, sed and findutils, dynamically linked against glibc as Debian
    // ships them: each packed with what it needs, run by a bash script in the guest; bash's
    // <(cmd) opens /dev/fd/63, a pipe, through /proc/self/fd, as do /dev/stdin and /dev/stdout.
    let script = "ls -l /etc/passwd\n\
                  echo b a c | tr ' ' '\\n' | sort | sed 's/^/sorted: /'\n\
                  find /etc -name hosts\n\
                  for i in 1 2; do echo \"bash loop $i\"; done\n\
                  echo \"sub: $(echo shell)\"\n\
                  cat <(echo from a process substitution)\n\
                  echo piped | cat /dev/stdin | sed 's/^/stdin: /'\n\
                  echo through /dev/stdout | (cat > /dev/stdout) | sed 's/^/pipe: /'\n\
                  df -h / | tr -s ' ' | sed 's/^/df: /'\n";
    let dir = common::scratch_dir("glibc_debian");
    let path = common::write_file(&dir, "script.sh", script.as_bytes());
    let mut args = vec![
        "--user".to_string(),
        "/bin/bash /script.sh".to_string(),
        "--file".to_string(),
        format!("{}:/script.sh", path.display()),
    ];
    for prog in [
        "/usr/bin/df",
        "/bin/ls",
        "/usr/bin/sort",
        "/bin/sed",
        "/usr/bin/find",
        "/usr/bin/tr",
    ] {
        args.push("--file".to_string());
        args.push(format!("{prog}:/bin/{}", prog.rsplit('/').next().unwrap()));
    }
    let run = run_vmm_lde(&args);
    run.assert_status(0);
    let passwd = run
        .stdout
        .lines()
        .find(|l| l.ends_with(" /etc/passwd"))
        .unwrap_or_else(|| panic!("no ls line\n{}", run.dump()));
    assert!(passwd.starts_with("-rw-r--r-- 1 root root "), "{passwd}");
    for line in [
        "sorted: a",
        "sorted: b",
        "sorted: c",
        "/etc/hosts",
        "bash loop 2",
        "sub: shell",
        "from a process substitution",
        "stdin: piped",
        "pipe: through /dev/stdout",
        "df: Filesystem Size Used Avail Use% Mounted on",
    ] {
        run.assert_line(line);
    }
    assert!(
        !run.stdout.contains("not implemented"),
        "a call the kernel lacks\n{}",
        run.dump()
    );
}

#[test]
fn debians_python_runs_with_its_library_given_as_a_directory() {
    // /usr/bin/python3 as Debian ships it (dynamically linked, libm, libz, libexpat), its
    // standard library put at the same path with `--file DIR` (its C extension modules bring
    // their own libraries: libcrypto for hashlib), running tests/python/check.py.
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.is_file(),
        "python3 is required: sudo apt-get install python3"
    );
    let out = Command::new(python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('stdlib'))",
        ])
        .output()
        .unwrap();
    let stdlib = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(Path::new(&stdlib).join("os.py").is_file(), "{stdlib}");
    let check = repo_root().join("tests/python/check.py");
    let host = Command::new(python).arg(&check).output().unwrap();
    assert!(
        host.status.success(),
        "the host disagrees with the test itself:\n{}",
        String::from_utf8_lossy(&host.stdout)
    );
    let run = run_vmm_lde([
        "--user".to_string(),
        "/usr/bin/python3 /check.py".to_string(),
        "--file".to_string(),
        format!("{}:/check.py", check.display()),
        "--file".to_string(),
        format!("{stdlib}:{stdlib}"),
    ]);
    assert!(!run.stdout.contains("FAIL"), "\n{}", run.dump());
    run.assert_status(0);
    for line in [
        "python: hashlib sha256: ok",
        "python: 4 threads: ok",
        "python: subprocess: ok",
    ] {
        run.assert_line(line);
    }
}
