//! `vmm --gdb` with a real gdb (Debian's, in batch mode): the kernel's system-call path, a
//! ring-3 C program (tests/gdb/counter.c, built with musl-gcc -g), watchpoints, Ctrl-C, an
//! unmapped address, detach and kill. Each test runs one VM and one gdb session, both with
//! deadlines, and checks what gdb printed and how the VMM ended.
//!
//! gdb and musl-gcc are required (Debian's gdb and musl-tools, which .ci/run installs): without
//! them these tests fail, saying what to install.

mod common;
use common::lde;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

const GDB_INSTALL: &str = "gdb is required for these tests: sudo apt-get install gdb";
const MUSL_INSTALL: &str = "musl-gcc is required for these tests: sudo apt-get install musl-tools";
/// For one gdb session; the VMM gets `--timeout` a little longer, so nothing outlives a test.
const SESSION_SECS: u64 = 90;

/// tests/gdb/counter.c, built once with debug information.
fn counter() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        lde::require_tool("musl-gcc", MUSL_INSTALL);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gdb");
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("counter");
        let src = lde::repo_root().join("tests/gdb/counter.c");
        let out = Command::new("musl-gcc")
            .args(["-static", "-g", "-O0", "-o"])
            .arg(&exe)
            .arg(&src)
            .output()
            .unwrap_or_else(|e| panic!("{MUSL_INSTALL} (cannot run musl-gcc: {e})"));
        assert!(
            out.status.success(),
            "musl-gcc failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        exe
    })
}

/// What one session left.
struct Session {
    /// gdb's stdout and stderr.
    gdb: String,
    vmm_status: Option<i32>,
    vmm_stdout: String,
    vmm_stderr: String,
}

impl Session {
    #[track_caller]
    fn gdb_says(&self, needle: &str) {
        assert!(
            self.gdb.contains(needle),
            "gdb did not print {needle:?}:\n{}\n--- vmm stderr:\n{}",
            self.gdb,
            self.vmm_stderr
        );
    }
}

enum Listen {
    Unix,
    /// `--gdb 0`: the port the VMM picked, read from its stderr.
    Tcp,
}

/// When to send gdb a SIGINT (Ctrl-C): after it printed this marker, and a moment more.
struct CtrlC(&'static str);

fn wait_for(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        sleep(Duration::from_millis(20));
    }
}

