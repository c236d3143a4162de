//! Ordinary static C programs (tests/c/*.c, unmodified libc code) in ring 3 on our kernel: built
//! with `musl-gcc -static -O2` into the cargo target directory and run through `--user`.
//! What each must do is in tests/c/README.md.
//!
//! musl-gcc is required (Debian's musl-tools, which .ci/run installs): without it these tests
//! fail, saying how to install it.

mod common;
use common::lde;

use common::scratch_dir;
use lde::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const INSTALL: &str = "musl-gcc is required for these tests: sudo apt-get install musl-tools";

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("c")
}

fn musl_gcc(args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let out = Command::new("musl-gcc")
        .args(args)
        .output()
        .map_err(|e| format!("{INSTALL} (cannot run musl-gcc: {e})"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "musl-gcc {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Builds every tests/c/*.c once (static, non-PIE) into CARGO_TARGET_TMPDIR/c.
fn build_all() -> &'static Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = out_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let src = repo_root().join("tests/c");
        let mut sources: Vec<PathBuf> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "c"))
            .collect();
        sources.sort();
        for c in sources {
            let exe = dir.join(c.file_stem().unwrap());
            musl_gcc(&[
                "-static".as_ref(),
                "-O2".as_ref(),
                "-o".as_ref(),
                exe.as_os_str(),
                c.as_os_str(),
            ])?;
        }
        Ok(())
    })
}

/// The path of tests/c/NAME.c built with musl-gcc.
#[track_caller]
fn c_prog(name: &str) -> PathBuf {
    if let Err(e) = build_all() {
        panic!("{e}");
    }
    let p = out_dir().join(name);
    assert!(p.is_file(), "{} was not built", p.display());
    p
}

/// The `--user` value for a C program with arguments.
fn c_user(name: &str, args: &str) -> String {
    let p = c_prog(name).display().to_string();
    if args.is_empty() {
        p
    } else {
        format!("{p} {args}")
    }
}

#[test]
fn musl_gcc_is_installed() {
    require_tool("musl-gcc", INSTALL);
}

#[test]
fn unmodified_hello_world_prints_and_exits_7() {
    let run = run_user(&[c_user("hello", "")]);
    run.assert_status(7);
    run.assert_line("hello from musl");
    let report = run.report();
    let r = report.row(1);
    assert_eq!((r.name.as_str(), r.status.as_str()), ("hello", "exit 7"));
    // musl's start-up and printf: set_tid_address, ioctl, writev, exit_group at least.
    assert!(r.syscalls >= 4, "{r:?}");
    assert!(run.kill_lines().is_empty(), "\n{}", run.dump());
}

#[test]
fn args_sees_argv_and_exits_with_argc() {
    let run = run_user(&[c_user("args", "a b")]);
    run.assert_status(3);
    for line in ["argc=3", "argv[0]=args", "argv[1]=a", "argv[2]=b"] {
        run.assert_line(line);
    }
    run.assert_no_line("argv[argc] is not NULL");
}

#[test]
fn sleep_sleeps_at_least_50_ms() {
    let run = run_user(&[c_user("sleep", "")]);
    run.assert_status(0);
    let line = run.assert_line("sleep: pid 1 slept ");
    let ms: u64 = line
        .split_whitespace()
        .nth(4)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(ms >= 50, "{line}");
    assert!(run.wall.as_millis() >= 50, "{:?}", run.wall);
}

#[test]
fn null_pointer_write_is_killed_with_sigsegv_139() {
    let run = run_user(&[c_user("nullptr", "")]);
    run.assert_status(KILLED_SEGV);
    run.assert_line("nullptr: writing to address 0");
    run.assert_no_line("still alive");
    let k = run.assert_killed(1, "nullptr", "page fault", 11);
    assert!(
        k.detail.contains("writing") && k.detail.contains("0x0"),
        "a write to 0x0: {k:?}"
    );
}

