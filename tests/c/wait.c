/* wait: wait4 (61) and waitid (247) as Linux has them, with process groups and sessions.
 * ECHILD, WNOHANG, a given pid, a process group, zombies until reaped, orphans re-parented
 * (to pid 1 in our guest, where this program is pid 1 and reaps them), the status encoding of
 * exits, kills, stops and continues, waitid's siginfo and WNOWAIT, stop and continue with
 * WUNTRACED / WCONTINUED, and setpgid / setsid. Exits 0 iff all passed. */
#define _GNU_SOURCE
#define PROG "wait"
#include "check.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&t, &t) != 0)
		CHECK(errno == EINTR);
}

static pid_t child_exiting(int code)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(code);
	return pid;
}

/* A child that waits for a byte (or EOF) on fd, then exits with code. */
static pid_t child_waiting(int fd_read, int fd_write, int code)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(fd_write);
		char c;
		if (read(fd_read, &c, 1) < 0)
			_exit(99);
		_exit(code);
	}
	return pid;
}

/* Waits until the child is a zombie without reaping it. */
static void until_zombie(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	CHECK_EQ(waitid(P_PID, pid, &si, WEXITED | WNOWAIT), 0);
	CHECK_EQ(si.si_pid, pid);
}

static void no_children(void)
{
	CHECK_ERR(wait(0), ECHILD);
	CHECK_ERR(waitpid(-1, 0, WNOHANG), ECHILD);
	CHECK_ERR(waitpid(12345, 0, 0), ECHILD);
	CHECK_ERR(waitpid(0, 0, 0), ECHILD);
	siginfo_t si;
	CHECK_ERR(waitid(P_ALL, 0, &si, WEXITED), ECHILD);
	CHECK_ERR(waitid(P_ALL, 0, &si, 0), EINVAL);
	CHECK_ERR(waitpid(-1, 0, 0x40000), EINVAL);
	/* Our parent is not our child. */
	CHECK_ERR(waitpid(getppid(), 0, WNOHANG), ECHILD);
	PASSED("ECHILD and EINVAL");
}

static void wnohang(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t pid = child_waiting(p[0], p[1], 5);
	int st = -1;
	CHECK_EQ(waitpid(pid, &st, WNOHANG), 0);
	CHECK_EQ(waitpid(-1, &st, WNOHANG), 0);
	siginfo_t si;
	memset(&si, 0xff, sizeof si);
	CHECK_EQ(waitid(P_PID, pid, &si, WEXITED | WNOHANG), 0);
	CHECK_EQ(si.si_pid, 0); /* nothing to report: si_pid 0 */
	close(p[1]);		/* EOF: the child exits 5 */
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5);
	close(p[0]);
	PASSED("WNOHANG");
}

static void given_pid(void)
{
	pid_t a = child_exiting(1), b = child_exiting(2), c = child_exiting(3);
	int st;
	CHECK_EQ(waitpid(c, &st, 0), c);
	CHECK_EQ(WEXITSTATUS(st), 3);
	CHECK_EQ(waitpid(a, &st, 0), a);
	CHECK_EQ(WEXITSTATUS(st), 1);
	CHECK_ERR(waitpid(a, &st, 0), ECHILD); /* reaped once only */
	CHECK_EQ(wait(&st), b);
	CHECK_EQ(WEXITSTATUS(st), 2);
	PASSED("a given pid");
}

static void status_encoding(void)
{
	int st;
	struct {
		int code, raw;
	} exits[] = { { 0, 0 }, { 1, 0x100 }, { 255, 0xff00 }, { 256, 0 }, { 257, 0x100 } };
	for (unsigned i = 0; i < sizeof exits / sizeof exits[0]; i++) {
		pid_t pid = child_exiting(exits[i].code);
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		CHECK_EQ(st, exits[i].raw);
	}
	/* exit_group's status too. */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		syscall(SYS_exit_group, 0x1234);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK_EQ(st, 0x3400);
	/* Killed: the signal in the low 7 bits (no core dumps from SIGTERM or SIGKILL). */
	int sigs[] = { SIGTERM, SIGKILL, SIGUSR1, SIGALRM };
	for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		int p[2];
		CHECK(pipe(p) == 0);
		pid = child_waiting(p[0], p[1], 0);
		close(p[0]);
		CHECK_EQ(kill(pid, sigs[i]), 0);
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		CHECK_EQ(st, sigs[i]);
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == sigs[i]);
		close(p[1]);
	}
	/* A fault: SIGSEGV, with or without the core flag (ulimit -c on the host). */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		*(volatile int *)bad_ptr(8) = 1;
		_exit(98);
	}
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
	PASSED("status encoding");
}