/// Boots `vmm --gdb ... ARGS`, runs `script` in gdb against it (after `target remote`), and
/// waits for both to end.
fn debug(
    name: &str,
    listen: Listen,
    vmm_args: &[&str],
    script: &str,
    ctrl_c: Option<CtrlC>,
) -> Session {
    lde::require_tool("gdb", GDB_INSTALL);
    let dir = common::scratch_dir(&format!("gdb-{name}"));
    let sock = dir.join("gdb.sock");
    let gdb_arg = match listen {
        Listen::Unix => format!("unix:{}", sock.display()),
        Listen::Tcp => "0".to_string(),
    };
    let (out_path, err_path) = (dir.join("vmm.out"), dir.join("vmm.err"));
    let mut vmm = common::vmm()
        .args([
            "--gdb",
            &gdb_arg,
            "--timeout",
            &(SESSION_SECS + 30).to_string(),
        ])
        .args(vmm_args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .expect("cannot run vmm");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();

    // The VMM says where it waits once it listens.
    let start = Instant::now();
    let target = loop {
        let err = read(&err_path);
        if let Some(line) = err
            .lines()
            .find(|l| l.starts_with("vmm: waiting for gdb on "))
        {
            break match listen {
                Listen::Unix => sock.display().to_string(),
                Listen::Tcp => {
                    let addr = line.split_whitespace().nth(5).unwrap();
                    let port = addr.rsplit(':').next().unwrap();
                    format!(":{port}")
                }
            };
        }
        if start.elapsed() > Duration::from_secs(30) || vmm.try_wait().unwrap().is_some() {
            let _ = vmm.kill();
            panic!("vmm never waited for gdb; stderr:\n{err}");
        }
        sleep(Duration::from_millis(20));
    };

    let script_path = dir.join("script.gdb");
    std::fs::write(
        &script_path,
        // Code from the ELF files: at the first stop gdb could not read it (paging off), and
        // would place `break main` without skipping its prologue.
        format!(
            "set pagination off\nset confirm off\nset trust-readonly-sections on\n\
             target remote {target}\n{script}"
        ),
    )
    .unwrap();
    let gdb_out = dir.join("gdb.out");
    let gdb_file = File::create(&gdb_out).unwrap();
    let mut gdb = Command::new("gdb")
        .args(["-q", "-nx", "-batch", "-x"])
        .arg(&script_path)
        .arg(lde::kernel_path())
        .stdin(Stdio::null())
        .stdout(gdb_file.try_clone().unwrap())
        .stderr(gdb_file)
        .spawn()
        .unwrap_or_else(|e| panic!("{GDB_INSTALL} (cannot run gdb: {e})"));
    let deadline = Instant::now() + Duration::from_secs(SESSION_SECS);

    if let Some(CtrlC(marker)) = ctrl_c {
        while !read(&gdb_out).contains(marker) && Instant::now() < deadline {
            sleep(Duration::from_millis(20));
        }
        // Long enough for gdb to be waiting for the guest, which by then spins.
        sleep(Duration::from_millis(1500));
        let ok = Command::new("kill")
            .args(["-INT", &gdb.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot send SIGINT to gdb");
    }

    let gdb_status = wait_for(&mut gdb, deadline);
    let vmm_status = wait_for(&mut vmm, Instant::now() + Duration::from_secs(30));
    let session = Session {
        gdb: read(&gdb_out),
        vmm_status: vmm_status.and_then(|s| s.code()),
        vmm_stdout: read(&out_path),
        vmm_stderr: read(&err_path),
    };
    assert!(
        gdb_status.is_some(),
        "gdb did not finish within {SESSION_SECS} s:\n{}\n--- vmm stderr:\n{}",
        session.gdb,
        session.vmm_stderr
    );
    assert!(
        !session.vmm_stderr.contains("panicked"),
        "vmm panicked:\n{}",
        session.vmm_stderr
    );
    session
}

fn symbols() -> String {
    format!("add-symbol-file {}\n", counter().display())
}

/// The lines counter.c printed.
fn ticks(stdout: &str) -> usize {
    stdout.lines().filter(|l| *l == "tick").count()
}

/// The number in gdb's `$N = VALUE` line that follows `marker`.
fn value_after(gdb: &str, marker: &str) -> Option<i64> {
    let rest = &gdb[gdb.find(marker)? + marker.len()..];
    let line = rest.lines().find(|l| l.starts_with('$'))?;
    line.split(" = ").nth(1)?.trim().parse().ok()
}

#[test]
fn a_virtio_console_that_breaks_hands_the_output_to_the_uart() {
    // gdb makes the kernel's next available index jump by 1,000 (more than the queue holds):
    // the VMM's device breaks (one warning), the kernel finds DEVICE_NEEDS_RESET, resets it,
    // says so on the UART, and the write it was doing and every later one go through the
    // UART: the whole stream arrives.
    let blast = lde::user("blast", "8192 1024");
    let s = debug(
        "virtio-broken",
        Listen::Unix,
        &["--user", &blast],
        "break kernel::virtio_console::write_user\n\
         continue\n\
         set var kernel::virtio_console::DRIVER.value.value.0.tx.avail_idx = 1000\n\
         delete\n\
         continue\n",
        None,
    );
    assert_eq!(s.vmm_status, Some(0), "{}\n{}", s.vmm_stdout, s.vmm_stderr);
    assert_eq!(
        s.vmm_stderr
            .matches("virtio-console: the guest broke queue 1")
            .count(),
        1,
        "{}",
        s.vmm_stderr
    );
    assert!(
        s.vmm_stdout
            .contains("kernel: the virtio console stopped working"),
        "{}",
        s.vmm_stdout
    );
    if let Err(e) = vmm::bench::console::check(s.vmm_stdout.as_bytes(), 8192) {
        panic!("{e}\n{}", s.vmm_stdout);
    }
}

#[test]
fn syscall_dispatcher_backtrace_step_finish_and_exit() {
    let user = counter().display().to_string();
    let script = format!(
        r#"{symbols}break syscall_dispatch
continue
bt
echo NUMBER\n
set language rust
p (*($rdi as *const kernel::trap_frame::TrapFrame)).rax
set language auto
python
f = gdb.newest_frame()
while f is not None and int(f.pc()) >= 0xffff800000000000:
    f = f.older()
print("USER FRAME %s rax=%d" % (f.name(), int(f.read_register("rax"))) if f else "NO USER FRAME")
for i in range(80):
    if (gdb.selected_frame().name() or "").startswith("kernel::sys::"):
        break
    gdb.execute("step")
print("IN HANDLER " + (gdb.selected_frame().name() or "?"))
gdb.execute("finish")
print("AFTER FINISH " + (gdb.selected_frame().name() or "?"))
end
delete
continue
"#,
        symbols = symbols()
    );
    let s = debug("dispatch", Listen::Unix, &["--user", &user], &script, None);
    // One location: every way in (int 0x80, syscall, kvm_pvm's #PF and #UD) jumps to it (the
    // entry stubs' dispatcher, in assembly: trap_entry.rs; RDI is the frame there).
    s.gdb_says("Breakpoint 1, ");
    s.gdb_says(" in syscall_dispatch ()");
    // The backtrace goes from the dispatcher (its CFI: it runs on the trap frame) into the
    // program that made the call.
    s.gdb_says("#1  0x0000");
    let number = value_after(&s.gdb, "NUMBER")
        .unwrap_or_else(|| panic!("p frame.rax printed no number\n{}", s.gdb));
    // The user frame's rax, unwound from the trap frame, is the system-call number too.
    s.gdb_says(&format!(" rax={number}"));
    assert!(!s.gdb.contains("NO USER FRAME"), "{}", s.gdb);
    s.gdb_says("IN HANDLER kernel::sys::");
    // `finish` returns to the handler's caller.
    let after = s.gdb.split("AFTER FINISH ").nth(1).unwrap_or("");
    assert!(after.starts_with("kernel::syscall"), "{}", s.gdb);
    s.gdb_says("exited normally");
    assert_eq!(s.vmm_status, Some(0), "{}", s.vmm_stderr);
}

#[test]
fn breakpoint_in_a_user_programs_main_registers_and_a_watchpoint() {
    let user = counter().display().to_string();
    let script = format!(
        r#"{symbols}break main
continue
bt
echo FS_BASE\n
p $fs_base != 0
set $rax = 0x1234
echo RAX\n
p $rax
p $xmm0.uint128
watch counter
continue
delete
continue
"#,
        symbols = symbols()
    );
    let s = debug("main", Listen::Unix, &["--user", &user], &script, None);
    s.gdb_says("Breakpoint 1, main (argc=1, argv=0x7fffffff");
    s.gdb_says("counter.c");
    // musl set FS for its thread pointer with arch_prctl before main.
    assert_eq!(value_after(&s.gdb, "FS_BASE"), Some(1), "{}", s.gdb);
    assert_eq!(value_after(&s.gdb, "RAX"), Some(0x1234), "{}", s.gdb);
    s.gdb_says("watchpoint 2: counter");
    s.gdb_says("Old value = 0\nNew value = 1");
    s.gdb_says("exited normally");
    assert_eq!(s.vmm_status, Some(0), "{}", s.vmm_stderr);
    assert_eq!(ticks(&s.vmm_stdout), 3, "{}", s.vmm_stdout);
}

#[test]
fn breakpoint_and_watchpoint_in_a_dynamically_linked_pie() {
    // counter.c as plain gcc builds it: a PIE, started by glibc's dynamic linker. Its symbols
    // go at the kernel's PIE base (scripts/gdb does the same for an ET_DYN program).
    let dir = common::scratch_dir("gdb-pie-build");
    let exe = dir.join("counter-pie");
    let out = Command::new("gcc")
        .args(["-g", "-O0", "-o"])
        .arg(&exe)
        .arg(lde::repo_root().join("tests/gdb/counter.c"))
        .output()
        .expect("gcc is required (sudo apt-get install gcc libc6-dev)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let user = exe.display().to_string();
    let script = format!(
        "add-symbol-file {user} -o {:#x}\nbreak main\ncontinue\nwatch counter\ncontinue\ndelete\ncontinue\n",
        abi::elf::PIE_BASE
    );
    let s = debug("pie", Listen::Unix, &["--user", &user], &script, None);
    s.gdb_says("Breakpoint 1, main (argc=1, argv=0x7fffffff");
    s.gdb_says("Old value = 0\nNew value = 1");
    s.gdb_says("exited normally");
    assert_eq!(s.vmm_status, Some(0), "{}", s.vmm_stderr);
    assert_eq!(ticks(&s.vmm_stdout), 3, "{}", s.vmm_stdout);
}

#[test]
fn watchpoint_on_a_kernel_variable() {
    let user = counter().display().to_string();
    // The running process's system-call count (in its heap-allocated slot, reached from the
    // per-CPU `current` pointer: Rust atomics are one-field structs, unwrapped here).
    let script = r#"break kernel::sys::fd::sys_write
continue
delete
python
def inner(v):
    while True:
        t = v.type.strip_typedefs()
        if t.code != gdb.TYPE_CODE_STRUCT or len(t.fields()) != 1:
            return v
        v = v[t.fields()[0]]
current = inner(gdb.parse_and_eval("kernel::percpu::CPU0.current")).dereference()
count = inner(current["stats"]["syscalls"])
gdb.execute("set language c")
gdb.execute("watch -l *(unsigned long *)%d" % int(count.address))
end
continue
bt 8
delete
continue
"#;
    let s = debug("kwatch", Listen::Unix, &["--user", &user], script, None);
    s.gdb_says("atchpoint 2: -location");
    let old = s
        .gdb
        .split("Old value = ")
        .nth(1)
        .and_then(|t| t.lines().next());
    let new = s
        .gdb
        .split("New value = ")
        .nth(1)
        .and_then(|t| t.lines().next());
    let (old, new): (u64, u64) = match (old, new) {
        (Some(o), Some(n)) => (o.trim().parse().unwrap(), n.trim().parse().unwrap()),
        _ => panic!("the watchpoint did not fire:\n{}", s.gdb),
    };
    assert_eq!(new, old + 1, "{}", s.gdb);
    s.gdb_says("syscall_dispatch");
    s.gdb_says("exited normally");
    assert_eq!(s.vmm_status, Some(0), "{}", s.vmm_stderr);
}

#[test]
fn ctrl_c_stops_a_spinning_guest_and_kill_ends_it() {
    let user = format!("{} spin", counter().display());
    let script = format!(
        "{}echo CONTINUING\\n\ncontinue\necho IN_RING3\\n\np $pc < 0x800000000000\n\
         echo COUNTED\\n\np counter != 6\nkill\n",
        symbols()
    );
    let s = debug(
        "ctrlc",
        Listen::Unix,
        &["--user", &user],
        &script,
        Some(CtrlC("CONTINUING")),
    );
    s.gdb_says("received signal SIGINT");
    // It was spinning in ring 3, in main's loop, and had counted on from the three ticks' 6.
    assert_eq!(value_after(&s.gdb, "IN_RING3"), Some(1), "{}", s.gdb);
    assert_eq!(value_after(&s.gdb, "COUNTED"), Some(1), "{}", s.gdb);
    assert_eq!(
        s.vmm_status,
        Some(137),
        "kill: 128 + SIGKILL; {}",
        s.vmm_stderr
    );
    assert!(
        s.vmm_stderr.contains("vmm: gdb killed the guest"),
        "{}",
        s.vmm_stderr
    );
}

#[test]
fn unmapped_addresses_are_errors_and_the_session_goes_on() {
    let user = counter().display().to_string();
    let script = r#"python
def probe(addr):
    try:
        gdb.execute("x/xg %s" % addr, to_string=True)
        print("READ %s" % addr)
    except gdb.MemoryError as e:
        print("MEMORY ERROR %s" % addr)
probe("0xffffffffdead0000")
gdb.execute("break kernel::sys::fd::sys_write")
gdb.execute("continue")
probe("0")
probe("0x0000800000000000")
probe("0xffffffffdead0000")
probe("$sp")
end
delete
continue
"#;
    let s = debug("unmapped", Listen::Unix, &["--user", &user], script, None);
    // Before paging (past the end of RAM), then through the page tables: unmapped, and not
    // canonical; the kernel stack reads.
    assert_eq!(
        s.gdb.matches("MEMORY ERROR 0xffffffffdead0000").count(),
        2,
        "{}",
        s.gdb
    );
    s.gdb_says("MEMORY ERROR 0\n");
    s.gdb_says("MEMORY ERROR 0x0000800000000000");
    s.gdb_says("READ $sp");
    s.gdb_says("exited normally");
    assert_eq!(s.vmm_status, Some(0), "{}", s.vmm_stderr);
}

#[test]
fn detach_over_tcp_and_the_guest_finishes_by_itself() {
    let user = counter().display().to_string();
    let script = "break kernel::sys::fd::sys_write\ncontinue\nbacktrace 3\ndetach\n";
    let s = debug("detach", Listen::Tcp, &["--user", &user], script, None);
    // The stop may be reported in a function inlined at sys_write's first instruction (it
    // is itself inlined into its table entry): the backtrace names sys_write either way.
    s.gdb_says("Breakpoint 1, ");
    s.gdb_says("kernel::sys::fd::sys_write");
    s.gdb_says("[Inferior 1 (process 1) detached]");
    assert_eq!(s.vmm_status, Some(0), "{}", s.vmm_stderr);
    assert_eq!(ticks(&s.vmm_stdout), 3, "{}", s.vmm_stdout);
}
