/* The register half of signals.c: code in assembly that fills every general register, the SSE
 * registers, MXCSR and RFLAGS.DF with known values, lets a signal arrive (a kill system call,
 * or a timer while it spins), and stores what it finds afterwards; and a handler, also in
 * assembly, that destroys all of them before it returns. Only the kernel's signal frame can
 * bring the values back. */
#ifndef SIGREGS_H
#define SIGREGS_H

/* Slots of regs_out: general registers, then rflags, rsp, mxcsr, then 16 xmm (2 words each). */
enum { R_RAX, R_RBX, R_RCX, R_RDX, R_RSI, R_RDI, R_RBP, R_R8, R_R9, R_R10, R_R11, R_R12, R_R13,
       R_R14, R_R15, R_FLAGS, R_RSP, R_MXCSR, R_XMM, R_COUNT = R_XMM + 32 };

/* Inputs: the value each register starts with (rsp: ignored) and the xmm patterns. */
unsigned long regs_in[R_COUNT];
unsigned long regs_out[R_COUNT];
/* The stack pointer on entry to the spin or the syscall, for comparison. */
unsigned long regs_rsp_before;
volatile unsigned char regs_handler_ran;
volatile unsigned long regs_spin_budget;

/* regs_kill(): kill(regs_in[R_RDI], regs_in[R_RSI]) with every other register loaded.
 * regs_spin(): spins until regs_handler_ran (or the budget runs out), every register loaded.
 * regs_trash_handler: a signal handler that sets regs_handler_ran and destroys everything. */
void regs_kill(void);
void regs_spin(void);
void regs_trash_handler(int);
extern char regs_kill_after[], regs_spin_loop[], regs_spin_end[];

