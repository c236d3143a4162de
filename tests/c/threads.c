/* POSIX threads on our kernel: clone with CLONE_THREAD, futexes, thread exit and join, thread
 * ids, TLS, robust mutexes, signals to a multithreaded process. One line per check; exits 0
 * iff all passed. `threads exitgroup` ends the process from a thread with exit(3); `threads
 * exec` execs `/bin/args` (our archive; on the host, args beside this program) from a
 * thread while others run; `threads hundred`: 100 threads increment one counter under a mutex;
 * `threads fault`: a thread's null-pointer write kills the whole process (SIGSEGV). Linux gives
 * the same answers, so this runs on the host too. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int failed;

static void check(const char *what, long got, long want)
{
	printf("threads: %s: %s (%ld, expected %ld)\n", what, got == want ? "ok" : "FAIL", got, want);
	failed += got != want;
}

#define NTHREADS 4
#define ROUNDS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static __thread long mine;

static void *add(void *arg)
{
	for (int i = 0; i < ROUNDS; i++) {
		pthread_mutex_lock(&lock);
		counter++;
		pthread_mutex_unlock(&lock);
		mine++;
		if (i % 1000 == 0)
			sched_yield();
	}
	return (void *)(mine + (long)arg);
}

static pid_t tids[NTHREADS];
static void *ids(void *arg)
{
	long i = (long)arg;
	tids[i] = (pid_t)syscall(SYS_gettid);
	return (void *)(long)getpid();
}

static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int ready, woken;
static void *waiter(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	ready++;
	while (ready > 0)
		pthread_cond_wait(&cond, &lock);
	woken++;
	pthread_mutex_unlock(&lock);
	return 0;
}

static pthread_mutex_t robust;
static void *die_holding(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&robust);
	return 0; /* exits with the robust mutex held */
}

static volatile sig_atomic_t got_usr1;
static volatile pid_t usr1_tid;
static void on_usr1(int sig)
{
	(void)sig;
	got_usr1++;
	usr1_tid = (pid_t)syscall(SYS_gettid);
}

static void *blocker(void *arg)
{
	(void)arg;
	sleep(1);
	return 0;
}

static void *exit_three(void *arg)
{
	(void)arg;
	exit(3);
}

static void *spin(void *arg)
{
	(void)arg;
	for (;;)
		sched_yield();
}

static void *fault(void *arg)
{
	(void)arg;
	*(volatile int *)0 = 1;
	return 0;
}

static long shared;
static void *add_some(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++) {
		pthread_mutex_lock(&lock);
		shared++;
		pthread_mutex_unlock(&lock);
		if (i % 25 == 0)
			sched_yield();
	}
	return 0;
}

static char *self_dir;
static void *exec_args(void *arg)
{
	(void)arg;
	char path[512];
	execl("/bin/args", "args", "from", "a", "thread", (char *)0);
	snprintf(path, sizeof path, "%s/args", self_dir);
	execl(path, "args", "from", "a", "thread", (char *)0);
	perror("execl");
	exit(99);
}

