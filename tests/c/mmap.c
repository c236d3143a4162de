/* Memory mappings at their edges, with Linux's answers: overlapping MAP_FIXED, MAP_FIXED_NOREPLACE,
 * munmap of a hole and of part of a mapping, mprotect splitting a region, mremap growing in place
 * and moving, MADV_DONTNEED zeroing, MAP_SHARED seen across fork and MAP_PRIVATE not, a write to a
 * read-only mapping as SIGSEGV, zero pages on first touch, bad arguments; files mapped
 * privately (a file written just now, and the program's own executable): their bytes, copy on
 * write, zeros past the end. One line per check; exits 0 iff all passed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static int failed;
static const long P = 4096;

static void check(const char *what, long got, long want)
{
	printf("mmap: %s: %s (%ld, expected %ld)\n", what, got == want ? "ok" : "FAIL", got, want);
	failed += got != want;
}

static sigjmp_buf jump;
static volatile sig_atomic_t faults;
static void on_segv(int sig)
{
	(void)sig;
	faults++;
	siglongjmp(jump, 1);
}

/* Whether a write to `p` faults (SIGSEGV caught). */
static int write_faults(volatile char *p)
{
	int before = faults;
	if (!sigsetjmp(jump, 1))
		*p = 1;
	return faults != before;
}

static void *map(void *at, long len, int prot, int flags)
{
	return mmap(at, len, prot, flags | MAP_ANONYMOUS, -1, 0);
}