#[test]
fn the_others_go_on_after_nullptr_is_killed() {
    // waitall (pid 1) waits for every other program before the VM powers off.
    let run = run_user(&[
        c_user("waitall", ""),
        c_user("nullptr", ""),
        c_user("hello", ""),
        c_user("sleep", ""),
        c_user("args", "x y"),
    ]);
    run.assert_status(0);
    assert_eq!(run.kill_line(2).name, "nullptr");
    for line in [
        "waitall: pid 2 killed by signal 11",
        "waitall: pid 3 exited with 7",
        "waitall: pid 4 exited with 0",
        "waitall: pid 5 exited with 3",
        "waitall: 4 children, all done",
        "hello from musl",
        "sleep: pid 4 slept",
    ] {
        run.assert_line(line);
    }
}

#[test]
fn two_fpmath_keep_their_own_sse_registers() {
    // Two instances of one program: an archive with START, as --user takes each file once.
    let dir = scratch_dir("musl_fpmath");
    let cpio = archive(
        &[
            ("waitall", &c_prog("waitall")),
            ("fpmath", &c_prog("fpmath")),
        ],
        &["waitall", "fpmath", "fpmath"],
    );
    let initrd = common::write_file(&dir, "fpmath.cpio", &cpio);
    let run = run_vmm_lde(["--initrd".as_ref(), initrd.as_os_str()]);
    run.assert_status(0);
    let results: Vec<&str> = run.lines_starting("fpmath: pi ~ 3.14159");
    assert_eq!(results.len(), 2, "\n{}", run.dump());
    run.assert_line("waitall: pid 2 exited with 0");
    run.assert_line("waitall: pid 3 exited with 0");
    let report = run.report();
    for pid in [2, 3] {
        let r = report.row(pid);
        assert!(r.yielded >= 1000, "sched_yield every 1000 terms: {r:?}");
    }
}

#[test]
fn musl_programs_linked_dynamically_and_as_static_pies_run() {
    // Debian's musl-gcc links both with an interpreter request (PT_INTERP for ld-musl, which
    // is musl's libc.so): the VMM packs it from the host, the kernel maps it beside the
    // program, and it relocates the program (and, for the dynamic one, is its libc).
    let dir = scratch_dir("musl_dynamic");
    let src = repo_root().join("tests/c/hello.c");
    for (name, flags) in [("hellodyn", &[][..]), ("hellopie", &["-static-pie"][..])] {
        let exe = dir.join(name);
        let mut args: Vec<&std::ffi::OsStr> = flags.iter().map(|f| f.as_ref()).collect();
        args.extend([
            "-O2".as_ref(),
            "-o".as_ref(),
            exe.as_os_str(),
            src.as_os_str(),
        ]);
        if let Err(e) = musl_gcc(&args) {
            panic!("{e}");
        }
        let bytes = std::fs::read(&exe).unwrap();
        let interp = abi::elf::Elf::parse(&bytes)
            .unwrap()
            .interpreter()
            .map(<[u8]>::to_vec);
        assert_eq!(
            interp.as_deref(),
            Some(&b"/lib/ld-musl-x86_64.so.1"[..]),
            "{name}"
        );
        let host = Command::new(&exe).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&host.stdout),
            "hello from musl\n",
            "{name} on the host"
        );
        assert_eq!(host.status.code(), Some(7), "{name} on the host");
        let run = run_user(&[exe.display().to_string()]);
        run.assert_line("hello from musl");
        run.assert_status(7);
    }
}

