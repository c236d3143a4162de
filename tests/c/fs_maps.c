/* /proc/self/maps: a line per mapping, as Linux writes it. The program's own segments named by
 * its path, the stack and the vDSO, the heap once brk has grown, an anonymous mapping with its
 * exact bounds, split in three by an mprotect of its middle page and gone after munmap, and a
 * private mapping of a file at an offset, named by the file's path. Only what does not depend
 * on where things are is printed, so the host and the guest print the same lines. Run as
 * `fs_maps DIR` (DIR is not used). */
#define _GNU_SOURCE
#include "fscheck.h"
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static char maps[64 * 1024];

/* Reads /proc/self/maps into `maps` (one open, reads until 0, as cat does). */
static long read_maps(void) {
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0)
        return -1;
    long n = 0, r;
    while ((r = read(fd, maps + n, sizeof maps - 1 - n)) > 0)
        n += r;
    maps[n] = 0;
    close(fd);
    return r < 0 ? -1 : n;
}

/* How many lines have all of `a`, `b` (either may be NULL). */
static long lines_with(const char *a, const char *b) {
    long count = 0;
    for (char *line = maps; *line;) {
        char *end = strchr(line, '\n');
        if (!end)
            break;
        *end = 0;
        if ((!a || strstr(line, a)) && (!b || strstr(line, b)))
            count++;
        *end = '\n';
        line = end + 1;
    }
    return count;
}

/* "start-end " of [p, p + len), as maps prints a range. */
static const char *range(void *p, long len) {
    static char buf[64];
    snprintf(buf, sizeof buf, "%08lx-%08lx ", (unsigned long)p, (unsigned long)p + len);
    return buf;
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    prog_name = "fs_maps";
    long page = sysconf(_SC_PAGESIZE);
    char self[256];
    long n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n < 0 ? 0 : n] = 0;

    OK("read /proc/self/maps", read_maps());
    value("every line ends with a newline", maps[0] && maps[strlen(maps) - 1] == '\n', 1);
    value("the program's code, by its path", lines_with(" r-xp ", self) >= 1, 1);
    value("the stack", lines_with(" rw-p ", "[stack]"), 1);
    value("the vDSO", lines_with(" r-xp ", "[vdso]"), 1);

    long brk0 = syscall(SYS_brk, 0);
    syscall(SYS_brk, brk0 + 16 * page);
    memset((void *)brk0, 1, 16 * page);
    OK("read it after brk grew", read_maps());
    value("the heap", lines_with(" rw-p ", "[heap]"), 1);

    char *hint = (char *)0x200000000;
    char *m = mmap(hint, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    OK("mmap 3 anonymous pages", m == MAP_FAILED ? -1 : 0);
    read_maps();
    value("an anonymous mapping, exactly", lines_with(range(m, 3 * page), " rw-p 00000000 00:00 0"), 1);
    OK("mprotect its middle page", mprotect(m + page, page, PROT_READ));
    read_maps();
    value("split: the first page", lines_with(range(m, page), " rw-p "), 1);
    value("split: the middle page", lines_with(range(m + page, page), " r--p "), 1);
    value("split: the last page", lines_with(range(m + 2 * page, page), " rw-p "), 1);
    OK("munmap it", munmap(m, 3 * page));
    read_maps();
    value("gone", lines_with(range(m, page), NULL) + lines_with(range(m + 2 * page, page), NULL), 0);

    int fd = open(self, O_RDONLY);
    OK("open the program's own file", fd);
    char *f = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, page);
    OK("mmap its second page", f == MAP_FAILED ? -1 : 0);
    read_maps();
    char at[80];
    snprintf(at, sizeof at, "%sr--p %08lx ", range(f, page), page);
    value("named by the file's path, at its offset", lines_with(at, self), 1);
    close(fd);
    return failures != 0;
}
