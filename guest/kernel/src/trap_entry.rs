//! Trap entry and exit: the only way into the kernel after boot, and `trap_return`, the only way
//! back out to ring 3 (OSTEP's "trap" and "return-from-trap").
//!
//! Every entry builds the same `TrapFrame` on the running task's kernel stack: the CPU pushes
//! SS, RSP, RFLAGS, CS, RIP (and an error code for some exceptions); the stub pushes a zero error
//! code where the CPU did not, the vector number, and then the general registers. `trap_dispatch`
//! (trap.rs) gets a pointer to it. `trap_return` pops it and `iretq`s.
//!
//! `syscall_entry` is where the `syscall` instruction lands on a CPU that delivers it natively
//! (LSTAR). It builds the same frame by hand, as vector 0x80, so `int 0x80` and `syscall` share
//! one dispatcher and one return path. (kvm_pvm never runs it in ring 0: there a `syscall` arrives
//! as a page fault at this address, see trap.rs.)

use crate::trap::SYSCALL_VECTOR;

/// The registers of an interrupted task, as the entry stubs leave them on its kernel stack.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
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
    pub fn user_mode(&self) -> bool {
        self.cs & 3 == 3
    }
}

/// The vectors that have an entry stub, in the order of `trap_stubs`.
pub const STUB_VECTORS: [u8; 35] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31, 32, 0x80, 0xff,
];

extern "C" {
    /// Addresses of the entry stubs, one per entry of `STUB_VECTORS`.
    pub static trap_stubs: [u64; 35];
    pub fn syscall_entry();
}

core::arch::global_asm!(
    r#"
    .macro STUB_NOERR n
    .balign 16
trap_stub_\n:
    pushq $0
    pushq $\n
    jmp trap_common
    .endm

    .macro STUB_ERR n
    .balign 16
trap_stub_\n:
    pushq $\n
    jmp trap_common
    .endm

    .section .text
    STUB_NOERR 0
    STUB_NOERR 1
    STUB_NOERR 2
    STUB_NOERR 3
    STUB_NOERR 4
    STUB_NOERR 5
    STUB_NOERR 6
    STUB_NOERR 7
    STUB_ERR   8
    STUB_NOERR 9
    STUB_ERR   10
    STUB_ERR   11
    STUB_ERR   12
    STUB_ERR   13
    STUB_ERR   14
    STUB_NOERR 15
    STUB_NOERR 16
    STUB_ERR   17
    STUB_NOERR 18
    STUB_NOERR 19
    STUB_NOERR 20
    STUB_ERR   21
    STUB_NOERR 22
    STUB_NOERR 23
    STUB_NOERR 24
    STUB_NOERR 25
    STUB_NOERR 26
    STUB_NOERR 27
    STUB_NOERR 28
    STUB_ERR   29
    STUB_ERR   30
    STUB_NOERR 31
    STUB_NOERR 32
    STUB_NOERR 128
    STUB_NOERR 255

    .balign 16
trap_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    call trap_dispatch
    .global trap_return
trap_return:
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp
    iretq

    /* `syscall`: RCX = user RIP, R11 = user RFLAGS, RSP still the user's, IF cleared by SFMASK.
       One CPU, so a static scratch slot can hold the user RSP until it is in the frame. */
    .balign 16
    .global syscall_entry
syscall_entry:
    mov %rsp, syscall_user_rsp(%rip)
    mov TSS+4(%rip), %rsp
    pushq ${user_data}
    pushq syscall_user_rsp(%rip)
    push %r11
    pushq ${user_code}
    push %rcx
    pushq $0
    pushq ${syscall_vector}
    jmp trap_common

    .section .bss
    .balign 8
syscall_user_rsp:
    .quad 0

    .section .rodata
    .balign 8
    .global trap_stubs
trap_stubs:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,128,255
    .quad trap_stub_\n
    .endr
    "#,
    user_data = const crate::gdt::USER_DATA,
    user_code = const crate::gdt::USER_CODE,
    syscall_vector = const SYSCALL_VECTOR,
    options(att_syntax)
);
