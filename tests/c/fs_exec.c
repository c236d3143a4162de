/* execve through the file tree: a `#!` script (its interpreter gets the script's path and the
 * arguments), a path relative to the working directory, a copy of this program written to a
 * new file, and the errors: a directory or a file without an x bit (EACCES), neither ELF nor
 * `#!` (ENOEXEC), a missing file (ENOENT). Needs /bin/echo (the host's, or ours in the guest).
 * Run as `fs_exec DIR`; it runs itself as `fs_exec --child ARG` for the copied program. */
#include "fscheck.h"
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *envp[] = {"PATH=/bin", NULL};

/* Runs `path` with `argv` in a child and returns its exit status, or -errno if execve failed
 * (the child reports its errno through a pipe). */
static int run(const char *path, char *const argv[]) {
    int p[2];
    pipe(p);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        fcntl(p[1], F_SETFD, FD_CLOEXEC);
        execve(path, argv, envp);
        int e = errno;
        write(p[1], &e, sizeof e);
        _exit(127);
    }
    close(p[1]);
    int e = 0;
    int n = read(p[0], &e, sizeof e);
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    if (n == sizeof e) {
        errno = e;
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int write_file(const char *path, const char *text, int mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0) return -1;
    write(fd, text, strlen(text));
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    prog_name = "fs_exec";
    if (argc >= 3 && strcmp(argv[1], "--child") == 0) {
        printf("fs_exec: the copy runs, with %s\n", argv[2]);
        return 42;
    }
    if (argc < 2 || chdir(argv[1]) != 0) {
        printf("fs_exec: usage: fs_exec DIR (an empty writable directory)\n");
        return 2;
    }
    OK("write a #! script", write_file("s.sh", "#!/bin/echo from-script\nignored\n", 0755));
    char *sargv[] = {"s.sh", "a", "b", NULL};
    value("run ./s.sh a b (echo prints the line)", run("./s.sh", sargv), 0);
    OK("write a script without an argument", write_file("t.sh", "#!  /bin/echo\n", 0755));
    char *targv[] = {"t.sh", "only", NULL};
    value("run ./t.sh only", run("./t.sh", targv), 0);
    OK("write a script with a missing interpreter", write_file("u.sh", "#!/no/such\n", 0755));
    FAILS("its interpreter is missing", run("./u.sh", sargv), ENOENT);
    OK("write a script that is not executable", write_file("n.sh", "#!/bin/echo\n", 0644));
    FAILS("exec without an x bit", run("./n.sh", sargv), EACCES);
    OK("write text", write_file("text", "just words\n", 0755));
    FAILS("exec text", run("./text", sargv), ENOEXEC);
    FAILS("exec a directory", run(".", sargv), EACCES);
    FAILS("exec a missing file", run("./missing", sargv), ENOENT);
    FAILS("exec through a file", run("./text/x", sargv), ENOTDIR);

    /* A copy of this program, written to a new file, runs. */
    int in = open("/proc/self/exe", O_RDONLY);
    OK("open /proc/self/exe", in);
    int out = open("copy", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    char buf[4096];
    long n, total = 0;
    while ((n = read(in, buf, sizeof buf)) > 0) total += write(out, buf, n);
    close(in);
    close(out);
    value("copied something", total > 10000, 1);
    char *cargv[] = {"copy", "--child", "arg1", NULL};
    value("the copy exits 42", run("copy", cargv), 42);

    unlink("s.sh");
    unlink("t.sh");
    unlink("u.sh");
    unlink("n.sh");
    unlink("text");
    unlink("copy");
    printf("fs_exec: %d failures\n", failures);
    return failures != 0;
}
