/* waitall: a pid 1 for tests. The programs started at boot after it (pids 2..n) are its
 * children: it waits for each with waitpid (wait4), prints how it ended, and exits 0 once none
 * is left (ECHILD), so the VM powers off only after all of them. Exits 1 if waiting fails or if
 * it has no children at all. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

int main(void)
{
	int n = 0, status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, 0)) > 0) {
		n++;
		if (WIFEXITED(status))
			printf("waitall: pid %d exited with %d\n", (int)pid, WEXITSTATUS(status));
		else if (WIFSIGNALED(status))
			printf("waitall: pid %d killed by signal %d\n", (int)pid, WTERMSIG(status));
		else
			printf("waitall: pid %d status %#x\n", (int)pid, status);
	}
	if (errno != ECHILD) {
		printf("waitall: waitpid: %s\n", strerror(errno));
		return 1;
	}
	printf("waitall: %d children, all done\n", n);
	return n > 0 ? 0 : 1;
}
