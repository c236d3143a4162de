/* A dynamically linked glibc program, built with plain `gcc` as a user would (tests/glibc.rs):
 * checks what only a dynamic program does, and prints one line per check ("ok" or "FAIL").
 *   dynamic          the program interpreter was mapped (AT_BASE), the objects glibc's
 *                    dynamic linker loaded (dl_iterate_phdr), /proc/self/maps naming them,
 *                    a thread, fork and exec of a program in /bin
 *   dynamic dlopen   dlopen of libm.so.6 (not linked in: found at run time) and a call of cos
 *                    through dlsym; "dlopen: not found: MESSAGE" when it is not there */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/wait.h>
#include <unistd.h>

static int failed;

static void check(const char *what, int ok)
{
	printf("dynamic: %s: %s\n", what, ok ? "ok" : "FAIL");
	failed |= !ok;
}

static int saw_libc, objects;

static int visit(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	objects++;
	if (strstr(info->dlpi_name, "libc.so.6"))
		saw_libc = 1;
	return 0;
}

/* Whether a line of /proc/self/maps has both `a` and `b` in it. */
static int maps_has(const char *a, const char *b)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, a) && strstr(line, b);
	fclose(f);
	return found;
}

static void *square(void *arg)
{
	long n = (long)arg;
	return (void *)(n * n);
}

static int with_dlopen(void)
{
	void *h = dlopen("libm.so.6", RTLD_NOW);
	if (!h) {
		printf("dlopen: not found: %s\n", dlerror());
		return 1;
	}
	double (*cosine)(double) = (double (*)(double))dlsym(h, "cos");
	check("dlopen libm.so.6 and call cos through dlsym", cosine && cosine(0.0) == 1.0);
	return failed;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "dlopen") == 0)
		return with_dlopen();

	check("an interpreter was mapped (AT_BASE)", getauxval(AT_BASE) != 0);
	check("AT_ENTRY is the program's own entry", getauxval(AT_ENTRY) != 0);
	dl_iterate_phdr(visit, NULL);
	check("libc.so.6 among the loaded objects", saw_libc);
	check("at least the program, libc and the dynamic linker", objects >= 3);
	check("/proc/self/maps: libc.so.6's code", maps_has(" r-xp ", "/libc.so.6"));
	check("/proc/self/maps: the dynamic linker", maps_has(" r-xp ", "/ld-linux-x86-64.so.2"));
	check("/proc/self/maps: the stack and the vDSO", maps_has("rw-p", "[stack]") &&
							      maps_has("r-xp", "[vdso]"));

	pthread_t t;
	void *r = NULL;
	check("a thread", pthread_create(&t, NULL, square, (void *)12L) == 0 &&
				  pthread_join(t, &r) == 0 && (long)r == 144);

	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		execlp("echo", "echo", "dynamic: echo run by a forked child", (char *)NULL);
		_exit(127);
	}
	int status = 0;
	check("fork, and exec of echo from PATH", pid > 0 && waitpid(pid, &status, 0) == pid &&
						    WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return failed;
}
