/* The console as a terminal, seen from a program; tests/tty.rs types at it through a
 * pseudo-terminal, on the host (Linux's tty) and in our guest, and expects the same.
 *   ttyprobe lines   isatty, ENOTTY on a pipe, then every read(0) reported until end-of-file
 *   ttyprobe sigint  a SIGINT handler; a read interrupted by Ctrl-C fails with EINTR
 *   ttyprobe spin    sleeps until killed (Ctrl-C)
 *   ttyprobe raw     raw mode with tcsetattr: single keys, unechoed, until 'q'; VMIN=0 VTIME=3
 *                    times out with 0 bytes; the mode is put back
 *   ttyprobe winch   the window size, and SIGWINCH when it changes
 *   ttyprobe job     a child in its own process group made the foreground one (tcsetpgrp):
 *                    Ctrl-C kills it and not its parent, which takes the terminal back
 *   ttyprobe bg      a background group that reads the terminal is stopped by SIGTTIN, reads
 *                    once it is made the foreground and continued; with SIGTTIN ignored
 *                    the read fails with EIO; a background tcsetattr is stopped by SIGTTOU,
 *                    and goes ahead with SIGTTOU ignored; with TOSTOP, so is a write
 *   ttyprobe hup     a child session takes the terminal (TIOCSCTTY, stealing it as root may)
 *                    with a member in its foreground group; when its leader exits the member
 *                    gets SIGHUP, and the probe, a session leader, takes the terminal back */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *s) { write(1, s, strlen(s)); }

/* One read's bytes, with control characters as \xNN, so the test sees exactly what came. */
static void report(const char *what, const char *buf, long n)
{
	char out[2048];
	int k = snprintf(out, sizeof out, "%s %ld [", what, n);
	for (long i = 0; i < n && k < (int)sizeof out - 8; i++) {
		unsigned char c = buf[i];
		if (c < 0x20 || c >= 0x7f)
			k += snprintf(out + k, sizeof out - k, "\\x%02x", c);
		else
			out[k++] = c;
	}
	k += snprintf(out + k, sizeof out - k, "]\n");
	write(1, out, k);
}

static volatile sig_atomic_t got_signal;
static void on_signal(int sig) { got_signal = sig; }

static int lines(void)
{
	int p[2];
	char buf[512];
	pipe(p);
	int pipe_tty = isatty(p[0]);
	printf("isatty %d %d pipe %d %s\n", isatty(0), isatty(1), pipe_tty,
	       errno == ENOTTY ? "ENOTTY" : strerror(errno));
	fflush(stdout);
	for (;;) {
		long n = read(0, buf, sizeof buf);
		if (n < 0) {
			printf("read error %s\n", strerror(errno));
			return 1;
		}
		report("got", buf, n);
		if (n == 0)
			return 0;
	}
}

static int sigint(void)
{
	struct sigaction sa;
	char buf[256];
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, 0);
	say("waiting\n");
	long n = read(0, buf, sizeof buf);
	printf("read %ld %s signal %d\n", n, n < 0 && errno == EINTR ? "EINTR" : "-", got_signal);
	fflush(stdout);
	n = read(0, buf, sizeof buf);
	report("got", buf, n);
	return 0;
}

static int spin(void)
{
	say("spinning\n");
	for (;;)
		sleep(100);
}

static int raw(void)
{
	struct termios saved, t;
	char c;
	tcgetattr(0, &saved);
	t = saved;
	t.c_lflag &= ~(ICANON | ECHO);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	tcsetattr(0, TCSAFLUSH, &t);
	say("raw\n");
	while (read(0, &c, 1) == 1) {
		report("key", &c, 1);
		if (c == 'q')
			break;
	}
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 3;
	tcsetattr(0, TCSANOW, &t);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	long n = read(0, &c, 1);
	clock_gettime(CLOCK_MONOTONIC, &b);
	long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	printf("timeout %ld after %s\n", n, ms >= 250 ? "VTIME" : "too little");
	tcsetattr(0, TCSANOW, &saved);
	struct termios now;
	tcgetattr(0, &now);
	printf("restored %s\n", (now.c_lflag & (ICANON | ECHO)) == (ICANON | ECHO) ? "yes" : "no");
	printf("foreground %s\n", tcgetpgrp(0) == getpgrp() ? "yes" : "no");
	return 0;
}

static int winch(void)
{
	struct winsize ws;
	struct sigaction sa;
	char buf[64];
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGWINCH, &sa, 0);
	ioctl(0, TIOCGWINSZ, &ws);
	printf("winsize %d %d\n", ws.ws_row, ws.ws_col);
	fflush(stdout);
	while (read(0, buf, sizeof buf) < 0 && errno == EINTR && got_signal != SIGWINCH)
		;
	ioctl(0, TIOCGWINSZ, &ws);
	printf("winch %d %d signal %d\n", ws.ws_row, ws.ws_col, got_signal);
	return 0;
}

