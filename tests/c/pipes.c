/* pipes: pipe (22) and pipe2 (293) with dup, dup2, dup3 and fcntl, as Linux has them. EOF once
 * the last writer has closed, EPIPE and SIGPIPE once the last reader has, readers and writers
 * blocking and woken, 1 MiB through a pipe intact, O_NONBLOCK's EAGAIN, writes of PIPE_BUF
 * bytes never interleaved, and the descriptor calls' edges. Exits 0 iff all passed. */
#define _GNU_SOURCE
#define PROG "pipes"
#include "check.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&t, &t) != 0)
		CHECK(errno == EINTR);
}

static long now_ms(void)
{
	struct timespec t;
	CHECK(clock_gettime(CLOCK_MONOTONIC, &t) == 0);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int wait_status(pid_t pid)
{
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	return st;
}

static void descriptors(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(p[0] >= 3 && p[1] == p[0] + 1);
	/* The lowest free number. */
	CHECK(close(p[0]) == 0);
	int q[2];
	CHECK(pipe(q) == 0);
	CHECK_EQ(q[0], p[0]);
	CHECK_EQ(dup(q[1]), q[1] + 1);
	CHECK(close(q[1] + 1) == 0);
	/* Access modes and wrong-direction calls. */
	CHECK_EQ(fcntl(q[0], F_GETFL) & O_ACCMODE, O_RDONLY);
	CHECK_EQ(fcntl(q[1], F_GETFL) & O_ACCMODE, O_WRONLY);
	char c;
	CHECK_ERR(write(q[0], "x", 1), EBADF);
	CHECK_ERR(read(q[1], &c, 1), EBADF);
	/* Bad descriptors. */
	CHECK_ERR(close(-1), EBADF);
	CHECK_ERR(close(1000), EBADF);
	CHECK_ERR(read(77, &c, 1), EBADF);
	CHECK_ERR(dup(77), EBADF);
	CHECK_ERR(dup2(77, 78), EBADF);
	CHECK_ERR(fcntl(77, F_GETFD), EBADF);
	CHECK_ERR(dup2(q[1], -1), EBADF);
	CHECK_ERR(dup2(q[1], 1 << 20), EBADF);
	CHECK_ERR(pipe(bad_ptr(0xffffffff80100000UL)), EFAULT);
	CHECK_ERR(pipe2(p, 0x8000000), EINVAL);
	/* dup2 onto itself is a no-op; dup3 onto itself is EINVAL; dup2 replaces an open fd. */
	CHECK_EQ(dup2(q[1], q[1]), q[1]);
	CHECK_ERR(syscall(SYS_dup3, q[1], q[1], 0), EINVAL); /* the kernel's answer, not libc's */
	CHECK_EQ(dup2(q[1], 40), 40);
	CHECK_EQ(fcntl(40, F_GETFD), 0);
	CHECK_EQ(dup3(q[0], 40, O_CLOEXEC), 40); /* now the read end */
	CHECK_EQ(fcntl(40, F_GETFD), FD_CLOEXEC);
	CHECK_EQ(fcntl(40, F_GETFL) & O_ACCMODE, O_RDONLY);
	/* F_DUPFD: the lowest at or above the argument. */
	CHECK_EQ(fcntl(q[1], F_DUPFD, 30), 30);
	CHECK_EQ(fcntl(q[1], F_DUPFD, 30), 31);
	CHECK_EQ(fcntl(q[1], F_DUPFD_CLOEXEC, 30), 32);
	CHECK_EQ(fcntl(32, F_GETFD), FD_CLOEXEC);
	CHECK_EQ(fcntl(30, F_GETFD), 0);
	CHECK_ERR(fcntl(q[1], F_DUPFD, -1), EINVAL);
	CHECK(fcntl(30, F_SETFD, FD_CLOEXEC) == 0);
	CHECK_EQ(fcntl(30, F_GETFD), FD_CLOEXEC);
	CHECK(fcntl(30, F_SETFD, 0) == 0);
	CHECK_EQ(fcntl(30, F_GETFD), 0);
	/* Duplicates share one open file: its status flags too. */
	CHECK(fcntl(30, F_SETFL, O_NONBLOCK) == 0);
	CHECK(fcntl(q[1], F_GETFL) & O_NONBLOCK);
	CHECK(fcntl(31, F_SETFL, 0) == 0);
	CHECK(!(fcntl(q[1], F_GETFL) & O_NONBLOCK));
	/* Data through a duplicate. */
	CHECK_EQ(write(31, "dup", 3), 3);
	char buf[8];
	CHECK_EQ(read(40, buf, sizeof buf), 3);
	CHECK(memcmp(buf, "dup", 3) == 0);
	/* The write end open anywhere keeps the pipe from EOF. */
	for (int fd = 30; fd <= 32; fd++)
		CHECK(close(fd) == 0);
	CHECK(close(q[1]) == 0);
	CHECK(close(p[1]) == 0);
	CHECK_EQ(read(q[0], buf, 1), 0);
	CHECK(close(q[0]) == 0 && close(40) == 0);
	PASSED("pipe, dup, dup2, dup3, fcntl");
}

static void eof_after_last_writer(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* Holds its copy of the write end for a while, writes, then exits. */
		close(p[0]);
		sleep_ms(30);
		if (write(p[1], "late", 4) != 4)
			_exit(1);
		_exit(0);
	}
	CHECK(close(p[1]) == 0); /* ours is closed: the child's still counts */
	char buf[16];
	CHECK_EQ(read(p[0], buf, sizeof buf), 4);
	CHECK_EQ(read(p[0], buf, sizeof buf), 0);
	CHECK_EQ(read(p[0], buf, sizeof buf), 0); /* and stays so */
	CHECK_EQ(wait_status(pid), 0);
	close(p[0]);
	/* Bytes written before the close are still read before EOF. */
	CHECK(pipe(p) == 0);
	CHECK_EQ(write(p[1], "abc", 3), 3);
	close(p[1]);
	CHECK_EQ(read(p[0], buf, 2), 2);
	CHECK_EQ(read(p[0], buf, 2), 1);
	CHECK_EQ(read(p[0], buf, 2), 0);
	close(p[0]);
	PASSED("EOF after the last writer");
}

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int s)
{
	(void)s;
	sigpipes++;
}

