//! The context switch (OSTEP figure 6.3, "switch() routine"): from one task's kernel stack to
//! another's, finishing with the return-from-trap into the new task.
//!
//! A trap stub jumps here, with RSP at the old task's trap frame, when its handler says the
//! scheduler picked another task (scheduler.rs filled in this CPU's switch request,
//! `percpu::Switch`). The stub already saved the
//! old task's scratch registers in the frame; its other six general registers still hold the
//! task's values (the Rust handler preserved them), so we save them into the frame now. Then the
//! state the trap entry never saves: the FPU/SSE registers (fxsave64/fxrstor64: `xsave` kills
//! the VM on kvm_pvm), the address space (CR3), and the kernel stack the CPU will use on the next
//! trap (TSS.RSP0). Last, the new task's trap frame becomes our stack; we load its six registers
//! and leave through the common trap exit, which restores the rest and `iretq`s into it. If
//! the new task has signals to take, it leaves through the slow exit instead (trap_slow.rs),
//! which can see and change all of its registers.

extern "C" {
    /// Enters the first task at boot: the switch request without an old task to save.
    pub fn context_switch_to_first() -> !;
}

core::arch::global_asm!(
    r#"
    .section .text
    .balign 16
    .global context_switch
context_switch:
    /* CFI, for debuggers: RSP is at a whole trap frame (trap_entry.rs), the old task's and
       then the new one's; the CFA is its end. */
    .cfi_startproc simple
    .cfi_signal_frame
    .cfi_def_cfa %rsp, 176
    .cfi_offset 16, -40
    .cfi_offset %rsp, -16
    .cfi_offset %rax, -64
    .cfi_offset %rcx, -72
    .cfi_offset %rdx, -80
    .cfi_offset %rsi, -88
    .cfi_offset %rdi, -96
    .cfi_offset %r8, -104
    .cfi_offset %r9, -112
    .cfi_offset %r10, -120
    .cfi_offset %r11, -128
    mov %r15, 0(%rsp)
    .cfi_offset %r15, -176
    mov %r14, 8(%rsp)
    .cfi_offset %r14, -168
    mov %r13, 16(%rsp)
    .cfi_offset %r13, -160
    mov %r12, 24(%rsp)
    .cfi_offset %r12, -152
    mov %rbp, 32(%rsp)
    .cfi_offset %rbp, -144
    mov %rbx, 40(%rsp)
    .cfi_offset %rbx, -136
    .global context_switch_saved
context_switch_saved:            /* from the slow exit: the old frame is complete already */
    mov CPU0+{prev_fpu}(%rip), %rax
    test %rax, %rax
    jz 1f
    fxsave64 (%rax)
    .global context_switch_to_first
context_switch_to_first:
1:  mov CPU0+{next_fpu}(%rip), %rax
    fxrstor64 (%rax)
    mov CPU0+{next_cr3}(%rip), %rax
    mov %rax, %cr3
    mov CPU0+{next_kstack_top}(%rip), %rax
    mov %rax, TSS+4(%rip)
    mov CPU0+{next_frame}(%rip), %rsp
    /* A task with signals to take goes out through the slow exit (trap_slow.rs). */
    cmpb $0, CPU0+{resume_slow}(%rip)
    jne 2f
    mov 0(%rsp), %r15
    mov 8(%rsp), %r14
    mov 16(%rsp), %r13
    mov 24(%rsp), %r12
    mov 32(%rsp), %rbp
    mov 40(%rsp), %rbx
    add $48, %rsp
    .cfi_adjust_cfa_offset -48
    jmp trap_exit
    .cfi_adjust_cfa_offset 48
2:  movb $0, CPU0+{resume_slow}(%rip)
    mov ${resumed}, %esi
    jmp trap_slow_entry
    .cfi_endproc
    "#,
    resume_slow = const crate::percpu::RESUME_SLOW,
    resumed = const crate::percpu::RESUMED,
    prev_fpu = const crate::percpu::SWITCH_PREV_FPU,
    next_fpu = const crate::percpu::SWITCH_NEXT_FPU,
    next_cr3 = const crate::percpu::SWITCH_NEXT_CR3,
    next_frame = const crate::percpu::SWITCH_NEXT_FRAME,
    next_kstack_top = const crate::percpu::SWITCH_NEXT_KSTACK_TOP,
    options(att_syntax)
);
