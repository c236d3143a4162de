/* exec: execve (59) as Linux has it. `exec [BIN]`, BIN the directory holding execchild and a
 * text file `notes` (default /bin, where our kernel puts the archive's programs; PATH must name
 * it). Checks argv and envp reaching the new program, close-on-exec, handled signals reset and
 * the mask kept, each error (ENOENT, ENOEXEC, EFAULT, E2BIG) with the caller going on, PATH
 * search, /proc/self/exe, and close_range (436: closing or marking close-on-exec a range of
 * descriptors before an exec). Exits 0 iff all passed. */
#define PROG "exec"
#include "check.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* close_range(2) by number: the C library may not wrap it. */
static long close_range_(unsigned first, unsigned last, unsigned flags)
{
	return syscall(436, first, last, flags);
}

static const char *bin = "/bin";

static char *path_of(const char *name)
{
	static char buf[4][512];
	static int next;
	char *b = buf[next++ % 4];
	snprintf(b, sizeof buf[0], "%s/%s", bin, name);
	return b;
}

/* Everything readable from fd until EOF. */
static size_t read_all(int fd, char *buf, size_t size)
{
	size_t n = 0;
	for (;;) {
		CHECK(n < size);
		ssize_t r = read(fd, buf + n, size - 1 - n);
		CHECK(r >= 0);
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	return n;
}

static void close_from_3(void)
{
	for (int fd = 3; fd < 64; fd++)
		close(fd);
}

/* Runs `setup` then execve(path, argv, envp) in a child whose stdout is a pipe; returns what it
 * printed and its wait status. */
static int run(void (*setup)(void), const char *path, char *const argv[], char *const envp[],
	       char *out, size_t size)
{
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (dup2(p[1], 1) != 1)
			_exit(120);
		close_from_3();
		if (setup)
			setup();
		execve(path, argv, envp);
		_exit(121);
	}
	close(p[1]);
	read_all(p[0], out, size);
	close(p[0]);
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	return status;
}

static void cloexec_setup(void)
{
	int a[2], b[2];
	/* 3, 4 close-on-exec from pipe2; 5, 6 plain; then 5 marked by F_SETFD; 7 = dup(3) is not
	 * close-on-exec (dup clears the flag); 8 from F_DUPFD_CLOEXEC; 9 from dup3 O_CLOEXEC; 10
	 * from dup2 (never close-on-exec). */
	if (pipe2(a, O_CLOEXEC) || a[0] != 3 || pipe(b) || b[0] != 5)
		_exit(122);
	if (fcntl(5, F_SETFD, FD_CLOEXEC) || dup(3) != 7 || fcntl(6, F_DUPFD_CLOEXEC, 8) != 8 ||
	    dup3(6, 9, O_CLOEXEC) != 9 || dup2(4, 10) != 10)
		_exit(123);
}

static void signals_setup(void)
{
	struct sigaction sa = { .sa_handler = (void (*)(int))close_from_3 };
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGHUP);
	if (sigaction(SIGUSR1, &sa, 0) || signal(SIGUSR2, SIG_IGN) == SIG_ERR ||
	    sigprocmask(SIG_BLOCK, &m, 0))
		_exit(124);
}

