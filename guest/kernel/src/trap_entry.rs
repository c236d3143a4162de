//! Trap entry and exit: the only way into the kernel after boot, and the only way back out to
//! ring 3 (OSTEP's "trap" and "return-from-trap").
//!
//! Every entry builds the same `TrapFrame` (trap_frame.rs) on the running task's kernel stack:
//! the CPU pushes SS, RSP, RFLAGS, CS, RIP (and an error code for some exceptions); the stub
//! pushes a zero error code where the CPU did not, the vector number, and the nine registers a
//! Rust function may clobber (rax, rcx, rdx, rsi, rdi, r8-r11). The stubs of the rare vectors
//! (most exceptions) then save the other six too (rbx, rbp, r12-r15), so a panic can print them.
//! The four on hot paths (#UD and #PF, which carry system calls on kvm_pvm; the timer; `int
//! 0x80` and `syscall`) only leave room for those six: the Rust handler preserves them by the C
//! ABI, so when it returns they hold the task's values again. Only a context switch needs them in
//! the frame, and `context_switch` saves them there itself. That keeps the common path (a system
//! call that does not switch) twelve instructions shorter, which matters when each costs ~1,450
//! cycles (kvm_pvm).
//!
//! Each vector has its own stub and calls its own handler in trap.rs; the handler returns what
//! the exit must do besides returning: leave through `context_switch` because the scheduler
//! chose another task, or through the slow exit (`trap_work` below, then trap_slow.rs), which
//! first makes the frame whole for the calls that need every register (fork, execve,
//! rt_sigreturn) and for signal delivery. The common paths never go there.
//!
//! `syscall_entry` is where the `syscall` instruction lands on a CPU that delivers it natively
//! (LSTAR). It builds the same frame by hand and joins the `int 0x80` stub, so both share one
//! dispatcher and one return path. (kvm_pvm never runs it in ring 0: there a `syscall` arrives
//! as a page fault at this address, see trap.rs.)

use crate::trap_frame::SYSCALL_VECTOR;

/// The vectors that have an entry stub, in the order of `trap_stubs`.
pub const STUB_VECTORS: [u8; 36] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31, 32, 36, 0x80, 0xff,
];

extern "C" {
    /// Addresses of the entry stubs, one per entry of `STUB_VECTORS`.
    pub static trap_stubs: [u64; 36];
    pub fn syscall_entry();
}

