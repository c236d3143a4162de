//! The virtual machine every side agrees on: I/O ports, the exit statuses, the CPUID leaves our
//! VMM adds, and the PVH boot structures (docs/conventions.md says what each is for).

/// I/O ports.
/// The kernel's release, as uname(2) and /proc/version say it: a Linux 6.1 to the C libraries,
/// which check it for features.
pub const KERNEL_RELEASE: &str = "6.1.0-lde";

pub mod port {
    /// The 16550 UART (COM1): eight registers from here, IRQ 4.
    pub const COM1: u16 = 0x3f8;
    pub const COM1_IRQ: u8 = 4;
    /// A byte written here powers the VM off with that byte as the VMM's exit status (QEMU's
    /// isa-debug-exit at the same port exits with `(v << 1) | 1` instead).
    pub const EXIT: u16 = 0xf4;
    /// A port our VMM answers with nothing, first on its bus: `vmm bench` times a VM exit here.
    pub const BENCH: u16 = 0xf5;
    /// The console's status, read by the guest (`console_status`); a VMM without it answers
    /// 0xff, which means "no status": input never ends.
    pub const CONSOLE_STATUS: u16 = 0xf6;
    /// Entropy: a read returns random bytes from the host (our VMM); all-ones elsewhere.
    pub const ENTROPY: u16 = 0xf7;
    /// The host terminal's window size, read by the guest as one 4-byte `in`: rows in bits
    /// 0-15, columns in bits 16-31; 0 when the host has no terminal (as Linux's serial console
    /// reports). Reading it clears `console_status::WINSIZE_CHANGED`. A VMM without it answers
    /// all ones: no size.
    pub const CONSOLE_WINSIZE: u16 = 0xf8;
    /// `trace=events`: a 4-byte write of the event buffer's physical address (abi::trace).
    pub const TRACE_BUFFER: u16 = 0xf9;
    /// `trace=events`: a write here says the event buffer is full (abi::trace).
    pub const TRACE_FLUSH: u16 = 0xfa;
}

/// The bits of the console-status port.
pub mod console_status {
    /// The host's input has ended, and every byte before its end has reached the UART.
    pub const INPUT_ENDED: u8 = 1;
    /// The window size changed since the guest last read `port::CONSOLE_WINSIZE`. The VMM
    /// also raises COM1's interrupt when it sets this bit, so the kernel hears of it at once.
    pub const WINSIZE_CHANGED: u8 = 2;
    /// The host's input is a terminal (the VMM put it in raw mode): the guest echoes what is
    /// typed. Input from a pipe or a file is not echoed, or it would appear twice.
    pub const HOST_TERMINAL: u8 = 4;
}

/// Exit statuses: the VMM's own, and the two our kernel writes for itself.
pub mod exit_status {
    /// VMM internal error.
    pub const VMM_INTERNAL: u8 = 1;
    /// Bad command line.
    pub const USAGE: u8 = 2;
    /// Bad kernel image or user program.
    pub const BAD_IMAGE: u8 = 3;
    /// KVM unavailable.
    pub const KVM_UNAVAILABLE: u8 = 4;
    /// The guest crashed (triple fault, failed entry, KVM internal error).
    pub const GUEST_CRASH: u8 = 5;
    /// `--timeout` expired (as coreutils' timeout).
    pub const TIMEOUT: u8 = 124;
    /// The user left with the console's escape key, Ctrl-A x: 128 + SIGINT, as a shell
    /// reports an interrupted program.
    pub const QUIT_KEY: u8 = 130;
    /// Written by our kernel: a kernel panic.
    pub const KERNEL_PANIC: u8 = 250;
    /// Written by our kernel: the boot failed (bad boot module, out of memory, nothing to run).
    pub const BOOT_FAILURE: u8 = 251;
    /// A ring-3 process killed by signal `sig` ends with this status, as in a shell.
    pub const fn killed_by(sig: u32) -> u32 {
        128 + sig
    }
}

/// CPUID leaves the VMM provides beyond what KVM reports.
pub mod cpuid {
    /// "KVMKVMKVM"; EAX = the highest hypervisor leaf (at least `TIMING`).
    pub const HYPERVISOR_BASE: u32 = 0x4000_0000;
    /// EAX = TSC frequency in kHz, EBX = LAPIC timer (bus) frequency in kHz.
    pub const TIMING: u32 = 0x4000_0010;
    /// Leaf 0x15 when the TSC frequency in Hz fits in 32 bits: EAX = 1, EBX = 1, ECX = TSC Hz.
    pub const TSC: u32 = 0x15;
}

/// The PVH boot protocol (Xen's arch-x86/hvm/start_info.h), as the VMM writes it and the kernel
/// reads it. EBX at the 32-bit entry holds the guest-physical address of `StartInfo`.
pub mod pvh {
    /// ELF note ("Xen", this type) holding the 32-bit physical entry point.
    pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
    pub const START_INFO_MAGIC: u32 = 0x336e_c578;
    pub const E820_RAM: u32 = 1;
    pub const E820_RESERVED: u32 = 2;

    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct StartInfo {
        pub magic: u32,
        pub version: u32,
        pub flags: u32,
        pub nr_modules: u32,
        pub modlist_paddr: u64,
        pub cmdline_paddr: u64,
        pub rsdp_paddr: u64,
        pub memmap_paddr: u64,
        pub memmap_entries: u32,
        pub reserved: u32,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct MemmapEntry {
        pub addr: u64,
        pub size: u64,
        pub kind: u32,
        pub reserved: u32,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct ModlistEntry {
        pub paddr: u64,
        pub size: u64,
        pub cmdline_paddr: u64,
        pub reserved: u64,
    }

    const _: () = assert!(core::mem::size_of::<StartInfo>() == 56);
    const _: () = assert!(core::mem::size_of::<MemmapEntry>() == 24);
    const _: () = assert!(core::mem::size_of::<ModlistEntry>() == 32);
}