__asm__(".text\n"
	/* Save callee-saved registers, then load everything from regs_in. */
	".macro LOAD_ALL\n"
	"push %rbx; push %rbp; push %r12; push %r13; push %r14; push %r15\n"
	"sub $8, %rsp\n"
	"mov %rsp, regs_rsp_before(%rip)\n"
	"lea regs_in(%rip), %rax\n"
	"ldmxcsr 8*17(%rax)\n"
	"movdqu 8*18+16*0(%rax), %xmm0\n movdqu 8*18+16*1(%rax), %xmm1\n"
	"movdqu 8*18+16*2(%rax), %xmm2\n movdqu 8*18+16*3(%rax), %xmm3\n"
	"movdqu 8*18+16*4(%rax), %xmm4\n movdqu 8*18+16*5(%rax), %xmm5\n"
	"movdqu 8*18+16*6(%rax), %xmm6\n movdqu 8*18+16*7(%rax), %xmm7\n"
	"movdqu 8*18+16*8(%rax), %xmm8\n movdqu 8*18+16*9(%rax), %xmm9\n"
	"movdqu 8*18+16*10(%rax), %xmm10\n movdqu 8*18+16*11(%rax), %xmm11\n"
	"movdqu 8*18+16*12(%rax), %xmm12\n movdqu 8*18+16*13(%rax), %xmm13\n"
	"movdqu 8*18+16*14(%rax), %xmm14\n movdqu 8*18+16*15(%rax), %xmm15\n"
	"mov 8*1(%rax), %rbx\n mov 8*2(%rax), %rcx\n mov 8*3(%rax), %rdx\n"
	"mov 8*4(%rax), %rsi\n mov 8*5(%rax), %rdi\n mov 8*6(%rax), %rbp\n"
	"mov 8*7(%rax), %r8\n mov 8*8(%rax), %r9\n mov 8*9(%rax), %r10\n"
	"mov 8*10(%rax), %r11\n mov 8*11(%rax), %r12\n mov 8*12(%rax), %r13\n"
	"mov 8*13(%rax), %r14\n mov 8*14(%rax), %r15\n"
	"std\n"
	"mov 8*0(%rax), %rax\n"
	".endm\n"
	/* Store everything into regs_out (rax and rflags first, through the stack), restore. */
	".macro STORE_ALL\n"
	"pushf\n"
	"push %rax\n"
	"cld\n"
	"lea regs_out(%rip), %rax\n"
	"pop 8*0(%rax)\n pop 8*15(%rax)\n"
	"mov %rbx, 8*1(%rax)\n mov %rcx, 8*2(%rax)\n mov %rdx, 8*3(%rax)\n"
	"mov %rsi, 8*4(%rax)\n mov %rdi, 8*5(%rax)\n mov %rbp, 8*6(%rax)\n"
	"mov %r8, 8*7(%rax)\n mov %r9, 8*8(%rax)\n mov %r10, 8*9(%rax)\n"
	"mov %r11, 8*10(%rax)\n mov %r12, 8*11(%rax)\n mov %r13, 8*12(%rax)\n"
	"mov %r14, 8*13(%rax)\n mov %r15, 8*14(%rax)\n mov %rsp, 8*16(%rax)\n"
	"stmxcsr 8*17(%rax)\n"
	"movdqu %xmm0, 8*18+16*0(%rax)\n movdqu %xmm1, 8*18+16*1(%rax)\n"
	"movdqu %xmm2, 8*18+16*2(%rax)\n movdqu %xmm3, 8*18+16*3(%rax)\n"
	"movdqu %xmm4, 8*18+16*4(%rax)\n movdqu %xmm5, 8*18+16*5(%rax)\n"
	"movdqu %xmm6, 8*18+16*6(%rax)\n movdqu %xmm7, 8*18+16*7(%rax)\n"
	"movdqu %xmm8, 8*18+16*8(%rax)\n movdqu %xmm9, 8*18+16*9(%rax)\n"
	"movdqu %xmm10, 8*18+16*10(%rax)\n movdqu %xmm11, 8*18+16*11(%rax)\n"
	"movdqu %xmm12, 8*18+16*12(%rax)\n movdqu %xmm13, 8*18+16*13(%rax)\n"
	"movdqu %xmm14, 8*18+16*14(%rax)\n movdqu %xmm15, 8*18+16*15(%rax)\n"
	"movl $0x1f80, -4(%rsp)\n ldmxcsr -4(%rsp)\n"
	"add $8, %rsp\n"
	"pop %r15; pop %r14; pop %r13; pop %r12; pop %rbp; pop %rbx\n"
	".endm\n"

	".globl regs_kill\n"
	"regs_kill:\n"
	"LOAD_ALL\n"
	"mov $62, %eax\n" /* kill */
	"syscall\n"
	".globl regs_kill_after\n"
	"regs_kill_after:\n"
	"STORE_ALL\n"
	"ret\n"

	".globl regs_spin\n"
	"regs_spin:\n"
	"LOAD_ALL\n"
	"movb $0, regs_handler_ran(%rip)\n"
	".globl regs_spin_loop\n"
	"regs_spin_loop:\n"
	"cmpb $0, regs_handler_ran(%rip)\n"
	"jne 1f\n"
	"decq regs_spin_budget(%rip)\n"
	"jnz regs_spin_loop\n"
	"1:\n"
	".globl regs_spin_end\n"
	"regs_spin_end:\n"
	"STORE_ALL\n"
	"ret\n"

	".globl regs_trash_handler\n"
	"regs_trash_handler:\n"
	"movb $1, regs_handler_ran(%rip)\n"
	"mov $0xbad0bad0bad0bad0, %rax\n"
	"mov %rax, %rbx\n mov %rax, %rcx\n mov %rax, %rdx\n mov %rax, %rsi\n mov %rax, %rdi\n"
	"mov %rax, %rbp\n mov %rax, %r8\n mov %rax, %r9\n mov %rax, %r10\n mov %rax, %r11\n"
	"mov %rax, %r12\n mov %rax, %r13\n mov %rax, %r14\n mov %rax, %r15\n"
	"movq %rax, %xmm0\n"
	"pshufd $0, %xmm0, %xmm0\n"
	"movdqa %xmm0, %xmm1\n movdqa %xmm0, %xmm2\n movdqa %xmm0, %xmm3\n"
	"movdqa %xmm0, %xmm4\n movdqa %xmm0, %xmm5\n movdqa %xmm0, %xmm6\n"
	"movdqa %xmm0, %xmm7\n movdqa %xmm0, %xmm8\n movdqa %xmm0, %xmm9\n"
	"movdqa %xmm0, %xmm10\n movdqa %xmm0, %xmm11\n movdqa %xmm0, %xmm12\n"
	"movdqa %xmm0, %xmm13\n movdqa %xmm0, %xmm14\n movdqa %xmm0, %xmm15\n"
	"movl $0x7f80, -4(%rsp)\n ldmxcsr -4(%rsp)\n"
	"std\n"
	"ret\n");

#endif