static void epipe_after_last_reader(void)
{
	int p[2];
	/* Default action: killed by SIGPIPE. */
	CHECK(pipe(p) == 0);
	close(p[0]);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		(void)!write(p[1], "x", 1);
		_exit(0);
	}
	int st = wait_status(pid);
	CHECK(WIFSIGNALED(st));
	CHECK_EQ(WTERMSIG(st), SIGPIPE);
	/* Handled: the handler runs and write fails with EPIPE. */
	struct sigaction sa = { .sa_handler = on_sigpipe };
	CHECK(sigaction(SIGPIPE, &sa, 0) == 0);
	CHECK_ERR(write(p[1], "x", 1), EPIPE);
	CHECK_EQ(sigpipes, 1);
	struct iovec iov = { "x", 1 };
	CHECK_ERR(writev(p[1], &iov, 1), EPIPE);
	CHECK_EQ(sigpipes, 2);
	/* Ignored: EPIPE alone. */
	signal(SIGPIPE, SIG_IGN);
	CHECK_ERR(write(p[1], "x", 1), EPIPE);
	CHECK_EQ(sigpipes, 2);
	close(p[1]);
	/* A writer blocked on a full pipe is woken with EPIPE when the reader goes. */
	CHECK(pipe(p) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		sleep_ms(50);
		_exit(0); /* the last reader leaves without reading */
	}
	close(p[0]);
	static char big[256 * 1024];
	ssize_t w = write(p[1], big, sizeof big);
	CHECK(w == -1 ? errno == EPIPE : w > 0 && w < (ssize_t)sizeof big);
	if (w > 0)
		CHECK_ERR(write(p[1], big, sizeof big), EPIPE);
	CHECK_EQ(wait_status(pid), 0);
	close(p[1]);
	signal(SIGPIPE, SIG_DFL);
	PASSED("EPIPE and SIGPIPE after the last reader");
}

