/* trap WHAT: a fault or trap in ring 3 that only kills this process, or a system call made with
 * a stack pointer the kernel must not use. WHAT is one of:
 *   ud2        invalid opcode (#UD): SIGILL, 132
 *   int3       breakpoint (#BP, through the DPL-3 gate): SIGTRAP, 133
 *   int81      `int 0x81`, a vector with no gate for ring 3 (#GP on a real CPU): SIGSEGV, 139
 *   badstack   getpid through `syscall` with rsp = a kernel address, then rsp restored: 0
 *   badstack80 the same through `int 0x80`: 0
 *   nullstack  getpid through `syscall` with rsp = 0: 0
 *   writecode  a write to its own code (mapped read-only): SIGSEGV, 139
 *   execstack  a jump to a `ret` on the stack (NX): SIGSEGV, 139
 *   execdata   a jump to a `ret` in writable data (NX): SIGSEGV, 139
 *   overflow   unbounded recursion, into the guard page below the stack: SIGSEGV, 139
 *   lstar ADDR a jump to ADDR (the kernel's `syscall` entry) with a non-canonical RCX, which a
 *              `syscall` would have made the return address: SIGSEGV, 139, never a kernel
 *              fault on the way back (the sysret/iret class of bug)
 *   lstarflags ADDR  the same jump with a good return address, rax = getpid and r11 asking
 *              for IOPL 3 with interrupts off: taken as a system call (a #PF at LSTAR), it
 *              must come back with IF set and IOPL 0; prints the flags, exits 0 if they are */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static unsigned char data_ret[16] = { 0xc3 };

static int recurse(volatile char *prev, long depth)
{
	volatile char frame[4096];
	frame[0] = prev ? prev[0] + 1 : 0;
	if (depth == 1L << 40) /* never: the stack is far smaller */
		return 0;
	return recurse(frame, depth + 1) + frame[1];
}

static long getpid_with_rsp(unsigned long rsp, int int80)
{
	long r;
	if (int80)
		__asm__ volatile("mov %%rsp, %%rbx\n\t"
				 "mov %2, %%rsp\n\t"
				 "int $0x80\n\t"
				 "mov %%rbx, %%rsp"
				 : "=a"(r)
				 : "a"(39L), "r"(rsp)
				 : "rbx", "rcx", "r11", "memory");
	else
		__asm__ volatile("mov %%rsp, %%rbx\n\t"
				 "mov %2, %%rsp\n\t"
				 "syscall\n\t"
				 "mov %%rbx, %%rsp"
				 : "=a"(r)
				 : "a"(39L), "r"(rsp)
				 : "rbx", "rcx", "r11", "memory");
	return r;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "ud2";
	long r;
	printf("trap: %s\n", what);
	fflush(stdout);
	if (!strcmp(what, "ud2"))
		__asm__ volatile("ud2");
	else if (!strcmp(what, "int3"))
		__asm__ volatile("int3");
	else if (!strcmp(what, "int81"))
		__asm__ volatile("int $0x81");
	else if (!strcmp(what, "badstack") || !strcmp(what, "badstack80") ||
		 !strcmp(what, "nullstack")) {
		unsigned long rsp = strcmp(what, "nullstack") ? 0xffffffff80100000UL : 0;
		r = getpid_with_rsp(rsp, !strcmp(what, "badstack80"));
		printf("trap: %s: getpid = %ld (pid %d)\n", what, r, (int)getpid());
		return r == getpid() ? 0 : 1;
	} else if (!strcmp(what, "writecode")) {
		*(volatile unsigned char *)(void *)main = 0xc3;
	} else if (!strcmp(what, "execstack")) {
		volatile unsigned char stack_ret[16] = { 0xc3 };
		((void (*)(void))(void *)stack_ret)();
	} else if (!strcmp(what, "execdata")) {
		((void (*)(void))(void *)data_ret)();
	} else if (!strcmp(what, "overflow")) {
		recurse(0, 0);
	} else if (!strcmp(what, "lstar") && argc > 2) {
		unsigned long target = strtoul(argv[2], 0, 0);
		__asm__ volatile("mov %0, %%rax\n\t"
				 "movabs $0x8000000000001000, %%rcx\n\t"
				 "mov $0x202, %%r11\n\t"
				 "jmp *%%rax"
				 :
				 : "r"(target)
				 : "rax", "rcx", "r11", "memory");
	} else if (!strcmp(what, "lstarflags") && argc > 2) {
		unsigned long target = strtoul(argv[2], 0, 0), flags;
		long r;
		__asm__ volatile("lea 1f(%%rip), %%rcx\n\t"
				 "mov $0x3002, %%r11\n\t" /* IOPL 3, IF clear */
				 "mov $39, %%eax\n\t"    /* getpid */
				 "jmp *%2\n"
				 "1:\tmov %%rax, %1\n\t"
				 "pushfq\n\t"
				 "pop %0"
				 : "=r"(flags), "=r"(r)
				 : "r"(target)
				 : "rax", "rcx", "r11", "memory");
		printf("trap: lstarflags: getpid = %ld, rflags %#lx\n", r, flags);
		return (flags & 0x3000) == 0 && (flags & 0x200) && r == getpid() ? 0 : 1;
	} else {
		printf("trap: unknown %s\n", what);
		return 2;
	}
	printf("trap: %s: still alive!\n", what);
	return 1;
}
