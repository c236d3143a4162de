/* hostspawn: run a program of guest/user on the Linux host with our kernel's `spawn` (1000)
 * emulated, to check `init` (and your own programs that spawn) before the kernel runs them.
 *
 *   gcc -O2 -o /tmp/hostspawn guest/user/tools/hostspawn.c
 *   cd guest/target/x86_64-unknown-none/release && /tmp/hostspawn ./init; echo $?
 *
 * Programs are found by name in the current directory. It traces the program with ptrace and
 * turns each spawn(name, argv) into a fork; the child, stopped right after the fork, is made to
 * execute the same `syscall` instruction again as execve(name, argv) and is then let go. So the
 * spawned programs are real children: wait4 works unchanged. Host-only tool, not built by cargo.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define SYS_SPAWN 1000

static pid_t stopped[64]; /* new children whose first stop we already consumed */
static int nstopped;

/* Make the freshly forked child `c` execve(name, argv) and let it go. */
static void exec_child(pid_t c, unsigned long name, unsigned long argv)
{
	int seen = 0, st;
	for (int k = 0; k < 64; k++)
		seen |= stopped[k] == c;
	if (!seen)
		waitpid(c, &st, __WALL);
	struct user_regs_struct r;
	ptrace(PTRACE_GETREGS, c, 0, &r);
	if (argv == 0) { /* spawn's NULL argv means [name]: build it below the red zone */
		argv = (r.rsp - 512) & ~15UL;
		ptrace(PTRACE_POKEDATA, c, argv, name);
		ptrace(PTRACE_POKEDATA, c, argv + 8, 0);
	}
	r.rax = 59; /* execve */
	r.rdi = name;
	r.rsi = argv;
	r.rdx = 0;
	r.rip -= 2; /* back onto the `syscall` instruction */
	ptrace(PTRACE_SETREGS, c, 0, &r);
	ptrace(PTRACE_DETACH, c, 0, 0);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: hostspawn PROGRAM [ARGS...]\n");
		return 2;
	}
	pid_t p = fork();
	if (p == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		execv(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	int st, in_spawn = 0;
	unsigned long name = 0, args = 0;
	waitpid(p, &st, 0);
	ptrace(PTRACE_SETOPTIONS, p, 0,
	       PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_EXITKILL);
	ptrace(PTRACE_SYSCALL, p, 0, 0);
	for (;;) {
		pid_t w = waitpid(-1, &st, __WALL);
		if (w < 0) {
			perror("waitpid");
			return 1;
		}
		if (w != p) { /* a new child's first stop, before its parent's fork returned */
			stopped[nstopped++ % 64] = w;
			continue;
		}
		if (WIFEXITED(st))
			return WEXITSTATUS(st);
		if (WIFSIGNALED(st))
			return 128 + WTERMSIG(st);
		int sig = 0;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80)) { /* system-call entry or exit */
			struct user_regs_struct r;
			ptrace(PTRACE_GETREGS, p, 0, &r);
			if (!in_spawn && r.orig_rax == SYS_SPAWN) {
				in_spawn = 1;
				name = r.rdi;
				args = r.rsi;
				r.orig_rax = 57; /* fork */
				ptrace(PTRACE_SETREGS, p, 0, &r);
			} else if (in_spawn) {
				in_spawn = 0;
				if ((long)r.rax > 0)
					exec_child((pid_t)r.rax, name, args);
			}
		} else if ((st >> 16) == 0 && WSTOPSIG(st) != SIGTRAP) {
			sig = WSTOPSIG(st); /* a real signal: deliver it */
		}
		ptrace(PTRACE_SYSCALL, p, 0, sig);
	}
}
