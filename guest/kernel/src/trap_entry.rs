//! Trap entry and exit: the only way into the kernel after boot, and the only way back out to
//! ring 3 (OSTEP's "trap" and "return-from-trap").
//!
//! # The short paths (system calls and the timer tick)
//!
//! On kvm_pvm every ring-0 instruction costs ~1,450 cycles, so the two paths every program takes
//! are written out by hand here, and this file is the one place that builds their frames:
//!
//! - **System call.** Four ways in, one frame, one dispatcher, one exit. `syscall` on kvm_pvm
//!   is a #PF with RIP = LSTAR (`trap_stub_14`: RIP := RCX, RFLAGS := R11 made safe); `int 0x80`
//!   on kvm_pvm is a #UD at bytes `CD 80` (`trap_stub_6`: RIP += 2); on a CPU that delivers them
//!   (hardware KVM, QEMU TCG) `syscall_entry` (LSTAR) and `trap_stub_128` (the DPL-3 gate). Each
//!   pushes the nine registers a Rust function may clobber and leaves room for the other six,
//!   then `syscall_dispatch` counts the call and calls the table entry for RAX directly
//!   (`syscall::TABLE`: the table itself is what `strace=1` replaces, so strace costs the path
//!   nothing). The entry stores the result in the frame's RAX. On the
//!   way out one per-CPU byte, `PerCpu::work`, says whether anything is pending: a switch
//!   (`WORK_SWITCH`), or the slow exit (`WORK_SLOW`: a signal to take, a call that needs every
//!   register such as fork, execve, rt_sigreturn or exit). It is tested once; zero means pop
//!   nine registers and `iretq`.
//! - **Timer tick that does not switch** (`trap_stub_32`): a leaf on RAX, RCX and RDX. When the
//!   tick came from ring 3, nobody sleeps, nothing is pending and nothing asks for the slow tick
//!   (`PerCpu::tick_gate`, one 64-bit test: the sleepers' count, `work`, and the `TICK_SLOW_*`
//!   reasons: periodic mode, xAPIC), and it is the scheduler's deadline, it charges
//!   the tick to the slice, re-arms the TSC deadline one period on, sends the x2APIC EOI and
//!   returns. Preemption due, tickless again, a stale interrupt, an idle CPU: before touching
//!   anything it falls back to the full stub and `scheduler::timer_interrupt`, which decides the
//!   same way in Rust.
//! - **Recording twins** (`trace=events`). The system call's four entries and dispatcher, and
//!   the tick's leaf, have twins that also write the trace's records (trace_events.rs, in
//!   abi::trace's layout): a few stores around the call or the tick, one check for room for
//!   both records, no pid (the VMM knows who runs). At boot `trace=events` points the trap
//!   table and LSTAR at the twins, so tracing off costs these paths nothing at all.
//!
//! Every other trap builds the same `TrapFrame` (trap_frame.rs) on the running task's kernel
//! stack: the CPU pushes SS, RSP, RFLAGS, CS, RIP (and an error code for some exceptions); the
//! stub pushes a zero error code where the CPU did not, the vector number, and the nine scratch
//! registers. The stubs of the rare vectors (most exceptions) then save the other six too (rbx,
//! rbp, r12-r15), so a panic can print them. The hot ones (#UD and #PF, the timer, the system
//! call) only leave room for those six: the Rust handler preserves them by the C ABI, so when it
//! returns they hold the task's values again. Only a context switch and the slow exit need them
//! in the frame, and they save them there themselves (`trap_work` below).
//!
//! The other stubs call their handler in trap.rs, which returns what the exit must do besides
//! returning (the same `work` bits, read and cleared): leave through `context_switch` because
//! the scheduler chose another task, or through the slow exit (`trap_work` below, then
//! trap_slow.rs), which first makes the frame whole for the calls that need every register and
//! for signal delivery. The common paths never go there.

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
    fn syscall_entry_traced();
    fn trap_stub_6_traced();
    fn trap_stub_14_traced();
    fn trap_stub_128_traced();
    fn trap_stub_32_traced();
}

