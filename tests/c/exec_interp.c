/* execve of programs whose PT_INTERP names something that is not a dynamic linker. From a valid
 * static program (argv[1]) it writes variants to /tmp with one non-PT_LOAD program header made
 * PT_INTERP, naming a path appended to the file, and executes each: every one must fail with
 * the errno Linux gives, and the caller must go on. One line per case, "exec_interp: CASE:
 * ERRNO", then "exec_interp: all passed". Only run in our guest (tests/musl.rs). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned char prog[1 << 20];
static long prog_len;
static int failures;

static const char *errname(int e)
{
	switch (e) {
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	case ENOEXEC: return "ENOEXEC";
	case ELIBBAD: return "ELIBBAD";
	case EFAULT: return "EFAULT";
	case ENOMEM: return "ENOMEM";
	default: return "other";
	}
}

static unsigned long u64_at(const unsigned char *b, long at)
{
	unsigned long v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[at + i];
	return v;
}

static void put_u64(unsigned char *b, long at, unsigned long v)
{
	for (int i = 0; i < 8; i++)
		b[at + i] = (unsigned char)(v >> (8 * i));
}

static void write_file(const char *path, const void *bytes, long len, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0 || write(fd, bytes, len) != len) {
		printf("exec_interp: FAIL cannot write %s (%s)\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
}

/* The program with PT_INTERP naming `interp` (its NUL counted unless `no_nul`), at `path`. */
static void make_variant(const char *path, const char *interp, int no_nul)
{
	static unsigned char copy[sizeof prog + 4096];
	memcpy(copy, prog, prog_len);
	long phoff = (long)u64_at(copy, 32);
	int phnum = copy[56] | copy[57] << 8;
	long ph = -1;
	for (int i = 0; i < phnum && ph < 0; i++)
		if (copy[phoff + 56 * i] != 1) /* not PT_LOAD */
			ph = phoff + 56 * i;
	if (ph < 0) {
		printf("exec_interp: FAIL the program has no header besides PT_LOAD\n");
		exit(1);
	}
	long n = (long)strlen(interp) + (no_nul ? 0 : 1);
	memcpy(copy + prog_len, interp, n);
	copy[ph] = 3; /* PT_INTERP */
	copy[ph + 1] = copy[ph + 2] = copy[ph + 3] = 0;
	put_u64(copy, ph + 8, (unsigned long)prog_len); /* p_offset */
	put_u64(copy, ph + 32, (unsigned long)n);	    /* p_filesz */
	put_u64(copy, ph + 40, (unsigned long)n);	    /* p_memsz */
	write_file(path, copy, prog_len + n, 0755);
}

static void expect(const char *what, const char *interp, int no_nul, int want)
{
	make_variant("/tmp/variant", interp, no_nul);
	char *argv[] = { "variant", NULL };
	errno = 0;
	execv("/tmp/variant", argv);
	int got = errno;
	printf("exec_interp: %s: %s\n", what, errname(got));
	if (got != want) {
		printf("exec_interp: FAIL ^ expected %s\n", errname(want));
		failures++;
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		printf("exec_interp: usage: exec_interp STATIC_PROGRAM\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY);
	prog_len = fd < 0 ? -1 : read(fd, prog, sizeof prog);
	if (prog_len < 64) {
		printf("exec_interp: FAIL cannot read %s\n", argv[1]);
		return 1;
	}
	close(fd);
	write_file("/tmp/notelf", "just text\n", 10, 0755);
	write_file("/tmp/short-elf", prog, 100, 0755);

	expect("a missing interpreter", "/no/such/ld.so", 0, ENOENT);
	expect("a directory", "/tmp", 0, EACCES);
	expect("a file without an x bit", "/etc/passwd", 0, EACCES);
	expect("a file that is not ELF", "/tmp/notelf", 0, ELIBBAD);
	expect("a truncated ELF", "/tmp/short-elf", 0, ELIBBAD);
	expect("itself (an interpreter with PT_INTERP)", "/tmp/variant", 0, ELIBBAD);
	expect("a path without its NUL", "/no/such/ld.so", 1, ENOEXEC);
	expect("a device", "/dev/zero", 0, EACCES);
	/* A fixed-address program as the interpreter of another at the same addresses. */
	expect("one that overlaps the program", argv[1], 0, ENOEXEC);

	printf(failures ? "exec_interp: FAIL\n" : "exec_interp: all passed\n");
	return failures != 0;
}