#[test]
fn musl_programs_under_qemu_tcg() {
    // The ordinary syscall path of a full CPU, for libc's code too (see tests/qemu.rs).
    let qemu = Command::new("qemu-system-x86_64").arg("--version").output();
    assert!(
        qemu.is_ok_and(|o| o.status.success()),
        "qemu-system-x86_64 is required: sudo apt-get install qemu-system-x86"
    );
    let mut cmd = Command::new(repo_root().join("scripts/qemu.sh"));
    cmd.env("ACCEL", "tcg")
        .args(["--timeout", &TIMEOUT_SECS.to_string()])
        .args(["--user", &c_user("waitall", "")])
        .args(["--user", &c_user("hello", "")])
        .args(["--user", &c_user("fpmath", "")])
        .args(["--user", &c_user("nullptr", "")]);
    let run = run(cmd);
    run.assert_status(0);
    run.assert_line("TCGTCGTCGTCG");
    run.assert_line("hello from musl");
    run.assert_line("fpmath: pi ~ 3.14159");
    run.assert_line("waitall: pid 2 exited with 7");
    run.assert_line("waitall: pid 3 exited with 0");
    run.assert_line("waitall: pid 4 killed by signal 11");
}

#[test]
fn invalid_opcode_is_sigill_132_and_breakpoint_sigtrap_133() {
    for (what, status, fault, signal) in [
        ("ud2", 132, "invalid opcode", 4),
        ("int3", 133, "breakpoint", 5),
    ] {
        let run = run_user(&[c_user("trap", what)]);
        run.assert_status(status);
        run.assert_no_line("still alive");
        let k = run.kill_line(1);
        assert_eq!(
            (k.name.as_str(), k.what.as_str(), k.signal),
            ("trap", fault, signal),
            "{what}: {k:?}"
        );
    }
}

#[test]
fn int_0x81_without_a_ring_3_gate_is_a_gp_fault_as_on_a_real_cpu() {
    // On a real CPU (and under QEMU tcg) `int 0x81` raises #GP: the gate is not DPL 3. On
    // kvm_pvm every `int N` arrives as #UD; the kernel must report what a real CPU would.
    let run = run_user(&[c_user("trap", "int81")]);
    run.assert_status(KILLED_SEGV);
    run.assert_no_line("still alive");
    let k = run.kill_line(1);
    assert_eq!(
        (k.what.as_str(), k.signal),
        ("general protection fault", 11),
        "{k:?}"
    );
}

#[test]
fn system_calls_do_not_use_the_user_stack_pointer() {
    // syscall and int 0x80 with rsp = a kernel address or 0: the kernel runs on its own stack,
    // returns the result and the program goes on.
    for what in ["badstack", "badstack80", "nullstack"] {
        let run = run_user(&[c_user("trap", what)]);
        run.assert_status(0);
        run.assert_line(&format!("trap: {what}: getpid = 1 (pid 1)"));
        assert!(run.kill_lines().is_empty(), "\n{}", run.dump());
    }
}

#[test]
fn console_input_reaches_read_0() {
    let out = common::run_vmm_with_input(
        [
            "--timeout".to_string(),
            TIMEOUT_SECS.to_string(),
            "--user".to_string(),
            c_user("readline", ""),
        ],
        b"ring three\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(10), "{stdout}");
    assert!(stdout.contains("readline: got 'ring three'"), "{stdout}");
}

/// Console input ends (docs/conventions.md, "Console input and its end"): with no stdin at all
/// (closed, as CI may start us, or /dev/null), an empty pipe or a file, the reader gets
/// end-of-file and the guest ends instead of waiting for input that never comes. readline
/// exits 255 at end-of-file, else with the length of the line.
#[test]
fn console_input_ends_when_stdin_ends() {
    use std::process::Stdio;
    let dir = scratch_dir("musl_console_end");
    let file = common::write_file(&dir, "input", b"from a file\n");
    type MakeStdin = Box<dyn Fn() -> Stdio>;
    let cases: [(&str, MakeStdin, i32, &str); 4] = [
        (
            "/dev/null",
            Box::new(Stdio::null),
            255,
            "readline: end of input",
        ),
        (
            "a file",
            Box::new(move || std::fs::File::open(&file).unwrap().into()),
            11,
            "readline: got 'from a file'",
        ),
        (
            "an empty pipe",
            Box::new(Stdio::piped),
            255,
            "readline: end of input",
        ),
        (
            "closed",
            Box::new(Stdio::null),
            255,
            "readline: end of input",
        ),
    ];
    for (what, stdin, status, line) in cases {
        let mut cmd = common::vmm();
        cmd.args(["--timeout", &TIMEOUT_SECS.to_string()])
            .args(["--user", &c_user("readline", "")])
            .stdin(stdin());
        if what == "closed" {
            // SAFETY: runs in the child between fork and exec, where closing fd 0 is
            // async-signal-safe and affects only the child.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                    libc::close(0);
                    Ok(())
                });
            }
        }
        // `output` closes the pipe's write end at once: an empty pipe.
        let run = lde::run(cmd);
        assert_eq!(run.status, Some(status), "stdin {what}: {}", run.dump());
        run.assert_line(line);
    }
}

