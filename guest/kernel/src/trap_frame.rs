//! What a trap leaves on the kernel stack: the interrupted task's registers, as the entry stubs
//! (trap_entry.rs) and the CPU lay them out, and the vector numbers of the trap table.

/// `int 0x80`: the system-call gate (DPL 3).
pub const SYSCALL_VECTOR: u64 = 0x80;
/// The LAPIC timer (the trace records say so: abi::trace).
pub const TIMER_VECTOR: u8 = abi::trace::TIMER_VECTOR;
/// The console's interrupt: the UART's (IRQ 4) and the virtio console's (IRQ 5), both through
/// the IOAPIC.
pub const CONSOLE_VECTOR: u8 = abi::trace::CONSOLE_VECTOR;
/// The LAPIC's spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u8 = abi::trace::SPURIOUS_VECTOR;

pub const DIVIDE_ERROR: u64 = 0;
pub const BREAKPOINT: u64 = 3;
pub const INVALID_OPCODE: u64 = 6;
pub const GENERAL_PROTECTION: u64 = 13;
pub const PAGE_FAULT: u64 = 14;

/// The registers of an interrupted task. The six callee-saved ones at the bottom (r15..rbx) are
/// valid only while the task is switched out, or on the stubs that save all registers
/// (trap_entry.rs says which).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error: u64,
    // Pushed by the CPU (or by `syscall_entry`):
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    /// Ring 3 (we use no rings 1 and 2, so any nonzero privilege level means ring 3).
    #[inline(always)]
    pub fn user_mode(&self) -> bool {
        self.cs & 3 != 0
    }
}

/// The names of the 32 exceptions, for kill lines and panics.
pub const EXCEPTION_NAMES: [&str; 32] = [
    "divide error",
    "debug",
    "NMI",
    "breakpoint",
    "overflow",
    "bound range exceeded",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor segment overrun",
    "invalid TSS",
    "segment not present",
    "stack-segment fault",
    "general protection fault",
    "page fault",
    "reserved",
    "x87 floating-point error",
    "alignment check",
    "machine check",
    "SIMD floating-point error",
    "virtualization exception",
    "control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "hypervisor injection",
    "VMM communication",
    "security exception",
    "reserved",
];