int main(void)
{
	signal(SIGSEGV, on_segv);
	const int RW = PROT_READ | PROT_WRITE;

	char *a = map(0, 8 * P, RW, MAP_PRIVATE);
	check("anonymous mapping", a != MAP_FAILED, 1);
	long zero = 1;
	for (long i = 0; i < 8 * P; i += 512)
		zero &= a[i] == 0;
	check("pages are zero on first touch", zero, 1);
	memset(a, 'a', 8 * P);

	/* MAP_FIXED over the middle replaces those pages with new zero ones. */
	char *b = map(a + 2 * P, 2 * P, RW, MAP_PRIVATE | MAP_FIXED);
	check("MAP_FIXED over the middle", b == a + 2 * P, 1);
	check("the replaced pages are zero", a[2 * P] == 0 && a[4 * P - 1] == 0, 1);
	check("the pages around keep their data", a[2 * P - 1] == 'a' && a[4 * P] == 'a', 1);
	void *nr = map(a + P, P, RW, MAP_PRIVATE | MAP_FIXED_NOREPLACE);
	check("MAP_FIXED_NOREPLACE over a mapping", nr == MAP_FAILED ? -errno : 0, -EEXIST);

	/* munmap of part, then of a range that is partly a hole. */
	check("munmap of two pages inside", munmap(a + 5 * P, 2 * P), 0);
	check("an unmapped page faults", write_faults(a + 5 * P), 1);
	check("munmap over a hole and a mapping", munmap(a + 4 * P, 3 * P), 0);
	check("munmap of a hole only", munmap(a + 5 * P, P), 0);
	check("munmap of an unaligned address", munmap(a + 1, P) == -1 ? -errno : 0, -EINVAL);
	check("munmap of length 0", munmap(a, 0) == -1 ? -errno : 0, -EINVAL);

	/* mprotect splits a region: the middle page read-only, its neighbours writable. */
	check("mprotect one page read-only", mprotect(a + P, P, PROT_READ), 0);
	check("a write to it faults", write_faults(a + P), 1);
	check("it still reads its data", a[P] == 'a', 1);
	check("the page before stays writable", write_faults(a), 0);
	check("the page after stays writable", write_faults(a + 2 * P), 0);
	check("mprotect of an unmapped range", mprotect(a + 5 * P, P, PROT_READ) == -1 ? -errno : 0, -ENOMEM);
	check("mprotect with unknown bits", mprotect(a, P, 0x1000) == -1 ? -errno : 0, -EINVAL);
	munmap(a, 8 * P);

	/* mremap: grow in place when the next pages are free; move when they are not. */
	char *r = map(0, 4 * P, RW, MAP_PRIVATE);
	munmap(r + 2 * P, 2 * P); /* leaves room after the first two pages */
	memset(r, 'r', 2 * P);
	char *g = mremap(r, 2 * P, 4 * P, 0);
	check("mremap grows in place into free pages", g == r, 1);
	check("the grown part is zero", g != MAP_FAILED && g[3 * P] == 0, 1);
	char *wall = map(g + 4 * P, P, RW, MAP_PRIVATE | MAP_FIXED); /* the next page taken */
	check("mremap without MAYMOVE cannot grow into a mapping", mremap(g, 4 * P, 8 * P, 0) == MAP_FAILED ? -errno : 0, -ENOMEM);
	char *m = mremap(g, 4 * P, 8 * P, MREMAP_MAYMOVE);
	check("mremap with MAYMOVE moves", m != MAP_FAILED && m != g, 1);
	check("the moved pages keep their data", m != MAP_FAILED && m[0] == 'r' && m[2 * P - 1] == 'r', 1);
	check("the old place is gone", write_faults(g), 1);
	char *s = mremap(m, 8 * P, 2 * P, 0);
	check("mremap shrinks in place", s == m, 1);
	check("what it gave back is gone", write_faults(m + 3 * P), 1);
	munmap(s, 2 * P);
	munmap(wall, P);

	/* madvise(MADV_DONTNEED) drops private pages: they read as zero again. */
	char *d = map(0, 2 * P, RW, MAP_PRIVATE);
	memset(d, 'd', 2 * P);
	check("MADV_DONTNEED", madvise(d, 2 * P, MADV_DONTNEED), 0);
	check("its pages read zero", d[0] == 0 && d[2 * P - 1] == 0, 1);
	munmap(d, 2 * P);

	/* MAP_SHARED is seen by a forked child's writes; MAP_PRIVATE is not. */
	volatile int *sh = map(0, P, RW, MAP_SHARED);
	volatile int *pv = map(0, P, RW, MAP_PRIVATE);
	*sh = 1;
	*pv = 1;
	pid_t c = fork();
	if (c == 0) {
		*sh = 42;
		*pv = 42;
		_exit(0);
	}
	int status;
	waitpid(c, &status, 0);
	check("a child's write to MAP_SHARED is seen", *sh, 42);
	check("a child's write to MAP_PRIVATE is not", *pv, 1);

	/* A read-only mapping, and bad arguments. */
	char *ro = map(0, P, PROT_READ, MAP_PRIVATE);
	check("a write to a PROT_READ mapping faults", write_faults(ro), 1);
	char *none = map(0, P, PROT_NONE, MAP_PRIVATE);
	check("a PROT_NONE mapping faults", write_faults(none), 1);
	check("mmap of length 0", map(0, 0, RW, MAP_PRIVATE) == MAP_FAILED ? -errno : 0, -EINVAL);
	check("mmap neither shared nor private", map(0, P, RW, 0) == MAP_FAILED ? -errno : 0, -EINVAL);
	check("MAP_FIXED at an unaligned address", map((char *)ro + 1, P, RW, MAP_PRIVATE | MAP_FIXED) == MAP_FAILED ? -errno : 0, -EINVAL);
	void *huge = map(0, 1L << 46, RW, MAP_PRIVATE | MAP_NORESERVE);
	check("a 64 TiB MAP_NORESERVE mapping fits or is ENOMEM", huge != MAP_FAILED || errno == ENOMEM, 1);
	void *toobig = map(0, 1L << 48, RW, MAP_PRIVATE);
	check("more than user space is ENOMEM", toobig == MAP_FAILED ? -errno : 0, -ENOMEM);

	/* Files, privately. */
	int fd = open("/tmp/mmap-file", O_RDWR | O_CREAT | O_TRUNC, 0644);
	const char text[] = "the file's own bytes\n";
	check("a file to map", fd >= 0 && write(fd, text, sizeof text - 1) == (long)sizeof text - 1, 1);
	char *fm = mmap(0, 2 * P, PROT_READ, MAP_PRIVATE, fd, 0);
	check("mmap of a file", fm != MAP_FAILED, 1);
	if (fm != MAP_FAILED) {
		check("its bytes", memcmp(fm, text, sizeof text - 1), 0);
		check("zeros after its end in the page", fm[sizeof text] == 0 && fm[P - 1] == 0, 1);
		check("a write to a PROT_READ file mapping faults", write_faults(fm), 1);
	}
	char *fw = mmap(0, P, RW, MAP_PRIVATE, fd, 0);
	check("a writable private file mapping", fw != MAP_FAILED, 1);
	if (fw != MAP_FAILED && fm != MAP_FAILED) {
		fw[0] = 'T';
		check("its writes are its own (copy on write)", fw[0] == 'T' && fm[0] == 't', 1);
		char c = 0;
		check("and do not reach the file", pread(fd, &c, 1, 0) == 1 && c == 't', 1);
	}
	int wo = open("/tmp/mmap-file", O_WRONLY);
	check("mmap of a write-only descriptor", mmap(0, P, PROT_READ, MAP_PRIVATE, wo, 0) == MAP_FAILED ? -errno : 0, -EACCES);
	check("mmap of a bad descriptor", mmap(0, P, PROT_READ, MAP_PRIVATE, 999, 0) == MAP_FAILED ? -errno : 0, -EBADF);
	int pp[2];
	pipe(pp);
	check("mmap of a pipe", mmap(0, P, PROT_READ, MAP_PRIVATE, pp[0], 0) == MAP_FAILED ? -errno : 0, -ENODEV);
	int self = open("/proc/self/exe", O_RDONLY);
	char *me = self >= 0 ? mmap(0, P, PROT_READ, MAP_PRIVATE, self, 0) : MAP_FAILED;
	check("mmap of the program's own file", me != MAP_FAILED && memcmp(me, "\177ELF", 4) == 0, 1);
	int z = open("/dev/zero", O_RDWR);
	char *zm = mmap(0, P, RW, MAP_PRIVATE, z, 0);
	check("mmap of /dev/zero is zero memory", zm != MAP_FAILED && zm[100] == 0, 1);
	unlink("/tmp/mmap-file");
	return failed != 0;
}