#[test]
fn spawn_from_c_starts_children_and_refuses_bad_arguments() {
    let dir = scratch_dir("musl_spawn");
    let notes = common::write_file(&dir, "notes", b"not a program\n");
    let cpio = archive(
        &[
            ("spawn", &c_prog("spawn")),
            ("hello", &c_prog("hello")),
            ("args", &c_prog("args")),
            ("nullptr", &c_prog("nullptr")),
            ("notes", &notes),
        ],
        &["spawn"],
    );
    let initrd = common::write_file(&dir, "spawn.cpio", &cpio);
    // A small process table (nproc=64), so that filling it takes moments.
    let run = run_vmm_lde([
        "--initrd".as_ref(),
        initrd.as_os_str(),
        "--cmdline".as_ref(),
        "nproc=64".as_ref(),
    ]);
    run.assert_no_failed_checks();
    run.assert_status(0);
    run.assert_line("spawn: all passed");
    run.assert_line("hello from musl");
    run.assert_line("argv[2]=two");
    let k = run.kill_line(4);
    assert_eq!(k.name, "nullptr", "{k:?}");
}

#[test]
fn code_is_not_writable_and_data_not_executable_and_the_stack_has_a_guard() {
    for (what, access) in [
        ("writecode", "writing 0x"),
        ("execstack", "executing 0x"),
        ("execdata", "executing 0x"),
        ("overflow", "writing 0x7fff"),
    ] {
        let run = run_user(&[c_user("trap", what)]);
        run.assert_status(KILLED_SEGV);
        run.assert_no_line("still alive");
        let k = run.kill_line(1);
        assert_eq!(
            (k.what.as_str(), k.signal),
            ("page fault", 11),
            "{what}: {k:?}"
        );
        assert!(k.detail.starts_with(access), "{what}: {k:?}");
    }
}

/// The kernel's `syscall` entry (LSTAR), from the kernel ELF's symbols.
fn lstar() -> u64 {
    let out = Command::new("nm")
        .arg(kernel_path())
        .output()
        .expect("nm (binutils) is needed to read the kernel's symbols");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.ends_with(" syscall_entry"))
        .expect("syscall_entry in the kernel's symbols");
    u64::from_str_radix(line.split(' ').next().unwrap(), 16).unwrap()
}

#[test]
fn a_jump_to_the_syscall_entry_with_a_bad_return_address_is_only_a_fault() {
    // On kvm_pvm such a jump arrives exactly like a `syscall` (a #PF at LSTAR from ring 3), with
    // RCX as the return address; a non-canonical one must not reach `iretq`, where a real CPU
    // would fault in ring 0. Elsewhere it is a fetch from a kernel page. Killed either way.
    let run = run_user(&[c_user("trap", &format!("lstar {:#x}", lstar()))]);
    run.assert_status(KILLED_SEGV);
    run.assert_no_line("still alive");
    run.assert_no_line("kernel panic");
    let k = run.kill_line(1);
    assert_eq!(k.what, "page fault", "{k:?}");
    assert!(k.detail.starts_with("executing 0xffff"), "{k:?}");
}

