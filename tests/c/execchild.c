/* execchild: what a program started by execve or posix_spawn sees, printed for the caller to
 * compare: its arguments, its environment, which descriptors 3..15 are open, whether SIGUSR1 and
 * SIGUSR2 are ignored and whether SIGHUP is blocked. Exits with argc. Used by exec and fork. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	char line[8192];
	int n = 0;
	for (int i = 0; i < argc; i++)
		n += snprintf(line + n, sizeof line - n, "argv[%d]=%s\n", i, argv[i]);
	for (char **e = environ; *e; e++)
		n += snprintf(line + n, sizeof line - n, "env=%s\n", *e);
	for (int fd = 3; fd < 16; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n += snprintf(line + n, sizeof line - n, "fd %d open\n", fd);
	struct sigaction sa;
	for (int s = SIGUSR1; s <= SIGUSR2; s += SIGUSR2 - SIGUSR1) {
		sigaction(s, 0, &sa);
		n += snprintf(line + n, sizeof line - n, "signal %d %s\n", s,
			      sa.sa_handler == SIG_IGN   ? "ignored"
			      : sa.sa_handler == SIG_DFL ? "default"
							 : "handled");
	}
	sigset_t mask;
	sigprocmask(SIG_BLOCK, 0, &mask);
	n += snprintf(line + n, sizeof line - n, "SIGHUP %s\n",
		      sigismember(&mask, SIGHUP) ? "blocked" : "unblocked");
	/* One write, so that output through a pipe comes whole. */
	if (write(1, line, n) != n)
		return 100;
	return argc;
}
