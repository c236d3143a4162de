/* Runs our small programs one after another, as a shell script would: mkdir -p, echo into a
 * file (its standard output redirected), cat, wc, ls, rm -r. For the guest (the host's
 * programs print other formats): tests/fs.rs checks the lines. Run as `fs_tools DIR`. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs argv (argv[0] a path) with standard output to `out` if given; its exit status. */
static int run(const char *out, char *const argv[]) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (out) {
            int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0) _exit(126);
            dup2(fd, 1);
            close(fd);
        }
        char *envp[] = {NULL};
        execve(argv[0], argv, envp);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define RUN(out, ...) printf("fs_tools: %s -> %d\n", #__VA_ARGS__, run(out, (char *[]){__VA_ARGS__, NULL}))

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) != 0) return 2;
    RUN(NULL, "/bin/mkdir", "-p", "w/a/b");
    RUN(NULL, "/bin/mkdir", "w/a");
    RUN("w/a/b/greeting", "/bin/echo", "hello", "file", "system");
    RUN("w/a/two", "/bin/echo", "-n", "no newline");
    RUN(NULL, "/bin/cat", "w/a/b/greeting", "w/a/two");
    printf("\n");
    RUN(NULL, "/bin/wc", "w/a/b/greeting", "w/a/two");
    RUN(NULL, "/bin/ls", "w/a");
    RUN(NULL, "/bin/ls", "-l", "w/a/b");
    RUN(NULL, "/bin/cat", "w/missing");
    RUN(NULL, "/bin/rm", "w");
    RUN(NULL, "/bin/rm", "-r", "w");
    RUN(NULL, "/bin/ls", "-a", ".");
    RUN(NULL, "/bin/rm", "-f", "w/nothing");
    return 0;
}