#[test]
fn a_jump_to_the_syscall_entry_cannot_hand_ring_3_iopl_or_clear_if() {
    // A #PF at LSTAR from ring 3 is taken as a system call (kvm_pvm's `syscall` arrives so; on
    // any CPU a program may jump there itself), and its RFLAGS come from R11, the program's
    // choice: IOPL 3 would give ring 3 the I/O ports and `cli`, IF clear would stop
    // preemption. kvm_pvm hides IOPL and IF from ring 3 whatever the kernel does; QEMU's full
    // CPU, like hardware, does not, so there the check can fail (it did, before the stub kept
    // only the arithmetic flags, DF and ID).
    let args = format!("lstarflags {:#x}", lstar());
    let mut tcg = Command::new(repo_root().join("scripts/qemu.sh"));
    tcg.env("ACCEL", "tcg")
        .args(["--timeout", &TIMEOUT_SECS.to_string()])
        .args(["--user", &c_user("trap", &args)]);
    for run in [run_user(&[c_user("trap", &args)]), run(tcg)] {
        run.assert_no_line("kernel panic");
        run.assert_line("trap: lstarflags: getpid = 1, rflags 0x202");
        run.assert_status(0);
    }
}

#[test]
fn edge_arguments_get_linuxs_answers() {
    // The expectations themselves are checked on the host first: Linux answers the same.
    let host = run(Command::new(c_prog("edges")));
    assert_eq!(host.status, Some(0), "on Linux\n{}", host.dump());
    let run = run_user(&[c_user("edges", "")]);
    run.assert_no_failed_checks();
    run.assert_status(0);
    run.assert_line("edges: all passed");
}

#[test]
fn a_user_program_finds_the_default_programs_in_bin() {
    // popen runs `/bin/sh -c` (our shell, with echo and wc), execlp searches PATH: as on Linux,
    // where the same binary passes first.
    let run = passes_on_host_then_guest(&c_prog("popen"), &[]);
    run.assert_line("popen: ok a pipeline through /bin/sh");
    run.assert_line("popen: ok execlp finds echo in PATH");
    run.assert_line("popen: all passed");
}

/// Runs `prog args` on the host Linux, for its exit status (the program checks itself).
fn on_host(prog: &Path, args: &[&str]) -> std::process::Output {
    Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", prog.display()))
}

#[test]
fn posix_threads_share_memory_and_wait_on_futexes() {
    let run = passes_on_host_then_guest(&c_prog("threads"), &[]);
    for check in [
        "counter under a mutex: ok",
        "gettid is each thread's own: ok",
        "pthread_cond_broadcast woke every waiter: ok",
        "pthread_cond_timedwait times out: ok",
        "robust mutex after its owner died: ok",
        "a process signal ran its handler once: ok",
    ] {
        run.assert_line(check);
    }
    // The threads are one process: one row in the report.
    let report = run.report();
    assert_eq!(report.row(1).status, "exit 0");
    assert!(run.kill_lines().is_empty(), "\n{}", run.dump());
}

#[test]
fn exit_from_a_thread_ends_the_whole_process() {
    let host = on_host(&c_prog("threads"), &["exitgroup"]);
    assert_eq!(host.status.code(), Some(3));
    let run = run_user(&[c_user("threads", "exitgroup")]);
    run.assert_status(3);
}

#[test]
fn execve_from_a_thread_replaces_the_whole_process() {
    // The new program runs alone, as the process's only thread, under the process's pid.
    let host = on_host(&c_prog("threads"), &["exec"]);
    assert_eq!(host.status.code(), Some(4), "{host:?}");
    let run = run_user(&[c_user("threads", "exec"), c_user("args", "")]);
    run.assert_status(4);
    run.assert_line("argv[3]=thread");
    assert_eq!(run.report().row(1).status, "exit 4");
}

