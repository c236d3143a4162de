/* What a file is: stat, fstat, lstat, fstatat (AT_EMPTY_PATH), statx; access and faccessat;
 * chmod, fchmod and the umask; readlink and /proc/self/exe; utimensat, futimens, utimes and
 * utime; chown and its kin (to root); statfs and fstatfs. Run as `fs_stat DIR` in an empty,
 * writable directory. */
#define _GNU_SOURCE
#include "fscheck.h"
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <time.h>
#include <utime.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* struct statx's start (this musl's headers do not have it): the fields checked here. */
struct statx_head {
    unsigned stx_mask, stx_blksize;
    unsigned long long stx_attributes;
    unsigned stx_nlink, stx_uid, stx_gid;
    unsigned short stx_mode, pad;
    unsigned long long stx_ino, stx_size, stx_blocks, stx_attributes_mask;
    unsigned char rest[256 - 64];
};
#define STATX_BASIC_STATS_ 0x7ffu

int main(int argc, char **argv) {
    prog_name = "fs_stat";
    if (argc < 2 || chdir(argv[1]) != 0) {
        printf("fs_stat: usage: fs_stat DIR (an empty writable directory)\n");
        return 2;
    }
    struct stat st;
    value("umask starts at 022", umask(022), 022);
    int fd = open("f", O_RDWR | O_CREAT | O_EXCL, 0777);
    OK("create f with 0777", fd);
    write(fd, "12345", 5);
    OK("fstat", fstat(fd, &st));
    value("regular file", S_ISREG(st.st_mode), 1);
    value("mode 0777 & ~022", st.st_mode & 07777, 0755);
    value("size", st.st_size, 5);
    value("one link", st.st_nlink, 1);
    ino_t ino = st.st_ino;
    OK("stat", stat("f", &st));
    value("stat and fstat agree", st.st_ino == ino && st.st_size == 5, 1);
    OK("lstat", lstat("f", &st));
    value("lstat of a file is the file", st.st_ino == ino, 1);
    OK("fstatat AT_EMPTY_PATH", fstatat(fd, "", &st, AT_EMPTY_PATH));
    value("the descriptor's own", st.st_ino == ino, 1);
    FAILS("fstatat an empty path", fstatat(fd, "", &st, 0), ENOENT);
    FAILS("fstatat bad flags", fstatat(AT_FDCWD, "f", &st, 0x4), EINVAL);
    FAILS("stat a missing file", stat("missing", &st), ENOENT);
    FAILS("stat through a file", stat("f/x", &st), ENOTDIR);
    FAILS("fstat a bad descriptor", fstat(77, &st), EBADF);
    FAILS("stat into a bad buffer", syscall(SYS_stat, "f", 8L), EFAULT);

    struct statx_head sx;
    OK("statx", syscall(SYS_statx, AT_FDCWD, "f", 0, STATX_BASIC_STATS_, &sx));
    value("statx size", sx.stx_size, 5);
    value("statx mode", sx.stx_mode & 07777, 0755);
    value("statx ino is stat's", sx.stx_ino == ino, 1);
    value("statx has the basic fields", (sx.stx_mask & STATX_BASIC_STATS_) == STATX_BASIC_STATS_, 1);
    FAILS("statx reserved mask bit", syscall(SYS_statx, AT_FDCWD, "f", 0, 0x80000000u, &sx), EINVAL);

    mkdir("d", 0700);
    OK("stat a directory", stat("d", &st));
    value("directory", S_ISDIR(st.st_mode), 1);
    value("directory mode", st.st_mode & 07777, 0700);
    value("an empty directory has two links", st.st_nlink, 2);
    mkdir("d/sub", 0755);
    stat("d", &st);
    value("a subdirectory adds a link", st.st_nlink, 3);
    OK("stat /dev/null", stat("/dev/null", &st));
    value("/dev/null is a character device", S_ISCHR(st.st_mode), 1);
    value("/dev/null is 1,3", major(st.st_rdev) * 1000 + minor(st.st_rdev), 1003);

    /* chmod, fchmod. */
    OK("chmod 0600", chmod("f", 0600));
    stat("f", &st);
    value("chmod kept", st.st_mode & 07777, 0600);
    OK("fchmod 04711", fchmod(fd, 04711));
    fstat(fd, &st);
    value("fchmod kept", st.st_mode & 07777, 04711);
    FAILS("chmod a missing file", chmod("missing", 0600), ENOENT);
    umask(077);
    int g = open("g", O_WRONLY | O_CREAT, 0666);
    fstat(g, &st);
    value("umask 077 applies", st.st_mode & 07777, 0600);
    value("umask returns the old mask", umask(022), 077);
    close(g);

    /* access. */
    OK("access F_OK", access("f", F_OK));
    OK("access R_OK|W_OK", access("f", R_OK | W_OK));
    OK("access X_OK with an x bit", access("f", X_OK));
    FAILS("access X_OK without one", access("g", X_OK), EACCES);
    OK("access X_OK on a directory", access("d", X_OK));
    FAILS("access a missing file", access("missing", F_OK), ENOENT);
    FAILS("access bad mode", access("f", 8), EINVAL);
    OK("faccessat", faccessat(AT_FDCWD, "f", R_OK, 0));
    FAILS("faccessat bad flags", syscall(SYS_faccessat2, AT_FDCWD, "f", R_OK, 0x1), EINVAL);

    /* readlink. */
    char buf[4096];
    FAILS("readlink a file", readlink("f", buf, sizeof buf), EINVAL);
    FAILS("readlink a missing file", readlink("missing", buf, sizeof buf), ENOENT);
    long n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    OK("readlink /proc/self/exe", n);
    if (n > 0) {
        buf[n] = 0;
        const char *base = strrchr(buf, '/');
        value("it names this program", buf[0] == '/' && base && strcmp(base, "/fs_stat") == 0, 1);
    }
    value("readlink truncates to the buffer", readlink("/proc/self/exe", buf, 3), 3);
    FAILS("readlink with size 0", syscall(SYS_readlink, "/proc/self/exe", buf, 0L), EINVAL);
    OK("stat /proc/self/exe follows it", stat("/proc/self/exe", &st));
    value("to a regular file", S_ISREG(st.st_mode), 1);
    OK("lstat /proc/self/exe", lstat("/proc/self/exe", &st));
    value("is a link", S_ISLNK(st.st_mode), 1);

    /* Setting times: utimensat, futimens, utimes, utime. */
    struct timespec ts[2] = {{1000000000, 5}, {1500000000, 7}};
    OK("utimensat both times", utimensat(AT_FDCWD, "f", ts, 0));
    OK("stat after it", stat("f", &st));
    value("atime set to the nanosecond", st.st_atim.tv_sec == 1000000000 && st.st_atim.tv_nsec == 5, 1);
    value("mtime set to the nanosecond", st.st_mtim.tv_sec == 1500000000 && st.st_mtim.tv_nsec == 7, 1);
    value("ctime is now", labs((long)(st.st_ctime - time(NULL))) <= 5, 1);
    struct timespec omit_a[2] = {{0, UTIME_OMIT}, {1900000000, 0}};
    OK("utimensat UTIME_OMIT and a time ahead", utimensat(AT_FDCWD, "f", omit_a, 0));
    OK("stat", stat("f", &st));
    value("atime kept", st.st_atim.tv_sec == 1000000000 && st.st_atim.tv_nsec == 5, 1);
    value("mtime in 2030", st.st_mtim.tv_sec == 1900000000, 1);
    struct timespec now_m[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    OK("utimensat UTIME_NOW", utimensat(AT_FDCWD, "f", now_m, 0));
    OK("stat", stat("f", &st));
    value("mtime is now", labs((long)(st.st_mtime - time(NULL))) <= 5, 1);
    OK("futimens, no times: now", futimens(fd, NULL));
    OK("fstat", fstat(fd, &st));
    value("atime is now too", labs((long)(st.st_atime - time(NULL))) <= 5, 1);
    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    FAILS("utimensat nanoseconds out of range", utimensat(AT_FDCWD, "f", bad, 0), EINVAL);
    FAILS("utimensat bad flags", utimensat(AT_FDCWD, "f", NULL, 0x4), EINVAL);
    FAILS("utimensat a missing file", utimensat(AT_FDCWD, "missing", NULL, 0), ENOENT);
    FAILS("utimensat a bad times pointer", syscall(SYS_utimensat, AT_FDCWD, "f", 8L, 0), EFAULT);
    FAILS("utimensat AT_FDCWD with a null path",
          syscall(SYS_utimensat, AT_FDCWD, NULL, NULL, 0), EFAULT);
    struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    OK("both omitted: done without a lookup", utimensat(AT_FDCWD, "missing", omit, 0));
    OK("utimensat a directory", utimensat(AT_FDCWD, "d", ts, 0));
    struct timeval tv[2] = {{2000000000, 3}, {2000000001, 4}};
    OK("utimes", utimes("f", tv));
    OK("stat", stat("f", &st));
    value("utimes' microseconds", st.st_atim.tv_nsec == 3000 && st.st_mtim.tv_sec == 2000000001 &&
          st.st_mtim.tv_nsec == 4000, 1);
    struct timeval badtv[2] = {{0, 1000000}, {0, 0}};
    FAILS("utimes microseconds out of range", utimes("f", badtv), EINVAL);
    struct utimbuf ub = {1234567890, 1234567891};
    OK("utime", utime("f", &ub));
    OK("stat", stat("f", &st));
    value("utime's seconds", st.st_atime == 1234567890 && st.st_mtime == 1234567891 &&
          st.st_mtim.tv_nsec == 0, 1);

    /* Owners: root's is the one there is. */
    OK("chown to root", chown("f", 0, 0));
    OK("chown leaving both", chown("f", -1, -1));
    OK("fchown", fchown(fd, 0, -1));
    OK("lchown", lchown("f", 0, 0));
    OK("fchownat AT_EMPTY_PATH", fchownat(fd, "", 0, 0, AT_EMPTY_PATH));
    FAILS("chown a missing file", chown("missing", 0, 0), ENOENT);
    OK("stat still root's", stat("f", &st));
    value("uid and gid", st.st_uid == 0 && st.st_gid == 0, 1);

    /* The file system. */
    struct statfs sfs;
    OK("statfs", statfs(".", &sfs));
    value("names of up to 255 bytes", sfs.f_namelen, 255);
    value("some blocks free", sfs.f_bfree > 0 && sfs.f_bfree <= sfs.f_blocks, 1);
    OK("fstatfs", fstatfs(fd, &sfs));
    FAILS("statfs a missing path", statfs("missing", &sfs), ENOENT);

    close(fd);
    unlink("f");
    unlink("g");
    rmdir("d/sub");
    rmdir("d");
    printf("fs_stat: %d failures\n", failures);
    return failures != 0;
}
