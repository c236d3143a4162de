/* forkbomb: DESTRUCTIVE, for our guest only (it refuses to run unless it is pid 1, so never on
 * a host, where tests run as root). A process group that forks without end until fork fails;
 * fork must fail with EAGAIN (the process table or memory is full) and the kernel must go on.
 * Then the group is killed with one kill(-pgid, SIGKILL) (the second time kill(-1, SIGKILL)), pid 1 reaps every one of them (the
 * orphans come to it), and fork works again. Twice, to see that nothing leaked: the second
 * bomb gets as many processes as the first. `forkbomb memory`: the bomb's processes each dirty
 * 256 KiB as well, so that memory runs out before the table (run it with little RAM; one
 * bomb): fork fails with EAGAIN or ENOMEM, or a copy-on-write fault finds no frame and the kernel kills
 * that process; pid 1 is not touched (the bomb is exec'd from a vfork, so it shares no page with
 * pid 1). Exits 0 iff all passed. */
#define PROG "forkbomb"
#include "check.h"

#include <signal.h>
#include <sys/wait.h>

static volatile char hog[256 * 1024];

/* The bomb itself: fork without end; when fork fails, report errno on fd and wait. */
static void explode(int fd, int dirty)
{
	setpgid(0, 0);
	for (;;) {
		pid_t pid = fork();
		if (pid == 0 && dirty)
			for (size_t i = 0; i < sizeof hog; i += 4096)
				hog[i] = 1;
		if (pid < 0) {
			/* Full: say why, once per process, and wait to be killed. */
			unsigned char e = (unsigned char)errno;
			(void)!write(fd, &e, 1);
			for (;;)
				pause();
		}
	}
}

static int memory_mode;

static int bomb(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t leader = memory_mode ? vfork() : fork();
	CHECK(leader >= 0);
	if (leader == 0) {
		if (memory_mode) {
			/* A fresh image: nothing shared with pid 1. The pipe is fd 3 there. */
			char *av[] = { "forkbomb", "--explode", 0 };
			char *ev[] = { 0 };
			if (dup2(p[1], 3) != 3)
				_exit(100);
			execve("/bin/forkbomb", av, ev);
			_exit(101);
		}
		close(p[0]);
		explode(p[1], 0);
	}
	setpgid(leader, leader);
	close(p[1]);
	unsigned char e = 0;
	CHECK_EQ(read(p[0], &e, 1), 1);
	printf("forkbomb: fork failed with %s\n", e == EAGAIN ? "EAGAIN" : e == ENOMEM ? "ENOMEM" : "?");
	if (memory_mode)
		CHECK(e == EAGAIN || e == ENOMEM);
	else
		CHECK_EQ(e, EAGAIN);
	/* We cannot fork either while it is full. */
	pid_t mine = fork();
	if (mine == 0)
		_exit(0);
	if (mine > 0) {
		/* A slot was free for a moment (a bomb process between forks): fine, reap it. */
		int st;
		CHECK_EQ(waitpid(mine, &st, 0), mine);
	} else {
		CHECK(errno == EAGAIN || (memory_mode && errno == ENOMEM));
	}
	/* The first time the group, the second time everyone (kill(-1): all but pid 1 and the
	 * caller, which are the same here). */
	static int round;
	CHECK_EQ(kill(round++ == 0 ? -leader : -1, SIGKILL), 0);
	/* Reap them all: our child, and the orphans it left, which are ours now. */
	int reaped = 0, st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, 0)) > 0) {
		/* SIGKILL from us, or from the kernel for want of a frame. */
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		reaped++;
	}
	CHECK_EQ(errno, ECHILD);
	close(p[0]);
	/* The kernel goes on: fork works again. */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(3);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
	return reaped;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, 0, _IONBF, 0);
	if (argc >= 2 && strcmp(argv[1], "--explode") == 0 && getppid() == 1)
		explode(3, 1);
	memory_mode = argc >= 2 && strcmp(argv[1], "memory") == 0;
	if (getpid() != 1) {
		printf("forkbomb: refusing to run as pid %d: this is for the test guest only\n",
		       (int)getpid());
		return 2;
	}
	int first = bomb();
	printf("forkbomb: first bomb: %d processes, all reaped\n", first);
	if (memory_mode) {
		CHECK(first > 10);
		ALL_PASSED();
		return 0;
	}
	int second = bomb();
	printf("forkbomb: second bomb: %d processes, all reaped\n", second);
	CHECK(first > 10);
	CHECK(second >= first - 2 && second <= first + 2);
	ALL_PASSED();
	return 0;
}