core::arch::global_asm!(
    r#"
    /* One stub per vector: push what the CPU did not (error code, vector), the scratch registers,
       reserve the callee-saved slots, call the handler, then return from the trap, or switch. */
    .macro TRAP n, handler, has_error, save_all=1
    .balign 16
trap_stub_\n:
    /* CFI, for debuggers: a signal frame whose CFA is the end of the frame the CPU pushed, so
       that the interrupted code's registers are found at fixed offsets below it (TrapFrame). */
    .cfi_startproc simple
    .cfi_signal_frame
    .if \has_error == 0
    .cfi_def_cfa %rsp, 40
    .else
    .cfi_def_cfa %rsp, 48
    .endif
    .cfi_offset 52, -8
    .cfi_offset %rsp, -16
    .cfi_offset 49, -24
    .cfi_offset 51, -32
    .cfi_offset 16, -40
    /* An interrupt or exception leaves RFLAGS.DF as ring 3 had it (only `syscall` clears it,
       through SFMASK), and the kernel's string copies assume it clear: a program that ran
       `std` would have them copy backwards, over kernel memory. */
    cld
    .if \has_error == 0
    pushq $0
    .cfi_adjust_cfa_offset 8
    .endif
    pushq $\n
    .cfi_adjust_cfa_offset 8
trap_body_\n:
    push %rax
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rax, -64
    push %rcx
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rcx, -72
    push %rdx
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rdx, -80
    push %rsi
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rsi, -88
    push %rdi
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rdi, -96
    push %r8
    .cfi_adjust_cfa_offset 8
    .cfi_offset %r8, -104
    push %r9
    .cfi_adjust_cfa_offset 8
    .cfi_offset %r9, -112
    push %r10
    .cfi_adjust_cfa_offset 8
    .cfi_offset %r10, -120
    push %r11
    .cfi_adjust_cfa_offset 8
    .cfi_offset %r11, -128
    .if \save_all
    push %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rbx, -136
    push %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rbp, -144
    push %r12
    .cfi_adjust_cfa_offset 8
    .cfi_offset %r12, -152
    push %r13
    .cfi_adjust_cfa_offset 8
    .cfi_offset %r13, -160
    push %r14
    .cfi_adjust_cfa_offset 8
    .cfi_offset %r14, -168
    push %r15
    .cfi_adjust_cfa_offset 8
    .cfi_offset %r15, -176
    .else
    sub $48, %rsp
    .cfi_adjust_cfa_offset 48
    .endif
    mov %rsp, %rdi
    call \handler
    test %al, %al
    jnz trap_work
    add $48, %rsp
    .cfi_adjust_cfa_offset -48
    .global trap_exit_\n
trap_exit_\n:
    pop %r11
    .cfi_adjust_cfa_offset -8
    .cfi_same_value %r11
    pop %r10
    .cfi_adjust_cfa_offset -8
    .cfi_same_value %r10
    pop %r9
    .cfi_adjust_cfa_offset -8
    .cfi_same_value %r9
    pop %r8
    .cfi_adjust_cfa_offset -8
    .cfi_same_value %r8
    pop %rdi
    .cfi_adjust_cfa_offset -8
    .cfi_same_value %rdi
    pop %rsi
    .cfi_adjust_cfa_offset -8
    .cfi_same_value %rsi
    pop %rdx
    .cfi_adjust_cfa_offset -8
    .cfi_same_value %rdx
    pop %rcx
    .cfi_adjust_cfa_offset -8
    .cfi_same_value %rcx
    pop %rax
    .cfi_adjust_cfa_offset -8
    .cfi_same_value %rax
    add $16, %rsp
    .cfi_adjust_cfa_offset -16
    iretq
    .cfi_endproc
    .endm

    .section .text
    TRAP 0, trap_exception, 0
    TRAP 1, trap_exception, 0
    TRAP 2, trap_exception, 0
    TRAP 3, trap_exception, 0
    TRAP 4, trap_exception, 0
    TRAP 5, trap_exception, 0
    TRAP 6, trap_invalid_opcode, 0, 0
    TRAP 7, trap_exception, 0
    TRAP 8, trap_exception, 1
    TRAP 9, trap_exception, 0
    TRAP 10, trap_exception, 1
    TRAP 11, trap_exception, 1
    TRAP 12, trap_exception, 1
    TRAP 13, trap_exception, 1
    TRAP 14, trap_page_fault, 1, 0
    TRAP 15, trap_exception, 0
    TRAP 16, trap_exception, 0
    TRAP 17, trap_exception, 1
    TRAP 18, trap_exception, 0
    TRAP 19, trap_exception, 0
    TRAP 20, trap_exception, 0
    TRAP 21, trap_exception, 1
    TRAP 22, trap_exception, 0
    TRAP 23, trap_exception, 0
    TRAP 24, trap_exception, 0
    TRAP 25, trap_exception, 0
    TRAP 26, trap_exception, 0
    TRAP 27, trap_exception, 0
    TRAP 28, trap_exception, 0
    TRAP 29, trap_exception, 1
    TRAP 30, trap_exception, 1
    TRAP 31, trap_exception, 0
    TRAP 32, trap_timer, 0, 0
    TRAP 36, trap_console, 0, 0
    TRAP 128, trap_syscall, 0, 0
    TRAP 255, trap_spurious, 0, 0

    /* The trap exit when the handler asked for more than a return (AL = percpu::WORK_*):
       a switch only (1): context_switch. Otherwise the slow exit: the six callee-saved
       registers still hold the task's values (the handler preserved them), so the frame is
       made whole, and trap_slow (trap_slow.rs) runs what needs every register (fork, execve,
       signal delivery, rt_sigreturn) on it. It may change any of them, so they are reloaded
       from the frame; or it chose another task, and the frame is already saved. */
    .balign 16
trap_work:
    .cfi_startproc simple
    .cfi_signal_frame
    .cfi_def_cfa %rsp, 176
    .cfi_offset 16, -40
    .cfi_offset %rsp, -16
    cmp $1, %al
    je context_switch
    mov %r15, 0(%rsp)
    mov %r14, 8(%rsp)
    mov %r13, 16(%rsp)
    mov %r12, 24(%rsp)
    mov %rbp, 32(%rsp)
    mov %rbx, 40(%rsp)
    movzbl %al, %esi
    .global trap_slow_entry
trap_slow_entry:                /* RSP = a complete frame, ESI = the work (with RESUMED) */
    mov %rsp, %rdi
    call trap_slow
    test %al, %al
    jnz context_switch_saved
    mov 0(%rsp), %r15
    mov 8(%rsp), %r14
    mov 16(%rsp), %r13
    mov 24(%rsp), %r12
    mov 32(%rsp), %rbp
    mov 40(%rsp), %rbx
    add $48, %rsp
    .cfi_adjust_cfa_offset -48
    jmp trap_exit_128
    .cfi_endproc

    /* `syscall`: RCX = user RIP, R11 = user RFLAGS, RSP still the user's, IF cleared by SFMASK.
       One CPU, so a static scratch slot can hold the user RSP until it is in the frame. */
    .balign 16
    .global syscall_entry
syscall_entry:
    /* CFI: the caller's RIP is in RCX until the frame holds it (then as in the stubs). */
    .cfi_startproc simple
    .cfi_signal_frame
    .cfi_def_cfa %rsp, 0
    .cfi_register 16, %rcx
    mov %rsp, syscall_user_rsp(%rip)
    mov TSS+4(%rip), %rsp
    pushq ${user_data}
    .cfi_def_cfa %rsp, 8
    pushq syscall_user_rsp(%rip)
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rsp, -16
    push %r11
    .cfi_adjust_cfa_offset 8
    pushq ${user_code}
    .cfi_adjust_cfa_offset 8
    push %rcx
    .cfi_adjust_cfa_offset 8
    .cfi_offset 16, -40
    pushq $0
    .cfi_adjust_cfa_offset 8
    pushq ${syscall_vector}
    .cfi_adjust_cfa_offset 8
    jmp trap_body_128
    .cfi_endproc

    .section .bss
    .balign 8
syscall_user_rsp:
    .quad 0

    .section .rodata
    .balign 8
    .global trap_stubs
trap_stubs:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,36,128,255
    .quad trap_stub_\n
    .endr
    "#,
    user_data = const crate::gdt::USER_DATA,
    user_code = const crate::gdt::USER_CODE,
    syscall_vector = const SYSCALL_VECTOR,
    options(att_syntax)
);
