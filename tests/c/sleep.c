/* Time through libc: clock_gettime(CLOCK_MONOTONIC) around nanosleep(50 ms); also getpid.
 * Exits 0 iff the sleep lasted at least 50 ms and the clock went forward. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	struct timespec a, b, req = { 0, 50 * 1000 * 1000 };
	if (clock_gettime(CLOCK_MONOTONIC, &a) != 0 || nanosleep(&req, NULL) != 0 ||
	    clock_gettime(CLOCK_MONOTONIC, &b) != 0) {
		perror("sleep");
		return 1;
	}
	long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	printf("sleep: pid %d slept %ld ms\n", (int)getpid(), ms);
	return ms >= 50 ? 0 : 1;
}
