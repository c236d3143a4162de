/* execve of mutated ELF files: a valid static program (argv[1]) with a few bytes of its ELF
 * and program headers changed at random, written to /tmp and executed, N times (argv[2]).
 * Each must fail cleanly (execve returns an error) or run and end somehow (exit or a signal):
 * the kernel must never panic and the fuzzer must go on. Prints a summary; exits 0 when all
 * rounds completed. Only ever run in our guest: mutated machine code on the host is a gamble. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned long long rng = 0x9e3779b97f4a7c15ULL;
static unsigned next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)rng;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: elfuzz PROGRAM ROUNDS\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror(argv[1]);
		return 2;
	}
	static unsigned char orig[1 << 20], copy[1 << 20];
	ssize_t len = read(fd, orig, sizeof orig);
	close(fd);
	if (len < 64) {
		fprintf(stderr, "elfuzz: %s is too short\n", argv[1]);
		return 2;
	}
	int rounds = atoi(argv[2]);
	unsigned long hdr = 64 + 56 * (orig[56] | orig[57] << 8);
	if (hdr > (unsigned long)len)
		hdr = len;
	int refused = 0, ran = 0, signalled = 0;
	int errs[256] = { 0 };
	for (int r = 0; r < rounds; r++) {
		memcpy(copy, orig, len);
		int flips = 1 + next() % 4;
		for (int i = 0; i < flips; i++) {
			unsigned at = next() % hdr;
			copy[at] = next() % 3 == 0 ? 0xff : (unsigned char)next();
		}
		int out = open("/tmp/mutant", O_WRONLY | O_CREAT | O_TRUNC, 0755);
		if (out < 0 || write(out, copy, len) != len) {
			perror("elfuzz: /tmp/mutant");
			return 1;
		}
		close(out);
		pid_t pid = fork();
		if (pid < 0) {
			perror("elfuzz: fork");
			return 1;
		}
		if (pid == 0) {
			int devnull = open("/dev/null", O_WRONLY);
			dup2(devnull, 1);
			dup2(devnull, 2);
			char *args[] = { "mutant", 0 };
			execv("/tmp/mutant", args);
			_exit(200 + (errno & 0x3f));
		}
		int status;
		if (waitpid(pid, &status, 0) != pid) {
			perror("elfuzz: waitpid");
			return 1;
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) >= 200) {
			refused++;
			errs[WEXITSTATUS(status) - 200]++;
		} else if (WIFSIGNALED(status)) {
			signalled++;
		} else {
			ran++;
		}
	}
	printf("elfuzz: %d rounds: %d refused by execve (ENOEXEC %d, ENOMEM %d, other %d), %d ran and exited, %d killed by a signal\n",
	       rounds, refused, errs[ENOEXEC], errs[ENOMEM], refused - errs[ENOEXEC] - errs[ENOMEM], ran, signalled);
	return 0;
}