#[test]
fn posix_threads_under_qemu_tcg() {
    let mut cmd = Command::new(repo_root().join("scripts/qemu.sh"));
    cmd.env("ACCEL", "tcg")
        .args(["--timeout", &TIMEOUT_SECS.to_string()])
        .args(["--user", &c_user("threads", "")]);
    let run = run(cmd);
    assert!(!run.stdout.contains("FAIL"), "\n{}", run.dump());
    run.assert_status(0);
    run.assert_line("robust mutex after its owner died: ok");
}

#[test]
fn start_up_calls_get_linuxs_answers() {
    let run = passes_on_host_then_guest(&c_prog("startup"), &[]);
    run.assert_line("startup: two draws differ: ok");
    run.assert_line("startup: clock_nanosleep TIMER_ABSTIME: ok");
    // prctl(PR_SET_NAME) renamed it: the report says so.
    assert_eq!(run.report().row(1).name, "renamed-task-xy");
}

#[test]
fn a_hundred_threads_share_one_counter() {
    let host = on_host(&c_prog("threads"), &["hundred"]);
    assert!(host.status.success(), "{host:?}");
    let run = run_user(&[c_user("threads", "hundred")]);
    run.assert_status(0);
    run.assert_line("threads: their 10000 increments: ok");
}

#[test]
fn a_thread_that_faults_kills_the_whole_process() {
    let host = on_host(&c_prog("threads"), &["fault"]);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&host.status),
        Some(11)
    );
    let run = run_user(&[c_user("threads", "fault")]);
    run.assert_status(139);
    // One kill line, naming the process (its pid, not the faulting thread's tid).
    let kill = run.assert_killed(1, "threads", "page fault", 11);
    assert!(kill.detail.contains("writing 0x0"), "{kill:?}");
    assert_eq!(run.kill_lines().len(), 1, "\n{}", run.dump());
}