static void waitid_siginfo(void)
{
	siginfo_t si;
	pid_t pid = child_exiting(7);
	until_zombie(pid);
	memset(&si, 0, sizeof si);
	CHECK_EQ(waitid(P_PID, pid, &si, WEXITED | WNOWAIT), 0); /* still there */
	CHECK_EQ(si.si_signo, SIGCHLD);
	CHECK_EQ(si.si_code, CLD_EXITED);
	CHECK_EQ(si.si_pid, pid);
	CHECK_EQ(si.si_status, 7);
	memset(&si, 0, sizeof si);
	CHECK_EQ(waitid(P_ALL, 0, &si, WEXITED), 0);
	CHECK_EQ(si.si_pid, pid);
	CHECK_ERR(waitid(P_PID, pid, &si, WEXITED), ECHILD);

	int p[2];
	CHECK(pipe(p) == 0);
	pid = child_waiting(p[0], p[1], 0);
	close(p[0]);
	CHECK_EQ(kill(pid, SIGTERM), 0);
	memset(&si, 0, sizeof si);
	CHECK_EQ(waitid(P_PID, pid, &si, WEXITED), 0);
	CHECK_EQ(si.si_code, CLD_KILLED);
	CHECK_EQ(si.si_status, SIGTERM);
	CHECK_EQ(si.si_pid, pid);
	close(p[1]);
	/* A NULL infop is allowed by Linux. */
	pid = child_exiting(0);
	CHECK_EQ(waitid(P_PID, pid, 0, WEXITED), 0);
	PASSED("waitid");
}

static void zombies(void)
{
	pid_t pid = child_exiting(9);
	until_zombie(pid);
	/* A zombie still exists for kill and is reported by every kind of wait. */
	CHECK_EQ(kill(pid, 0), 0);
	CHECK_EQ(kill(pid, SIGKILL), 0); /* does nothing to a zombie */
	int st;
	CHECK_EQ(waitpid(-1, &st, WNOHANG), pid);
	CHECK_EQ(st, 9 << 8);
	CHECK_ERR(kill(pid, 0), ESRCH);
	PASSED("zombies until reaped");
}

