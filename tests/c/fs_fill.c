/* Fills the file system: writes a file until RAM runs out. The write must fail with ENOSPC
 * (not crash the kernel); then, with the file removed, files can be written again and a child
 * can be forked. Destructive: run only in a guest (`--memory 32`), as `fs_fill /tmp`. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char chunk[64 * 1024];

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) != 0) return 2;
    memset(chunk, 'f', sizeof chunk);
    int fd = open("big", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 3;
    long total = 0, n;
    while ((n = write(fd, chunk, sizeof chunk)) > 0) total += n;
    int e = errno;
    printf("fs_fill: wrote %ld KiB, then %s\n", total / 1024,
           n == 0 ? "0" : e == ENOSPC ? "ENOSPC" : strerror(e));
    if (n == 0 || e != ENOSPC) return 4;
    /* Out of space, the file system still answers. */
    int other = open("small", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    printf("fs_fill: another file can %sbe made\n", other >= 0 ? "" : "not ");
    close(fd);
    if (unlink("big") != 0) return 5;
    fd = open("small", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, chunk, 10000) != 10000) {
        printf("fs_fill: writing after the unlink failed: %s\n", strerror(errno));
        return 6;
    }
    close(fd);
    pid_t pid = fork();
    if (pid == 0) _exit(7);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || WEXITSTATUS(status) != 7) return 8;
    printf("fs_fill: recovered: written again, forked a child\n");
    unlink("small");
    return 0;
}