/// The recording twins of the stubs (`trace=events`, below): the gates they take the place
/// of, by vector; the timer's last.
pub fn recording_gates() -> [(u8, u64); 4] {
    [
        (6, trap_stub_6_traced as *const () as u64),
        (14, trap_stub_14_traced as *const () as u64),
        (
            SYSCALL_VECTOR as u8,
            trap_stub_128_traced as *const () as u64,
        ),
        (
            crate::trap_frame::TIMER_VECTOR,
            trap_stub_32_traced as *const () as u64,
        ),
    ]
}

/// The recording twin of `syscall_entry`, for LSTAR.
pub fn recording_syscall_entry() -> u64 {
    syscall_entry_traced as *const () as u64
}

/// The RFLAGS bits a `syscall` that arrived as a #PF at LSTAR (kvm_pvm) returns with: R11's
/// arithmetic flags, DF and ID, nothing else. RCX and R11 are the program's to set (it may jump
/// to LSTAR itself), so TF and AC are dropped as SFMASK drops them, and so are IOPL, NT, RF, VM,
/// VIF and VIP: an `iretq` from ring 0 would load them, and IOPL 3 would give ring 3 the I/O
/// ports and `cli`. IF and the always-one bit 1 are set.
const PVM_RFLAGS_KEEP: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x400 | 0x800 | 0x20_0000;
const PVM_RFLAGS_SET: u64 = 0x202;

/// The tick's leaf tests `tick_gate` as one aligned 64-bit word.
const _: () = assert!(crate::percpu::TICK_GATE.is_multiple_of(8));