int main(int argc, char **argv)
{
	static char out[65536];
	setvbuf(stdout, 0, _IONBF, 0);
	if (argc >= 2 && strcmp(argv[1], "--reexec") == 0) {
		printf("exec: re-executed with argc %d, argv[2]=%s\n", argc, argc > 2 ? argv[2] : "");
		return 42;
	}
	if (argc >= 2)
		bin = argv[1];

	/* PATH names BIN in the environment we were started with. */
	const char *path = getenv("PATH");
	CHECK(path != 0);
	CHECK(strcmp(path, bin) == 0 || strncmp(path, "/bin:", 5) == 0);
	PASSED("PATH");

	/* argv and envp, exactly; the exit status passes through. */
	{
		char *av[] = { "execchild", "one", "two words", "", "-x", 0 };
		char *ev[] = { "A=1", "B=x y", "EMPTY=", 0 };
		int st = run(0, path_of("execchild"), av, ev, out, sizeof out);
		CHECK(WIFEXITED(st));
		CHECK_EQ(WEXITSTATUS(st), 5);
		const char *want = "argv[0]=execchild\nargv[1]=one\nargv[2]=two words\nargv[3]=\n"
				   "argv[4]=-x\nenv=A=1\nenv=B=x y\nenv=EMPTY=\n"
				   "signal 10 default\nsignal 12 default\nSIGHUP unblocked\n";
		if (strcmp(out, want) != 0)
			printf("exec: got\n%s", out);
		CHECK(strcmp(out, want) == 0);
		/* An empty environment and an argv of one. */
		char *av1[] = { "solo", 0 };
		char *ev0[] = { 0 };
		st = run(0, path_of("execchild"), av1, ev0, out, sizeof out);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
		CHECK(strstr(out, "argv[0]=solo\nsignal") == out);
		PASSED("argv and envp");
	}

	/* Close-on-exec. */
	{
		char *av[] = { "execchild", 0 };
		char *ev[] = { 0 };
		int st = run(cloexec_setup, path_of("execchild"), av, ev, out, sizeof out);
		CHECK(WIFEXITED(st));
		CHECK_EQ(WEXITSTATUS(st), 1);
		const char *want = "argv[0]=execchild\nfd 6 open\nfd 7 open\nfd 10 open\n";
		if (strncmp(out, want, strlen(want)) != 0)
			printf("exec: got\n%s", out);
		CHECK(strncmp(out, want, strlen(want)) == 0);
		PASSED("close-on-exec");
	}

	/* Handled signals go back to default, ignored ones stay ignored, the mask stays. */
	{
		char *av[] = { "execchild", 0 };
		char *ev[] = { 0 };
		int st = run(signals_setup, path_of("execchild"), av, ev, out, sizeof out);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
		const char *want =
			"argv[0]=execchild\nsignal 10 default\nsignal 12 ignored\nSIGHUP blocked\n";
		if (strcmp(out, want) != 0)
			printf("exec: got\n%s", out);
		CHECK(strcmp(out, want) == 0);
		PASSED("signals across exec");
	}

	/* Each error, in this process, which goes on. */
	{
		char *av[] = { "x", 0 };
		char *ev[] = { 0 };
		CHECK_ERR(execve(path_of("no-such-program"), av, ev), ENOENT);
		CHECK_ERR(execve("", av, ev), ENOENT);
		CHECK_ERR(execve(path_of("notes"), av, ev), ENOEXEC);
		CHECK_ERR(execve(bad_ptr(1), av, ev), EFAULT);
		CHECK_ERR(execve(bad_ptr(0xffffffff80100000UL), av, ev), EFAULT);
		CHECK_ERR(execve(path_of("execchild"), bad_ptr(1), ev), EFAULT);
		char *bad_av[] = { "x", bad_ptr(8), 0 };
		CHECK_ERR(execve(path_of("execchild"), bad_av, ev), EFAULT);
		char *bad_ev[] = { "A=1", bad_ptr(0x8000000000000000UL), 0 };
		CHECK_ERR(execve(path_of("execchild"), av, bad_ev), EFAULT);
		CHECK_ERR(execve(path_of("execchild"), av, bad_ptr(0xffffffff80100000UL)), EFAULT);
		/* One argument longer than Linux's MAX_ARG_STRLEN (128 KiB). */
		size_t big = 256 * 1024;
		char *huge = malloc(big + 1);
		CHECK(huge != 0);
		memset(huge, 'a', big);
		huge[big] = 0;
		char *big_av[] = { "x", huge, 0 };
		CHECK_ERR(execve(path_of("execchild"), big_av, ev), E2BIG);
		char *big_ev[] = { huge, 0 };
		CHECK_ERR(execve(path_of("execchild"), av, big_ev), E2BIG);
		free(huge);
		/* Still ourselves, and exec still works. */
		int st = run(0, path_of("execchild"), av, ev, out, sizeof out);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
		PASSED("ENOENT, ENOEXEC, EFAULT, E2BIG, going on");
	}

	/* execvp searches PATH; execv passes our own environment. */
	{
		int p[2];
		CHECK(pipe(p) == 0);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			dup2(p[1], 1);
			close_from_3();
			char *av[] = { "found-by-path", 0 };
			execvp("execchild", av);
			_exit(121);
		}
		close(p[1]);
		read_all(p[0], out, sizeof out);
		close(p[0]);
		int st;
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
		CHECK(strstr(out, "argv[0]=found-by-path\n") == out);
		char want[600];
		snprintf(want, sizeof want, "env=PATH=%s\n", path);
		CHECK(strstr(out, want) != 0);
		PASSED("execvp through PATH");
	}

	/* /proc/self/exe is this program. */
	{
		char *av[] = { "whoever", "--reexec", "again", 0 };
		char *ev[] = { 0 };
		int st = run(0, "/proc/self/exe", av, ev, out, sizeof out);
		CHECK(WIFEXITED(st));
		CHECK_EQ(WEXITSTATUS(st), 42);
		CHECK(strcmp(out, "exec: re-executed with argc 3, argv[2]=again\n") == 0);
		PASSED("/proc/self/exe");
	}

	/* exec from a vfork child: the parent resumes once the child has exec'd. */
	{
		char *av[] = { "execchild", "v", 0 };
		char *ev[] = { 0 };
		int p[2];
		CHECK(pipe(p) == 0);
		pid_t pid = vfork();
		CHECK(pid >= 0);
		if (pid == 0) {
			dup2(p[1], 1);
			execve(path_of("execchild"), av, ev);
			_exit(121);
		}
		close(p[1]);
		read_all(p[0], out, sizeof out);
		close(p[0]);
		int st;
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
		CHECK(strstr(out, "argv[0]=execchild\nargv[1]=v\n") == out);
		PASSED("vfork and exec");
	}
	{
		/* Descriptors 20..25 on one pipe end; 21..23 closed, 24.. marked close-on-exec. */
		int p[2];
		CHECK(pipe(p) == 0);
		for (int fd = 20; fd <= 25; fd++)
			CHECK_EQ(dup2(p[0], fd), fd);
		CHECK_EQ(close_range_(21, 23, 0), 0);
		for (int fd = 21; fd <= 23; fd++)
			CHECK_ERR(fcntl(fd, F_GETFD), EBADF);
		CHECK_EQ(fcntl(20, F_GETFD), 0);
		CHECK_EQ(close_range_(24, ~0u, 4 /* CLOSE_RANGE_CLOEXEC */), 0);
		CHECK_EQ(fcntl(24, F_GETFD), FD_CLOEXEC);
		CHECK_EQ(fcntl(25, F_GETFD), FD_CLOEXEC);
		CHECK_EQ(fcntl(20, F_GETFD), 0);
		CHECK_ERR(close_range_(5, 4, 0), EINVAL);
		CHECK_ERR(close_range_(20, 30, 1), EINVAL);
		/* UNSHARE: the table is already ours alone, so only the closing shows. */
		CHECK_EQ(close_range_(20, ~0u, 2 /* CLOSE_RANGE_UNSHARE */), 0);
		CHECK_ERR(fcntl(20, F_GETFD), EBADF);
		CHECK_ERR(fcntl(25, F_GETFD), EBADF);
		CHECK_EQ(fcntl(p[0], F_GETFD), 0); /* below the range: still open */
		close(p[0]);
		close(p[1]);
		PASSED("close_range");
	}
	ALL_PASSED();
	return 0;
}
