/* popen: a program given with `vmm --user` finds the default programs beside it in /bin, as a
 * program on Linux finds the system's: popen (musl: posix_spawn of /bin/sh -c) runs a pipeline
 * of our shell, echo and wc, and execvp finds `echo` through PATH. Exits 0 iff all passed. */
#define PROG "popen"
#include "check.h"

#include <sys/wait.h>

int main(void)
{
	CHECK(access("/bin/sh", X_OK) == 0);
	FILE *p = popen("echo one two three | wc -w", "r");
	CHECK(p != NULL);
	char line[64];
	CHECK(fgets(line, sizeof line, p) != NULL);
	CHECK(atoi(line) == 3);
	CHECK(pclose(p) == 0);
	printf("popen: ok a pipeline through /bin/sh\n");

	pid_t c = fork();
	CHECK(c >= 0);
	if (c == 0) {
		execlp("echo", "echo", "popen: ok execlp finds echo in PATH", (char *)NULL);
		_exit(127);
	}
	int st;
	CHECK(waitpid(c, &st, 0) == c);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	printf("popen: all passed\n");
	return 0;
}