#[test]
fn execve_of_mutated_elf_files_never_hurts_the_kernel() {
    // Guest only: mutated machine code is not run on the host.
    let run = run_user(&[c_user("elfuzz", "/bin/hello 150"), c_user("hello", "")]);
    run.assert_status(0);
    let line = run.assert_line("elfuzz: 150 rounds: ");
    // Some must be refused and some run: the mutations reach both sides of the checks.
    let n = |word: &str| -> u32 {
        let at = line.find(word).unwrap_or_else(|| panic!("{line}"));
        line[..at]
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(n(" refused by execve") > 0, "{line}");
    assert!(n(" ran and exited") > 0, "{line}");
    run.assert_no_line("kernel panic");
}

#[test]
fn a_pt_interp_that_names_no_dynamic_linker_fails_as_on_linux() {
    // Guest only (it writes crafted programs to /tmp): each variant of hello names something
    // else as its interpreter, and execve fails with Linux's errno; the caller goes on.
    let run = run_user(&[c_user("exec_interp", "/bin/hello"), c_user("hello", "")]);
    for line in [
        "exec_interp: a missing interpreter: ENOENT",
        "exec_interp: a directory: EACCES",
        "exec_interp: a file that is not ELF: ELIBBAD",
        "exec_interp: itself (an interpreter with PT_INTERP): ELIBBAD",
        "exec_interp: a path without its NUL: ENOEXEC",
        "exec_interp: all passed",
    ] {
        run.assert_line(line);
    }
    run.assert_status(0);
    run.assert_no_line("kernel panic");
}

/// The system calls `who` (a `vdso` process) says it made itself ("WHO: own system calls N").
fn vdso_own_syscalls(run: &Run, who: &str) -> u64 {
    let line = run.assert_line(&format!("{who}: own system calls "));
    line.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

/// libc's clock_gettime, gettimeofday and time read the clock in ring 3 through the vDSO, in
/// the program, its forked child and its exec'd child: 100,000 and more reads each, and the
/// kernel counts only each one's own system calls (its checks against
/// syscall(SYS_clock_gettime)) and its start-up, output, fork and exec.
fn assert_vdso_run(run: &Run, name: &str) {
    run.assert_status(0);
    run.assert_line("vdso: fork and exec agree too");
    let report = run.report();
    for (pid, who) in [(1, "vdso"), (2, "vdso fork"), (3, "vdso exec")] {
        run.assert_line(&format!("{who}: all agree"));
        for f in [
            "__vdso_clock_gettime",
            "__vdso_gettimeofday",
            "__vdso_time",
            "__vdso_getcpu",
        ] {
            run.assert_line(&format!("{who}: {f} found"));
        }
        let own = vdso_own_syscalls(run, who);
        let r = report.row(pid);
        // The exec'd child is named for the path it was run by, as on Linux.
        assert_eq!(r.name, if pid == 3 { "exe" } else { name });
        // The rest is start-up, fork, exec and output: a write per line, stdout being a
        // terminal (libc line-buffers it), about 10 lines each.
        assert!(
            r.syscalls >= own && r.syscalls < own + 60,
            "{who}: {} system calls for {own} of its own: the clock reads trapped\n{}",
            r.syscalls,
            run.dump()
        );
    }
}

#[test]
fn clocks_are_read_in_ring_3_through_the_vdso() {
    // The same checks on the host first, against Linux's own vDSO.
    let host = on_host(&c_prog("vdso"), &[]);
    assert!(
        host.status.success(),
        "the host disagrees with the test itself:\n{}",
        String::from_utf8_lossy(&host.stdout)
    );
    assert_vdso_run(&run_user(&[c_user("vdso", "")]), "vdso");
}

#[test]
fn the_vdso_under_qemu_tcg() {
    // A full CPU's rdtsc, lfence and syscall in ring 3 (the fallback path), for the vDSO's code.
    let mut cmd = Command::new(repo_root().join("scripts/qemu.sh"));
    cmd.env("ACCEL", "tcg")
        .args(["--timeout", &TIMEOUT_SECS.to_string()])
        .args(["--user", &c_user("vdso", "")]);
    let run = run(cmd);
    run.assert_line("TCGTCGTCGTCG");
    assert_vdso_run(&run, "vdso");
}

#[test]
fn the_vdso_serves_glibc_too() {
    // glibc's static start-up finds the vDSO its own way (setup_vdso, a versioned lookup).
    let dir = scratch_dir("vdso_glibc");
    let exe = dir.join("vdso_glibc");
    let src = repo_root().join("tests/c/vdso.c");
    let out = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("gcc is required: sudo apt-get install gcc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let host = on_host(&exe, &[]);
    assert!(host.status.success(), "{host:?}");
    assert_vdso_run(&run_user(&[exe.display().to_string()]), "vdso_glibc");
}

#[test]
fn the_vdso_pages_are_read_only() {
    // The image is read+execute on Linux too; the page below it is Linux's vvar, whose reads
    // may be SIGBUS there, so the data page is checked in our guest only.
    use std::os::unix::process::ExitStatusExt;
    let host = on_host(&c_prog("vdso"), &["write"]);
    assert_eq!(host.status.signal(), Some(11), "{host:?}");
    for what in ["write", "writedata"] {
        let run = run_user(&[c_user("vdso", what)]);
        run.assert_status(KILLED_SEGV);
        run.assert_no_line("vdso: still alive");
        let line = run.assert_line("vdso: writing to ");
        let addr = line.rsplit(' ').next().unwrap_or_default();
        let k = run.assert_killed(1, "vdso", "page fault", 11);
        assert!(
            k.detail.contains("writing") && k.detail.contains(addr),
            "{what}: {k:?}"
        );
    }
}

#[test]
fn memory_mappings_at_their_edges_get_linuxs_answers() {
    let run = passes_on_host_then_guest(&c_prog("mmap"), &[]);
    for line in [
        "mmap: MAP_FIXED over the middle: ok",
        "mmap: mprotect one page read-only: ok",
        "mmap: mremap with MAYMOVE moves: ok",
        "mmap: a child's write to MAP_SHARED is seen: ok",
    ] {
        run.assert_line(line);
    }
}