static void groups(void)
{
	pid_t me = getpid();
	CHECK_EQ(getpgrp(), getpgid(0));
	CHECK_EQ(getpgid(me), getpgrp());
	CHECK_EQ(getsid(0), getsid(me));
	CHECK_ERR(getpgid(999999), ESRCH);
	CHECK_ERR(getsid(999999), ESRCH);
	CHECK_ERR(setpgid(-1, 0), EINVAL);
	CHECK_ERR(setpgid(999999, 0), ESRCH);

	/* a and b in a new group led by a; c in ours. Both sides call setpgid (no race). */
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t a = fork();
	CHECK(a >= 0);
	if (a == 0) {
		setpgid(0, 0);
		close(p[1]);
		char ch;
		if (read(p[0], &ch, 1) != 0)
			_exit(97);
		_exit(getpgrp() == getpid() ? 11 : 96);
	}
	CHECK_EQ(setpgid(a, a), 0);
	pid_t b = fork();
	CHECK(b >= 0);
	if (b == 0) {
		setpgid(0, a);
		close(p[1]);
		char ch;
		if (read(p[0], &ch, 1) != 0)
			_exit(97);
		_exit(getpgrp() == a ? 12 : 96);
	}
	CHECK_EQ(setpgid(b, a), 0);
	pid_t c = child_exiting(13);
	close(p[0]);
	CHECK_EQ(getpgid(a), a);
	CHECK_EQ(getpgid(b), a);
	CHECK_EQ(getpgid(c), getpgrp());
	until_zombie(c);
	CHECK_EQ(getpgid(c), getpgrp()); /* a zombie keeps its group until reaped */
	CHECK_EQ(getsid(c), getsid(0));
	/* c is ready to be reaped, but the group wait must not take it. */
	int st = -1;
	CHECK_EQ(waitpid(-a, &st, WNOHANG), 0);
	close(p[1]);
	int seen = 0;
	for (int i = 0; i < 2; i++) {
		pid_t got = waitpid(-a, &st, 0);
		CHECK(got == a || got == b);
		CHECK_EQ(WEXITSTATUS(st), got == a ? 11 : 12);
		seen |= got == a ? 1 : 2;
	}
	CHECK_EQ(seen, 3);
	CHECK_ERR(waitpid(-a, &st, 0), ECHILD);
	siginfo_t si;
	CHECK_ERR(waitid(P_PGID, a, &si, WEXITED), ECHILD);
	/* Our own group: waitpid(0). */
	CHECK_EQ(waitpid(0, &st, 0), c);
	CHECK_EQ(WEXITSTATUS(st), 13);

	/* waitid P_PGID. */
	pid_t d = fork();
	CHECK(d >= 0);
	if (d == 0) {
		setpgid(0, 0);
		_exit(14);
	}
	setpgid(d, d);
	memset(&si, 0, sizeof si);
	CHECK_EQ(waitid(P_PGID, d, &si, WEXITED), 0);
	CHECK_EQ(si.si_pid, d);
	CHECK_EQ(si.si_status, 14);
	/* kill(-pgid) reaches the whole group and nobody else; then ESRCH. */
	int k[2];
	CHECK(pipe(k) == 0);
	pid_t g1 = fork();
	CHECK(g1 >= 0);
	if (g1 == 0) {
		setpgid(0, 0);
		close(k[1]);
		char ch;
		(void)!read(k[0], &ch, 1);
		_exit(0);
	}
	CHECK_EQ(setpgid(g1, g1), 0);
	pid_t g2 = fork();
	CHECK(g2 >= 0);
	if (g2 == 0) {
		setpgid(0, g1);
		close(k[1]);
		char ch;
		(void)!read(k[0], &ch, 1);
		_exit(0);
	}
	CHECK_EQ(setpgid(g2, g1), 0);
	pid_t other = child_waiting(k[0], k[1], 17);
	CHECK_EQ(kill(-g1, SIGTERM), 0);
	CHECK_EQ(waitpid(g1, &st, 0), g1);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	CHECK_EQ(waitpid(g2, &st, 0), g2);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	CHECK_ERR(kill(-g1, SIGTERM), ESRCH);
	close(k[0]), close(k[1]);
	CHECK_EQ(waitpid(other, &st, 0), other); /* untouched: it saw EOF and exited */
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 17);
	/* kill(0) is the caller's own group (a child in a group of its own, so that on the host
	 * nothing outside this test is reached). */
	pid_t z = fork();
	CHECK(z >= 0);
	if (z == 0) {
		setpgid(0, 0);
		signal(SIGUSR1, SIG_IGN);
		if (kill(0, SIGUSR1) != 0)
			_exit(1);
		signal(SIGUSR1, SIG_DFL);
		kill(0, SIGUSR1); /* the default: terminate, ourselves included */
		_exit(2);
	}
	CHECK_EQ(waitpid(z, &st, 0), z);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1);
	PASSED("process groups");

	/* Sessions: a child (not a group leader) makes its own; a leader may not. */
	pid_t s = fork();
	CHECK(s >= 0);
	if (s == 0) {
		pid_t mine = getpid();
		pid_t old_sid = getsid(0);
		if (setsid() != mine || getsid(0) != mine || getpgrp() != mine)
			_exit(95);
		if (setsid() != -1 || errno != EPERM)
			_exit(94);
		/* Another session's group is out of reach. */
		if (setpgid(0, getpgid(getppid())) != -1 || errno != EPERM)
			_exit(93);
		_exit(old_sid != mine ? 15 : 92);
	}
	CHECK_EQ(waitpid(s, &st, 0), s);
	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 15);
	PASSED("sessions");
}

