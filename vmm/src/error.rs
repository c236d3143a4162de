//! Every failure the VMM can report, typed, and the process exit status each one maps to
//! (the table in docs/conventions.md). Library code returns these; `main.rs` formats them as
//! one line `vmm: error: ...`.

use std::path::PathBuf;

/// Exit statuses the VMM reserves for its own failures (0-255 otherwise come from the guest).
pub mod status {
    pub use abi::machine::exit_status::{
        BAD_IMAGE, GUEST_CRASH, KVM_UNAVAILABLE, QUIT_KEY, TIMEOUT, USAGE, VMM_INTERNAL as INTERNAL,
    };
}

/// A kernel image or boot module that cannot be booted. Status 3.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{}: no such file", .0.display())]
    Missing(PathBuf),
    #[error("{}: is a directory, not a file", .0.display())]
    Directory(PathBuf),
    #[error("{}: not a regular file (a device, a FIFO or a socket)", .0.display())]
    NotRegular(PathBuf),
    #[error("{}: cannot read: {}", .0.display(), .1)]
    Unreadable(PathBuf, std::io::Error),
    /// Not an ELF64 x86-64 image, or a malformed one (the checks are `abi::elf`'s).
    #[error("{}: {}", .0.display(), .1)]
    Elf(PathBuf, abi::elf::ElfError),
    /// A valid ELF, but not a program our kernel can run.
    #[error("{}: {}", .0.display(), .1)]
    Program(PathBuf, abi::elf::ProgramError),
    /// A dynamically linked program whose program interpreter cannot be packed.
    #[error("{}: its program interpreter {} {} (or link the program with -static)", .0.display(), .1, .2)]
    Interpreter(PathBuf, String, String),
    /// A shared library a dynamically linked program needs is nowhere the host would look.
    #[error("{}: needs {} (for {}), which is not in its RUNPATH, /etc/ld.so.conf's directories \
             or /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib",
             .0.display(), .1, .2)]
    MissingLibrary(PathBuf, String, String),
    #[error("{}: malformed ELF: {}", .0.display(), .1)]
    Malformed(PathBuf, String),
    #[error("{}: no PVH entry point (Xen ELF note type 18, XEN_ELFNOTE_PHYS32_ENTRY); \
             only PVH kernels can be booted", .0.display())]
    NoPvhNote(PathBuf),
    #[error("{}: segment {} at {:#x}..{:#x} is outside guest RAM usable for the kernel \
             (1 MiB..{:#x}{})", .0.display(), .1, .2, .3, .4,
             if *.3 > *.4 && *.2 >= 0x10_0000 { "; try a larger --memory" } else { "" })]
    SegmentOutsideRam(PathBuf, usize, u64, u64, u64),
    #[error("{}: PVH entry point {:#x} is not inside a loaded segment", .0.display(), .1)]
    EntryOutsideSegments(PathBuf, u64),
    #[error("{}: linux-loader could not load it: {}", .0.display(), .1)]
    Loader(PathBuf, String),
    #[error(
        "boot module of {0} bytes does not fit in guest RAM above the kernel (end {1:#x}); \
             try a larger --memory"
    )]
    ModuleTooBig(usize, u64),
    #[error("kernel command line is too long ({0} bytes, at most {1})")]
    CmdlineTooLong(usize, usize),
    #[error("kernel command line contains a NUL byte")]
    CmdlineNul,
    #[error("--user {0:?}: empty program specification")]
    EmptyUserSpec(String),
    #[error("--user {0:?}: a quote is not closed (it is split as a POSIX shell splits words)")]
    UnbalancedUserSpec(String),
    #[error("--user {0:?}: an argument holds a newline, which the START manifest cannot carry")]
    UnpassableArgument(String),
    #[error("--shell: the embedded program archive cannot be used: {0}")]
    BadDefaultArchive(String),
    #[error("--user: two different files are named {0:?} (the archive finds programs by name)")]
    DuplicateProgram(String),
    #[error("--file {0:?}: {1}")]
    BadFileSpec(String, String),
    #[error("--file: two files would be {0} in the guest")]
    DuplicateFile(String),
    #[error(
        "this vmm was built without a guest kernel (guest/kernel was not built); \
             pass a KERNEL path"
    )]
    NoEmbeddedKernel,
}