static void blocking_both_ways(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	/* A reader waits for a writer that comes later. */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		sleep_ms(50);
		_exit(write(p[1], "wake", 4) == 4 ? 0 : 1);
	}
	long t0 = now_ms();
	char buf[8];
	CHECK_EQ(read(p[0], buf, sizeof buf), 4);
	CHECK(now_ms() - t0 >= 40);
	CHECK_EQ(wait_status(pid), 0);
	/* A writer waits for a reader once the pipe is full. Fill it (non-blocking) first. */
	CHECK(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);
	static char chunk[4096];
	long capacity = 0;
	ssize_t w;
	while ((w = write(p[1], chunk, sizeof chunk)) > 0)
		capacity += w;
	CHECK(w == -1 && errno == EAGAIN);
	CHECK(capacity >= 4096);
	CHECK(fcntl(p[1], F_SETFL, 0) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		sleep_ms(50);
		/* Drain everything, including the blocked writer's byte. */
		long got = 0;
		ssize_t r;
		while (got < capacity + 1 && (r = read(p[0], chunk, sizeof chunk)) > 0)
			got += r;
		_exit(got == capacity + 1 ? 0 : 1);
	}
	t0 = now_ms();
	CHECK_EQ(write(p[1], "!", 1), 1);
	CHECK(now_ms() - t0 >= 40);
	CHECK_EQ(wait_status(pid), 0);
	close(p[0]), close(p[1]);
	printf("pipes: capacity %ld bytes\n", capacity);
	PASSED("blocking both ways");
}

static unsigned long long fnv(unsigned long long h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 7 + (i >> 9) * 13);
}

static void one_mib_intact(void)
{
	enum { TOTAL = 1 << 20 };
	int p[2], sum[2];
	CHECK(pipe(p) == 0 && pipe(sum) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* Writes of odd sizes, so that reads and writes never line up. */
		close(p[0]);
		static unsigned char buf[7919];
		unsigned long long h = 0xcbf29ce484222325ULL;
		size_t off = 0;
		while (off < TOTAL) {
			size_t n = TOTAL - off < sizeof buf ? TOTAL - off : sizeof buf;
			for (size_t i = 0; i < n; i++)
				buf[i] = pattern(off + i);
			h = fnv(h, buf, n);
			size_t done = 0;
			while (done < n) {
				ssize_t w = write(p[1], buf + done, n - done);
				if (w <= 0)
					_exit(1);
				done += (size_t)w;
			}
			off += n;
		}
		close(p[1]);
		_exit(write(sum[1], &h, sizeof h) == sizeof h ? 0 : 2);
	}
	close(p[1]);
	static unsigned char buf[5003];
	unsigned long long h = 0xcbf29ce484222325ULL;
	size_t total = 0;
	int in_order = 1;
	ssize_t r;
	while ((r = read(p[0], buf, sizeof buf)) > 0) {
		for (ssize_t i = 0; i < r; i++)
			in_order &= buf[i] == pattern(total + (size_t)i);
		h = fnv(h, buf, (size_t)r);
		total += (size_t)r;
	}
	CHECK(r == 0);
	CHECK_EQ(total, TOTAL);
	CHECK(in_order);
	unsigned long long theirs;
	CHECK_EQ(read(sum[0], &theirs, sizeof theirs), sizeof theirs);
	CHECK(theirs == h);
	CHECK_EQ(wait_status(pid), 0);
	close(p[0]), close(sum[0]), close(sum[1]);
	printf("pipes: 1 MiB through a pipe, checksum %016llx\n", h);
	PASSED("1 MiB intact");
}

static void nonblocking(void)
{
	int p[2];
	CHECK(pipe2(p, O_NONBLOCK) == 0);
	CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	char buf[4096];
	CHECK_ERR(read(p[0], buf, sizeof buf), EAGAIN);
	memset(buf, 'n', sizeof buf);
	ssize_t w;
	long n = 0;
	while ((w = write(p[1], buf, sizeof buf)) > 0)
		n += w;
	CHECK(w == -1 && errno == EAGAIN);
	/* Full: even one byte does not fit... */
	CHECK_ERR(write(p[1], buf, 1), EAGAIN);
	/* ...until a read makes room. */
	CHECK_EQ(read(p[0], buf, sizeof buf), sizeof buf);
	CHECK(write(p[1], buf, 1) == 1);
	/* A write bigger than the room left: a partial write, not EAGAIN. */
	static char big[128 * 1024];
	CHECK_EQ(read(p[0], buf, sizeof buf), sizeof buf);
	CHECK_EQ(read(p[0], buf, sizeof buf), sizeof buf);
	w = write(p[1], big, sizeof big);
	CHECK(w > 0 && w < (ssize_t)sizeof big);
	/* Cleared with F_SETFL on one end only. */
	CHECK(fcntl(p[0], F_SETFL, 0) == 0);
	CHECK(!(fcntl(p[0], F_GETFL) & O_NONBLOCK));
	CHECK(fcntl(p[1], F_GETFL) & O_NONBLOCK);
	close(p[1]);
	while ((w = read(p[0], buf, sizeof buf)) > 0)
		;
	CHECK(w == 0); /* EOF, not EAGAIN, once the writer is gone */
	close(p[0]);
	/* pipe2's O_CLOEXEC. */
	CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
	CHECK_EQ(fcntl(p[0], F_GETFD), FD_CLOEXEC);
	CHECK_EQ(fcntl(p[1], F_GETFD), FD_CLOEXEC);
	close(p[0]), close(p[1]);
	PASSED("O_NONBLOCK");
}

