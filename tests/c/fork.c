/* fork: fork (57), vfork (58) and clone (56) as the C libraries use them. `fork [BIN]`, BIN
 * the directory holding execchild (default /bin). Checks that the child gets a copy of memory
 * and that copy-on-write keeps parent and child apart afterwards, inherited descriptors,
 * dispositions and mask (but not pending signals), vfork suspending the parent, clone with
 * glibc's fork flags (CLONE_CHILD_SETTID and CLEARTID), musl's posix_spawn (CLONE_VM |
 * CLONE_VFORK), and many forks in a row. Exits 0 iff all passed. */
#define _GNU_SOURCE
#define PROG "fork"
#include "check.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>

extern char **environ;

static const char *bin = "/bin";

/* Data, bss, heap and stack, each touched by both sides. */
static int data_word = 1234;
static char bss_pages[16 * 4096];

static void put(int fd, char c)
{
	CHECK_EQ(write(fd, &c, 1), 1);
}

static char get(int fd)
{
	char c = 0;
	CHECK_EQ(read(fd, &c, 1), 1);
	return c;
}

static int exit_status(pid_t pid)
{
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void fill(char *p, size_t n, char c)
{
	for (size_t i = 0; i < n; i += 512)
		p[i] = c;
}

static int all(const char *p, size_t n, char c)
{
	for (size_t i = 0; i < n; i += 512)
		if (p[i] != c)
			return 0;
	return 1;
}

static void copy_on_write(void)
{
	char *heap = malloc(8 * 4096);
	CHECK(heap != 0);
	volatile int stack_word = 77;
	fill(bss_pages, sizeof bss_pages, 'p');
	fill(heap, 8 * 4096, 'h');
	int to_child[2], to_parent[2];
	CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0);
	pid_t parent = getpid();
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* A copy of everything as it was at fork. */
		CHECK(getpid() != parent);
		CHECK_EQ(getppid(), parent);
		CHECK_EQ(data_word, 1234);
		CHECK_EQ(stack_word, 77);
		CHECK(all(bss_pages, sizeof bss_pages, 'p'));
		CHECK(all(heap, 8 * 4096, 'h'));
		/* Write the same pages the parent will write. */
		data_word = 2;
		stack_word = 2;
		fill(bss_pages, sizeof bss_pages, 'c');
		fill(heap, 8 * 4096, 'C');
		put(to_parent[1], 'w');
		CHECK_EQ(get(to_child[0]), 'w');
		/* The parent has written too: each sees its own. */
		CHECK_EQ(data_word, 2);
		CHECK_EQ(stack_word, 2);
		CHECK(all(bss_pages, sizeof bss_pages, 'c'));
		CHECK(all(heap, 8 * 4096, 'C'));
		/* The child's pid, from its side. */
		put(to_parent[1], (char)getpid());
		_exit(0);
	}
	CHECK_EQ(get(to_parent[0]), 'w');
	CHECK_EQ(data_word, 1234);
	CHECK_EQ(stack_word, 77);
	CHECK(all(bss_pages, sizeof bss_pages, 'p'));
	CHECK(all(heap, 8 * 4096, 'h'));
	data_word = 3;
	stack_word = 3;
	fill(bss_pages, sizeof bss_pages, 'P');
	fill(heap, 8 * 4096, 'H');
	put(to_child[1], 'w');
	CHECK_EQ(get(to_parent[0]), (char)pid);
	CHECK_EQ(exit_status(pid), 0);
	CHECK_EQ(data_word, 3);
	CHECK_EQ(stack_word, 3);
	CHECK(all(bss_pages, sizeof bss_pages, 'P'));
	CHECK(all(heap, 8 * 4096, 'H'));
	for (int i = 0; i < 4; i++)
		close(i < 2 ? to_child[i] : to_parent[i - 2]);
	free(heap);
	PASSED("copy and copy-on-write");
}

/* A page written by nobody after fork stays shared and readable by both; a child of a child
 * gets the right copy too (the page is copied from the middle generation). */