static void orphans(void)
{
	/* Child c forks g and exits; g, an orphan, reports its new parent and waits. */
	int p[2], q[2];
	CHECK(pipe(p) == 0 && pipe(q) == 0);
	pid_t c = fork();
	CHECK(c >= 0);
	if (c == 0) {
		pid_t g = fork();
		if (g < 0)
			_exit(90);
		if (g == 0) {
			close(q[1]);
			pid_t dead = getppid();
			/* Until c is gone (bounded: ~2 s). */
			for (int i = 0; i < 2000 && getppid() == dead; i++)
				sleep_ms(1);
			pid_t now = getppid();
			if (write(p[1], &now, sizeof now) != sizeof now)
				_exit(91);
			char ch;
			if (read(q[0], &ch, 1) < 0)
				_exit(92);
			_exit(16);
		}
		if (write(p[1], &g, sizeof g) != sizeof g)
			_exit(91);
		_exit(0);
	}
	pid_t g, new_parent;
	CHECK_EQ(read(p[0], &g, sizeof g), sizeof g);
	int st;
	CHECK_EQ(waitpid(c, &st, 0), c);
	CHECK_EQ(read(p[0], &new_parent, sizeof new_parent), sizeof new_parent);
	CHECK(new_parent != c);
	/* Not ours to wait for, unless we are init; not finished either way. */
	if (getpid() == 1)
		CHECK_EQ(waitpid(g, &st, WNOHANG), 0);
	else
		CHECK_ERR(waitpid(g, &st, WNOHANG), ECHILD);
	close(q[1]);
	if (getpid() == 1) {
		/* We are init: the orphan is ours now, and we reap it. */
		CHECK_EQ(new_parent, 1);
		CHECK_EQ(waitpid(g, &st, 0), g);
		CHECK_EQ(WEXITSTATUS(st), 16);
		PASSED("orphans re-parented to pid 1, which reaps them");
	} else {
		PASSED("orphans re-parented");
	}
	close(p[0]), close(p[1]), close(q[0]);
}

/* A child writing a byte to fd every millisecond until killed. It leads a process group of
 * its own, whose parent (us) is in another group of the same session: so the group is not
 * orphaned, and Linux does not discard the SIGTSTP sent to it (it discards SIGTSTP, SIGTTIN
 * and SIGTTOU sent to an orphaned group). In our group it would depend on how the test was
 * started; under CI it was orphaned and the stop never came. */
static pid_t ticker(int fd)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		for (;;) {
			if (write(fd, "t", 1) != 1)
				_exit(89);
			sleep_ms(1);
		}
	}
	return pid;
}

/* Reads what is in the (non-blocking) pipe: the number of bytes. */
static int drain(int fd)
{
	char buf[4096];
	int n = 0;
	ssize_t r;
	while ((r = read(fd, buf, sizeof buf)) > 0)
		n += (int)r;
	CHECK(r == -1 && errno == EAGAIN);
	return n;
}

static void stop_and_continue(void)
{
	int p[2];
	CHECK(pipe2(p, O_NONBLOCK) == 0);
	pid_t pid = ticker(p[1]);
	CHECK(setpgid(pid, pid) == 0 || errno == EACCES);
	int st;
	sleep_ms(20);
	CHECK(drain(p[0]) > 0);

	CHECK_EQ(kill(pid, SIGSTOP), 0);
	CHECK_EQ(waitpid(pid, &st, WUNTRACED), pid);
	CHECK(WIFSTOPPED(st));
	CHECK_EQ(WSTOPSIG(st), SIGSTOP);
	CHECK_EQ(st, (SIGSTOP << 8) | 0x7f);
	/* Reported once; a plain wait does not report stops. */
	CHECK_EQ(waitpid(pid, &st, WNOHANG | WUNTRACED), 0);
	CHECK_EQ(waitpid(pid, &st, WNOHANG), 0);
	/* Stopped: it makes no progress. */
	drain(p[0]);
	sleep_ms(30);
	CHECK_EQ(drain(p[0]), 0);

	CHECK_EQ(kill(pid, SIGCONT), 0);
	CHECK_EQ(waitpid(pid, &st, WCONTINUED), pid);
	CHECK(WIFCONTINUED(st));
	CHECK_EQ(st, 0xffff);
	sleep_ms(20);
	CHECK(drain(p[0]) > 0);

	/* SIGTSTP stops by default too; waitid reports CLD_STOPPED and CLD_CONTINUED. */
	CHECK_EQ(kill(pid, SIGTSTP), 0);
	siginfo_t si;
	memset(&si, 0, sizeof si);
	CHECK_EQ(waitid(P_PID, pid, &si, WSTOPPED), 0);
	CHECK_EQ(si.si_code, CLD_STOPPED);
	CHECK_EQ(si.si_status, SIGTSTP);
	CHECK_EQ(si.si_pid, pid);
	CHECK_EQ(kill(pid, SIGCONT), 0);
	memset(&si, 0, sizeof si);
	CHECK_EQ(waitid(P_PID, pid, &si, WCONTINUED), 0);
	CHECK_EQ(si.si_code, CLD_CONTINUED);
	CHECK_EQ(si.si_status, SIGCONT);

	/* A stopped process dies of SIGKILL. */
	CHECK_EQ(kill(pid, SIGSTOP), 0);
	CHECK_EQ(waitpid(pid, &st, WUNTRACED), pid);
	CHECK(WIFSTOPPED(st));
	CHECK_EQ(kill(pid, SIGKILL), 0);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	/* SIGTERM sent to a stopped process waits for SIGCONT, then kills it. */
	pid = ticker(p[1]);
	CHECK_EQ(kill(pid, SIGSTOP), 0);
	CHECK_EQ(waitpid(pid, &st, WUNTRACED), pid);
	CHECK_EQ(kill(pid, SIGTERM), 0);
	sleep_ms(20);
	CHECK_EQ(waitpid(pid, &st, WNOHANG), 0);
	CHECK_EQ(kill(pid, SIGCONT), 0);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	close(p[0]), close(p[1]);
	PASSED("stop and continue");
}