int main(int argc, char **argv)
{
	pthread_t t[NTHREADS];
	void *ret;

	if (argc > 1 && !strcmp(argv[1], "exitgroup")) {
		pthread_create(&t[0], 0, spin, 0);
		pthread_create(&t[1], 0, exit_three, 0);
		for (;;)
			pause();
	}
	if (argc > 1 && !strcmp(argv[1], "fault")) {
		pthread_create(&t[0], 0, spin, 0);
		pthread_create(&t[1], 0, fault, 0);
		for (;;)
			pause();
	}
	if (argc > 1 && !strcmp(argv[1], "hundred")) {
		static pthread_t many[100];
		long created = 0;
		for (int i = 0; i < 100; i++)
			created += pthread_create(&many[i], 0, add_some, 0) == 0;
		for (int i = 0; i < 100; i++)
			pthread_join(many[i], 0);
		check("100 threads created", created, 100);
		check("their 10000 increments", shared, 10000);
		return failed != 0;
	}
	if (argc > 1 && !strcmp(argv[1], "exec")) {
		char *slash = strrchr(argv[0], '/');
		self_dir = slash ? (*slash = 0, argv[0]) : ".";
		pthread_create(&t[0], 0, spin, 0);
		pthread_create(&t[1], 0, exec_args, 0);
		for (;;)
			pause();
	}

	/* Four threads, one mutex: no increment lost; each has its own TLS. */
	for (long i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], 0, add, (void *)(i * 1000000));
	long tls_ok = 1;
	for (long i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], &ret);
		tls_ok &= (long)ret == ROUNDS + i * 1000000;
	}
	check("counter under a mutex", counter, (long)NTHREADS * ROUNDS);
	check("each thread's own __thread variable", tls_ok, 1);
	check("main's __thread variable untouched", mine, 0);

	/* Thread ids: distinct, not the pid; getpid the same in every thread. */
	for (long i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], 0, ids, (void *)i);
	long same_pid = 1, distinct = 1;
	for (long i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], &ret);
		same_pid &= (long)ret == getpid();
		distinct &= tids[i] != getpid() && tids[i] > 0;
		for (long j = 0; j < i; j++)
			distinct &= tids[i] != tids[j];
	}
	check("getpid is the same in every thread", same_pid, 1);
	check("gettid is each thread's own", distinct, 1);
	check("gettid of the main thread is the pid", syscall(SYS_gettid), getpid());

	/* A broadcast wakes every waiter. */
	for (long i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], 0, waiter, 0);
	for (;;) {
		pthread_mutex_lock(&lock);
		int all = ready == NTHREADS;
		if (all) {
			ready = 0;
			pthread_cond_broadcast(&cond);
		}
		pthread_mutex_unlock(&lock);
		if (all)
			break;
		sched_yield();
	}
	for (long i = 0; i < NTHREADS; i++)
		pthread_join(t[i], 0);
	check("pthread_cond_broadcast woke every waiter", woken, NTHREADS);

	/* A timed wait times out. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 20 * 1000 * 1000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&lock);
	check("pthread_cond_timedwait times out", pthread_cond_timedwait(&cond, &lock, &until), ETIMEDOUT);
	pthread_mutex_unlock(&lock);

	/* The futex call itself: a changed word is EAGAIN, a bad address EFAULT. */
	int word = 1;
	long r = syscall(SYS_futex, &word, 128 /* FUTEX_WAIT_PRIVATE */, 0, 0, 0, 0);
	check("futex wait on a changed word", r < 0 ? -errno : r, -EAGAIN);
	r = syscall(SYS_futex, (int *)0xffffffff80100000UL, 128, 0, 0, 0, 0);
	check("futex wait on a kernel address", r < 0 ? -errno : r, -EFAULT);
	r = syscall(SYS_futex, (char *)&word + 1, 129 /* FUTEX_WAKE_PRIVATE */, 1, 0, 0, 0);
	check("futex wake on a misaligned word", r < 0 ? -errno : r, -EINVAL);
	r = syscall(SYS_futex, &word, 129, 1, 0, 0, 0);
	check("futex wake with no waiter", r, 0);

	/* A robust mutex whose owner died: the next locker hears EOWNERDEAD. */
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&robust, &a);
	pthread_create(&t[0], 0, die_holding, 0);
	pthread_join(t[0], 0);
	check("robust mutex after its owner died", pthread_mutex_lock(&robust), EOWNERDEAD);
	pthread_mutex_consistent(&robust);
	pthread_mutex_unlock(&robust);

	/* A signal to the process reaches a thread that does not block it. */
	signal(SIGUSR1, on_usr1);
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_create(&t[0], 0, blocker, 0);
	pthread_sigmask(SIG_BLOCK, &usr1, 0); /* the main thread blocks it; the new one does not */
	kill(getpid(), SIGUSR1);
	pthread_join(t[0], 0);
	check("a process signal ran its handler once", got_usr1, 1);
	check("in the thread that does not block it", usr1_tid != getpid(), 1);

	return failed != 0;
}
