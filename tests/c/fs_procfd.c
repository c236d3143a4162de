/* /proc/self/fd: a link per open descriptor, named by its number, to what it is open on. A
 * file's path, both ends of a pipe as the same "pipe:[N]" (N the st_ino fstat gives), a
 * device's path, and no link once the descriptor is closed; opening a pipe end's link gives
 * that pipe, stat through it says FIFO, and /dev/stdout is descriptor 1. Only what does not
 * depend on the
 * machine is printed, so the host and the guest print the same lines. Run as `fs_procfd DIR`
 * in an empty, writable directory. */
#define _GNU_SOURCE
#include "fscheck.h"
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* readlink of /proc/self/fd/FD as a string ("" on failure, errno kept). */
static const char *link_of(int fd) {
    static char buf[512];
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    long n = readlink(path, buf, sizeof buf - 1);
    buf[n < 0 ? 0 : n] = 0;
    return buf;
}

static int ends_with(const char *s, const char *end) {
    size_t a = strlen(s), b = strlen(end);
    return a >= b && strcmp(s + a - b, end) == 0;
}

int main(int argc, char **argv) {
    prog_name = "fs_procfd";
    if (argc < 2 || chdir(argv[1]) != 0) {
        printf("fs_procfd: usage: fs_procfd DIR (an empty writable directory)\n");
        return 2;
    }
    char dir[256];
    if (!getcwd(dir, sizeof dir))
        return 2;
    int fd = open("notes.txt", O_RDWR | O_CREAT, 0644);
    OK("create notes.txt", fd);
    char want[300];
    snprintf(want, sizeof want, "%s/notes.txt", dir);
    value("its link names the file", strcmp(link_of(fd), want) == 0, 1);

    int p[2];
    OK("pipe", pipe(p));
    struct stat st;
    fstat(p[0], &st);
    char pipe_name[64];
    snprintf(pipe_name, sizeof pipe_name, "pipe:[%lu]", (unsigned long)st.st_ino);
    value("a pipe's read end is pipe:[its st_ino]", strcmp(link_of(p[0]), pipe_name) == 0, 1);
    value("its write end the same pipe", strcmp(link_of(p[1]), pipe_name) == 0, 1);

    struct stat lst;
    char pipe_path[64];
    snprintf(pipe_path, sizeof pipe_path, "/proc/self/fd/%d", p[1]);
    OK("stat through a pipe end's link", stat(pipe_path, &st));
    value("says FIFO", S_ISFIFO(st.st_mode), 1);
    int w = open(pipe_path, O_WRONLY);
    OK("open a pipe end's link", w);
    value("write through it", write(w, "via link", 8), 8);
    char got[16] = { 0 };
    value("the pipe's reader gets it", read(p[0], got, sizeof got) == 8 && memcmp(got, "via link", 8) == 0, 1);
    close(w);
    value("/dev/stdout is a link", lstat("/dev/stdout", &lst) == 0 && S_ISLNK(lst.st_mode), 1);
    int out = open("/dev/stdout", O_WRONLY);
    OK("open /dev/stdout", out);
    struct stat one;
    fstat(1, &one);
    fstat(out, &st);
    value("the same file as descriptor 1", st.st_ino == one.st_ino && st.st_dev == one.st_dev, 1);
    close(out);

    int null = open("/dev/null", O_WRONLY);
    value("/dev/null", strcmp(link_of(null), "/dev/null") == 0, 1);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    OK("lstat the link", lstat(path, &lst));
    value("it is a symbolic link", S_ISLNK(lst.st_mode), 1);
    OK("stat through it", stat(path, &st));
    value("to a regular file", S_ISREG(st.st_mode), 1);

    OK("close the file", close(fd));
    errno = 0;
    link_of(fd);
    FAILS("its link is gone", errno ? -1 : 0, ENOENT);
    OK("rename it", rename("notes.txt", "moved.txt"));
    fd = open("moved.txt", O_RDONLY);
    value("a new descriptor's link names the new path", ends_with(link_of(fd), "/moved.txt"), 1);
    close(fd);
    unlink("moved.txt");
    close(p[0]);
    close(p[1]);
    close(null);
    return failures != 0;
}