static int tick_fd;

static void *tick_thread(void *arg)
{
	(void)arg;
	for (;;) {
		if (write(tick_fd, "t", 1) != 1)
			_exit(89);
		sleep_ms(1);
	}
	return 0;
}

/* A child whose second thread ticks, while its first waits (blocking SIGTSTP when `block`). */
static pid_t threaded_ticker(int fd, int block)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		tick_fd = fd;
		pthread_t th;
		if (pthread_create(&th, 0, tick_thread, 0) != 0)
			_exit(87);
		if (block) {
			sigset_t s;
			sigemptyset(&s);
			sigaddset(&s, SIGTSTP);
			pthread_sigmask(SIG_BLOCK, &s, 0);
		}
		for (;;)
			pause();
	}
	return pid;
}

/* A stop is the whole process's: a thread that did not take the signal stops too, SIGCONT
 * continues them all, and the parent hears of each once. With SIGTSTP blocked in the first
 * thread, the second takes it, and still the whole process stops. */
static void threads_stop_together(void)
{
	int p[2];
	CHECK(pipe2(p, O_NONBLOCK) == 0);
	for (int block = 0; block < 2; block++) {
		int sig = block ? SIGTSTP : SIGSTOP;
		/* What the last child wrote, so that the wait below is for this one's first tick. */
		drain(p[0]);
		pid_t pid = threaded_ticker(p[1], block);
		int st;
		for (int i = 0; i < 1000 && drain(p[0]) == 0; i++)
			sleep_ms(1);
		CHECK_EQ(kill(pid, sig), 0);
		CHECK_EQ(waitpid(pid, &st, WUNTRACED), pid);
		CHECK_EQ(st, (sig << 8) | 0x7f);
		CHECK_EQ(waitpid(pid, &st, WNOHANG | WUNTRACED), 0);
		/* The ticking thread is stopped too. */
		drain(p[0]);
		sleep_ms(30);
		CHECK_EQ(drain(p[0]), 0);
		CHECK_EQ(kill(pid, SIGCONT), 0);
		CHECK_EQ(waitpid(pid, &st, WCONTINUED), pid);
		CHECK(WIFCONTINUED(st));
		CHECK_EQ(waitpid(pid, &st, WNOHANG | WCONTINUED), 0);
		sleep_ms(20);
		CHECK(drain(p[0]) > 0);
		CHECK_EQ(kill(pid, SIGKILL), 0);
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	}
	close(p[0]), close(p[1]);
	PASSED("a stop stops every thread of the process");
}

/* A group whose members' parents are all outside its session (or are pid 1) is orphaned: Linux
 * drops SIGTSTP, SIGTTIN and SIGTTOU that would stop it, as nobody could continue it; SIGSTOP
 * still stops it. A child in a session of its own is such a group. */