static int job(void)
{
	char buf[64];
	/* A background group's tcsetpgrp gets SIGTTOU on Linux unless it is ignored, as shells do. */
	signal(SIGTTOU, SIG_IGN);
	pid_t child = fork();
	if (child == 0) {
		setpgid(0, 0);
		while (tcgetpgrp(0) != getpid())
			;
		say("child in the foreground\n");
		read(0, buf, sizeof buf);
		say("child not interrupted\n");
		_exit(1);
	}
	setpgid(child, child);
	if (tcsetpgrp(0, child) != 0) {
		printf("tcsetpgrp: %s\n", strerror(errno));
		return 1;
	}
	int st;
	waitpid(child, &st, 0);
	printf("child %s %d\n", WIFSIGNALED(st) ? "killed by" : "exited", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	printf("foreground before taking it back: %s\n", tcgetpgrp(0) == child ? "child" : "other");
	tcsetpgrp(0, getpgrp());
	printf("parent survived, foreground %s\n", tcgetpgrp(0) == getpgrp() ? "again" : "lost");
	return 0;
}

/* A background reader, in a group of its own under `middle` (so that its group is not orphaned
 * even when the probe is pid 1, as in the guest, whose children's groups would be). */
static int bg_middle(void)
{
	char c;
	int st;
	pid_t child = fork();
	if (child == 0) {
		setpgid(0, 0);
		ssize_t r = read(0, &c, 1);
		printf("background read %zd [%c]\n", r, r == 1 ? c : '-');
		_exit(0);
	}
	setpgid(child, child);
	waitpid(child, &st, WUNTRACED);
	printf("background reader %s %d\n", WIFSTOPPED(st) ? "stopped by" : "ended", WIFSTOPPED(st) ? WSTOPSIG(st) : st);
	/* In the foreground and continued, its read goes through. */
	signal(SIGTTOU, SIG_IGN);
	tcsetpgrp(0, child);
	kill(child, SIGCONT);
	say("type a line\n");
	waitpid(child, &st, 0);
	tcsetpgrp(0, getpgrp());
	child = fork();
	if (child == 0) {
		setpgid(0, 0);
		signal(SIGTTIN, SIG_IGN);
		ssize_t r = read(0, &c, 1);
		printf("ignored SIGTTIN: read %zd %s\n", r, r < 0 ? strerror(errno) : "");
		_exit(0);
	}
	setpgid(child, child);
	waitpid(child, &st, 0);
	/* Changing the terminal's mode from the background: SIGTTOU, unless ignored. */
	for (int ignore = 0; ignore < 2; ignore++) {
		child = fork();
		if (child == 0) {
			setpgid(0, 0);
			/* (We ignore it ourselves, for tcsetpgrp above.) */
			signal(SIGTTOU, ignore ? SIG_IGN : SIG_DFL);
			struct termios t;
			tcgetattr(0, &t);
			int r = tcsetattr(0, TCSANOW, &t);
			printf("background tcsetattr %d\n", r);
			_exit(0);
		}
		setpgid(child, child);
		waitpid(child, &st, WUNTRACED);
		if (WIFSTOPPED(st)) {
			printf("background tcsetattr stopped by %d\n", WSTOPSIG(st));
			kill(child, SIGKILL);
			waitpid(child, &st, 0);
		}
	}
	/* With TOSTOP, a background write is stopped by SIGTTOU too (without, it is written:
	 * the lines above came from the background). */
	struct termios t;
	tcgetattr(0, &t);
	t.c_lflag |= TOSTOP;
	tcsetattr(0, TCSANOW, &t);
	child = fork();
	if (child == 0) {
		setpgid(0, 0);
		signal(SIGTTOU, SIG_DFL);
		say("background write with TOSTOP\n");
		_exit(0);
	}
	setpgid(child, child);
	waitpid(child, &st, WUNTRACED);
	t.c_lflag &= ~TOSTOP;
	tcsetattr(0, TCSANOW, &t);
	printf("background write with TOSTOP %s %d\n", WIFSTOPPED(st) ? "stopped by" : "ended", WIFSTOPPED(st) ? WSTOPSIG(st) : st);
	kill(child, SIGKILL);
	waitpid(child, &st, 0);
	return 0;
}

static int bg(void)
{
	int st;
	pid_t middle = fork();
	if (middle == 0)
		_exit(bg_middle());
	waitpid(middle, &st, 0);
	say("bg done\n");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static int hup_pipe[2];

static void on_hup(int sig)
{
	(void)sig;
	write(hup_pipe[1], "H", 1);
	_exit(0);
}

static int hup(void)
{
	int go[2];
	char c;
	if (pipe(hup_pipe) != 0 || pipe(go) != 0)
		return 1;
	pid_t leader = fork();
	if (leader == 0) {
		setsid();
		if (ioctl(0, TIOCSCTTY, 1) != 0) {
			printf("TIOCSCTTY: %s\n", strerror(errno));
			_exit(1);
		}
		if (fork() == 0) {
			signal(SIGHUP, on_hup);
			write(hup_pipe[1], "R", 1);
			for (;;)
				pause();
		}
		read(go[0], &c, 1); /* until the probe has heard the member is ready */
		_exit(0);
	}
	alarm(20); /* a kernel that never hangs up must not hang the test */
	if (read(hup_pipe[0], &c, 1) == 1 && c == 'R')
		say("member ready\n");
	write(go[1], "x", 1);
	int st;
	waitpid(leader, &st, 0);
	if (read(hup_pipe[0], &c, 1) == 1 && c == 'H')
		say("member hung up\n");
	/* The terminal is no one's now: a session leader may take it without stealing. */
	int back = ioctl(0, TIOCSCTTY, 0) == 0 && tcsetpgrp(0, getpgrp()) == 0;
	printf("terminal back: %s\n", back ? "yes" : strerror(errno));
	while (waitpid(-1, &st, WNOHANG) > 0) /* the member, if it is ours (pid 1 in the guest) */
		;
	say("hup done\n");
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "lines";
	if (!strcmp(mode, "lines"))
		return lines();
	if (!strcmp(mode, "sigint"))
		return sigint();
	if (!strcmp(mode, "spin"))
		return spin();
	if (!strcmp(mode, "raw"))
		return raw();
	if (!strcmp(mode, "winch"))
		return winch();
	if (!strcmp(mode, "job"))
		return job();
	if (!strcmp(mode, "bg"))
		return bg();
	if (!strcmp(mode, "hup"))
		return hup();
	say("usage: ttyprobe lines|sigint|spin|raw|winch|job|bg|hup\n");
	return 2;
}
