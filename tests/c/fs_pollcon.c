/* poll on standard input (the console in our guest, a pipe on the host): nothing to read for
 * a while (a short poll times out), then it waits until a line arrives, and the line is there
 * to read. The test types "typed" half a second after starting it. */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long ms_since(struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

int main(void) {
    struct pollfd in = {0, POLLIN, 0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int early = poll(&in, 1, 50);
    printf("fs_pollcon: a poll of 50 ms before the line: %d\n", early);
    int n = poll(&in, 1, 10000);
    long waited = ms_since(&t0);
    char buf[64] = {0};
    int got = n == 1 && (in.revents & POLLIN) ? read(0, buf, sizeof buf - 1) : -1;
    if (got > 0 && buf[got - 1] == '\n') buf[got - 1] = 0;
    printf("fs_pollcon: poll %d after %ld ms, read '%s'\n", n, waited, got > 0 ? buf : "");
    return got > 0 ? 0 : 1;
}
