//! syscalls: exercises every call of our kernel's ABI (docs/conventions.md) and checks each
//! result, one line per check; exits (with `exit`, 60) 0 iff all passed. On a Linux host it runs
//! too: the checks whose answer differs there (our own `spawn`, `int 0x80`, which is Linux's i386
//! ABI, and ioctl on a stdout that is not a terminal there) are reported as skipped.
#![no_std]
#![no_main]

use lde_user::syscall::{int80_syscall6, nr, syscall0, syscall2, syscall3};
use lde_user::*;

lde_user::entry!(main);

struct Checks {
    passed: u32,
    failed: u32,
}

impl Checks {
    fn check(&mut self, what: &str, ok: bool, detail: core::fmt::Arguments) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        println!(
            "syscalls: {what}: {} ({detail})",
            if ok { "ok" } else { "FAIL" }
        );
    }

    fn skip(&mut self, what: &str, why: &str) {
        println!("syscalls: {what}: skipped ({why})");
    }
}

const KERNEL_PTR: usize = 0xffff_ffff_8010_0000;

fn main(_args: Args) -> i32 {
    let mut c = Checks {
        passed: 0,
        failed: 0,
    };

    // Where do we run? On Linux our own call (1000) is ENOSYS, and `int 0x80` is the i386 ABI,
    // where 39 is mkdir: with rdi = 0 it fails harmlessly with EFAULT instead of returning a pid.
    let probe = spawn(c"no-such-program", &[]);
    // SAFETY: getpid on our kernel, mkdir(NULL) = -EFAULT on Linux; no memory touched.
    let int80_pid = unsafe { int80_syscall6(nr::GETPID, 0, 0, 0, 0, 0, 0) };
    let linux = probe == Err(Errno::ENOSYS) && int80_pid == -(Errno::EFAULT.0 as isize);
    if linux {
        c.skip(
            "spawn unknown program",
            "spawn is ENOSYS: on Linux, not our kernel",
        );
    } else {
        c.check(
            "spawn unknown program",
            probe == Err(Errno::ENOENT),
            format_args!("{probe:?}"),
        );
    }

    // write (1) and writev (20).
    let line = b"syscalls: write: this line written by write\n";
    let r = write(1, line);
    c.check("write", r == Ok(line.len()), format_args!("{r:?}"));
    let parts: [&[u8]; 3] = [b"syscalls: writev: ", b"this line in ", b"three pieces\n"];
    let iov = parts.map(IoVec::new);
    let r = writev(1, &iov);
    let total = parts.iter().map(|p| p.len()).sum();
    c.check(
        "writev",
        r == Ok(total),
        format_args!("{r:?}, expected {total}"),
    );
    let r = write(99, b"x");
    c.check(
        "write to a closed fd",
        r == Err(Errno::EBADF),
        format_args!("{r:?}"),
    );

    // read (0): an empty read returns at once; a kernel buffer is refused before any waiting.
    let r = read(0, &mut []);
    c.check("read of 0 bytes", r == Ok(0), format_args!("{r:?}"));
    // SAFETY: the kernel must refuse to write to a kernel address; none of our memory is touched.
    let r = Errno::from_ret(unsafe { syscall3(nr::READ, 0, KERNEL_PTR, 16) });
    c.check(
        "read into a kernel pointer",
        r == Err(Errno::EFAULT),
        format_args!("{r:?}"),
    );

    // ioctl (16): the console is a terminal, in canonical mode when nobody changed it.
    let mut termios = [0u8; 64];
    // SAFETY: TCGETS writes a struct termios (36 bytes) into our 64-byte buffer.
    let r = unsafe { ioctl(1, 0x5401, termios.as_mut_ptr() as usize) };
    if linux && r == Err(Errno::ENOTTY) {
        c.skip("ioctl(TCGETS)", "stdout is not a terminal on this host");
    } else {
        let lflag = u32::from_le_bytes([termios[12], termios[13], termios[14], termios[15]]);
        c.check(
            "ioctl(TCGETS)",
            r == Ok(0) && lflag & abi::termios::ICANON != 0,
            format_args!("{r:?}, c_lflag {lflag:#o}"),
        );
    }

    // Unknown numbers, including ones that would index far past any table.
    for n in [999usize, 0x7fff_ffff, usize::MAX] {
        // SAFETY: an unknown call must do nothing.
        let r = Errno::from_ret(unsafe { syscall0(n) });
        c.check(
            "unknown number",
            r == Err(Errno::ENOSYS),
            format_args!("{n:#x}: {r:?}"),
        );
    }

    // sched_yield (24).
    // SAFETY: no arguments.
    let r = Errno::from_ret(unsafe { syscall0(nr::SCHED_YIELD) });
    c.check("sched_yield", r == Ok(0), format_args!("{r:?}"));

    // getpid (39), and the same call through int 0x80 (made above).
    let pid = getpid();
    c.check("getpid", pid > 0, format_args!("{pid}"));
    if linux {
        c.skip(
            "int 0x80 getpid",
            "int 0x80 is the i386 ABI on Linux: mkdir(NULL) = -EFAULT",
        );
    } else {
        c.check(
            "int 0x80 getpid",
            int80_pid == pid as isize,
            format_args!("{int80_pid}, syscall says {pid}"),
        );
        let line = b"syscalls: int 0x80 write: this line written through int 0x80\n";
        // SAFETY: write reads our own buffer.
        let r =
            unsafe { int80_syscall6(nr::WRITE, 1, line.as_ptr() as usize, line.len(), 0, 0, 0) };
        c.check(
            "int 0x80 write",
            r == line.len() as isize,
            format_args!("{r}"),
        );
    }

    // clock_gettime (228): monotonic increases, realtime works, bad clock / pointer refused.
    let t1 = clock_gettime(CLOCK_MONOTONIC);
    for i in 0..2_000_000u64 {
        core::hint::black_box(i);
    }
    let t2 = clock_gettime(CLOCK_MONOTONIC);
    let ok = matches!((t1, t2), (Ok(a), Ok(b)) if b > a);
    c.check(
        "clock_gettime(MONOTONIC) increases",
        ok,
        format_args!("{t1:?} then {t2:?}"),
    );
    let r = clock_gettime(CLOCK_REALTIME);
    c.check("clock_gettime(REALTIME)", r.is_ok(), format_args!("{r:?}"));
    let r = clock_gettime(99);
    c.check(
        "clock_gettime(bad clock)",
        r == Err(Errno::EINVAL),
        format_args!("{r:?}"),
    );
    // SAFETY: the kernel must refuse to write to a kernel address.
    let r = Errno::from_ret(unsafe { syscall2(nr::CLOCK_GETTIME, 1, KERNEL_PTR) });
    c.check(
        "clock_gettime(kernel pointer)",
        r == Err(Errno::EFAULT),
        format_args!("{r:?}"),
    );

    // nanosleep (35): sleeps at least as long as asked.
    let start = monotonic_ns();
    let r = sleep_ms(10);
    let slept = monotonic_ns().saturating_sub(start);
    c.check(
        "nanosleep 10 ms",
        r.is_ok() && slept >= 10_000_000,
        format_args!("{r:?}, {slept} ns"),
    );

    // arch_prctl (158): set FS to a block whose first word points to itself, as libc's TLS does.
    let mut block: [usize; 2] = [0, 0x1234_5678_9abc_def0];
    block[0] = block.as_ptr() as usize;
    let r = arch_set_fs(block.as_ptr() as usize);
    let (fs0, fs8): (usize, usize);
    // SAFETY: FS now points at `block` (16 bytes, alive here): both reads are inside it. If the
    // call failed, FS is whatever it was (0): the read faults and the kernel reports it.
    unsafe {
        core::arch::asm!("mov {}, fs:[0]", "mov {}, fs:[8]", out(reg) fs0, out(reg) fs8,
                         options(readonly, nostack));
    }
    c.check(
        "arch_prctl(ARCH_SET_FS) then %fs:0",
        r.is_ok() && fs0 == block[0] && fs8 == block[1],
        format_args!("{r:?}, fs:0 = {fs0:#x}, fs:8 = {fs8:#x}"),
    );
    // SAFETY: an unknown arch_prctl code must do nothing.
    let r = Errno::from_ret(unsafe { syscall2(nr::ARCH_PRCTL, 0x9999, 0) });
    c.check(
        "arch_prctl(bad code)",
        r == Err(Errno::EINVAL),
        format_args!("{r:?}"),
    );

    // set_tid_address (218): returns the thread id, which is the pid in a one-thread process.
    static mut TID: i32 = 0;
    // SAFETY: TID is a static, writable for the whole life of the process.
    let tid = unsafe { set_tid_address(&raw mut TID) };
    c.check(
        "set_tid_address",
        tid == pid,
        format_args!("{tid}, pid {pid}"),
    );

    // wait4 (61) with no children.
    let r = wait4(-1);
    c.check(
        "wait4 without children",
        r == Err(Errno::ECHILD),
        format_args!("{r:?}"),
    );

    println!("syscalls: {} checks passed, {} failed", c.passed, c.failed);
    // exit (60) rather than returning from main (exit_group, 231): both get used.
    exit(if c.failed == 0 { 0 } else { 1 })
}
