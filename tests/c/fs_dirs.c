/* Directories and names: mkdir, rmdir (a non-empty one), unlink, rename and renameat2,
 * getdents64, chdir, fchdir and getcwd with relative paths and `..` at the root, the *at calls
 * with a dirfd, many files, a name of 255 bytes and one of 256, a path too long, a bad path
 * pointer. Run as `fs_dirs DIR` in an empty, writable directory. */
#define _GNU_SOURCE
#include "fscheck.h"
#include <dirent.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif

static long renameat2_(int od, const char *o, int nd, const char *n, unsigned flags) {
    return syscall(SYS_renameat2, od, o, nd, n, flags);
}

static void *chdir_thread(void *dir) {
    return (void *)(long)chdir(dir);
}

static int touch(const char *p) {
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) close(fd);
    return fd < 0 ? -1 : 0;
}

/* Entries of `path` other than . and .., by getdents64 (through readdir). */
static int count_entries(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    prog_name = "fs_dirs";
    if (argc < 2 || chdir(argv[1]) != 0) {
        printf("fs_dirs: usage: fs_dirs DIR (an empty writable directory)\n");
        return 2;
    }
    char top[4096];
    if (!getcwd(top, sizeof top)) return 2;

    OK("mkdir d", mkdir("d", 0755));
    FAILS("mkdir an existing directory", mkdir("d", 0755), EEXIST);
    FAILS("mkdir in a missing directory", mkdir("no/d", 0755), ENOENT);
    FAILS("mkdir .", mkdir(".", 0755), EEXIST);
    OK("mkdir d/sub/ (a trailing slash)", mkdir("d/sub/", 0755));
    OK("a file in d", touch("d/f"));
    FAILS("rmdir a non-empty directory", rmdir("d"), ENOTEMPTY);
    FAILS("rmdir a file", rmdir("d/f"), ENOTDIR);
    FAILS("rmdir .", rmdir("d/."), EINVAL);
    FAILS("rmdir ..", rmdir("d/sub/.."), ENOTEMPTY);
    FAILS("unlink a directory", unlink("d/sub"), EISDIR);
    FAILS("unlink a missing file", unlink("d/nope"), ENOENT);
    FAILS("a file with a trailing slash", open("d/f/", O_RDONLY), ENOTDIR);
    value("entries of d", count_entries("d"), 2);

    /* Relative paths, chdir, getcwd, `..` at the root. */
    OK("chdir d/sub", chdir("d/sub"));
    OK("open ../f", open("../f", O_RDONLY));
    OK("chdir ../..", chdir("../.."));
    char cwd[4096];
    value("back where we were", getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, top) == 0, 1);
    FAILS("getcwd into too small a buffer", (long)getcwd(cwd, 2) - 1, ERANGE);
    int here = open(".", O_RDONLY | O_DIRECTORY);
    OK("chdir /", chdir("/"));
    OK("chdir ../../..", chdir("../../.."));
    value("`..` at the root is the root", getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, "/") == 0, 1);
    OK("fchdir back", fchdir(here));
    value("fchdir went back", getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, top) == 0, 1);
    /* Threads share the working directory: one's chdir moves them all. */
    pthread_t th;
    void *r = (void *)-1L;
    if (pthread_create(&th, NULL, chdir_thread, "d") == 0) pthread_join(th, &r);
    value("a thread's chdir", (long)r, 0);
    value("moved this thread too", getcwd(cwd, sizeof cwd) != NULL && strlen(cwd) > 2 &&
                                       strcmp(cwd + strlen(cwd) - 2, "/d") == 0, 1);
    OK("chdir back", chdir(".."));
    FAILS("chdir to a file", chdir("d/f"), ENOTDIR);
    FAILS("chdir to nothing", chdir("nothing"), ENOENT);
    FAILS("chdir with an empty path", chdir(""), ENOENT);

    /* The *at calls, relative to a directory descriptor. */
    int dfd = open("d", O_RDONLY | O_DIRECTORY);
    OK("mkdirat", mkdirat(dfd, "viafd", 0700));
    int fd = openat(dfd, "viafd/x", O_WRONLY | O_CREAT, 0600);
    OK("openat", fd);
    close(fd);
    struct stat st;
    OK("stat what openat made", stat("d/viafd/x", &st));
    FAILS("unlinkat a directory without AT_REMOVEDIR", unlinkat(dfd, "viafd", 0), EISDIR);
    OK("unlinkat a file", unlinkat(dfd, "viafd/x", 0));
    OK("unlinkat AT_REMOVEDIR", unlinkat(dfd, "viafd", AT_REMOVEDIR));
    FAILS("unlinkat bad flags", unlinkat(dfd, "f", 0x4000), EINVAL);
    int file = open("d/f", O_RDONLY);
    FAILS("openat with a file as dirfd", openat(file, "x", O_RDONLY), ENOTDIR);
    FAILS("openat with a bad dirfd", openat(999, "x", O_RDONLY), EBADF);
    OK("an absolute path ignores a bad dirfd", openat(999, top, O_RDONLY));
    close(file);

    /* rename. */
    OK("touch a", touch("a"));
    OK("touch b", touch("b"));
    OK("rename a over b", rename("a", "b"));
    FAILS("the old name is gone", access("a", F_OK), ENOENT);
    OK("rename b into d", rename("b", "d/b"));
    FAILS("rename a file over a directory", rename("d/b", "d/sub"), EISDIR);
    FAILS("rename a directory over a file", rename("d/sub", "d/b"), ENOTDIR);
    FAILS("rename a directory into itself", rename("d", "d/sub/d"), EINVAL);
    OK("mkdir e", mkdir("e", 0755));
    FAILS("rename over a non-empty directory", rename("e", "d"), ENOTEMPTY);
    OK("rename a directory over an empty one", rename("d/sub", "e"));
    FAILS("rename a missing file", rename("missing", "x"), ENOENT);
    FAILS("rename .", rename(".", "x"), EBUSY);
    OK("rename to itself", rename("d/b", "d/b"));
    FAILS("RENAME_NOREPLACE over a file", renameat2_(AT_FDCWD, "d/f", AT_FDCWD, "d/b", RENAME_NOREPLACE), EEXIST);
    OK("RENAME_EXCHANGE", renameat2_(AT_FDCWD, "d", AT_FDCWD, "e", RENAME_EXCHANGE));
    OK("the exchange swapped them", access("e/f", F_OK));
    FAILS("RENAME_EXCHANGE with nothing there", renameat2_(AT_FDCWD, "e", AT_FDCWD, "zz", RENAME_EXCHANGE), ENOENT);
    FAILS("renameat2 bad flags", renameat2_(AT_FDCWD, "e", AT_FDCWD, "zz", 3), EINVAL);
    FAILS("renameat ..", renameat(dfd, "..", AT_FDCWD, "moved"), EBUSY);
    OK("renameat", renameat(dfd, "b", AT_FDCWD, "moved"));
    OK("and back", renameat(AT_FDCWD, "moved", dfd, "b"));

    /* Many files. */
    OK("mkdir many", mkdir("many", 0755));
    char name[300];
    int made = 0;
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "many/file-%03d", i);
        made += touch(name) == 0;
    }
    value("made 300 files", made, 300);
    value("listed 300 files", count_entries("many"), 300);
    OK("stat one of them", stat("many/file-150", &st));
    /* Removing while listing skips nothing. */
    DIR *dir = opendir("many");
    struct dirent *e;
    int removed = 0;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.') continue;
        snprintf(name, sizeof name, "many/%s", e->d_name);
        removed += unlink(name) == 0;
    }
    closedir(dir);
    value("removed all while listing", removed, 300);
    OK("rmdir many", rmdir("many"));

    /* Names of 255 and 256 bytes, a path too long, a bad pointer. */
    memset(name, 'n', 255);
    name[255] = 0;
    OK("a name of 255 bytes", touch(name));
    OK("stat it", stat(name, &st));
    OK("unlink it", unlink(name));
    memset(name, 'n', 256);
    name[256] = 0;
    FAILS("a name of 256 bytes", open(name, O_WRONLY | O_CREAT, 0644), ENAMETOOLONG);
    FAILS("mkdir a name of 256 bytes", mkdir(name, 0755), ENAMETOOLONG);
    char *longpath = malloc(5000);
    for (int i = 0; i < 4999; i++) longpath[i] = i % 2 ? '/' : 'a';
    longpath[4999] = 0;
    FAILS("a path of 4999 bytes", open(longpath, O_RDONLY), ENAMETOOLONG);
    FAILS("a bad path pointer", open((const char *)16, O_RDONLY), EFAULT);
    FAILS("mkdir through a bad pointer", mkdir((const char *)-4096L, 0755), EFAULT);

    /* Clean up: what is left is e/{f,b} and d (the exchanged empty one). */
    unlink("e/f");
    unlink("e/b");
    OK("rmdir e", rmdir("e"));
    OK("rmdir d", rmdir("d"));
    value("the directory is empty again", count_entries("."), 0);
    printf("fs_dirs: %d failures\n", failures);
    return failures != 0;
}