core::arch::global_asm!(
    r#"
    /* One stub per vector: push what the CPU did not (error code, vector), the scratch registers,
       reserve the callee-saved slots, call the handler, then return from the trap, or switch. */
    .macro TRAP n, handler, has_error, save_all=1, name=trap_stub
    .balign 16
\name\()_\n:
    /* CFI, for debuggers: a signal frame whose CFA is the end of the frame the CPU pushed, so
       that the interrupted code's registers are found at fixed offsets below it (TrapFrame). */
    CPU_FRAME_CFI \has_error
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
    PUSH_SCRATCH
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
trap_exit_\n:
    POP_SCRATCH_IRET
    .cfi_endproc
    .endm

    /* The nine scratch registers, below the vector (CFA - 64 down to CFA - 128). */
    .macro PUSH_SCRATCH from=rax
    .ifc \from,rax
    push %rax
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rax, -64
    push %rcx
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rcx, -72
    .endif
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
    .endm

    /* RSP at the frame's r11: restore the nine, drop vector and error code, return. */
    .macro POP_SCRATCH_IRET
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
    .endm

    /* CFI at a stub's first instruction: the CPU's frame, with (1) or without (0) an error code. */
    .macro CPU_FRAME_CFI has_error
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
    .endm

    .section .text
    TRAP 0, trap_exception, 0
    TRAP 1, trap_exception, 0
    TRAP 2, trap_exception, 0
    TRAP 3, trap_exception, 0
    TRAP 4, trap_exception, 0
    TRAP 5, trap_exception, 0
    TRAP 6, trap_invalid_opcode, 0, 0, trap_full
    TRAP 7, trap_exception, 0
    TRAP 8, trap_exception, 1
    TRAP 9, trap_exception, 0
    TRAP 10, trap_exception, 1
    TRAP 11, trap_exception, 1
    TRAP 12, trap_exception, 1
    TRAP 13, trap_exception, 1
    TRAP 14, trap_page_fault, 1, 0, trap_full
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
    TRAP 32, trap_timer, 0, 0, trap_full
    TRAP 36, trap_console, 0, 0
    TRAP 255, trap_spurious, 0, 0

    /* A system call's way out, for both dispatchers: the per-CPU work byte is tested once;
       zero means pop the nine and return; 2: is a number past the table (syscall.rs). The
       plain one names its return trap_exit, where other paths join it. */
    .macro SYSCALL_RETURN exit_label=
1:  cmpb $0, CPU0+{work}(%rip)
    jne 3f
    .cfi_remember_state
    add $48, %rsp
    .cfi_adjust_cfa_offset -48
    .ifnb \exit_label
    .global \exit_label
\exit_label:                      /* RSP at a frame's r11 */
    .endif
    POP_SCRATCH_IRET
    .cfi_restore_state
2:  call syscall_beyond_the_table
    jmp 1b
3:  movzbl CPU0+{work}(%rip), %eax
    movb $0, CPU0+{work}(%rip)
    jmp trap_work
    .cfi_endproc
    .endm

    /* #PF. kvm_pvm's `syscall`: a fault from ring 3 with RIP = LSTAR, RCX = the return address,
       R11 = the flags. RIP = LSTAR means ring 3: in ring 0 the first instruction there (a store
       to .bss, on the task's own stack never) cannot fault. A RCX that is no user address is a
       jump into the kernel, not a call: a plain fault (an `iretq` to a non-canonical RIP would
       fault in ring 0). Everything else is a page fault: the full stub, trap.rs. */
    .macro SYSCALL_PF_STUB name, entry
    .balign 16
\name:
    CPU_FRAME_CFI 1
    cld
    cmpq $\entry, 8(%rsp)
    jne trap_full_14
    cmp %rcx, user_end(%rip)
    jbe trap_full_14
    mov %rcx, 8(%rsp)
    mov %r11, 24(%rsp)
    andq ${rflags_keep}, 24(%rsp)
    orq ${rflags_set}, 24(%rsp)
    pushq $14
    .cfi_adjust_cfa_offset 8
    PUSH_SCRATCH
    sub $48, %rsp
    .cfi_adjust_cfa_offset 48
    mov %rsp, %rdi
    .endm

    SYSCALL_PF_STUB trap_stub_14, syscall_entry
    /* falls through */

    /* The system-call dispatcher, every way in: RSP = RDI = the frame (callee-saved slots
       reserved), RAX = the number. The table's entry stores the result in the frame. */
    .global syscall_dispatch
syscall_dispatch:
    mov CPU0+{current}(%rip), %rcx
    lock incq {syscalls}(%rcx)
    cmp ${table_len}, %rax
    jae 2f
    call *{table}(,%rax,8)
    SYSCALL_RETURN trap_exit

    /* trace=events: the same, with a record on each side of the call (trace_events.rs, whose
       `RING` it writes at fixed offsets; abi::trace::Record's layout). One check for room
       covers both records (`LAST_PAIR`; the other writers always leave one free); no pid
       (abi::trace::Filler knows who runs). The end says how far the call moved its return
       address back (2: it blocked and runs again), from the copy in `PerCpu::trace_rip`.
       A number past the table records in Rust (syscall.rs `traced`). */
    .global trap_stub_14_traced
    SYSCALL_PF_STUB trap_stub_14_traced, syscall_entry_traced
    /* falls through */
syscall_dispatch_traced:
    mov CPU0+{current}(%rip), %rcx
    lock incq {syscalls}(%rcx)
    cmp ${table_len}, %rax
    jae 2f
    mov {ring}+{head}(%rip), %rcx
    cmp ${last_pair}, %rcx
    jbe 7f
    call trace_flush_from_entry   /* no room for two: the VMM takes the buffer (rare) */
    mov {f_rax}(%rsp), %rax
    mov {f_rsi}(%rsp), %rsi
    mov {f_rdx}(%rsp), %rdx
    mov %rsp, %rdi
    mov {ring}+{head}(%rip), %rcx
7:  mov %rax, {ring}+{records}+16(%rcx)
    mov {f_rdi}(%rsp), %r8
    mov %r8, {ring}+{records}+24(%rcx)
    mov %rsi, {ring}+{records}+32(%rcx)
    mov %rdx, {ring}+{records}+40(%rcx)
    movl ${enter}, {ring}+{records}+8(%rcx)
    mov {f_rip}(%rsp), %r8
    mov %r8, CPU0+{trace_rip}(%rip)
    rdtsc
    mov %eax, {ring}+{records}(%rcx)
    mov %edx, {ring}+{records}+4(%rcx)
    addq ${record_bytes}, {ring}+{head}(%rip)
    mov {f_rax}(%rsp), %rax
    call *{table}(,%rax,8)
    mov {ring}+{head}(%rip), %rcx
    rdtsc
    mov %eax, {ring}+{records}(%rcx)
    mov %edx, {ring}+{records}+4(%rcx)
    movl ${exit}, {ring}+{records}+8(%rcx)
    mov {f_rax}(%rsp), %rax
    mov %rax, {ring}+{records}+24(%rcx)
    mov CPU0+{trace_rip}(%rip), %rax
    sub {f_rip}(%rsp), %rax
    mov %rax, {ring}+{records}+32(%rcx)
    addq ${record_bytes}, {ring}+{head}(%rip)
    SYSCALL_RETURN

    /* #UD. kvm_pvm's `int 0x80`: a fault from ring 3 at the bytes CD 80. The CPU decoded the
       instruction to fault on it, so its first byte is readable, and if that is CD (a two-byte
       `int N`) so is the second. RFLAGS.AC is set around the reads for SMAP (`stac` kills a
       kvm_pvm guest; this keeps TF for a debugger). Anything else: the full stub, trap.rs. */
    .macro INT80_UD_STUB name, dispatch
    .balign 16
\name:
    CPU_FRAME_CFI 0
    cld
    testb $3, 8(%rsp)
    jz trap_full_6
    pushq $0
    .cfi_adjust_cfa_offset 8
    pushq $6
    .cfi_adjust_cfa_offset 8
    push %rax
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rax, -64
    push %rcx
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rcx, -72
    mov 32(%rsp), %rcx
    pushfq
    orq ${ac}, (%rsp)
    popfq
    cmpb $0xcd, (%rcx)
    jne 4f
    cmpb ${syscall_vector}, 1(%rcx)
    jne 4f
    pushfq
    andq $~{ac}, (%rsp)
    popfq
    addq $2, 32(%rsp)
    PUSH_SCRATCH rdx
    sub $48, %rsp
    .cfi_adjust_cfa_offset 48
    mov %rsp, %rdi
    jmp \dispatch
    .cfi_adjust_cfa_offset -104
4:  pushfq
    andq $~{ac}, (%rsp)
    popfq
    pop %rcx
    pop %rax
    jmp trap_body_6
    .cfi_endproc
    .endm

    INT80_UD_STUB trap_stub_6, syscall_dispatch
    .global trap_stub_6_traced
    INT80_UD_STUB trap_stub_6_traced, syscall_dispatch_traced

    /* The rest of a system call's frame where the CPU delivered the call (no error code:
       a zero; the vector; the nine; room for the six) and on to the dispatcher. */
    .macro SYSCALL_FRAME_AND_DISPATCH dispatch
    pushq $0
    .cfi_adjust_cfa_offset 8
    pushq ${syscall_vector}
    .cfi_adjust_cfa_offset 8
    PUSH_SCRATCH
    sub $48, %rsp
    .cfi_adjust_cfa_offset 48
    mov %rsp, %rdi
    jmp \dispatch
    .endm

    /* The `int 0x80` gate (DPL 3), where the CPU delivers it (not kvm_pvm). */
    .macro INT80_GATE_STUB name, dispatch
    .balign 16
\name:
    CPU_FRAME_CFI 0
    cld
    SYSCALL_FRAME_AND_DISPATCH \dispatch
    .cfi_endproc
    .endm

    INT80_GATE_STUB trap_stub_128, syscall_dispatch
    .global trap_stub_128_traced
    INT80_GATE_STUB trap_stub_128_traced, syscall_dispatch_traced

    /* `syscall` where the CPU delivers it (LSTAR): RCX = user RIP, R11 = user RFLAGS, RSP still
       the user's, IF, TF, DF and AC cleared by SFMASK. One CPU, so a static scratch slot can
       hold the user RSP until it is in the frame. The first instruction must not fault (see
       trap_stub_14). */
    .macro SYSCALL_LSTAR_STUB name, dispatch
    .balign 16
    .global \name
\name:
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
    SYSCALL_FRAME_AND_DISPATCH \dispatch
    .cfi_endproc
    .endm

    SYSCALL_LSTAR_STUB syscall_entry, syscall_dispatch
    SYSCALL_LSTAR_STUB syscall_entry_traced, syscall_dispatch_traced

    /* The timer. The tick's common case as a leaf (see the top of trap_entry.rs); it falls back
       to the full stub (trap.rs, scheduler.rs) before it has changed anything. Its
       trace=events twin (traced=1) also writes the tick's two records, TICK_BEGIN (from ring 3)
       and TICK_END, after one check for room for both; its stamp waits on the stack. */
    .macro TICK_LEAF name, traced
    .balign 16
\name:
    CPU_FRAME_CFI 0
    testb $3, 8(%rsp)
    jz trap_full_32
    cmpq $0, CPU0+{tick_gate}(%rip)
    jne trap_full_32
    .if \traced
    cmpq ${last_pair}, {ring}+{head}(%rip)
    ja trap_full_32
    .endif
    push %rax
    .cfi_adjust_cfa_offset 8
    push %rcx
    .cfi_adjust_cfa_offset 8
    push %rdx
    .cfi_adjust_cfa_offset 8
    .if \traced
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    push %rax
    .cfi_adjust_cfa_offset 8
    .endif
    mov {timer}+{next_tick}(%rip), %rdx
    mov {timer}+{armed}(%rip), %rax
    test %rdx, %rdx
    jz 7f                       /* no tick due */
    cmp %rdx, %rax
    jb 7f                       /* the deadline that fired was not the tick's */
    mov CPU0+{ticks_used}(%rip), %ecx
    inc %ecx
    mov {timer}+{forced}(%rip), %rdx
    cmpl $0, CPU0+{nready}(%rip)
    jne 6f
    test %rdx, %rdx
    jz 7f                       /* nobody else ready and no forced tick: tickless again */
5:  mov %ecx, CPU0+{ticks_used}(%rip)
    add %rdx, %rax              /* the next tick: one period after the one that fired */
    mov %rax, {timer}+{next_tick}(%rip)
    mov %rax, {timer}+{armed}(%rip)
    incq {timer}+{interrupts}(%rip)
    mov %rax, %rdx
    shr $32, %rdx
    mov ${tsc_deadline_msr}, %ecx
    wrmsr
    mov ${x2apic_eoi_msr}, %ecx
    xor %eax, %eax
    xor %edx, %edx
    wrmsr
    .if \traced
    mov {ring}+{head}(%rip), %rcx
    popq {ring}+{records}(%rcx)
    .cfi_adjust_cfa_offset -8
    movl ${tick_begin}, {ring}+{records}+8(%rcx)
    movq $1, {ring}+{records}+16(%rcx)
    rdtsc
    mov %eax, {ring}+{records}+{record_bytes}(%rcx)
    mov %edx, {ring}+{records}+{record_bytes}+4(%rcx)
    movl ${tick_end}, {ring}+{records}+{record_bytes}+8(%rcx)
    addq $2*{record_bytes}, {ring}+{head}(%rip)
    .endif
    pop %rdx
    .cfi_adjust_cfa_offset -8
    pop %rcx
    .cfi_adjust_cfa_offset -8
    pop %rax
    .cfi_adjust_cfa_offset -8
    iretq
    .if \traced
    .cfi_adjust_cfa_offset 32
    .else
    .cfi_adjust_cfa_offset 24
    .endif
6:  cmp CPU0+{slice_ticks}(%rip), %ecx
    jae 7f                      /* the slice is used up and another task waits: preempt */
    test %rdx, %rdx
    jnz 5b
    mov {timer}+{tick_cycles}(%rip), %rdx
    jmp 5b
7:
    .if \traced
    add $8, %rsp
    .cfi_adjust_cfa_offset -8
    .endif
    pop %rdx
    .cfi_adjust_cfa_offset -8
    pop %rcx
    .cfi_adjust_cfa_offset -8
    pop %rax
    .cfi_adjust_cfa_offset -8
    jmp trap_full_32
    .cfi_endproc
    .endm

    TICK_LEAF trap_stub_32, 0
    .global trap_stub_32_traced
    TICK_LEAF trap_stub_32_traced, 1

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
    jmp trap_exit
    .cfi_endproc

    .section .bss
    .balign 8
syscall_user_rsp:
    .quad 0

    .section .rodata
    .balign 8
user_end:
    .quad {user_end}
    .global trap_stubs
trap_stubs:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,36,128,255
    .quad trap_stub_\n
    .endr
    "#,
    user_data = const crate::gdt::USER_DATA,
    user_code = const crate::gdt::USER_CODE,
    syscall_vector = const SYSCALL_VECTOR,
    user_end = const crate::memory::paging::USER_END,
    rflags_keep = const PVM_RFLAGS_KEEP,
    rflags_set = const PVM_RFLAGS_SET,
    ac = const 1u64 << 18,
    current = const crate::percpu::CURRENT,
    work = const crate::percpu::WORK,
    tick_gate = const crate::percpu::TICK_GATE,
    ticks_used = const crate::percpu::TICKS_USED,
    slice_ticks = const crate::percpu::SLICE_TICKS,
    nready = const crate::percpu::NREADY,
    syscalls = const crate::process::STATS_SYSCALLS,
    table_len = const crate::syscall_table::TABLE_LEN,
    table = sym crate::syscall::TABLE,
    timer = sym crate::timer::TIMER,
    next_tick = const crate::timer::NEXT_TICK,
    armed = const crate::timer::ARMED,
    forced = const crate::timer::FORCED_TICK_CYCLES,
    tick_cycles = const crate::timer::TICK_CYCLES,
    interrupts = const crate::timer::INTERRUPTS,
    trace_rip = const crate::percpu::TRACE_RIP,
    ring = sym crate::trace_events::RING,
    head = const crate::trace_events::HEAD,
    records = const crate::trace_events::RECORDS,
    last_pair = const crate::trace_events::LAST_PAIR,
    record_bytes = const abi::trace::RECORD_BYTES,
    enter = const abi::trace::SYSCALL_ENTER,
    exit = const abi::trace::SYSCALL_EXIT,
    tick_begin = const abi::trace::TICK_BEGIN,
    tick_end = const abi::trace::TICK_END,
    f_rdi = const core::mem::offset_of!(crate::trap_frame::TrapFrame, rdi),
    f_rsi = const core::mem::offset_of!(crate::trap_frame::TrapFrame, rsi),
    f_rdx = const core::mem::offset_of!(crate::trap_frame::TrapFrame, rdx),
    f_rax = const core::mem::offset_of!(crate::trap_frame::TrapFrame, rax),
    f_rip = const core::mem::offset_of!(crate::trap_frame::TrapFrame, rip),
    tsc_deadline_msr = const crate::lapic::TSC_DEADLINE_MSR,
    x2apic_eoi_msr = const crate::lapic::X2APIC_EOI_MSR,
    options(att_syntax)
);