static void generations(void)
{
	data_word = 10;
	pid_t a = fork();
	CHECK(a >= 0);
	if (a == 0) {
		data_word = 20;
		pid_t b = fork();
		if (b < 0)
			_exit(90);
		if (b == 0)
			_exit(data_word == 20 ? (data_word = 30, 0) : 91);
		int st;
		if (waitpid(b, &st, 0) != b || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			_exit(92);
		_exit(data_word == 20 ? 0 : 93);
	}
	CHECK_EQ(exit_status(a), 0);
	CHECK_EQ(data_word, 10);
	PASSED("grandchildren");
}

static volatile sig_atomic_t usr2_seen;
static void on_usr2(int s)
{
	(void)s;
	usr2_seen++;
}

static void inheritance(void)
{
	int p[2], q[2];
	CHECK(pipe(p) == 0);
	CHECK(pipe2(q, O_CLOEXEC) == 0);
	struct sigaction sa = { .sa_handler = on_usr2 };
	CHECK(sigaction(SIGUSR2, &sa, 0) == 0);
	CHECK(signal(SIGUSR1, SIG_IGN) != SIG_ERR);
	sigset_t m, old;
	sigemptyset(&m);
	sigaddset(&m, SIGHUP);
	CHECK(sigprocmask(SIG_BLOCK, &m, &old) == 0);
	CHECK(raise(SIGHUP) == 0); /* pending here, not in the child */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* Descriptors, their close-on-exec flag, and the same pipe. */
		CHECK_EQ(fcntl(p[1], F_GETFD), 0);
		CHECK_EQ(fcntl(q[1], F_GETFD), FD_CLOEXEC);
		CHECK_EQ(write(p[1], "from child", 10), 10);
		struct sigaction cur;
		CHECK(sigaction(SIGUSR1, 0, &cur) == 0);
		CHECK(cur.sa_handler == SIG_IGN);
		CHECK(sigaction(SIGUSR2, 0, &cur) == 0);
		CHECK(cur.sa_handler == on_usr2);
		sigset_t now, pend;
		CHECK(sigprocmask(SIG_BLOCK, 0, &now) == 0);
		CHECK(sigismember(&now, SIGHUP));
		CHECK(sigpending(&pend) == 0);
		CHECK(!sigismember(&pend, SIGHUP));
		/* The handler works in the child. */
		CHECK(raise(SIGUSR2) == 0);
		CHECK_EQ(usr2_seen, 1);
		CHECK(raise(SIGUSR1) == 0); /* ignored */
		_exit(0);
	}
	char buf[16] = { 0 };
	CHECK_EQ(read(p[0], buf, sizeof buf), 10);
	CHECK(memcmp(buf, "from child", 10) == 0);
	CHECK_EQ(exit_status(pid), 0);
	CHECK_EQ(usr2_seen, 0);
	sigset_t pend;
	CHECK(sigpending(&pend) == 0);
	CHECK(sigismember(&pend, SIGHUP));
	/* Discard the pending SIGHUP: ignore it, then unblock. */
	signal(SIGHUP, SIG_IGN);
	CHECK(sigprocmask(SIG_SETMASK, &old, 0) == 0);
	signal(SIGHUP, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	signal(SIGUSR2, SIG_DFL);
	close(p[0]), close(p[1]), close(q[0]), close(q[1]);
	PASSED("descriptors, dispositions and mask inherited, pending signals not");
}

static volatile int vfork_done;

static void vfork_suspends_parent(void)
{
	vfork_done = 0;
	pid_t parent = getpid();
	pid_t pid = vfork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* Shared memory, parent suspended: however long we take, it does not run. */
		if (getppid() != parent)
			_exit(80);
		for (int i = 0; i < 50; i++)
			sched_yield();
		vfork_done = 1;
		_exit(7);
	}
	CHECK_EQ(vfork_done, 1);
	CHECK_EQ(exit_status(pid), 7);
	PASSED("vfork suspends the parent until the child exits");
}

