/* The boot archive's files are read-only (EROFS, as a read-only mount says even to root); a
 * copy can be changed. For the guest, with a file at /etc/data (`--file`): `fs_rofs`. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures;

static void expect(const char *label, int r, int err) {
    int got = r < 0 ? errno : 0;
    printf("fs_rofs: %s: %s\n", label, got == 0 ? "ok" : strerror(got));
    failures += got != err;
}

int main(void) {
    expect("open for writing", open("/etc/data", O_WRONLY), EROFS);
    expect("open O_TRUNC", open("/etc/data", O_RDONLY | O_TRUNC), EROFS);
    expect("chmod", chmod("/etc/data", 0600), EROFS);
    expect("utimensat", utimensat(AT_FDCWD, "/etc/data", NULL, 0), EROFS);
    expect("chown", chown("/etc/data", 0, 0), EROFS);
    expect("access W_OK", access("/etc/data", W_OK), EROFS);
    expect("a program too", open("/bin/fs_rofs", O_RDWR), EROFS);
    int in = open("/etc/data", O_RDONLY);
    expect("open for reading", in, 0);
    char buf[256];
    int n = read(in, buf, sizeof buf);
    int out = open("/tmp/copy", O_RDWR | O_CREAT, 0644);
    expect("copy it", out >= 0 && write(out, buf, n) == n ? 0 : -1, 0);
    expect("change the copy", pwrite(out, "X", 1, 0) == 1 ? 0 : -1, 0);
    expect("rename the original", rename("/etc/data", "/etc/old"), 0);
    expect("the copy takes its place", rename("/tmp/copy", "/etc/data"), 0);
    expect("which is writable", open("/etc/data", O_WRONLY | O_APPEND), 0);
    /* One user: another owner is refused, even to root. */
    expect("chown to another user", chown("/etc/data", 1000, -1), EPERM);
    expect("or group", chown("/etc/data", -1, 1000), EPERM);
    printf("fs_rofs: %d failures\n", failures);
    return failures != 0;
}
