/* An ordinary glibc program, built with `gcc -static -pthread`: stdio, malloc of small and
 * large blocks (brk and mmap inside glibc), and a pair of threads handing work through a
 * mutex and a condition variable. One line per check; exits 0 iff all passed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed;

static void check(const char *what, long got, long want)
{
	printf("glibc: %s: %s (%ld, expected %ld)\n", what, got == want ? "ok" : "FAIL", got, want);
	failed += got != want;
}

#define ITEMS 1000
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int slot, full, done;
static long consumed;

static void *consumer(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&lock);
		while (!full && !done)
			pthread_cond_wait(&changed, &lock);
		if (!full && done) {
			pthread_mutex_unlock(&lock);
			return 0;
		}
		consumed += slot;
		full = 0;
		pthread_cond_signal(&changed);
		pthread_mutex_unlock(&lock);
	}
}

int main(void)
{
	char buf[64];
	snprintf(buf, sizeof buf, "%5.2f|%-4s|%x", 2.5, "ab", 255);
	check("snprintf", strcmp(buf, " 2.50|ab  |ff"), 0);

	long small_ok = 1;
	char *small[1000];
	for (int i = 0; i < 1000; i++) {
		small[i] = malloc(16 + i % 100);
		small_ok &= small[i] != 0;
		memset(small[i], i & 0xff, 16);
	}
	for (int i = 0; i < 1000; i++) {
		small_ok &= (unsigned char)small[i][15] == (i & 0xff);
		free(small[i]);
	}
	check("1000 small blocks", small_ok, 1);
	size_t big_len = 8 << 20;
	unsigned char *big = malloc(big_len);
	check("an 8 MiB block", big != 0, 1);
	if (big) {
		for (size_t i = 0; i < big_len; i += 4096)
			big[i] = (unsigned char)(i >> 12);
		long ok = 1;
		for (size_t i = 0; i < big_len; i += 4096)
			ok &= big[i] == (unsigned char)(i >> 12);
		check("its pages keep what was written", ok, 1);
		free(big);
	}

	pthread_t t;
	check("pthread_create", pthread_create(&t, 0, consumer, 0), 0);
	long sent = 0;
	for (int i = 1; i <= ITEMS; i++) {
		pthread_mutex_lock(&lock);
		while (full)
			pthread_cond_wait(&changed, &lock);
		slot = i;
		full = 1;
		sent += i;
		pthread_cond_signal(&changed);
		pthread_mutex_unlock(&lock);
	}
	pthread_mutex_lock(&lock);
	done = 1;
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
	check("pthread_join", pthread_join(t, 0), 0);
	check("every item handed over", consumed, sent);
	return failed != 0;
}
