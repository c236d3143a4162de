/* The calls C libraries make at start-up and often after, with Linux's answers: uname,
 * getrandom, resource limits, the ids of root, sysinfo, times, getrusage, CPU affinity,
 * scheduling parameters, the clocks, clock_nanosleep, prctl's names, membarrier, FIONBIO.
 * One line per check; exits 0 iff all passed. Runs on the host too (as root, as our guest's
 * one user is). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* <linux/membarrier.h>'s values (musl-gcc has no kernel headers). */
#define MEMBARRIER_CMD_QUERY 0
#define MEMBARRIER_CMD_GLOBAL 1
#define MEMBARRIER_CMD_PRIVATE_EXPEDITED 8
#define MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED 16

static int failed;

static void check(const char *what, long got, long want)
{
	printf("startup: %s: %s (%ld, expected %ld)\n", what, got == want ? "ok" : "FAIL", got, want);
	failed += got != want;
}

static long raw(long r)
{
	return r < 0 ? -errno : r;
}

static long ms_between(struct timespec a, struct timespec b)
{
	return (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
}

int main(void)
{
	struct utsname u;
	check("uname", uname(&u), 0);
	check("uname sysname is Linux", strcmp(u.sysname, "Linux"), 0);
	check("uname machine is x86_64", strcmp(u.machine, "x86_64"), 0);

	unsigned char a[64] = { 0 }, b[64] = { 0 };
	check("getrandom 64 bytes", getrandom(a, sizeof a, 0), 64);
	check("getrandom again", getrandom(b, sizeof b, GRND_NONBLOCK), 64);
	check("two draws differ", memcmp(a, b, sizeof a) != 0, 1);
	check("getrandom bad flags", raw(syscall(SYS_getrandom, a, 8, 0x100)), -EINVAL);
	check("getrandom RANDOM|INSECURE", raw(syscall(SYS_getrandom, a, 8, 6)), -EINVAL);
	check("getrandom into a kernel address", raw(syscall(SYS_getrandom, 0xffffffff80100000UL, 8, 0)), -EFAULT);

	struct rlimit rl;
	check("getrlimit NOFILE", getrlimit(RLIMIT_NOFILE, &rl), 0);
	check("NOFILE soft <= hard", rl.rlim_cur <= rl.rlim_max, 1);
	struct rlimit lower = { 64, rl.rlim_max };
	check("setrlimit NOFILE lower", setrlimit(RLIMIT_NOFILE, &lower), 0);
	check("getrlimit reads it back", (getrlimit(RLIMIT_NOFILE, &rl), (long)rl.rlim_cur), 64);
	struct rlimit inverted = { 10, 5 };
	check("soft above hard", raw(setrlimit(RLIMIT_NOFILE, &inverted)), -EINVAL);
	check("an unknown resource", raw(syscall(SYS_prlimit64, 0, 99, 0, &rl)), -EINVAL);
	check("getrlimit STACK", (getrlimit(RLIMIT_STACK, &rl), rl.rlim_cur > 0), 1);

	check("getuid", getuid(), 0);
	check("geteuid", geteuid(), 0);
	check("getgid", getgid(), 0);
	check("setuid(0)", setuid(0), 0);
	uid_t r1, r2, r3;
	check("getresuid", getresuid(&r1, &r2, &r3), 0);
	check("all three ids 0", r1 | r2 | r3, 0);

	struct sysinfo si;
	check("sysinfo", sysinfo(&si), 0);
	check("sysinfo totalram > freeram > 0", si.totalram * si.mem_unit > si.freeram * si.mem_unit && si.freeram > 0, 1);
	check("sysinfo procs >= 1", si.procs >= 1, 1);

	struct tms tm;
	check("times", times(&tm) != (clock_t)-1, 1);
	struct rusage ru;
	check("getrusage SELF", getrusage(RUSAGE_SELF, &ru), 0);
	check("getrusage bad who", raw(syscall(SYS_getrusage, 5, &ru)), -EINVAL);

	cpu_set_t set;
	CPU_ZERO(&set);
	check("sched_getaffinity", sched_getaffinity(0, sizeof set, &set), 0);
	check("CPU 0 is in the mask", CPU_ISSET(0, &set), 1);
	check("sched_getaffinity, len 3", raw(syscall(SYS_sched_getaffinity, 0, 3, &set)), -EINVAL);
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	check("sched_setaffinity CPU 0", sched_setaffinity(0, sizeof set, &set), 0);
	/* (musl's own sched_getscheduler and sched_getparam are ENOSYS by design: the raw calls) */
	check("sched_getscheduler", syscall(SYS_sched_getscheduler, 0), SCHED_OTHER);
	struct sched_param sp = { 0 };
	check("sched_getparam", syscall(SYS_sched_getparam, 0, &sp), 0);
	check("priority 0", sp.sched_priority, 0);
	check("max priority of SCHED_FIFO", sched_get_priority_max(SCHED_FIFO), 99);
	check("max priority of SCHED_OTHER", sched_get_priority_max(SCHED_OTHER), 0);
	check("priority of an unknown policy", raw(sched_get_priority_max(77)), -EINVAL);
	check("sched_getaffinity of no such pid", raw(syscall(SYS_sched_getaffinity, 999999, sizeof set, &set)), -ESRCH);

	struct timeval tv;
	check("gettimeofday", gettimeofday(&tv, 0), 0);
	time_t t1 = time(0);
	check("time agrees with gettimeofday", t1 - tv.tv_sec <= 1, 1);
	struct timespec res;
	check("clock_getres MONOTONIC", clock_getres(CLOCK_MONOTONIC, &res), 0);
	check("resolution <= 1 ms", res.tv_sec == 0 && res.tv_nsec <= 1000000, 1);
	check("clock_getres of no clock", raw(syscall(SYS_clock_getres, 99, &res)), -EINVAL);

	struct timespec before, after, req = { 0, 20 * 1000 * 1000 };
	clock_gettime(CLOCK_MONOTONIC, &before);
	check("clock_nanosleep 20 ms", clock_nanosleep(CLOCK_MONOTONIC, 0, &req, 0), 0);
	clock_gettime(CLOCK_MONOTONIC, &after);
	check("slept >= 20 ms", ms_between(before, after) >= 20, 1);
	struct timespec until = after;
	until.tv_nsec += 20 * 1000 * 1000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	check("clock_nanosleep TIMER_ABSTIME", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, 0), 0);
	clock_gettime(CLOCK_MONOTONIC, &before);
	check("woke at or after the time", ms_between(until, before) >= 0, 1);
	check("clock_nanosleep on no clock", clock_nanosleep(99, 0, &req, 0), EINVAL);

	char name[16] = { 0 };
	check("PR_SET_NAME", prctl(PR_SET_NAME, "renamed-task-xyz"), 0);
	check("PR_GET_NAME", prctl(PR_GET_NAME, name), 0);
	check("the name, cut to 15 bytes", strcmp(name, "renamed-task-xy"), 0);
	check("prctl of an unknown option", raw(prctl(12345, 0, 0, 0, 0)), -EINVAL);

	long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	check("membarrier QUERY has GLOBAL", q > 0 && (q & MEMBARRIER_CMD_GLOBAL), 1);
	if (q & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) {
		check("membarrier REGISTER_PRIVATE_EXPEDITED", syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0), 0);
		check("membarrier PRIVATE_EXPEDITED", syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0), 0);
	}
	check("membarrier with flags", raw(syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 1, 0)), -EINVAL);

	int p[2];
	check("pipe", pipe(p), 0);
	int on = 1;
	check("FIONBIO on a pipe", ioctl(p[0], FIONBIO, &on), 0);
	check("O_NONBLOCK set by it", (fcntl(p[0], F_GETFL) & O_NONBLOCK) != 0, 1);
	char c;
	check("a read of the empty pipe is EAGAIN", raw(read(p[0], &c, 1)), -EAGAIN);
	check("FIOCLEX", ioctl(p[0], FIOCLEX), 0);
	check("close-on-exec set by it", fcntl(p[0], F_GETFD), FD_CLOEXEC);
	check("a tty request on a pipe", raw(ioctl(p[0], TIOCGWINSZ, &on)), -ENOTTY);

	return failed != 0;
}
