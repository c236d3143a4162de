/* poll, ppoll, select and pselect6 over pipes, files and /dev/null: what is ready at once,
 * timeouts that expire, a wait that another process ends by writing, POLLHUP when the writer
 * goes, POLLNVAL and EBADF for a closed descriptor. Run as `fs_poll DIR`. */
#define _GNU_SOURCE
#include "fscheck.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long ms_since(struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

int main(int argc, char **argv) {
    prog_name = "fs_poll";
    if (argc < 2 || chdir(argv[1]) != 0) {
        printf("fs_poll: usage: fs_poll DIR (a writable directory)\n");
        return 2;
    }
    int p[2];
    pipe(p);
    struct pollfd fds[3] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}, {-1, POLLIN, 0}};
    value("an empty pipe's write end is ready", poll(fds, 3, 0), 1);
    value("no POLLIN yet", fds[0].revents, 0);
    value("POLLOUT", fds[1].revents, POLLOUT);
    value("a negative fd is ignored", fds[2].revents, 0);
    write(p[1], "x", 1);
    value("after a write both are ready", poll(fds, 2, 0), 2);
    value("POLLIN", fds[0].revents, POLLIN);

    int f = open("pf", O_RDWR | O_CREAT | O_TRUNC, 0600);
    struct pollfd ff = {f, POLLIN | POLLOUT, 0};
    value("a file is always ready", poll(&ff, 1, 0), 1);
    value("for both", ff.revents, POLLIN | POLLOUT);
    int null = open("/dev/null", O_RDONLY);
    ff.fd = null;
    ff.events = POLLIN;
    value("/dev/null is ready to read", poll(&ff, 1, 0), 1);
    close(null);
    value("a closed fd is POLLNVAL", poll(&ff, 1, 0), 1);
    value("POLLNVAL", ff.revents, POLLNVAL);

    /* A timeout that expires. */
    char c;
    read(p[0], &c, 1);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    value("poll times out", poll(fds, 1, 60), 0);
    value("after at least 60 ms", ms_since(&t0) >= 60, 1);
    struct timespec ts = {0, 30 * 1000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    value("ppoll times out", ppoll(fds, 1, &ts, NULL), 0);
    value("after at least 30 ms", ms_since(&t0) >= 30, 1);

    /* A wait another process ends: the child writes after 50 ms. */
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec d = {0, 50 * 1000000};
        nanosleep(&d, NULL);
        write(p[1], "y", 1);
        _exit(0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    value("poll waits for the child's write", poll(fds, 1, 5000), 1);
    value("POLLIN after the wait", fds[0].revents, POLLIN);
    value("woken after about 50 ms, not 5 s", ms_since(&t0) >= 40 && ms_since(&t0) < 4000, 1);
    waitpid(pid, NULL, 0);
    read(p[0], &c, 1);

    /* select and pselect6. */
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p[0], &r);
    FD_SET(p[1], &w);
    value("select: the write end", select(p[1] + 1, &r, &w, NULL, NULL), 1);
    value("read end not set", FD_ISSET(p[0], &r), 0);
    value("write end set", FD_ISSET(p[1], &w) != 0, 1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = {0, 20000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    value("select times out", select(p[0] + 1, &r, NULL, NULL, &tv), 0);
    value("after at least 20 ms", ms_since(&t0) >= 20, 1);
    value("and clears the set", FD_ISSET(p[0], &r), 0);
    fds[0].revents = 0x7fff;
    value("poll times out again", poll(fds, 1, 20), 0);
    value("with revents cleared", fds[0].revents, 0);
    write(p[1], "z", 1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timespec pts = {1, 0};
    value("pselect: the read end", pselect(p[0] + 1, &r, NULL, NULL, &pts, NULL), 1);
    value("read end set", FD_ISSET(p[0], &r) != 0, 1);
    FD_ZERO(&r);
    FD_SET(40, &r);
    FAILS("select on a closed fd", select(41, &r, NULL, NULL, &tv), EBADF);
    FAILS("select with nfds < 0", select(-1, NULL, NULL, NULL, &tv), EINVAL);

    /* The writer goes: POLLHUP (with the byte still there, POLLIN too). */
    close(p[1]);
    fds[0].events = POLLIN;
    value("poll after the writer closed", poll(fds, 1, 0), 1);
    value("POLLIN | POLLHUP", fds[0].revents, POLLIN | POLLHUP);
    read(p[0], &c, 1);
    poll(fds, 1, 0);
    value("then POLLHUP alone", fds[0].revents, POLLHUP);

    close(f);
    unlink("pf");
    printf("fs_poll: %d failures\n", failures);
    return failures != 0;
}