static void clone_like_glibc(void)
{
	/* glibc's fork: CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, no new stack. */
	static volatile pid_t ctid;
	ctid = -1;
	int p[2];
	CHECK(pipe(p) == 0);
	long r = syscall(SYS_clone, CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, 0, 0,
			 &ctid, 0);
	CHECK(r >= 0);
	if (r == 0) {
		pid_t me = (pid_t)syscall(SYS_gettid);
		char ok = ctid == me && me == (pid_t)syscall(SYS_getpid) ? 'y' : 'n';
		if (write(p[1], &ok, 1) != 1)
			_exit(81);
		_exit(0);
	}
	CHECK_EQ(get(p[0]), 'y');
	CHECK_EQ(exit_status((pid_t)r), 0);
	CHECK_EQ(ctid, -1); /* the child wrote its own copy */
	close(p[0]), close(p[1]);
	/* Flags fork does not support are refused, not half done. */
	CHECK_ERR(syscall(SYS_clone, CLONE_THREAD | SIGCHLD, 0, 0, 0, 0), EINVAL);
	PASSED("clone with glibc's fork flags");
}

/* posix_spawn (or posix_spawnp) with stdout to a pipe: what the program printed, its status. */
static int spawn_and_read(int use_path, const char *file, char *const av[], char *const ev[],
			  char *out, size_t size)
{
	int p[2];
	CHECK(pipe(p) == 0);
	posix_spawn_file_actions_t fa;
	CHECK(posix_spawn_file_actions_init(&fa) == 0);
	CHECK(posix_spawn_file_actions_adddup2(&fa, p[1], 1) == 0);
	CHECK(posix_spawn_file_actions_addclose(&fa, p[0]) == 0);
	CHECK(posix_spawn_file_actions_addclose(&fa, p[1]) == 0);
	pid_t pid;
	int e = (use_path ? posix_spawnp : posix_spawn)(&pid, file, &fa, 0, av, ev);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (e != 0) {
		close(p[0]);
		return -e;
	}
	size_t n = 0;
	ssize_t r;
	while ((r = read(p[0], out + n, size - 1 - n)) > 0)
		n += (size_t)r;
	CHECK(r == 0);
	out[n] = 0;
	close(p[0]);
	return exit_status(pid);
}

static void posix_spawn_runs_a_program(void)
{
	char path[512], out[8192];
	snprintf(path, sizeof path, "%s/execchild", bin);
	char *av[] = { "spawned", "arg", 0 };
	char *ev[] = { "SPAWNED=yes", 0 };
	CHECK_EQ(spawn_and_read(0, path, av, ev, out, sizeof out), 2);
	CHECK(strstr(out, "argv[0]=spawned\nargv[1]=arg\nenv=SPAWNED=yes\n") == out);
	/* A program that does not exist: posix_spawn reports the child's execve error. */
	snprintf(path, sizeof path, "%s/no-such-program", bin);
	CHECK_EQ(spawn_and_read(0, path, av, ev, out, sizeof out), -ENOENT);
	/* posix_spawnp through PATH, with our own environment. */
	CHECK_EQ(spawn_and_read(1, "execchild", av, environ, out, sizeof out), 2);
	CHECK(strstr(out, "argv[0]=spawned\nargv[1]=arg\nenv=") == out);
	PASSED("posix_spawn and posix_spawnp");
}

static void many_forks(void)
{
	/* Each child dirties a few pages: their frames must come back, or this runs out. */
	for (int i = 0; i < 50; i++) {
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			fill(bss_pages, sizeof bss_pages, (char)i);
			_exit(i & 0xff);
		}
		CHECK_EQ(exit_status(pid), i & 0xff);
	}
	PASSED("50 forks in a row");
}

int main(int argc, char **argv)
{
	setvbuf(stdout, 0, _IONBF, 0);
	if (argc >= 2)
		bin = argv[1];
	copy_on_write();
	generations();
	inheritance();
	vfork_suspends_parent();
	clone_like_glibc();
	posix_spawn_runs_a_program();
	many_forks();
	ALL_PASSED();
	return 0;
}
