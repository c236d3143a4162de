/* Checks for the test programs: each CHECK names what it checks; a failed one prints
 * "PROG: FAIL file:line: what (errno text)" and exits 1, so the first broken thing is the one
 * reported. PROG is the program's name (set PROG before including this file). */
#ifndef CHECK_H
#define CHECK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PROG
#error "define PROG (the program's name) before including check.h"
#endif

/* write(2) only: usable in a child after vfork and in a signal handler. */
static void check_say(const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(1, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void check_fail(const char *file, int line, const char *what, int err)
{
	char buf[512];
	snprintf(buf, sizeof buf, "%s: FAIL %s:%d: %s (errno %d %s)\n", PROG, file, line, what, err,
		 strerror(err));
	check_say(buf);
	_exit(1);
}

/* CHECK(cond): the condition must hold. */
#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond))                                                           \
			check_fail(__FILE__, __LINE__, #cond, errno);                  \
	} while (0)

/* CHECK_EQ(a, b) for integers: prints both values when they differ. */
#define CHECK_EQ(a, b)                                                                 \
	do {                                                                           \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);        \
		if (check_a_ != check_b_) {                                            \
			char check_m_[256];                                            \
			snprintf(check_m_, sizeof check_m_, "%s == %s: %lld != %lld", #a, \
				 #b, check_a_, check_b_);                              \
			check_fail(__FILE__, __LINE__, check_m_, errno);               \
		}                                                                      \
	} while (0)

/* CHECK_ERR(call, E): the call returns -1 with errno E. */
#define CHECK_ERR(call, e)                                                             \
	do {                                                                           \
		errno = 0;                                                             \
		long check_r_ = (long)(call);                                          \
		if (check_r_ != -1 || errno != (e)) {                                  \
			char check_m_[256];                                            \
			snprintf(check_m_, sizeof check_m_,                            \
				 "%s fails with %s: got %ld", #call, #e, check_r_);     \
			check_fail(__FILE__, __LINE__, check_m_, errno);               \
		}                                                                      \
	} while (0)

/* A bad pointer the compiler cannot see through (so it does not warn about the call). */
static inline void *bad_ptr(unsigned long x)
{
	__asm__("" : "+r"(x));
	return (void *)x;
}

/* One line per group of checks that passed, so a log shows how far a program got. */
#define PASSED(what) printf("%s: ok %s\n", PROG, what), fflush(stdout)

#define ALL_PASSED() printf("%s: all passed\n", PROG), fflush(stdout)

#endif
