//! The context switch (OSTEP figure 6.3, "switch() routine"): from one task's kernel stack to
//! another's, finishing with the return-from-trap into the new task.
//!
//! By the time we get here the old task's registers are already saved: the trap entry put them
//! in the trap frame on its kernel stack. What is left is the state the entry does not save:
//! the FPU/SSE registers (fxsave64/fxrstor64: `xsave` kills the VM on kvm_pvm), the address space
//! (CR3), and the kernel stack the CPU uses on the next trap (TSS.RSP0). Then we load the new
//! task's trap frame as our stack and leave through `trap_return`, which restores its registers
//! and `iretq`s into it. Six instructions, because each one costs ~1,450 cycles on kvm_pvm.

extern "C" {
    /// Saves the FPU state into `prev_fpu` (skipped when null: the old task is gone), restores it
    /// from `next_fpu`, switches to `next_cr3`, sets TSS.RSP0 to `next_kstack_top`, and returns
    /// from the trap into the task whose trap frame is at `next_frame`.
    pub fn context_switch(
        prev_fpu: *mut u8,
        next_fpu: *const u8,
        next_cr3: u64,
        next_frame: u64,
        next_kstack_top: u64,
    ) -> !;
}

core::arch::global_asm!(
    r#"
    .section .text
    .balign 16
    .global context_switch
context_switch:
    test %rdi, %rdi
    jz 1f
    fxsave64 (%rdi)
1:  fxrstor64 (%rsi)
    mov %rdx, %cr3
    mov %r8, TSS+4(%rip)
    mov %rcx, %rsp
    jmp trap_return
    "#,
    options(att_syntax)
);