/// /dev/kvm or one of its capabilities is not usable. Status 4.
#[derive(Debug, thiserror::Error)]
pub enum KvmUnavailable {
    #[error(
        "/dev/kvm does not exist: load the KVM module (modprobe kvm_intel or kvm_amd) \
             or run on a machine with virtualization enabled"
    )]
    NoDevice,
    #[error(
        "/dev/kvm: permission denied: add your user to the kvm group \
             (sudo usermod -aG kvm $USER, then log in again) or sudo chmod 666 /dev/kvm"
    )]
    PermissionDenied,
    #[error("/dev/kvm: cannot open: {0}")]
    Open(kvm_ioctls::Error),
    #[error("KVM API version {0}, 12 needed")]
    ApiVersion(i32),
    #[error("KVM lacks a required capability: {0}")]
    MissingCap(&'static str),
}

/// What can go wrong setting up a gdb session.
#[derive(Debug, thiserror::Error)]
pub enum GdbError {
    #[error("--gdb {0}: cannot listen: {1}")]
    Listen(String, std::io::Error),
    #[error("--gdb: accepting gdb's connection failed: {0}")]
    Accept(std::io::Error),
    #[error("--gdb: {0} failed: {1}")]
    Kick(&'static str, std::io::Error),
    #[error("--gdb: this KVM cannot debug guests (no KVM_CAP_SET_GUEST_DEBUG)")]
    NoGuestDebug,
}

/// What went wrong, with the exit status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Kvm(#[from] KvmUnavailable),
    /// `--gdb` could not be set up (listening, accepting, the Ctrl-C signal, KVM's support).
    #[error(transparent)]
    Gdb(#[from] GdbError),
    /// A KVM ioctl failed after KVM was found usable: a VMM bug or a host problem.
    #[error("{0}: {1}")]
    KvmIoctl(&'static str, kvm_ioctls::Error),
    #[error("guest memory: {0}")]
    Memory(String),
    #[error("{0}")]
    Internal(String),
    /// A command-line value clap could not check (status 2, as clap's own errors).
    #[error("{0}")]
    Usage(String),
    /// The guest crashed; the string says how and what is known (RIP, registers).
    #[error("guest crashed: {0}")]
    GuestCrash(String),
    /// `--timeout` expired; the f64 is the limit in seconds.
    #[error("guest did not finish within {0} s")]
    Timeout(f64),
    /// The user typed Ctrl-A x.
    #[error("stopped with Ctrl-A x")]
    Quit,
}

impl Error {
    /// The process exit status for this error (docs/conventions.md, "Exit statuses").
    pub fn exit_status(&self) -> u8 {
        match self {
            Error::Image(_) => status::BAD_IMAGE,
            Error::Kvm(_) => status::KVM_UNAVAILABLE,
            Error::Gdb(GdbError::Listen(..)) => status::USAGE,
            Error::Gdb(GdbError::NoGuestDebug) => status::KVM_UNAVAILABLE,
            Error::Gdb(_) => status::INTERNAL,
            Error::KvmIoctl(..) | Error::Memory(_) | Error::Internal(_) => status::INTERNAL,
            Error::Usage(_) => status::USAGE,
            Error::GuestCrash(_) => status::GUEST_CRASH,
            Error::Timeout(_) => status::TIMEOUT,
            Error::Quit => status::QUIT_KEY,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for mapping a failed KVM ioctl to `Error::KvmIoctl` with what was being done.
pub(crate) fn ioctl(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Error {
    move |e| Error::KvmIoctl(what, e)
}
