//! The ring-0 half of the floor, all in assembly: the PVH entry, long mode, a GDT with user
//! segments and a TSS, an IDT of five gates, the `syscall` MSRs, and the drop to ring 3. After
//! that, ring 0 only runs the trap handlers, which do nothing but return:
//!
//! | entry | handler |
//! |---|---|
//! | `int 0x80` (gate 0x80, DPL 3; hardware) | `iretq` |
//! | #UD at `CD 80` (kvm_pvm's `int 0x80`) | rip += 2, `iretq` |
//! | #PF at LSTAR (kvm_pvm's `syscall`) | rip = rcx, rflags = r11, `iretq` (no check of CR2) |
//! | `syscall` at LSTAR (hardware) | `sysretq` |
//! | `int3` (gate 3, DPL 3) | the floor's own services for ring 3, by rax: 1 write(rsi, rdx) to COM1, 2 `out` to port 0xf5 rdi times, 3 `cpuid` rdi times, 4 `dec; jnz` rdi times (2, 3, 4 return the TSC cycles in rax), 5 exit(dil) by port 0xf4, 6 run the timer every rdi cycles (0: off), 7 rax = timer interrupts so far, 8 rax = eax of ring-0 `cpuid` leaf edi, 9 the byte dil to the bench port (arms the VMM's instruction counter), 10 rax = a 4-byte read of the bench port (its count) |
//! | timer (vector 32, x2APIC TSC-deadline) | EOI, re-arm one period on (if on), count, `iretq` |
//! | #GP, #DF | exit with status 13 or 8: the floor is broken |
//!
//! Ring-0 code here never touches user memory through user pages: `write` reads the ring-3
//! buffer through the kernel's alias of physical memory (the ring-3 half is identity-mapped).

