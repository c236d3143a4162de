/* Our own system call from C: spawn (1000) starts a program of the archive by name as a child
 * (docs/conventions.md), through musl's generic syscall(). Checks each documented error, a few
 * children's wait statuses, then fills the process table (EAGAIN) and reaps it; one line per
 * check; exits 0 iff all passed. The archive must hold `hello` (tests/c/hello.c: exits 7),
 * `args`, `nullptr` and a non-program named `notes`. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SYS_SPAWN 1000
#define KERNEL_PTR ((void *)0xffffffff80100000UL)

static int failed;

static void check(const char *what, int ok, long got)
{
	printf("spawn: %s: %s (%ld)\n", what, ok ? "ok" : "FAIL", got);
	failed += !ok;
}

/* spawn: the child's pid, or -errno. */
static long spawn(const void *name, const void *argv)
{
	long r = syscall(SYS_SPAWN, name, argv);
	return r < 0 ? -errno : r;
}

/* Spawns, waits, and checks the wait status. */
static void run(const char *what, const char *name, char *const argv[], int status)
{
	long pid = spawn(name, argv);
	int st = 0;
	if (pid <= 0) {
		check(what, 0, pid);
		return;
	}
	long w = waitpid(pid, &st, 0);
	check(what, w == pid && st == status, st);
}

int main(void)
{
	check("unknown program is ENOENT", spawn("no-such-program", NULL) == -ENOENT,
	      spawn("no-such-program", NULL));
	long r = spawn("notes", NULL);
	check("a file that is not an ELF is ENOEXEC", r == -ENOEXEC, r);
	static char longname[200];
	memset(longname, 'n', sizeof longname - 1);
	r = spawn(longname, NULL);
	check("a 199-byte name of no program is ENOENT", r == -ENOENT, r);
	r = spawn(KERNEL_PTR, NULL);
	check("kernel pointer as the name is EFAULT", r == -EFAULT, r);
	char *kargv[] = { "hello", KERNEL_PTR, NULL };
	r = spawn("hello", kargv);
	check("kernel pointer in argv is EFAULT", r == -EFAULT, r);
	r = spawn("hello", KERNEL_PTR);
	check("kernel pointer as argv is EFAULT", r == -EFAULT, r);
	char *many[35];
	many[0] = "args";
	for (int i = 1; i < 34; i++)
		many[i] = "x";
	many[34] = NULL;
	r = spawn("args", many);
	check("34 arguments is E2BIG", r == -E2BIG, r);
	static char big[3000];
	memset(big, 'y', sizeof big - 1);
	char *bigargv[] = { "args", big, NULL };
	r = spawn("args", bigargv);
	check("3 KB of argument strings is E2BIG", r == -E2BIG, r);

	run("hello with argv NULL exits 7", "hello", NULL, 7 << 8);
	char *args[] = { "args", "one", "two", NULL };
	run("args one two exits 3", "args", args, 3 << 8);
	run("nullptr is killed by SIGSEGV", "nullptr", NULL, SIGSEGV);
	int st;
	r = waitpid(-1, &st, WNOHANG);
	check("no child left: ECHILD", r == -1 && errno == ECHILD, r);

	/* Fill the process table with children that have exited but are not reaped yet. */
	int n = 0;
	while ((r = spawn("hello", NULL)) > 0 && n < 1000)
		n++;
	check("spawning until the table is full ends with EAGAIN", r == -EAGAIN && n > 0, r);
	int reaped = 0, all7 = 1;
	while (waitpid(-1, &st, 0) > 0) {
		reaped++;
		all7 &= st == 7 << 8;
	}
	check("every child spawned so is reaped, with status 7", reaped == n && all7, reaped);
	run("after reaping, spawn works again", "hello", NULL, 7 << 8);

	printf("spawn: %s\n", failed ? "FAILED" : "all passed");
	return failed != 0;
}
