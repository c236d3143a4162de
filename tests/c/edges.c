/* System-call arguments at their edges, each of which must fail cleanly (or succeed) with the
 * process going on: one line per check, exits 0 iff all passed. Linux gives the same answers,
 * so this also runs on the host. */
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KERNEL_PTR 0xffffffff80100000UL
#define NON_CANONICAL 0x8000000000000000UL

static int failed;

/* The raw call: the result, or -errno. */
static long sys(long nr, unsigned long a, unsigned long b, unsigned long c)
{
	long r = syscall(nr, a, b, c);
	return r < 0 ? -errno : r;
}

static void check(const char *what, long got, long want)
{
	printf("edges: %s: %s (%ld, expected %ld)\n", what, got == want ? "ok" : "FAIL", got, want);
	failed += got != want;
}

int main(void)
{
	struct timespec bad_nsec = { 0, 1000000000 }, negative = { -1, 0 }, zero = { 0, 0 };
	check("nanosleep tv_nsec = 1e9", sys(SYS_nanosleep, (unsigned long)&bad_nsec, 0, 0), -EINVAL);
	check("nanosleep tv_sec = -1", sys(SYS_nanosleep, (unsigned long)&negative, 0, 0), -EINVAL);
	check("nanosleep kernel pointer", sys(SYS_nanosleep, KERNEL_PTR, 0, 0), -EFAULT);
	check("nanosleep 0", sys(SYS_nanosleep, (unsigned long)&zero, 0, 0), 0);
	check("write of 0 bytes from NULL", sys(SYS_write, 1, 0, 0), 0);
	check("writev of 0 vectors", sys(SYS_writev, 1, 0, 0), 0);
	check("writev with -1 vectors", sys(SYS_writev, 1, 0, -1UL), -EINVAL);
	check("writev with a kernel iovec", sys(SYS_writev, 1, KERNEL_PTR, 1), -EFAULT);
	struct iovec kiov = { (void *)KERNEL_PTR, 8 };
	check("writev of a kernel buffer", sys(SYS_writev, 1, (unsigned long)&kiov, 1), -EFAULT);
	check("arch_prctl SET_FS non-canonical", sys(SYS_arch_prctl, 0x1002, NON_CANONICAL, 0),
	      -EPERM);
	check("arch_prctl SET_FS kernel address", sys(SYS_arch_prctl, 0x1002, KERNEL_PTR, 0),
	      -EPERM);
	check("clock_gettime NULL", sys(SYS_clock_gettime, CLOCK_MONOTONIC, 0, 0), -EFAULT);
	check("wait4 of pid 12345 (no such child)", sys(SYS_wait4, 12345, 0, 0), -ECHILD);
	check("wait4 with bad options", sys(SYS_wait4, -1, 0, 0x100), -EINVAL);
	printf("edges: %s\n", failed ? "FAILED" : "all passed");
	return failed != 0;
}
