/* Symbolic links: symlink and symlinkat, readlink, lstat against stat, paths through links
 * (relative targets from the link's directory, links to directories, `..` in a target), a link
 * to nothing, loops (ELOOP) and O_NOFOLLOW, what unlink, rename, rmdir, mkdir and chdir do with
 * a link, O_CREAT through a link to nothing, getdents' DT_LNK; hard links (link, linkat). Run as `fs_links DIR` in an
 * empty, writable directory. */
#define _GNU_SOURCE
#include "fscheck.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* readlink's answer as a string ("" on failure). */
static const char *target(const char *path) {
    static char buf[256];
    long n = readlink(path, buf, sizeof buf - 1);
    buf[n < 0 ? 0 : n] = 0;
    return buf;
}

/* The d_type getdents64 gives `name` in the working directory (-1: not listed). */
static int dtype_of(const char *name) {
    DIR *d = opendir(".");
    int t = -1;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, name) == 0)
            t = e->d_type;
    if (d)
        closedir(d);
    return t;
}

int main(int argc, char **argv) {
    prog_name = "fs_links";
    if (argc < 2 || chdir(argv[1]) != 0) {
        printf("fs_links: usage: fs_links DIR (an empty writable directory)\n");
        return 2;
    }
    struct stat st;
    char buf[64];
    OK("mkdir d", mkdir("d", 0755));
    int fd = open("d/x", O_RDWR | O_CREAT, 0644);
    OK("create d/x", fd);
    value("write d/x", write(fd, "hello", 5), 5);
    close(fd);

    OK("symlink to a relative path", symlink("d/x", "rel"));
    value("readlink gives the target as written", strcmp(target("rel"), "d/x"), 0);
    value("readlink truncates, no NUL", readlink("rel", buf, 2) == 2 && memcmp(buf, "d/", 2) == 0, 1);
    OK("lstat the link", lstat("rel", &st));
    value("it is a link", S_ISLNK(st.st_mode), 1);
    value("its size is the target's length", st.st_size, 3);
    OK("stat follows it", stat("rel", &st));
    value("to the file", S_ISREG(st.st_mode) && st.st_size == 5, 1);
    fd = open("rel", O_RDONLY);
    OK("open through the link", fd);
    value("reads the file", read(fd, buf, sizeof buf), 5);
    close(fd);

    OK("symlinkat to a directory", syscall(SYS_symlinkat, "d", AT_FDCWD, "dl"));
    OK("a path through it", stat("dl/x", &st));
    value("is the file", S_ISREG(st.st_mode), 1);
    OK("a link inside d, to ..", symlink("..", "d/up"));
    OK("relative to the link's directory", stat("d/up/d/up/rel", &st));
    value("still the file", S_ISREG(st.st_mode) && st.st_size == 5, 1);
    OK("dl/ (a trailing slash) is the directory", lstat("dl/", &st));
    value("lstat of dl/ follows", S_ISDIR(st.st_mode), 1);
    FAILS("rel/ is not a directory", stat("rel/", &st), ENOTDIR);
    value("getdents says DT_LNK", dtype_of("dl"), DT_LNK);

    OK("a link to nothing", symlink("nowhere", "dangling"));
    FAILS("stat it", stat("dangling", &st), ENOENT);
    OK("lstat it", lstat("dangling", &st));
    FAILS("open it", open("dangling", O_RDONLY), ENOENT);
    fd = open("dangling", O_WRONLY | O_CREAT, 0644);
    OK("O_CREAT through it makes what it names", fd);
    close(fd);
    OK("which is there", lstat("nowhere", &st));
    value("a file", S_ISREG(st.st_mode), 1);
    FAILS("O_CREAT|O_EXCL on a link", open("dangling", O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);

    OK("a loop, a", symlink("b", "a"));
    OK("a loop, b", symlink("a", "b"));
    FAILS("stat in a loop", stat("a", &st), ELOOP);
    FAILS("a path through a loop", stat("a/x", &st), ELOOP);
    FAILS("O_NOFOLLOW on a link", open("rel", O_RDONLY | O_NOFOLLOW), ELOOP);
    fd = open("d/x", O_RDONLY | O_NOFOLLOW);
    OK("O_NOFOLLOW on a file", fd);
    close(fd);

    FAILS("symlink over a name", symlink("x", "rel"), EEXIST);
    FAILS("symlink with an empty target", symlink("", "empty"), ENOENT);
    FAILS("symlink in a missing directory", symlink("x", "no/l"), ENOENT);
    FAILS("readlink of a file", readlink("d/x", buf, sizeof buf), EINVAL);
    FAILS("mkdir over a link", mkdir("dl", 0755), EEXIST);
    FAILS("rmdir a link to a directory", rmdir("dl"), ENOTDIR);
    OK("chdir through a link", chdir("dl"));
    OK("lands in d", stat("x", &st));
    OK("chdir back", chdir(".."));
    OK("rename a link", rename("rel", "rel2"));
    value("it keeps its target", strcmp(target("rel2"), "d/x"), 0);
    OK("unlink the link", unlink("rel2"));
    OK("leaves the file", stat("d/x", &st));

    /* Hard links: more names for one file. */
    struct stat a, b;
    OK("link", link("d/x", "h"));
    OK("stat the file", stat("d/x", &a));
    OK("stat the new name", stat("h", &b));
    value("the same inode", a.st_ino == b.st_ino, 1);
    value("two links", b.st_nlink, 2);
    fd = open("h", O_WRONLY | O_APPEND);
    value("a write through one name", write(fd, "!", 1), 1);
    close(fd);
    OK("stat", stat("d/x", &a));
    value("shows through the other", a.st_size, 6);
    OK("unlink the first name", unlink("d/x"));
    OK("the file lives on", stat("h", &b));
    value("with one link", b.st_nlink, 1);
    FAILS("link a directory", link("d", "d2"), EPERM);
    FAILS("link over a name", link("h", "dl"), EEXIST);
    FAILS("link a missing file", link("missing", "m"), ENOENT);
    FAILS("link into a missing directory", link("h", "no/h"), ENOENT);
    OK("link a symbolic link: the link itself", link("dl", "dl2"));
    OK("lstat it", lstat("dl2", &st));
    value("a link", S_ISLNK(st.st_mode), 1);
    FAILS("linkat AT_SYMLINK_FOLLOW to a directory", linkat(AT_FDCWD, "dl", AT_FDCWD, "dd", AT_SYMLINK_FOLLOW), EPERM);
    OK("a symbolic link to h", symlink("h", "hs"));
    OK("linkat AT_SYMLINK_FOLLOW: what it names", linkat(AT_FDCWD, "hs", AT_FDCWD, "hf", AT_SYMLINK_FOLLOW));
    OK("stat hf", lstat("hf", &a));
    OK("stat h", stat("h", &b));
    value("hf is h", a.st_ino == b.st_ino && S_ISREG(a.st_mode), 1);
    unlink("hs");
    unlink("hf");
    OK("rename onto another name of itself: nothing", rename("h", "h"));
    OK("link h2", link("h", "h2"));
    OK("rename h onto h2 (the same file)", rename("h", "h2"));
    value("both names stay", access("h", F_OK) == 0 && access("h2", F_OK) == 0, 1);
    unlink("h");
    unlink("h2");
    unlink("dl2");

    unlink("dl");
    unlink("d/up");
    unlink("dangling");
    unlink("nowhere");
    unlink("a");
    unlink("b");
    rmdir("d");
    printf("fs_links: %d failures\n", failures);
    return failures != 0;
}
