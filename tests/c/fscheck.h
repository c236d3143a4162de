/* Checks for the file-system tests (fs_*.c): each prints one line per check, "PROG: label:
 * ok" or "PROG: label: ERRNO", and counts the checks whose outcome is not the expected one.
 * tests/fs.rs runs each program on the host Linux first, then in our guest, and wants the same
 * lines from both (and exit status 0: every outcome as expected). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *prog_name = "fs";
static int failures;

static const char *errname(int e) {
    switch (e) {
    case 0: return "ok";
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF) E(EAGAIN)
    E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENOTDIR) E(EISDIR) E(EINVAL)
    E(EMFILE) E(ENOTTY) E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS) E(EPIPE) E(ERANGE)
    E(ENAMETOOLONG) E(ENOTEMPTY) E(ELOOP) E(ENOSYS)
#undef E
    default: return "E?";
    }
}

/* `expected` is 0 for success. `r` < 0 means failure with errno. */
static void check(const char *label, long r, int expected) {
    int got = r < 0 ? errno : 0;
    printf("%s: %s: %s\n", prog_name, label, errname(got));
    if (got != expected) {
        printf("%s: ^ expected %s\n", prog_name, errname(expected));
        failures++;
    }
}

/* A value that must be what it is on Linux (printed, so both runs show it). */
static void value(const char *label, long got, long expected) {
    printf("%s: %s = %ld\n", prog_name, label, got);
    if (got != expected) {
        printf("%s: ^ expected %ld\n", prog_name, expected);
        failures++;
    }
}

#define OK(label, call) check(label, (long)(call), 0)
#define FAILS(label, call, err) check(label, (long)(call), err)
