/* The open family and I/O on files: O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_DIRECTORY,
 * O_CLOEXEC; read, write, pread, pwrite, readv, writev, lseek, ftruncate (a file grown past a
 * page and truncated back), fsync, sendfile, /dev/null, /dev/zero,
 * /dev/random and /dev/urandom, posix_fadvise, an offset shared across
 * fork. Run as `fs_open DIR` in an empty, writable directory. */
#include "fscheck.h"
#include <fcntl.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    prog_name = "fs_open";
    if (argc < 2 || chdir(argv[1]) != 0) {
        printf("fs_open: usage: fs_open DIR (an empty writable directory)\n");
        return 2;
    }
    char buf[8192];
    int fd = open("f", O_RDWR | O_CREAT | O_EXCL, 0644);
    OK("create f", fd);
    FAILS("O_EXCL on an existing file", open("f", O_RDWR | O_CREAT | O_EXCL, 0644), EEXIST);
    FAILS("O_EXCL on an existing directory", open(".", O_RDONLY | O_CREAT | O_EXCL, 0644), EEXIST);
    FAILS("open a missing file", open("missing", O_RDONLY), ENOENT);
    FAILS("open in a missing directory", open("no/f", O_RDWR | O_CREAT, 0644), ENOENT);
    FAILS("O_DIRECTORY on a file", open("f", O_RDONLY | O_DIRECTORY), ENOTDIR);
    FAILS("a file as a directory", open("f/x", O_RDONLY), ENOTDIR);
    FAILS("open a directory for writing", open(".", O_WRONLY), EISDIR);
    FAILS("O_CREAT on a directory", open(".", O_RDONLY | O_CREAT, 0644), EISDIR);
    FAILS("O_CREAT of \"name/\"", open("new/", O_RDWR | O_CREAT, 0644), EISDIR);
    FAILS("O_CREAT of \"file/\"", open("f/", O_RDWR | O_CREAT, 0644), EISDIR);
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    OK("open a directory", dfd);
    FAILS("read a directory", read(dfd, buf, 10), EISDIR);
    close(dfd);

    value("write 5", write(fd, "hello", 5), 5);
    value("lseek SEEK_CUR", lseek(fd, 0, SEEK_CUR), 5);
    value("lseek SEEK_SET", lseek(fd, 1, SEEK_SET), 1);
    value("read 10 at 1", read(fd, buf, 10), 4);
    value("read at the end", read(fd, buf, 10), 0);
    FAILS("lseek before the start", lseek(fd, -10, SEEK_SET), EINVAL);
    value("lseek SEEK_END + 3", lseek(fd, 3, SEEK_END), 8);
    value("write past the end", write(fd, "!", 1), 1);
    value("pread 16 at 0", pread(fd, buf, 16, 0), 9);
    value("the gap reads as zeros", buf[5] == 0 && buf[6] == 0 && buf[7] == 0 && buf[8] == '!', 1);
    value("pwrite at 0", pwrite(fd, "J", 1, 0), 1);
    value("pwrite leaves the offset", lseek(fd, 0, SEEK_CUR), 9);
    FAILS("pread at a negative offset", pread(fd, buf, 1, -1), EINVAL);
    value("pread after pwrite", pread(fd, buf, 5, 0) == 5 && memcmp(buf, "Jello", 5) == 0, 1);

    /* A file grown past a page and truncated back. */
    memset(buf, 'x', sizeof buf);
    value("write 8192 at 0", pwrite(fd, buf, 8192, 0), 8192);
    struct stat st;
    OK("fstat", fstat(fd, &st));
    value("size after 8 KiB", st.st_size, 8192);
    OK("ftruncate to 100", ftruncate(fd, 100));
    OK("fstat", fstat(fd, &st));
    value("size after truncating", st.st_size, 100);
    OK("ftruncate to 5000", ftruncate(fd, 5000));
    memset(buf, 1, sizeof buf);
    value("pread the regrown file", pread(fd, buf, 8192, 0), 5000);
    int zeros = 1;
    for (int i = 100; i < 5000; i++) zeros &= buf[i] == 0;
    value("regrown part is zeros", zeros && buf[99] == 'x', 1);
    FAILS("ftruncate negative", ftruncate(fd, -1), EINVAL);
    OK("fsync", fsync(fd));
    close(fd);
    int ro = open("f", O_RDONLY);
    FAILS("ftruncate read-only", ftruncate(ro, 0), EINVAL);
    FAILS("write read-only", write(ro, "x", 1), EBADF);
    close(ro);
    FAILS("close a closed descriptor", close(ro), EBADF);
    FAILS("read a closed descriptor", read(ro, buf, 1), EBADF);

    /* O_TRUNC and O_APPEND. */
    fd = open("f", O_WRONLY | O_TRUNC);
    OK("O_TRUNC", fd);
    OK("fstat", fstat(fd, &st));
    value("size after O_TRUNC", st.st_size, 0);
    close(fd);
    fd = open("f", O_WRONLY | O_APPEND);
    value("append 3", write(fd, "abc", 3), 3);
    lseek(fd, 0, SEEK_SET);
    value("append again after seeking to 0", write(fd, "def", 3), 3);
    close(fd);
    fd = open("f", O_RDONLY | O_CLOEXEC);
    value("O_CLOEXEC sets FD_CLOEXEC", fcntl(fd, F_GETFD) & FD_CLOEXEC, 1);
    value("read the appended file", read(fd, buf, 100), 6);
    value("appended in order", memcmp(buf, "abcdef", 6) == 0, 1);

    /* readv and writev. */
    lseek(fd, 0, SEEK_SET);
    char a[2], b[10];
    struct iovec iov[2] = {{a, 2}, {b, 10}};
    value("readv", readv(fd, iov, 2), 6);
    value("readv split", a[0] == 'a' && b[0] == 'c' && b[3] == 'f', 1);
    close(fd);
    fd = open("g", O_RDWR | O_CREAT | O_TRUNC, 0600);
    struct iovec wv[3] = {{"one ", 4}, {"", 0}, {"two", 3}};
    value("writev", writev(fd, wv, 3), 7);
    value("pread writev's bytes", pread(fd, buf, 20, 0) == 7 && memcmp(buf, "one two", 7) == 0, 1);

    /* A descriptor inherited across fork shares its offset. */
    lseek(fd, 0, SEEK_SET);
    pid_t pid = fork();
    if (pid == 0) {
        read(fd, buf, 4);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    value("the child's read moved our offset", lseek(fd, 0, SEEK_CUR), 4);

    /* sendfile to another file, with and without an offset pointer. */
    int out = open("h", O_RDWR | O_CREAT | O_TRUNC, 0600);
    value("sendfile the rest", sendfile(out, fd, NULL, 100), 3);
    value("sendfile moved the offset", lseek(fd, 0, SEEK_CUR), 7);
    off_t off = 0;
    value("sendfile from offset 0", sendfile(out, fd, &off, 4), 4);
    value("the offset pointer moved", off, 4);
    value("the file's own offset did not", lseek(fd, 0, SEEK_CUR), 7);
    value("h has both parts", pread(out, buf, 20, 0) == 7 && memcmp(buf, "twoone ", 7) == 0, 1);
    close(out);
    close(fd);

    /* Devices. */
    int null = open("/dev/null", O_RDWR);
    OK("open /dev/null", null);
    value("write /dev/null", write(null, "gone", 4), 4);
    value("read /dev/null", read(null, buf, 10), 0);
    close(null);
    int zero = open("/dev/zero", O_RDONLY);
    memset(buf, 7, 100);
    value("read /dev/zero", read(zero, buf, 100), 100);
    value("zeros from /dev/zero", buf[0] == 0 && buf[99] == 0, 1);
    close(zero);
    for (int i = 0; i < 2; i++) {
        const char *name = i ? "/dev/urandom" : "/dev/random";
        int r = open(name, O_RDWR);
        OK(name, r);
        struct stat st;
        value("a random device is a char device 1:8 or 1:9",
              fstat(r, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 &&
                  minor(st.st_rdev) == (unsigned)(8 + i), 1);
        unsigned char a[64], b[64];
        value("read 64 random bytes", read(r, a, sizeof a), 64);
        value("and 64 more", read(r, b, sizeof b), 64);
        value("the two reads differ", memcmp(a, b, sizeof a) != 0, 1);
        value("write to a random device", write(r, "seed", 4), 4);
        FAILS("read into a bad pointer", read(r, (void *)8, 16), EFAULT);
        close(r);
    }
    int p[2];
    pipe(p);
    FAILS("lseek on a pipe", lseek(p[0], 0, SEEK_SET), ESPIPE);
    FAILS("pread on a pipe", pread(p[0], buf, 1, 0), ESPIPE);

    unlink("f");
    unlink("g");
    unlink("h");
    printf("fs_open: %d failures\n", failures);
    {
        /* posix_fadvise (fadvise64): advice taken on a file, ESPIPE on a pipe, EINVAL for an
         * unknown advice, EBADF for no descriptor (it returns the error, errno untouched). */
        int f = open("adv.txt", O_RDWR | O_CREAT, 0644);
        int pp[2];
        OK("pipe for fadvise", pipe(pp));
        value("posix_fadvise SEQUENTIAL on a file", posix_fadvise(f, 0, 0, POSIX_FADV_SEQUENTIAL), 0);
        value("posix_fadvise on a pipe is ESPIPE", posix_fadvise(pp[0], 0, 0, POSIX_FADV_NORMAL) == ESPIPE, 1);
        value("an unknown advice is EINVAL", posix_fadvise(f, 0, 0, 77) == EINVAL, 1);
        value("no descriptor is EBADF", posix_fadvise(987, 0, 0, POSIX_FADV_NORMAL) == EBADF, 1);
        close(pp[0]);
        close(pp[1]);
        close(f);
        unlink("adv.txt");
    }
    return failures != 0;
}
