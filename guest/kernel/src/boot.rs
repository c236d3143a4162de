//! The boot trampoline: PVH 32-bit entry → long mode → `kmain`.
//!
//! A PVH loader (our VMM, QEMU, Firecracker, Cloud Hypervisor) enters at `pvh_start` in 32-bit
//! protected mode with paging off and EBX = physical address of `hvm_start_info`. We load a GDT
//! with a 64-bit code segment, point CR3 at page tables that are built at link time (so the boot
//! path loops over nothing: every ring-0 instruction is expensive under kvm_pvm), enable PAE, long
//! mode, NX when the CPU has it, and paging, then jump to the higher half.
//!
//! The boot tables map the first GiB of physical memory three times with 2 MiB pages: at 0
//! (identity, only while we run here), at `PHYS_OFFSET` (the kernel's direct map of RAM) and at
//! `KERNEL_VMA` (the kernel image). `memory::paging` replaces them once Rust runs.

core::arch::global_asm!(
    r#"
    .section .note.Xen, "a"
    .balign 4
    .long 4                 /* name size: "Xen\0" */
    .long 8                 /* descriptor size */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad pvh_start         /* physical: .boot is linked where it is loaded */

    .section .boot.text, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    mov %ebx, %esi                  /* start_info; CPUID below clobbers EBX */
    mov $0x80000001, %eax
    cpuid
    mov %edx, %edi                  /* EDX bit 20: NX */
    lgdt boot_gdt_ptr
    mov %cr4, %eax
    or $0x20, %eax                  /* CR4.PAE */
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx           /* IA32_EFER */
    rdmsr
    or $0x100, %eax                 /* LME */
    test $0x100000, %edi
    jz 1f
    or $0x800, %eax                 /* NXE */
1:  wrmsr
    mov %cr0, %eax
    or $0x80010001, %eax            /* PG | WP | PE */
    mov %eax, %cr0
    ljmp $0x08, $boot64

    .code64
boot64:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    movabs $kernel_entry64, %rax
    jmp *%rax

    .section .boot.data, "aw"
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit kernel code */
    .quad 0x00cf92000000ffff        /* 0x10: kernel data */
boot_gdt_ptr:
    .word boot_gdt_ptr - boot_gdt - 1
    .long boot_gdt

    .balign 4096
    .global boot_pml4
boot_pml4:
    .quad boot_pdpt_low + 3         /* [0]   identity, for the jump above */
    .fill 255, 8, 0
    .quad boot_pdpt_low + 3         /* [256] PHYS_OFFSET: direct map */
    .fill 254, 8, 0
    .quad boot_pdpt_high + 3        /* [511] KERNEL_VMA: the kernel image */
boot_pdpt_low:
    .quad boot_pd + 3
    .fill 511, 8, 0
boot_pdpt_high:
    .fill 510, 8, 0
    .quad boot_pd + 3               /* 0xffffffff80000000 */
    .quad 0
boot_pd:
    .set i, 0
    .rept 512
    .quad (i << 21) + 0x83          /* present, writable, 2 MiB */
    .set i, i + 1
    .endr

    .section .text
kernel_entry64:
    lea {stack}(%rip), %rsp
    add ${stack_size}, %rsp
    mov %esi, %edi                  /* zero-extends: RDI = start_info physical address */
    xor %ebp, %ebp
    call {kmain}
    ud2
    "#,
    stack = sym BOOT_STACK,
    stack_size = const BOOT_STACK_SIZE,
    kmain = sym crate::kmain,
    options(att_syntax)
);

/// The stack `kmain` runs on; later the scheduler's idle loop runs on it too.
#[repr(C, align(16))]
pub struct Stack<const N: usize>(pub [u8; N]);

pub const BOOT_STACK_SIZE: usize = 64 * 1024;
#[no_mangle]
pub static mut BOOT_STACK: Stack<BOOT_STACK_SIZE> = Stack([0; BOOT_STACK_SIZE]);
