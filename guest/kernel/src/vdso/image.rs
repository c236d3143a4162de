//! The vDSO image: a complete ELF64 shared object (ET_DYN, linked at 0, position-independent),
//! written out in assembler directives and assembled into the kernel's read-only data, on its
//! own pages. Hand-written because it is small and fixed: one PT_LOAD (the whole image, R+X),
//! one PT_DYNAMIC, and the tables a libc's lookup reads — DT_HASH (one bucket: every symbol on
//! one chain, a valid SysV table whatever the hash), DT_SYMTAB, DT_STRTAB, DT_VERSYM and
//! DT_VERDEF (the base version "linux-vdso.so.1" and LINUX_2.6, with their ELF hashes, which
//! some lookups check). Offsets are label differences, so the assembler computes them; there
//! are no relocations and no section headers (no libc reads them).
//!
//! The code reads the data page at `.Lv - 4096` (the page below the ELF header, `DATA_VA`)
//! RIP-relatively, so the image works wherever it is mapped. It runs in ring 3 and uses only
//! unprivileged instructions; the TSC is read with `lfence; rdtsc` (`rdtscp` kills the VM on
//! kvm_pvm). Clocks it does not serve in ring 3 go to the real system call.

use super::{Data, SHIFT};
use core::mem::offset_of;

extern "C" {
    static lde_vdso_start: u8;
    static lde_vdso_end: u8;
}

/// The image's kernel virtual address and length in bytes (a whole number of pages).
pub fn bytes() -> (u64, u64) {
    // SAFETY: linker symbols around the image; only their addresses are used.
    let (start, end) = unsafe {
        (
            &lde_vdso_start as *const u8 as u64,
            &lde_vdso_end as *const u8 as u64,
        )
    };
    (start, end - start)
}

