/* forkbomb: DESTRUCTIVE, for our guest only (it refuses to run unless it is pid 1, so never on
 * a host, where tests run as root). A process group that forks without end until fork fails;
 * fork must fail with EAGAIN (the process table or memory is full) and the kernel must go on.
 * Then the group is killed with one kill(-pgid, SIGKILL), pid 1 reaps every one of them (the
 * orphans come to it), and fork works again. Twice, to see that nothing leaked: the second
 * bomb gets as many processes as the first. Exits 0 iff all passed. */
#define PROG "forkbomb"
#include "check.h"

#include <signal.h>
#include <sys/wait.h>

static int bomb(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t leader = fork();
	CHECK(leader >= 0);
	if (leader == 0) {
		setpgid(0, 0);
		close(p[0]);
		for (;;) {
			pid_t pid = fork();
			if (pid < 0) {
				/* Full: say why, once per process, and wait to be killed. */
				unsigned char e = (unsigned char)errno;
				(void)!write(p[1], &e, 1);
				for (;;)
					pause();
			}
		}
	}
	setpgid(leader, leader);
	close(p[1]);
	unsigned char e = 0;
	CHECK_EQ(read(p[0], &e, 1), 1);
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
		CHECK_EQ(errno, EAGAIN);
	}
	CHECK_EQ(kill(-leader, SIGKILL), 0);
	/* Reap them all: our child, and the orphans it left, which are ours now. */
	int reaped = 0, st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, 0)) > 0) {
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

int main(void)
{
	setvbuf(stdout, 0, _IONBF, 0);
	if (getpid() != 1) {
		printf("forkbomb: refusing to run as pid %d: this is for the test guest only\n",
		       (int)getpid());
		return 2;
	}
	int first = bomb();
	printf("forkbomb: first bomb: %d processes, all reaped\n", first);
	int second = bomb();
	printf("forkbomb: second bomb: %d processes, all reaped\n", second);
	CHECK(first > 10);
	CHECK(second >= first - 2 && second <= first + 2);
	ALL_PASSED();
	return 0;
}
