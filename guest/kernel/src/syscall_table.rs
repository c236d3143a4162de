//! The system-call table: Linux x86-64 numbers, so ordinary static programs run unchanged, plus
//! two calls of our own (`spawn`, 1000, and `bench`, 1001). The handlers are in sys/, by family.

use crate::sys::{
    bench, fd, file_times, fs, futex, info, memory, poll, process, raw, signal, stat, sys_defer,
    time,
};
use crate::trap_frame::TrapFrame;
use abi::syscall::nr;
use abi::Errno;

/// What the dispatcher calls: runs the call and leaves its result (or -errno) in the frame's
/// rax, the raw Linux convention. Storing it here lets the dispatcher (trap_entry.rs) be a call
/// through the table and nothing more; what the exit must do next is in `PerCpu::work`.
/// `extern "C"`: the stubs call it from assembly, with the frame in RDI.
pub type Handler = extern "C" fn(&mut TrapFrame);
pub const TABLE_LEN: usize = nr::BENCH + 1;

/// Builds the table: each `number => handler` entry becomes a `Handler` that converts the
/// handler's `SysResult`; numbers with no entry get ENOSYS.
macro_rules! syscall_table {
    ($($nr:expr => $handler:path),* $(,)?) => {{
        let mut t: [Handler; TABLE_LEN] = [sys_nosys; TABLE_LEN];
        $(
            t[$nr] = {
                extern "C" fn entry(f: &mut TrapFrame) {
                    f.rax = raw($handler(f)) as u64;
                }
                entry
            };
        )*
        t
    }};
}