static void pipe_buf_atomic(void)
{
	enum { WRITERS = 4, RECORDS = 64 };
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t pids[WRITERS];
	for (int k = 0; k < WRITERS; k++) {
		pids[k] = fork();
		CHECK(pids[k] >= 0);
		if (pids[k] == 0) {
			close(p[0]);
			static char rec[PIPE_BUF];
			memset(rec, 'A' + k, sizeof rec);
			for (int i = 0; i < RECORDS; i++) {
				if (write(p[1], rec, sizeof rec) != sizeof rec)
					_exit(1);
				if (i % 8 == 0)
					sched_yield();
			}
			_exit(0);
		}
	}
	close(p[1]);
	/* Read in odd sizes; every PIPE_BUF-aligned block must be one writer's. */
	static char all[WRITERS * RECORDS * PIPE_BUF];
	size_t got = 0;
	ssize_t r;
	while ((r = read(p[0], all + got, got + 3000 < sizeof all ? 3000 : sizeof all - got)) > 0)
		got += (size_t)r;
	CHECK(r == 0);
	CHECK_EQ(got, sizeof all);
	int count[WRITERS] = { 0 };
	for (size_t b = 0; b < sizeof all; b += PIPE_BUF) {
		char c = all[b];
		CHECK(c >= 'A' && c < 'A' + WRITERS);
		for (size_t i = 1; i < PIPE_BUF; i++)
			CHECK(all[b + i] == c);
		count[c - 'A']++;
	}
	for (int k = 0; k < WRITERS; k++) {
		CHECK_EQ(count[k], RECORDS);
		CHECK_EQ(wait_status(pids[k]), 0);
	}
	close(p[0]);
	PASSED("writes of PIPE_BUF bytes are atomic");
}

/* A blocked reader's buffer is mapped anew at the same address, or made read-only, between
 * reads: each read lands in the memory mapped at the time, and a read-only buffer gets EFAULT
 * with the byte left in the pipe. (The kernel remembers translations of the buffers a pipe
 * hands bytes between; none may outlive a change of mapping.) */
static void reader_buffer_remapped(void)
{
	int data[2], ready[2];
	CHECK(pipe(data) == 0 && pipe(ready) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char *buf = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (buf == MAP_FAILED)
			_exit(10);
		for (int round = 0; round < 4; round++) {
			if (round == 1 || round == 3) {
				char *again = mmap(buf, 4096, PROT_READ | PROT_WRITE,
						   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
				if (again != buf || buf[100] != 0)
					_exit(11);
			}
			if (round == 2 && mprotect(buf, 4096, PROT_READ) != 0)
				_exit(12);
			if (write(ready[1], "r", 1) != 1)
				_exit(13);
			if (round == 2) {
				if (read(data[0], buf + 100, 1) != -1 || errno != EFAULT)
					_exit(14);
				if (mprotect(buf, 4096, PROT_READ | PROT_WRITE) != 0)
					_exit(15);
			}
			if (read(data[0], buf + 100, 1) != 1)
				_exit(16);
			if (buf[100] != 'a' + round)
				_exit(17);
		}
		_exit(0);
	}
	for (int round = 0; round < 4; round++) {
		char c, b = 'a' + round;
		CHECK_EQ(read(ready[0], &c, 1), 1);
		CHECK_EQ(write(data[1], &b, 1), 1);
	}
	CHECK_EQ(wait_status(pid), 0);
	close(data[0]), close(data[1]), close(ready[0]), close(ready[1]);
	PASSED("a reader's buffer mapped anew or made read-only between reads");
}

int main(void)
{
	setvbuf(stdout, 0, _IONBF, 0);
	descriptors();
	eof_after_last_writer();
	epipe_after_last_reader();
	blocking_both_ways();
	one_mib_intact();
	nonblocking();
	pipe_buf_atomic();
	reader_buffer_remapped();
	ALL_PASSED();
	return 0;
}