core::arch::global_asm!(
    r#"
    .pushsection .rodata.lde_vdso,"a",@progbits
    .balign 4096
    .globl lde_vdso_start
lde_vdso_start:
.Lv:
    /* ELF header: ELFCLASS64, little-endian, version 1, System V ABI; ET_DYN, EM_X86_64 */
    .byte 0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0
    .quad 0
    .short 3, 62
    .long 1
    .quad 0                             /* e_entry: none */
    .quad .Lphdr - .Lv                  /* e_phoff */
    .quad 0                             /* e_shoff: no section headers */
    .long 0                             /* e_flags */
    .short 64, 56, 2, 64, 0, 0          /* ehsize, phentsize, phnum, shentsize, shnum, shstrndx */
.Lphdr:
    .long 1, 5                          /* PT_LOAD, PF_R | PF_X */
    .quad 0, 0, 0, .Lend - .Lv, .Lend - .Lv, 4096
    .long 2, 4                          /* PT_DYNAMIC, PF_R */
    .quad .Ldyn - .Lv, .Ldyn - .Lv, .Ldyn - .Lv, .Ldyn_end - .Ldyn, .Ldyn_end - .Ldyn, 8

.Lhash:                                 /* nbucket 1, nchain 5, bucket[0] = 1, chain 1->2->3->4 */
    .long 1, 5, 1, 0, 2, 3, 4, 0

    .macro vdso_sym name, func, end
    .long \name - .Ldynstr
    .byte 0x12, 0                       /* STB_GLOBAL, STT_FUNC; default visibility */
    .short 1                            /* any defined section: libcs only check it is not 0 */
    .quad \func - .Lv, \end - \func
    .endm

    .balign 8
.Ldynsym:
    .quad 0, 0, 0
    vdso_sym .Ls_cgt, .Lcgt, .Lcgt_end
    vdso_sym .Ls_gtod, .Lgtod, .Lgtod_end
    vdso_sym .Ls_time, .Ltime, .Ltime_end
    vdso_sym .Ls_getcpu, .Lgetcpu, .Lgetcpu_end

.Lversym:                               /* symbol 0 local, the others LINUX_2.6 (index 2) */
    .short 0, 2, 2, 2, 2

    .balign 4
.Lverdef:
    .short 1, 1, 1, 1                   /* version 1, VER_FLG_BASE, index 1, one aux */
    .long 0x0deebfa1, 20, 28            /* ELF hash of "linux-vdso.so.1", aux, next */
    .long .Ls_soname - .Ldynstr, 0
    .short 1, 0, 2, 1                   /* version 1, no flags, index 2, one aux */
    .long 0x03ae75f6, 20, 0             /* ELF hash of "LINUX_2.6", aux, last */
    .long .Ls_version - .Ldynstr, 0

.Ldynstr:
    .byte 0
.Ls_soname:  .asciz "linux-vdso.so.1"
.Ls_version: .asciz "LINUX_2.6"
.Ls_cgt:     .asciz "__vdso_clock_gettime"
.Ls_gtod:    .asciz "__vdso_gettimeofday"
.Ls_time:    .asciz "__vdso_time"
.Ls_getcpu:  .asciz "__vdso_getcpu"
.Ldynstr_end:

    .balign 8
.Ldyn:
    .quad 14, .Ls_soname - .Ldynstr     /* DT_SONAME */
    .quad 4, .Lhash - .Lv               /* DT_HASH */
    .quad 5, .Ldynstr - .Lv             /* DT_STRTAB */
    .quad 6, .Ldynsym - .Lv             /* DT_SYMTAB */
    .quad 10, .Ldynstr_end - .Ldynstr   /* DT_STRSZ */
    .quad 11, 24                        /* DT_SYMENT */
    .quad 0x6ffffff0, .Lversym - .Lv    /* DT_VERSYM */
    .quad 0x6ffffffc, .Lverdef - .Lv    /* DT_VERDEF */
    .quad 0x6ffffffd, 2                 /* DT_VERDEFNUM */
    .quad 0, 0                          /* DT_NULL */
.Ldyn_end:

    .balign 16
/* rax = CLOCK_MONOTONIC in ns, plus the realtime offset when r10d is 1. Clobbers rcx, rdx,
   r8, r9; keeps rdi, rsi, r10. Retries while the kernel is changing the data page. */
.Lread_ns:
    lea r8, [rip + .Lv - 4096]
.Lread_again:
    mov r9d, dword ptr [r8 + {seq}]
    test r9d, 1
    jnz .Lread_busy
    lfence
    rdtsc
    shl rdx, 32
    or rax, rdx
    sub rax, qword ptr [r8 + {boot_tsc}]
    mul qword ptr [r8 + {mult}]
    shrd rax, rdx, {shift}
    test r10d, r10d
    jz .Lread_mono
    add rax, qword ptr [r8 + {realtime}]
.Lread_mono:
    cmp r9d, dword ptr [r8 + {seq}]
    jne .Lread_again
    ret
.Lread_busy:
    pause
    jmp .Lread_again

/* rax ns -> rdx seconds, rcx nanoseconds (x / 10^9 as a multiply, as compilers do it). */
.Lsplit:
    mov rcx, rax
    shr rax, 9
    mov rdx, 19342813113834067
    mul rdx
    shr rdx, 11
    imul rax, rdx, 1000000000
    sub rcx, rax
    ret

/* int clock_gettime(clockid_t clk, struct timespec *ts): REALTIME(0), MONOTONIC(1),
   MONOTONIC_RAW(4), REALTIME_COARSE(5), MONOTONIC_COARSE(6), BOOTTIME(7) here (the kernel
   serves them from the same TSC), anything else by the system call. */
.Lcgt:
    cmp edi, 7
    ja .Lcgt_syscall
    mov eax, 0xf3
    bt eax, edi
    jnc .Lcgt_syscall
    xor r10d, r10d
    mov eax, 0x21
    bt eax, edi
    adc r10d, 0
    call .Lread_ns
    call .Lsplit
    mov qword ptr [rsi], rdx
    mov qword ptr [rsi + 8], rcx
    xor eax, eax
    ret
.Lcgt_syscall:
    mov eax, 228
    syscall
    ret
.Lcgt_end:

/* int gettimeofday(struct timeval *tv, struct timezone *tz): the zone is UTC, as Linux's
   default. */
.Lgtod:
    test rdi, rdi
    jz .Lgtod_tz
    mov r10d, 1
    call .Lread_ns
    call .Lsplit
    mov qword ptr [rdi], rdx
    mov rax, rcx
    shr rax, 3
    mov rdx, 2361183241434822607
    mul rdx
    shr rdx, 4
    mov qword ptr [rdi + 8], rdx
.Lgtod_tz:
    test rsi, rsi
    jz .Lgtod_done
    mov qword ptr [rsi], 0
.Lgtod_done:
    xor eax, eax
    ret
.Lgtod_end:

/* time_t time(time_t *t) */
.Ltime:
    mov r10d, 1
    call .Lread_ns
    call .Lsplit
    mov rax, rdx
    test rdi, rdi
    jz .Ltime_done
    mov qword ptr [rdi], rax
.Ltime_done:
    ret
.Ltime_end:

/* int getcpu(unsigned *cpu, unsigned *node, void *cache): one CPU, one node. */
.Lgetcpu:
    test rdi, rdi
    jz .Lgetcpu_node
    mov dword ptr [rdi], 0
.Lgetcpu_node:
    test rsi, rsi
    jz .Lgetcpu_done
    mov dword ptr [rsi], 0
.Lgetcpu_done:
    xor eax, eax
    ret
.Lgetcpu_end:
.Lend:
    .balign 4096
    .globl lde_vdso_end
lde_vdso_end:
    .popsection
"#,
    seq = const offset_of!(Data, seq),
    boot_tsc = const offset_of!(Data, boot_tsc),
    mult = const offset_of!(Data, mult),
    realtime = const offset_of!(Data, realtime_offset),
    shift = const SHIFT,
);