/// Indexed by system-call number.
pub static SYSCALL_TABLE: [Handler; TABLE_LEN] = syscall_table! {
    nr::READ => fd::sys_read,
    nr::WRITE => fd::sys_write,
    nr::CLOSE => fd::sys_close,
    nr::OPEN => fs::sys_open,
    nr::OPENAT => fs::sys_openat,
    nr::CREAT => fs::sys_creat,
    nr::STAT => stat::sys_stat,
    nr::FSTAT => stat::sys_fstat,
    nr::LSTAT => stat::sys_lstat,
    nr::NEWFSTATAT => stat::sys_newfstatat,
    nr::STATX => stat::sys_statx,
    nr::POLL => poll::sys_poll,
    nr::PPOLL => poll::sys_ppoll,
    nr::SELECT => poll::sys_select,
    nr::PSELECT6 => poll::sys_pselect6,
    nr::LSEEK => fs::sys_lseek,
    nr::PREAD64 => fs::sys_pread64,
    nr::PWRITE64 => fs::sys_pwrite64,
    nr::ACCESS => fs::sys_access,
    nr::FACCESSAT => fs::sys_faccessat,
    nr::FACCESSAT2 => fs::sys_faccessat2,
    nr::SENDFILE => fs::sys_sendfile,
    nr::FSYNC => fs::sys_fsync,
    nr::FDATASYNC => fs::sys_fsync,
    nr::TRUNCATE => fs::sys_truncate,
    nr::FTRUNCATE => fs::sys_ftruncate,
    nr::GETDENTS64 => fs::sys_getdents64,
    nr::GETCWD => fs::sys_getcwd,
    nr::CHDIR => fs::sys_chdir,
    nr::FCHDIR => fs::sys_fchdir,
    nr::RENAME => fs::sys_rename,
    nr::RENAMEAT => fs::sys_renameat,
    nr::RENAMEAT2 => fs::sys_renameat2,
    nr::MKDIR => fs::sys_mkdir,
    nr::MKDIRAT => fs::sys_mkdirat,
    nr::RMDIR => fs::sys_rmdir,
    nr::UNLINK => fs::sys_unlink,
    nr::UNLINKAT => fs::sys_unlinkat,
    nr::READLINK => fs::sys_readlink,
    nr::READLINKAT => fs::sys_readlinkat,
    nr::CHMOD => fs::sys_chmod,
    nr::FCHMOD => fs::sys_fchmod,
    nr::FCHMODAT => fs::sys_fchmodat,
    nr::CHOWN => fs::sys_chown,
    nr::LCHOWN => fs::sys_lchown,
    nr::FCHOWN => fs::sys_fchown,
    nr::FCHOWNAT => fs::sys_fchownat,
    nr::STATFS => fs::sys_statfs,
    nr::FSTATFS => fs::sys_fstatfs,
    nr::LINK => fs::sys_link,
    nr::LINKAT => fs::sys_linkat,
    nr::SYMLINK => fs::sys_symlink,
    nr::SYMLINKAT => fs::sys_symlinkat,
    nr::SYSLOG => info::sys_syslog,
    nr::UTIMENSAT => file_times::sys_utimensat,
    nr::UTIMES => file_times::sys_utimes,
    nr::FUTIMESAT => file_times::sys_futimesat,
    nr::UTIME => file_times::sys_utime,
    nr::UMASK => fs::sys_umask,
    nr::MMAP => memory::sys_mmap,
    nr::MPROTECT => memory::sys_mprotect,
    nr::MUNMAP => memory::sys_munmap,
    nr::BRK => memory::sys_brk,
    nr::MREMAP => memory::sys_mremap,
    nr::MSYNC => memory::sys_nothing,
    nr::MADVISE => memory::sys_madvise,
    nr::MLOCK => memory::sys_nothing,
    nr::MUNLOCK => memory::sys_nothing,
    nr::MLOCKALL => memory::sys_nothing,
    nr::MUNLOCKALL => memory::sys_nothing,
    nr::RT_SIGACTION => signal::sys_rt_sigaction,
    nr::RT_SIGPROCMASK => signal::sys_rt_sigprocmask,
    nr::RT_SIGRETURN => sys_defer,
    nr::IOCTL => fd::sys_ioctl,
    nr::READV => fd::sys_readv,
    nr::WRITEV => fd::sys_writev,
    nr::PIPE => fd::sys_pipe,
    nr::SCHED_YIELD => process::sys_sched_yield,
    nr::DUP => fd::sys_dup,
    nr::DUP2 => fd::sys_dup2,
    nr::PAUSE => signal::sys_pause,
    nr::NANOSLEEP => time::sys_nanosleep,
    nr::GETITIMER => signal::sys_getitimer,
    nr::ALARM => signal::sys_alarm,
    nr::SETITIMER => signal::sys_setitimer,
    nr::GETPID => process::sys_getpid,
    nr::CLONE => sys_defer,
    nr::FORK => sys_defer,
    nr::VFORK => sys_defer,
    nr::EXECVE => sys_defer,
    nr::EXIT => process::sys_exit,
    nr::WAIT4 => process::sys_wait4,
    nr::KILL => process::sys_kill,
    nr::FCNTL => fd::sys_fcntl,
    nr::GETPPID => process::sys_getppid,
    nr::GETPGRP => process::sys_getpgrp,
    nr::SETSID => process::sys_setsid,
    nr::SETPGID => process::sys_setpgid,
    nr::GETPGID => process::sys_getpgid,
    nr::GETSID => process::sys_getsid,
    nr::RT_SIGPENDING => signal::sys_rt_sigpending,
    nr::RT_SIGSUSPEND => signal::sys_rt_sigsuspend,
    nr::SIGALTSTACK => signal::sys_sigaltstack,
    nr::ARCH_PRCTL => memory::sys_arch_prctl,
    nr::GETTID => process::sys_gettid,
    nr::TKILL => process::sys_tkill,
    nr::SET_TID_ADDRESS => process::sys_set_tid_address,
    nr::CLOCK_GETTIME => time::sys_clock_gettime,
    nr::CLOCK_GETRES => time::sys_clock_getres,
    nr::CLOCK_NANOSLEEP => time::sys_clock_nanosleep,
    nr::GETTIMEOFDAY => time::sys_gettimeofday,
    nr::TIME => time::sys_time,
    nr::UNAME => info::sys_uname,
    nr::GETRANDOM => info::sys_getrandom,
    nr::PRLIMIT64 => info::sys_prlimit64,
    nr::GETRLIMIT => info::sys_getrlimit,
    nr::SETRLIMIT => info::sys_setrlimit,
    nr::GETUID => info::sys_zero,
    nr::GETEUID => info::sys_zero,
    nr::GETGID => info::sys_zero,
    nr::GETEGID => info::sys_zero,
    nr::GETGROUPS => info::sys_zero,
    nr::SETFSUID => info::sys_zero,
    nr::SETFSGID => info::sys_zero,
    nr::SETUID => info::sys_set_id,
    nr::SETGID => info::sys_set_id,
    nr::SETREUID => info::sys_set_ids,
    nr::SETREGID => info::sys_set_ids,
    nr::SETRESUID => info::sys_set_ids,
    nr::SETRESGID => info::sys_set_ids,
    nr::GETRESUID => info::sys_get_res_ids,
    nr::GETRESGID => info::sys_get_res_ids,
    nr::SETGROUPS => info::sys_setgroups,
    nr::SYSINFO => info::sys_sysinfo,
    nr::TIMES => info::sys_times,
    nr::GETRUSAGE => info::sys_getrusage,
    nr::SCHED_GETAFFINITY => info::sys_sched_getaffinity,
    nr::SCHED_SETAFFINITY => info::sys_sched_setaffinity,
    nr::SCHED_GETPARAM => info::sys_sched_getparam,
    nr::SCHED_SETPARAM => info::sys_sched_setparam,
    nr::SCHED_GETSCHEDULER => info::sys_sched_getscheduler,
    nr::SCHED_SETSCHEDULER => info::sys_sched_setscheduler,
    nr::SCHED_GET_PRIORITY_MAX => info::sys_sched_get_priority_max,
    nr::SCHED_GET_PRIORITY_MIN => info::sys_sched_get_priority_min,
    nr::SCHED_RR_GET_INTERVAL => info::sys_sched_rr_get_interval,
    nr::GETPRIORITY => info::sys_getpriority,
    nr::SETPRIORITY => info::sys_setpriority,
    nr::GETCPU => info::sys_getcpu,
    nr::PRCTL => info::sys_prctl,
    nr::MEMBARRIER => info::sys_membarrier,
    nr::EXIT_GROUP => process::sys_exit_group,
    nr::FUTEX => futex::sys_futex,
    nr::SET_ROBUST_LIST => futex::sys_set_robust_list,
    nr::GET_ROBUST_LIST => futex::sys_get_robust_list,
    nr::TGKILL => process::sys_tgkill,
    nr::WAITID => process::sys_waitid,
    nr::DUP3 => fd::sys_dup3,
    nr::PIPE2 => fd::sys_pipe2,
    nr::SPAWN => process::sys_spawn,
    nr::BENCH => bench::sys_bench,
};

pub extern "C" fn sys_nosys(f: &mut TrapFrame) {
    f.rax = Errno::ENOSYS.ret() as u64;
}