static void orphaned_group_ignores_tstp(void)
{
	int p[2];
	CHECK(pipe2(p, O_NONBLOCK) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (setsid() < 0)
			_exit(88);
		for (;;) {
			if (write(p[1], "t", 1) != 1)
				_exit(89);
			sleep_ms(1);
		}
	}
	int st;
	/* Its first byte comes after setsid. */
	for (int i = 0; i < 1000 && drain(p[0]) == 0; i++)
		sleep_ms(1);
	CHECK_EQ(getsid(pid), pid);
	CHECK_EQ(kill(pid, SIGTSTP), 0);
	CHECK_EQ(kill(pid, SIGTTIN), 0);
	CHECK_EQ(kill(pid, SIGTTOU), 0);
	sleep_ms(20);
	CHECK_EQ(waitpid(pid, &st, WNOHANG | WUNTRACED), 0);
	drain(p[0]);
	sleep_ms(20);
	CHECK(drain(p[0]) > 0);
	CHECK_EQ(kill(pid, SIGSTOP), 0);
	CHECK_EQ(waitpid(pid, &st, WUNTRACED), pid);
	CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
	CHECK_EQ(kill(pid, SIGKILL), 0);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	close(p[0]), close(p[1]);
	PASSED("an orphaned group ignores SIGTSTP, SIGTTIN and SIGTTOU");
}

static int hup_fd;
static void on_hup(int sig)
{
	(void)sig;
	write(hup_fd, "H", 1);
	_exit(0);
}

/* A grandchild in a group of its own, linked to the session only through its parent; the
 * parent stops it (or not) and exits. Returns what the grandchild wrote: 'H' if it was hung
 * up, 'n' if 200 ms went by without. */
static char orphan_after_parent_exits(int stop)
{
	int p[2];
	CHECK(pipe2(p, O_NONBLOCK) == 0);
	hup_fd = p[1];
	pid_t middle = fork();
	CHECK(middle >= 0);
	if (middle == 0) {
		pid_t c = fork();
		if (c == 0) {
			setpgid(0, 0);
			signal(SIGHUP, on_hup);
			write(p[1], "r", 1);
			if (stop)
				for (;;)
					pause();
			sleep_ms(200);
			write(p[1], "n", 1);
			_exit(0);
		}
		setpgid(c, c);
		char r = 0;
		for (int i = 0; i < 2000 && read(p[0], &r, 1) != 1; i++)
			sleep_ms(1);
		if (r != 'r')
			_exit(3);
		int st;
		if (stop && (kill(c, SIGSTOP) != 0 || waitpid(c, &st, WUNTRACED) != c || !WIFSTOPPED(st)))
			_exit(4);
		_exit(0);
	}
	int st;
	CHECK_EQ(waitpid(middle, &st, 0), middle);
	CHECK_EQ(st, 0);
	char got = 0;
	for (int i = 0; i < 3000 && read(p[0], &got, 1) != 1; i++)
		sleep_ms(1);
	/* In the guest we are pid 1: the grandchild came to us; reap it. */
	for (int i = 0; i < 1000; i++) {
		pid_t w = waitpid(-1, &st, WNOHANG);
		if (w < 0)
			break;
		if (w == 0)
			sleep_ms(1);
	}
	close(p[0]), close(p[1]);
	return got;
}

/* Linux's rule for a newly orphaned process group with a stopped member: nobody could
 * continue it, so it gets SIGHUP and SIGCONT. One without a stopped member is left alone. */
static void orphaned_stopped_group_is_hung_up(void)
{
	CHECK_EQ(orphan_after_parent_exits(1), 'H');
	CHECK_EQ(orphan_after_parent_exits(0), 'n');
	PASSED("a newly orphaned group with a stopped member gets SIGHUP");
}

/* Runs `test` in a child of ours: its children's parent is then not pid 1 (we are, in the
 * guest), so their groups are not orphaned. */
static void in_child(void (*test)(void))
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		test();
		_exit(0);
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK_EQ(st, 0);
}

int main(void)
{
	setvbuf(stdout, 0, _IONBF, 0);
	no_children();
	wnohang();
	given_pid();
	status_encoding();
	waitid_siginfo();
	zombies();
	groups();
	orphans();
	in_child(stop_and_continue);
	in_child(threads_stop_together);
	orphaned_group_ignores_tstp();
	orphaned_stopped_group_is_hung_up();
	no_children();
	ALL_PASSED();
	return 0;
}