core::arch::global_asm!(
    r#"
    .set KERNEL_VMA, 0xffffffff80000000
    .set USER_CS, 0x23
    .set USER_SS, 0x1b

    .section .note.Xen, "a"
    .balign 4
    .long 4
    .long 8
    .long 18                        /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad pvh_start

    .section .boot.text, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    lgdt floor_gdt_ptr
    mov %cr4, %eax
    or $0x20, %eax                  /* PAE */
    mov %eax, %cr4
    mov $floor_pml4, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx           /* EFER: LME | SCE */
    rdmsr
    or $0x101, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax            /* PG | PE */
    mov %eax, %cr0
    ljmp $0x08, $floor_boot64

    .code64
floor_boot64:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    movabs $floor_kernel_entry, %rax
    jmp *%rax

    .section .boot.data, "aw"
    .balign 16
floor_gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08 kernel code */
    .quad 0x00cf92000000ffff        /* 0x10 kernel data */
    .quad 0x00cff2000000ffff        /* 0x18 user data (sysret: STAR[63:48] + 8) */
    .quad 0x00affa000000ffff        /* 0x20 user code (sysret: STAR[63:48] + 16) */
    .quad 0, 0                      /* 0x28 TSS, filled in at boot */
floor_gdt_end:
floor_gdt_ptr:
    .word floor_gdt_end - floor_gdt - 1
    .quad floor_gdt

    .balign 4096
floor_pml4:
    .quad floor_pdpt_low + 7        /* [0]: identity, user-accessible below */
    .fill 510, 8, 0
    .quad floor_pdpt_high + 3       /* [511]: KERNEL_VMA */
floor_pdpt_low:
    .quad floor_pd_low + 7
    .fill 511, 8, 0
floor_pdpt_high:
    .fill 510, 8, 0
    .quad floor_pd_high + 3
    .quad 0
floor_pd_low:
    .quad 0x000083                  /* 0-2 MiB: supervisor (the trampoline runs here) */
    .quad 0x200087                  /* 2-4 MiB: USER, the ring-3 half */
    .fill 510, 8, 0
floor_pd_high:
    .quad 0x000083                  /* KERNEL_VMA + 0-2 MiB: the ring-0 half */
    .quad 0x200083                  /* KERNEL_VMA + 2-4 MiB: alias of the ring-3 half */
    .fill 510, 8, 0

    .section .ktext, "ax"
    .macro GATE vec, handler, dpl
    lea \handler(%rip), %rax
    mov %ax, floor_idt + 16 * \vec(%rip)
    movw $0x08, floor_idt + 16 * \vec + 2(%rip)
    movw $(0x8e00 | (\dpl << 13)), floor_idt + 16 * \vec + 4(%rip)
    shr $16, %rax
    mov %ax, floor_idt + 16 * \vec + 6(%rip)
    shr $16, %rax
    mov %eax, floor_idt + 16 * \vec + 8(%rip)
    .endm

floor_kernel_entry:
    lea floor_kstack_top(%rip), %rsp
    /* TSS: RSP0 = the kernel stack; its descriptor in the GDT; ltr. */
    mov %rsp, floor_tss + 4(%rip)
    lea floor_tss(%rip), %rax
    mov $103, %rcx                  /* limit */
    mov %rax, %rbx
    and $0xffffff, %rbx
    shl $16, %rbx
    or %rbx, %rcx                   /* base 23:0 */
    mov $0x89, %rbx
    shl $40, %rbx
    or %rbx, %rcx                   /* present, 64-bit TSS (available) */
    mov %rax, %rbx
    shr $24, %rbx
    and $0xff, %rbx
    shl $56, %rbx
    or %rbx, %rcx                   /* base 31:24 */
    mov %rcx, floor_gdt + 0x28
    shr $32, %rax
    mov %rax, floor_gdt + 0x30      /* base 63:32 */
    mov $0x28, %ax
    ltr %ax

    /* The timer: 8259s masked, x2APIC on, LVT timer in TSC-deadline mode at vector 32,
       not armed until ring 3 asks (service 6). */
    mov $0xff, %al
    out %al, $0x21
    out %al, $0xa1
    mov $0x1b, %ecx                 /* IA32_APIC_BASE: EN | EXTD */
    rdmsr
    or $0xc00, %eax
    wrmsr
    xor %edx, %edx
    mov $0x80f, %ecx                /* SVR: software-enabled, spurious vector 0xff */
    mov $0x1ff, %eax
    wrmsr
    mov $0x832, %ecx                /* LVT timer: vector 32, TSC-deadline */
    mov $0x40020, %eax
    wrmsr

    GATE 32, floor_timer, 0
    GATE 0xff, floor_spurious, 0
    GATE 3, floor_service, 3
    GATE 6, floor_ud, 0
    GATE 8, floor_double_fault, 0
    GATE 13, floor_gp, 0
    GATE 14, floor_pf, 0
    GATE 0x80, floor_int80, 3
    lidt floor_idt_ptr(%rip)

    mov $0xC0000081, %ecx           /* STAR: sysret base 0x10, kernel CS 0x08 */
    xor %eax, %eax
    mov $0x00100008, %edx
    wrmsr
    mov $0xC0000082, %ecx           /* LSTAR */
    lea floor_lstar(%rip), %rax
    mov %rax, %rdx
    shr $32, %rdx
    wrmsr
    mov $0xC0000084, %ecx           /* SFMASK: IF, TF, DF, AC */
    mov $0x40700, %eax
    xor %edx, %edx
    wrmsr

    /* To ring 3: floor_main on the user stack, interrupts on (nothing is armed). */
    pushq $USER_SS
    movabs $floor_user_stack_top, %rax
    sub $8, %rax
    push %rax
    pushq $0x202
    pushq $USER_CS
    movabs $floor_main, %rax
    push %rax
    iretq

    /* ---- the null traps: nothing but the return ---- */
    .balign 16
floor_int80:                        /* hardware int 0x80 */
    iretq

    .balign 16
floor_ud:                           /* kvm_pvm int 0x80: #UD at CD 80 */
    addq $2, (%rsp)
    iretq

    .balign 16
floor_pf:                           /* kvm_pvm syscall: #PF at LSTAR */
    add $8, %rsp                    /* the error code */
    mov %rcx, (%rsp)
    mov %r11, 16(%rsp)
    iretq

    .balign 16
floor_lstar:                        /* hardware syscall */
    sysretq

    /* ---- the timer tick: EOI, re-arm the deadline one period on, count; no switch ---- */
    .balign 16
floor_timer:
    push %rax
    push %rcx
    push %rdx
    mov $0x80b, %ecx                /* x2APIC EOI */
    xor %eax, %eax
    xor %edx, %edx
    wrmsr
    mov floor_tick_period(%rip), %rcx
    test %rcx, %rcx
    jz 1f
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    add %rcx, %rax
    mov %rax, %rdx
    shr $32, %rdx
    mov $0x6e0, %ecx                /* IA32_TSC_DEADLINE */
    wrmsr
1:  incq floor_ticks(%rip)
    pop %rdx
    pop %rcx
    pop %rax
    iretq

floor_spurious:
    iretq

    /* ---- the floor's own services (int3) ---- */
    .balign 16
floor_service:
    cmp $2, %rax
    je 2f
    cmp $3, %rax
    je 3f
    cmp $4, %rax
    je 4f
    cmp $1, %rax
    je 1f
    cmp $5, %rax
    je 5f
    cmp $6, %rax
    je 10f
    cmp $7, %rax
    je 11f
    cmp $8, %rax
    je 13f
    cmp $9, %rax
    je 14f
    cmp $10, %rax
    je 15f
    iretq
14: mov %edi, %eax                  /* the byte dil to the bench port */
    mov ${bench_port}, %dx
    out %al, %dx
    iretq
15: mov ${bench_port}, %dx          /* rax = a 4-byte read of the bench port */
    in %dx, %eax
    iretq
13: push %rbx                       /* rax = eax of cpuid leaf edi, in ring 0 */
    mov %edi, %eax
    xor %ecx, %ecx
    cpuid
    pop %rbx
    iretq
10: mov %rdi, floor_tick_period(%rip)   /* timer period rdi cycles (0: off) */
    xor %eax, %eax
    xor %edx, %edx
    test %rdi, %rdi
    jz 12f
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    add %rdi, %rax
    mov %rax, %rdx
    shr $32, %rdx
12: mov $0x6e0, %ecx
    wrmsr
    iretq
11: mov floor_ticks(%rip), %rax     /* timer interrupts so far */
    iretq
1:  movabs $KERNEL_VMA, %rcx        /* write(rsi, rdx): via the kernel alias */
    add %rcx, %rsi
    mov %rdx, %rcx
    mov ${com1}, %dx
    rep outsb
    iretq
2:  mov %rdi, %rcx                  /* out 0xf5, rdi times (al = 0: not a counter command) */
    lfence
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, %r8
    xor %eax, %eax
    mov ${bench_port}, %dx
6:  out %al, %dx
    dec %rcx
    jnz 6b
    jmp 9f
3:  push %rbx                       /* cpuid, rdi times */
    mov %rdi, %r9
    lfence
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, %r8
7:  xor %eax, %eax
    cpuid
    dec %r9
    jnz 7b
    pop %rbx
    jmp 9f
4:  mov %rdi, %rcx                  /* dec; jnz, rdi times */
    lfence
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, %r8
8:  dec %rcx
    jnz 8b
9:  lfence                          /* rax = TSC now - r8 */
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    sub %r8, %rax
    iretq
5:  mov %edi, %eax                  /* exit(dil) */
    out %al, ${exit_port}
    hlt
    jmp 5b

floor_gp:
    mov $13, %al
    out %al, ${exit_port}
    hlt
floor_double_fault:
    mov $8, %al
    out %al, ${exit_port}
    hlt

    .section .kdata, "aw"
    .balign 4096
floor_idt:
    .fill 256 * 16, 1, 0
floor_idt_ptr:
    .word 256 * 16 - 1
    .quad floor_idt
    .balign 8
floor_tick_period:
    .quad 0
floor_ticks:
    .quad 0
    .balign 16
floor_tss:
    .fill 104, 1, 0
    .balign 16
floor_kstack:
    .fill 16384, 1, 0
floor_kstack_top:
    "#,
    com1 = const abi::machine::port::COM1,
    bench_port = const abi::machine::port::BENCH,
    exit_port = const abi::machine::port::EXIT,
    options(att_syntax)
);
