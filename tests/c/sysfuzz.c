/* sysfuzz ROUNDS SEED: hostile system calls. Each round forks a child that makes CALLS calls
 * with numbers from the whole table (and past it) and arguments drawn from what breaks
 * kernels: 0, -1, kernel addresses, non-canonical ones, the last bytes of user memory, huge
 * sizes, a valid buffer, random bits. Whatever a child does to itself (a fault, a signal, a
 * call that blocks) is its business: a child still running after a while is killed with
 * SIGKILL, so blocked calls must end on a signal too. The kernel must go on: at the end this
 * forks, pipes and waits once more, as a check that it still works, and prints a summary.
 *
 * Guest only, as pid 1: on a real machine these calls could do anything (tests run as root).
 * Left out: the calls that reach other processes or the machine (kill and its kin with random
 * pids could hit pid 1; reboot; our own spawn and bench), and fork, vfork and clone, which
 * would multiply the fuzzers (tests/c/forkbomb.c has those). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CALLS 40
#define HIGHEST 460 /* past Linux's last x86-64 call (and so past ours) */

static uint64_t state;

static uint64_t next(void)
{
	/* xorshift64*: reproducible from the seed. */
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * 0x2545f4914f6cdd1dULL;
}

static int left_out(long nr)
{
	switch (nr) {
	case SYS_kill:
	case SYS_tkill:
	case SYS_tgkill:
	case SYS_rt_sigqueueinfo:
	case SYS_rt_tgsigqueueinfo:
	case 424: /* pidfd_send_signal */
	case SYS_reboot:
	case SYS_fork:
	case SYS_vfork:
	case SYS_clone:
	case 435: /* clone3 */
	case 1000: /* spawn (ours) */
	case 1001: /* bench (ours): it would arm the VMM's single-stepping counter */
		return 1;
	}
	return 0;
}

static char buf[8192] __attribute__((aligned(4096)));

static long argument(void)
{
	switch (next() % 14) {
	case 0: return 0;
	case 1: return -1;
	case 2: return (long)0xffffffff80100000UL; /* the kernel's text */
	case 3: return (long)0xffff800000000000UL; /* the direct map */
	case 4: return (long)0x8000000000000000UL; /* non-canonical */
	case 5: return 0x00007ffffffffff0L;        /* the last bytes of user memory */
	case 6: return (long)(buf + sizeof buf - 1); /* a buffer's last byte */
	case 7: return (long)buf;
	case 8: return (long)(next() % 4096);
	case 9: return (long)(1UL << (next() % 64));
	case 10: return (long)(next() % 16); /* a descriptor, a small flag */
	case 11: return 0x7fffffffL;
	case 12: return -(long)(next() % 4096); /* an errno-looking value */
	default: return (long)next();
	}
}

static void fuzz(void)
{
	/* Away from the console: a call that changed its mode or its foreground group would
	 * trip the parent's output. */
	int null = open("/dev/null", O_RDWR);
	for (int fd = 0; fd < 3; fd++)
		dup2(null, fd);
	setsid();
	for (int i = 0; i < CALLS; i++) {
		long nr = (long)(next() % (HIGHEST + 8));
		if (nr >= HIGHEST)
			nr = 1000 + (nr - HIGHEST); /* ours, and beyond */
		if (left_out(nr))
			continue;
		for (size_t j = 0; j < sizeof buf; j += 8)
			memcpy(buf + j, &state, 8);
		syscall(nr, argument(), argument(), argument(), argument(), argument(), argument());
	}
	_exit(0);
}

static void nap_ms(long ms)
{
	struct timespec t = {0, ms * 1000000};
	nanosleep(&t, NULL);
}

int main(int argc, char **argv)
{
	if (getpid() != 1) {
		printf("sysfuzz: refusing to run except as pid 1 (in our guest)\n");
		return 2;
	}
	int rounds = argc > 1 ? atoi(argv[1]) : 100;
	state = argc > 2 ? strtoull(argv[2], NULL, 0) : 1;
	if (state == 0)
		state = 1;
	printf("sysfuzz: %d rounds of %d calls, seed %s\n", rounds, CALLS, argc > 2 ? argv[2] : "1");
	int exited = 0, signalled = 0, killed = 0;
	for (int r = 0; r < rounds; r++) {
		uint64_t seed = next();
		pid_t c = fork();
		if (c < 0) {
			printf("sysfuzz: FAIL fork in round %d: %s\n", r, strerror(errno));
			return 1;
		}
		if (c == 0) {
			state = seed | 1;
			fuzz();
		}
		int st = 0;
		pid_t w = 0;
		for (int t = 0; t < 20 && w == 0; t++) {
			w = waitpid(c, &st, WNOHANG);
			if (w == 0)
				nap_ms(5);
		}
		if (w == 0) {
			kill(c, SIGKILL); /* blocked, or looping: it must still die */
			killed++;
			w = waitpid(c, &st, 0);
		}
		if (w != c) {
			printf("sysfuzz: FAIL waitpid in round %d: %s\n", r, strerror(errno));
			return 1;
		}
		if (WIFEXITED(st))
			exited++;
		else if (WIFSIGNALED(st))
			signalled++;
		/* Reap anything else (a child's exec'd program, say) without waiting. */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
	/* The kernel still works: a pipe between a child and us. */
	int p[2];
	if (pipe(p) != 0) {
		printf("sysfuzz: FAIL pipe after the rounds: %s\n", strerror(errno));
		return 1;
	}
	pid_t c = fork();
	if (c == 0) {
		write(p[1], "alive", 5);
		_exit(7);
	}
	char got[8] = {0};
	int st = 0;
	if (c < 0 || read(p[0], got, 5) != 5 || strcmp(got, "alive") != 0 ||
	    waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 7) {
		printf("sysfuzz: FAIL the kernel after the rounds: no pipe, fork or wait\n");
		return 1;
	}
	printf("sysfuzz: %d rounds: %d exited, %d killed by a signal (%d of them by us, still "
	       "running); the kernel goes on\n",
	       rounds, exited, signalled, killed);
	printf("sysfuzz: all passed\n");
	return 0;
}
