/* signals: rt_sigaction, rt_sigprocmask, rt_sigpending, rt_sigsuspend, rt_sigreturn, kill,
 * tgkill, alarm, setitimer, sigaltstack, as Linux has them. A handler runs and returns with
 * every register and the SSE state intact (synchronously after kill, and asynchronously from a
 * timer), the frame's ucontext holds them and sigreturn restores what the handler leaves
 * there; masked signals stay pending; SIGKILL and SIGSTOP cannot be caught or blocked; EINTR
 * and SA_RESTART on a blocking read; SA_RESETHAND, SA_NODEFER, SA_SIGINFO's fields,
 * sigaltstack, alarm; faults in ring 3 delivered to handlers; and forged sigreturn frames that
 * never reach ring 0. Exits 0 iff all passed. */
#define _GNU_SOURCE
#define PROG "signals"
#include "check.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>

#include "sigregs.h"

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

static void handle(int sig, void (*h)(int), int flags)
{
	struct sigaction sa = { .sa_handler = h, .sa_flags = flags };
	CHECK(sigaction(sig, &sa, 0) == 0);
}

static void handle_info(int sig, void (*h)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa = { .sa_sigaction = h, .sa_flags = flags | SA_SIGINFO };
	CHECK(sigaction(sig, &sa, 0) == 0);
}

static void set_timer_us(long first, long interval)
{
	struct itimerval it = { { interval / 1000000, interval % 1000000 },
				{ first / 1000000, first % 1000000 } };
	CHECK(setitimer(ITIMER_REAL, &it, 0) == 0);
}

/* ---- registers ---------------------------------------------------------------------- */

static const int gpr_slots[] = { R_RAX, R_RBX, R_RCX, R_RDX, R_RSI, R_RDI, R_RBP, R_R8,
				 R_R9,  R_R10, R_R11, R_R12, R_R13, R_R14, R_R15 };
static const char *const gpr_names[] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8",
					 "r9",	"r10", "r11", "r12", "r13", "r14", "r15" };
/* The same registers' places in mcontext's gregs. */
static const int greg_index[] = { REG_RAX, REG_RBX, REG_RCX, REG_RDX, REG_RSI,
				  REG_RDI, REG_RBP, REG_R8,  REG_R9,  REG_R10,
				  REG_R11, REG_R12, REG_R13, REG_R14, REG_R15 };

static void fill_inputs(unsigned long seed)
{
	for (int i = 0; i < R_COUNT; i++)
		regs_in[i] = 0x0101010101010101UL * (unsigned long)(i + 1) ^ seed;
	regs_in[R_MXCSR] = 0xbf80; /* flush-to-zero, round down, exceptions masked */
	memset(regs_out, 0, sizeof regs_out);
}

/* Every register came back as it was loaded, except those listed in `skip` (by slot). */
static void check_outputs(const char *what, unsigned long skip)
{
	int wrong = 0;
	for (int i = 0; i < 15; i++) {
		int s = gpr_slots[i];
		if (skip & (1UL << s))
			continue;
		if (regs_out[s] != regs_in[s]) {
			printf("signals: %s: %s = %#lx, expected %#lx\n", what, gpr_names[i],
			       regs_out[s], regs_in[s]);
			wrong++;
		}
	}
	for (int i = 0; i < 32; i++) {
		if (regs_out[R_XMM + i] != regs_in[R_XMM + i]) {
			printf("signals: %s: xmm%d word %d = %#lx, expected %#lx\n", what, i / 2,
			       i % 2, regs_out[R_XMM + i], regs_in[R_XMM + i]);
			wrong++;
		}
	}
	if (regs_out[R_MXCSR] != regs_in[R_MXCSR])
		printf("signals: %s: mxcsr = %#lx, expected %#lx\n", what, regs_out[R_MXCSR],
		       regs_in[R_MXCSR]);
	CHECK_EQ(wrong, 0);
	CHECK_EQ(regs_out[R_MXCSR] & 0xffff, regs_in[R_MXCSR]);
	CHECK(regs_out[R_FLAGS] & 0x400); /* DF, set before, still set */
	CHECK(regs_out[R_FLAGS] & 0x200); /* IF */
	CHECK_EQ(regs_out[R_RSP], regs_rsp_before);
}

/* What the SA_SIGINFO handler saw in its ucontext, and what it changes there. */
static greg_t seen_gregs[NGREG];
static unsigned long seen_xmm[32];
static unsigned seen_mxcsr;
static unsigned long handler_flags;
static int modify_context;
#define NEW_R12 0x1122334455667788UL
#define NEW_XMM5 0x5a5a5a5a5a5a5a5aUL

static void context_handler(int sig, siginfo_t *si, void *ucv)
{
	(void)sig, (void)si;
	ucontext_t *uc = ucv;
	unsigned long fl;
	__asm__ volatile("pushf; pop %0" : "=r"(fl));
	handler_flags = fl;
	memcpy(seen_gregs, uc->uc_mcontext.gregs, sizeof seen_gregs);
	if (uc->uc_mcontext.fpregs) {
		memcpy(seen_xmm, uc->uc_mcontext.fpregs->_xmm, sizeof seen_xmm);
		seen_mxcsr = uc->uc_mcontext.fpregs->mxcsr;
	}
	if (modify_context) {
		uc->uc_mcontext.gregs[REG_R12] = (greg_t)NEW_R12;
		uc->uc_mcontext.fpregs->_xmm[5].element[0] = 0x5a5a5a5a;
		uc->uc_mcontext.fpregs->_xmm[5].element[1] = 0x5a5a5a5a;
		uc->uc_mcontext.fpregs->_xmm[5].element[2] = 0x5a5a5a5a;
		uc->uc_mcontext.fpregs->_xmm[5].element[3] = 0x5a5a5a5a;
	}
	regs_handler_ran = 1;
}

static void check_context(const char *what, unsigned long skip)
{
	for (int i = 0; i < 15; i++) {
		if (skip & (1UL << gpr_slots[i]))
			continue;
		if ((unsigned long)seen_gregs[greg_index[i]] != regs_in[gpr_slots[i]]) {
			printf("signals: %s: ucontext %s = %#lx, expected %#lx\n", what,
			       gpr_names[i], (unsigned long)seen_gregs[greg_index[i]],
			       regs_in[gpr_slots[i]]);
			CHECK(0);
		}
	}
	for (int i = 0; i < 32; i++)
		CHECK(seen_xmm[i] == regs_in[R_XMM + i]);
	CHECK_EQ(seen_mxcsr & 0xffff, regs_in[R_MXCSR]);
	CHECK(seen_gregs[REG_EFL] & 0x400);
	CHECK(!(handler_flags & 0x400)); /* the handler starts with DF clear, as the ABI says */
}

static void registers(void)
{
	pid_t me = getpid();
	/* Synchronous: the signal arrives on the way out of kill. rax is kill's result, rcx and
	 * r11 are the syscall instruction's. */
	unsigned long sync_skip = 1UL << R_RAX | 1UL << R_RCX | 1UL << R_R11;
	handle(SIGUSR1, regs_trash_handler, 0);
	fill_inputs(0);
	regs_in[R_RDI] = (unsigned long)me;
	regs_in[R_RSI] = SIGUSR1;
	regs_handler_ran = 0;
	regs_kill();
	CHECK_EQ(regs_handler_ran, 1);
	CHECK_EQ(regs_out[R_RAX], 0);
	check_outputs("after kill", sync_skip);

	/* The frame holds them too, and sigreturn takes what the handler leaves there. */
	handle_info(SIGUSR1, context_handler, 0);
	fill_inputs(0x5555);
	regs_in[R_RDI] = (unsigned long)me;
	regs_in[R_RSI] = SIGUSR1;
	modify_context = 1;
	regs_kill();
	modify_context = 0;
	CHECK_EQ(regs_handler_ran, 1);
	CHECK_EQ(seen_gregs[REG_RIP], (greg_t)regs_kill_after);
	CHECK_EQ(seen_gregs[REG_RSP], (greg_t)regs_rsp_before);
	CHECK_EQ(seen_gregs[REG_RAX], 0);
	check_context("kill", sync_skip);
	CHECK_EQ(regs_out[R_R12], NEW_R12);
	CHECK_EQ(regs_out[R_XMM + 10], NEW_XMM5);
	CHECK_EQ(regs_out[R_XMM + 11], NEW_XMM5);
	regs_in[R_R12] = NEW_R12;
	regs_in[R_XMM + 10] = regs_in[R_XMM + 11] = NEW_XMM5;
	check_outputs("after kill, modified context", sync_skip);
	PASSED("registers and SSE state across a handler (kill)");

	/* Asynchronous: a timer's signal lands in the middle of a loop; every register counts,
	 * rax, rcx and r11 included. */
	handle(SIGALRM, regs_trash_handler, 0);
	int hits = 0;
	for (int round = 0; round < 3; round++) {
		fill_inputs(0xabc0 + (unsigned long)round);
		regs_spin_budget = 4000000000UL;
		set_timer_us(2000, 2000);
		regs_spin();
		set_timer_us(0, 0);
		hits += regs_handler_ran;
		CHECK(regs_spin_budget > 0);
		check_outputs("after a timer signal", 0);
	}
	CHECK_EQ(hits, 3);
	handle_info(SIGALRM, context_handler, 0);
	fill_inputs(0xdef0);
	regs_spin_budget = 4000000000UL;
	set_timer_us(2000, 2000);
	regs_spin();
	set_timer_us(0, 0);
	CHECK_EQ(regs_handler_ran, 1);
	check_outputs("after a timer signal (SA_SIGINFO)", 0);
	check_context("timer", 0);
	CHECK(seen_gregs[REG_RIP] >= (greg_t)regs_spin_loop &&
	      seen_gregs[REG_RIP] <= (greg_t)regs_spin_end);
	signal(SIGALRM, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	PASSED("registers and SSE state across a handler (timer)");
}

/* ---- masks, pending, SIGKILL --------------------------------------------------------- */

static volatile sig_atomic_t count_usr1, count_usr2, order_pos, order[8];
static void count_handler(int sig)
{
	if (sig == SIGUSR1)
		count_usr1++;
	else
		count_usr2++;
	if (order_pos < 8)
		order[order_pos++] = sig;
}

static void masks_and_pending(void)
{
	handle(SIGUSR1, count_handler, 0);
	handle(SIGUSR2, count_handler, 0);
	count_usr1 = count_usr2 = order_pos = 0;
	sigset_t block, old, pend;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	CHECK(sigprocmask(SIG_BLOCK, &block, &old) == 0);
	CHECK(kill(getpid(), SIGUSR1) == 0);
	CHECK(kill(getpid(), SIGUSR1) == 0); /* standard signals do not queue */
	CHECK(syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR2) == 0);
	CHECK_EQ(count_usr1 + count_usr2, 0);
	CHECK(sigpending(&pend) == 0);
	CHECK(sigismember(&pend, SIGUSR1) && sigismember(&pend, SIGUSR2));
	CHECK(!sigismember(&pend, SIGHUP));
	/* Unblocking delivers both before sigprocmask returns (in an order Linux does not
	 * promise). */
	CHECK(sigprocmask(SIG_SETMASK, &old, 0) == 0);
	CHECK_EQ(count_usr1, 1);
	CHECK_EQ(count_usr2, 1);
	CHECK_EQ(order[0] + order[1], SIGUSR1 + SIGUSR2);
	CHECK(sigpending(&pend) == 0);
	CHECK(!sigismember(&pend, SIGUSR1));
	/* A blocked signal stays pending even if ignored (the disposition may change before it
	 * is unblocked)... */
	CHECK(sigprocmask(SIG_BLOCK, &block, 0) == 0);
	signal(SIGUSR2, SIG_IGN);
	CHECK(raise(SIGUSR2) == 0);
	CHECK(sigpending(&pend) == 0);
	CHECK(sigismember(&pend, SIGUSR2));
	signal(SIGUSR2, SIG_IGN);
	CHECK(sigpending(&pend) == 0);
	CHECK(!sigismember(&pend, SIGUSR2));
	/* ...and a pending one dropped when its disposition becomes SIG_IGN. */
	CHECK(raise(SIGUSR1) == 0);
	signal(SIGUSR1, SIG_IGN);
	CHECK(sigpending(&pend) == 0);
	CHECK(!sigismember(&pend, SIGUSR1));
	CHECK(sigprocmask(SIG_SETMASK, &old, 0) == 0);
	/* SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK, and a bad how. */
	sigset_t cur;
	CHECK(sigprocmask(SIG_BLOCK, &block, 0) == 0);
	CHECK(sigprocmask(SIG_UNBLOCK, 0, &cur) == 0);
	CHECK(sigismember(&cur, SIGUSR1));
	CHECK(sigprocmask(SIG_UNBLOCK, &block, &cur) == 0);
	CHECK(sigprocmask(SIG_BLOCK, 0, &cur) == 0);
	CHECK(!sigismember(&cur, SIGUSR1));
	CHECK_ERR(syscall(SYS_rt_sigprocmask, 7, &block, 0, 8), EINVAL);
	CHECK_ERR(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &block, 0, 4), EINVAL);
	/* rt_sigsuspend: waits with a temporary mask, the old one back afterwards. */
	handle(SIGUSR1, count_handler, 0);
	count_usr1 = 0;
	CHECK(sigprocmask(SIG_BLOCK, &block, &old) == 0);
	CHECK(raise(SIGUSR1) == 0);
	sigset_t none;
	sigemptyset(&none);
	CHECK_ERR(sigsuspend(&none), EINTR);
	CHECK_EQ(count_usr1, 1);
	CHECK(sigprocmask(SIG_BLOCK, 0, &cur) == 0);
	CHECK(sigismember(&cur, SIGUSR1));
	CHECK(sigprocmask(SIG_SETMASK, &old, 0) == 0);
	signal(SIGUSR1, SIG_DFL);
	signal(SIGUSR2, SIG_DFL);
	PASSED("masked signals stay pending, sigsuspend");
}

static void sigkill_and_sigstop(void)
{
	struct sigaction sa = { .sa_handler = count_handler }, cur;
	CHECK_ERR(sigaction(SIGKILL, &sa, 0), EINVAL);
	CHECK_ERR(sigaction(SIGSTOP, &sa, 0), EINVAL);
	sa.sa_handler = SIG_IGN;
	CHECK_ERR(sigaction(SIGKILL, &sa, 0), EINVAL);
	CHECK(sigaction(SIGKILL, 0, &cur) == 0); /* reading is allowed */
	CHECK(cur.sa_handler == SIG_DFL);
	CHECK_ERR(sigaction(0, &sa, 0), EINVAL);
	CHECK_ERR(sigaction(65, &sa, 0), EINVAL);
	CHECK_ERR(kill(getpid(), 65), EINVAL);
	CHECK_EQ(kill(getpid(), 0), 0);
	/* Blocking them is silently not done. */
	sigset_t all, cur_mask, old;
	sigfillset(&all);
	CHECK(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, &old, 8) == 0);
	CHECK(sigprocmask(SIG_BLOCK, 0, &cur_mask) == 0);
	CHECK(!sigismember(&cur_mask, SIGKILL));
	CHECK(!sigismember(&cur_mask, SIGSTOP));
	CHECK(sigismember(&cur_mask, SIGTERM));
	CHECK(sigprocmask(SIG_SETMASK, &old, 0) == 0);
	/* A child that blocks and ignores everything still dies of SIGKILL. */
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		for (int s = 1; s < 32; s++)
			signal(s, SIG_IGN);
		syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, 0, 8);
		(void)!write(p[1], "r", 1);
		for (;;)
			pause();
	}
	char c;
	CHECK_EQ(read(p[0], &c, 1), 1);
	CHECK(kill(pid, SIGTERM) == 0); /* ignored */
	CHECK(kill(pid, SIGKILL) == 0);
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	close(p[0]), close(p[1]);
	PASSED("SIGKILL and SIGSTOP cannot be caught, ignored or blocked");
}

/* ---- EINTR and SA_RESTART ------------------------------------------------------------ */

static volatile sig_atomic_t alarms;
static void on_alarm(int s)
{
	(void)s;
	alarms++;
}

static void eintr_and_restart(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	char buf[8];
	/* Without SA_RESTART: EINTR. */
	handle(SIGALRM, on_alarm, 0);
	alarms = 0;
	set_timer_us(20000, 0);
	CHECK_ERR(read(p[0], buf, sizeof buf), EINTR);
	CHECK_EQ(alarms, 1);
	/* With SA_RESTART: the read goes on and gets the bytes written later. */
	handle(SIGALRM, on_alarm, SA_RESTART);
	alarms = 0;
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		sleep_ms(150);
		_exit(write(p[1], "late", 4) == 4 ? 0 : 1);
	}
	set_timer_us(20000, 0);
	CHECK_EQ(read(p[0], buf, sizeof buf), 4);
	CHECK_EQ(alarms, 1);
	CHECK(memcmp(buf, "late", 4) == 0);
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK_EQ(st, 0);
	/* A blocking write to a full pipe, likewise. */
	static char big[1 << 17];
	handle(SIGALRM, on_alarm, 0);
	set_timer_us(20000, 0);
	ssize_t w = write(p[1], big, sizeof big);
	/* Linux: the bytes written before the signal, or EINTR if none fitted. */
	CHECK(w > 0 && w < (ssize_t)sizeof big);
	set_timer_us(20000, 0);
	CHECK_ERR(write(p[1], big, sizeof big), EINTR);
	/* nanosleep is EINTR with the time left, whatever SA_RESTART says. */
	handle(SIGALRM, on_alarm, SA_RESTART);
	struct timespec t = { 1, 0 }, left = { 0, 0 };
	set_timer_us(20000, 0);
	CHECK_ERR(nanosleep(&t, &left), EINTR);
	CHECK(left.tv_sec == 0 && left.tv_nsec > 500000000);
	/* pause always returns EINTR. */
	set_timer_us(10000, 0);
	CHECK_ERR(pause(), EINTR);
	signal(SIGALRM, SIG_DFL);
	close(p[0]), close(p[1]);
	PASSED("EINTR and SA_RESTART");
}

/* ---- flags -------------------------------------------------------------------------- */

static volatile sig_atomic_t depth, max_depth, calls;
static volatile int masked_inside;
static void nested_handler(int sig)
{
	calls++;
	depth++;
	if (depth > max_depth)
		max_depth = depth;
	sigset_t cur;
	sigprocmask(SIG_BLOCK, 0, &cur);
	masked_inside = sigismember(&cur, sig) | sigismember(&cur, SIGUSR2) << 1;
	if (calls == 1)
		raise(sig);
	depth--;
}

static void flags(void)
{
	/* Default: the signal is blocked in its handler, so the raise inside waits for the end. */
	struct sigaction sa = { .sa_handler = nested_handler }, cur;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR2);
	CHECK(sigaction(SIGUSR1, &sa, 0) == 0);
	calls = depth = max_depth = 0;
	CHECK(raise(SIGUSR1) == 0);
	CHECK_EQ(calls, 2);
	CHECK_EQ(max_depth, 1);
	CHECK_EQ(masked_inside, 3); /* the signal and sa_mask */
	/* SA_NODEFER: it nests. */
	sa.sa_flags = SA_NODEFER;
	CHECK(sigaction(SIGUSR1, &sa, 0) == 0);
	calls = depth = max_depth = 0;
	CHECK(raise(SIGUSR1) == 0);
	CHECK_EQ(calls, 2);
	CHECK_EQ(max_depth, 2);
	CHECK_EQ(masked_inside, 2); /* sa_mask only */
	/* The mask is back afterwards. */
	sigset_t m;
	CHECK(sigprocmask(SIG_BLOCK, 0, &m) == 0);
	CHECK(!sigismember(&m, SIGUSR1) && !sigismember(&m, SIGUSR2));
	/* SA_RESETHAND: once, then the default. */
	struct sigaction once = { .sa_handler = count_handler, .sa_flags = SA_RESETHAND };
	CHECK(sigaction(SIGUSR2, &once, 0) == 0);
	count_usr2 = 0;
	CHECK(raise(SIGUSR2) == 0);
	CHECK_EQ(count_usr2, 1);
	CHECK(sigaction(SIGUSR2, 0, &cur) == 0);
	CHECK(cur.sa_handler == SIG_DFL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK(sigaction(SIGUSR2, &once, 0) == 0);
		raise(SIGUSR2);
		raise(SIGUSR2); /* the default now: terminate */
		_exit(0);
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR2);
	/* sigaction reports back what was set: handler, flags, mask. */
	sa.sa_flags = SA_RESTART | SA_NODEFER;
	CHECK(sigaction(SIGUSR1, &sa, 0) == 0);
	CHECK(sigaction(SIGUSR1, 0, &cur) == 0);
	CHECK(cur.sa_handler == nested_handler);
	CHECK((cur.sa_flags & (SA_RESTART | SA_NODEFER | SA_SIGINFO)) == (SA_RESTART | SA_NODEFER));
	CHECK(sigismember(&cur.sa_mask, SIGUSR2));
	signal(SIGUSR1, SIG_DFL);
	signal(SIGUSR2, SIG_DFL);
	PASSED("SA_NODEFER, SA_RESETHAND, sa_mask");
}

static siginfo_t got_info;
static volatile sig_atomic_t info_calls;
static void info_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	got_info = *si;
	info_calls++;
}

static void siginfo_fields(void)
{
	handle_info(SIGUSR1, info_handler, 0);
	CHECK(kill(getpid(), SIGUSR1) == 0);
	CHECK_EQ(info_calls, 1);
	CHECK_EQ(got_info.si_signo, SIGUSR1);
	CHECK_EQ(got_info.si_code, SI_USER);
	CHECK_EQ(got_info.si_pid, getpid());
	CHECK_EQ(got_info.si_errno, 0);
	CHECK(syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1) == 0);
	CHECK_EQ(got_info.si_code, SI_TKILL);
	CHECK_EQ(got_info.si_pid, getpid());
	CHECK(syscall(SYS_tkill, syscall(SYS_gettid), SIGUSR1) == 0);
	CHECK_EQ(got_info.si_code, SI_TKILL);
	CHECK_ERR(syscall(SYS_tgkill, getpid(), 999999, SIGUSR1), ESRCH);
	CHECK_ERR(syscall(SYS_tgkill, 0, getpid(), SIGUSR1), EINVAL);
	CHECK_ERR(syscall(SYS_tkill, 0, SIGUSR1), EINVAL);
	/* From a child: its pid. */
	pid_t parent = getpid();
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(kill(parent, SIGUSR1) == 0 ? 0 : 1);
	while (info_calls < 4)
		sleep_ms(1);
	CHECK_EQ(got_info.si_pid, pid);
	/* SIGCHLD when that child exits: CLD_EXITED with its pid and status. */
	info_calls = 0;
	memset(&got_info, 0, sizeof got_info);
	handle_info(SIGCHLD, info_handler, 0);
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(33);
	for (int i = 0; i < 2000 && info_calls == 0; i++)
		sleep_ms(1);
	CHECK_EQ(info_calls, 1);
	CHECK_EQ(got_info.si_signo, SIGCHLD);
	CHECK_EQ(got_info.si_code, CLD_EXITED);
	CHECK_EQ(got_info.si_pid, pid);
	CHECK_EQ(got_info.si_status, 33);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	/* A timer's signal: SI_TIMER... Linux sends ITIMER_REAL's SIGALRM as SI_KERNEL? It uses
	 * SI_KERNEL for alarm/setitimer... checked by what both agree on: the signal number. */
	handle_info(SIGALRM, info_handler, 0);
	info_calls = 0;
	set_timer_us(5000, 0);
	while (info_calls == 0)
		pause();
	CHECK_EQ(got_info.si_signo, SIGALRM);
	signal(SIGALRM, SIG_DFL);
	PASSED("SA_SIGINFO fields");
}

/* ---- sigaltstack, alarm ------------------------------------------------------------- */

static char altstack[64 * 1024] __attribute__((aligned(16)));
static volatile uintptr_t handler_sp;
static volatile int onstack_inside;
static void altstack_handler(int s)
{
	(void)s;
	char local;
	handler_sp = (uintptr_t)&local;
	stack_t cur;
	sigaltstack(0, &cur);
	onstack_inside = cur.ss_flags & SS_ONSTACK;
}

static void alt_stack(void)
{
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack }, cur;
	CHECK(sigaltstack(0, &cur) == 0);
	CHECK(cur.ss_flags & SS_DISABLE);
	CHECK(sigaltstack(&ss, 0) == 0);
	CHECK(sigaltstack(0, &cur) == 0);
	CHECK(cur.ss_sp == altstack && cur.ss_size == sizeof altstack && cur.ss_flags == 0);
	/* Without SA_ONSTACK: the ordinary stack. */
	handle(SIGUSR1, altstack_handler, 0);
	CHECK(raise(SIGUSR1) == 0);
	CHECK(!(handler_sp >= (uintptr_t)altstack &&
		handler_sp < (uintptr_t)altstack + sizeof altstack));
	CHECK(!onstack_inside);
	/* With it: the alternate one, and sigaltstack says so inside. */
	handle(SIGUSR1, altstack_handler, SA_ONSTACK);
	CHECK(raise(SIGUSR1) == 0);
	CHECK(handler_sp >= (uintptr_t)altstack &&
	      handler_sp < (uintptr_t)altstack + sizeof altstack);
	CHECK(onstack_inside);
	/* Too small; bad flags. */
	stack_t small = { .ss_sp = altstack, .ss_size = 512 };
	CHECK_ERR(sigaltstack(&small, 0), ENOMEM);
	stack_t badf = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0x1234 };
	CHECK_ERR(sigaltstack(&badf, 0), EINVAL);
	stack_t off = { .ss_flags = SS_DISABLE };
	CHECK(sigaltstack(&off, 0) == 0);
	CHECK(sigaltstack(0, &cur) == 0 && (cur.ss_flags & SS_DISABLE));
	signal(SIGUSR1, SIG_DFL);
	PASSED("sigaltstack");
}

static void alarms_and_timers(void)
{
	handle(SIGALRM, on_alarm, 0);
	alarms = 0;
	CHECK_EQ(alarm(5), 0);
	CHECK_EQ(alarm(1), 5); /* seconds left of the one before (rounded) */
	long t0 = now_ms();
	while (alarms == 0)
		pause();
	long took = now_ms() - t0;
	CHECK(took >= 900 && took < 5000);
	CHECK_EQ(alarm(0), 0);
	/* alarm(0) cancels. */
	alarms = 0;
	CHECK_EQ(alarm(1), 0);
	CHECK(alarm(0) >= 1);
	/* setitimer: periodic, getitimer reads it, and 0 stops it. */
	set_timer_us(5000, 5000);
	struct itimerval it;
	CHECK(getitimer(ITIMER_REAL, &it) == 0);
	CHECK(it.it_interval.tv_usec == 5000 && it.it_interval.tv_sec == 0);
	CHECK(it.it_value.tv_sec == 0 && it.it_value.tv_usec <= 5000);
	while (alarms < 3)
		pause();
	set_timer_us(0, 0);
	int n = alarms;
	sleep_ms(30);
	CHECK_EQ(alarms, n);
	CHECK(getitimer(ITIMER_REAL, &it) == 0);
	CHECK(it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0);
	struct itimerval bad = { { 0, 1000000 }, { 0, 0 } };
	CHECK_ERR(setitimer(ITIMER_REAL, &bad, 0), EINVAL);
	/* The default action of SIGALRM: terminate. */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		signal(SIGALRM, SIG_DFL);
		set_timer_us(1000, 0);
		for (;;)
			pause();
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM);
	signal(SIGALRM, SIG_DFL);
	PASSED("alarm and setitimer");
}

static void *alarm_then_end(void *arg)
{
	(void)arg;
	alarm(1);
	return 0;
}

static void *take_alarm(void *left)
{
	*(unsigned *)left = alarm(0);
	return 0;
}

/* The alarm is the process's, not the thread's (POSIX; Linux's ITIMER_REAL is per process):
 * one set by a thread that then ends still rings, and a thread reads and cancels the alarm
 * another set. */
static void one_alarm_per_process(void)
{
	handle(SIGALRM, on_alarm, 0);
	alarms = 0;
	pthread_t th;
	CHECK_EQ(pthread_create(&th, 0, alarm_then_end, 0), 0);
	CHECK_EQ(pthread_join(th, 0), 0);
	for (int i = 0; i < 300 && alarms == 0; i++)
		sleep_ms(10);
	CHECK_EQ(alarms, 1);
	CHECK_EQ(alarm(5), 0);
	unsigned left = 99;
	CHECK_EQ(pthread_create(&th, 0, take_alarm, &left), 0);
	CHECK_EQ(pthread_join(th, 0), 0);
	CHECK(left >= 4 && left <= 5);
	CHECK_EQ(alarm(0), 0);
	signal(SIGALRM, SIG_DFL);
	PASSED("one alarm per process, whichever thread sets it");
}

/* ---- faults in ring 3 ---------------------------------------------------------------- */

static sigjmp_buf fault_jmp;
static siginfo_t fault_info;
static void fault_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	fault_info = *si;
	siglongjmp(fault_jmp, 1);
}

static volatile int zero;

#pragma GCC diagnostic ignored "-Winfinite-recursion"
static int recurse(int n)
{
	volatile char pad[1024];
	pad[0] = (char)n;
	return recurse(n + 1) + pad[0];
}

/* Runs fault `what`; returns the signal the handler got (0: none). */
static int fault(int what)
{
	memset(&fault_info, 0, sizeof fault_info);
	if (sigsetjmp(fault_jmp, 1) == 0) {
		switch (what) {
		case 0: /* #PF, a write to an unmapped page */
			*(volatile int *)bad_ptr(16) = 1;
			break;
		case 1: /* #UD */
			__asm__ volatile("ud2");
			break;
		case 2: /* #BP */
			__asm__ volatile("int3");
			break;
		case 3: /* #DE */
			__asm__ volatile("divl %0" ::"r"(zero), "a"(1), "d"(0));
			break;
		case 4: /* #GP: a privileged instruction */
			__asm__ volatile("hlt");
			break;
		case 5: /* #PF on a kernel address */
			(void)*(volatile int *)bad_ptr(0xffffffff80100000UL);
			break;
		case 6: /* the stack overflows: the handler needs the alternate stack */
			recurse(0);
			break;
		}
		return 0;
	}
	return fault_info.si_signo;
}

static void faults(void)
{
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack };
	CHECK(sigaltstack(&ss, 0) == 0);
	int sigs[] = { SIGSEGV, SIGILL, SIGTRAP, SIGFPE, SIGBUS };
	for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		handle_info(sigs[i], fault_handler, SA_ONSTACK | SA_NODEFER);
	CHECK_EQ(fault(0), SIGSEGV);
	CHECK_EQ(fault_info.si_code, SEGV_MAPERR);
	CHECK(fault_info.si_addr == bad_ptr(16));
	CHECK_EQ(fault(1), SIGILL);
	CHECK_EQ(fault_info.si_code, ILL_ILLOPN);
	CHECK_EQ(fault(2), SIGTRAP);
	CHECK_EQ(fault(3), SIGFPE);
	CHECK_EQ(fault_info.si_code, FPE_INTDIV);
	CHECK_EQ(fault(4), SIGSEGV);
	CHECK_EQ(fault(5), SIGSEGV);
	CHECK_EQ(fault(6), SIGSEGV);
	/* Again, to be sure each handler's return (by siglongjmp) left things usable. */
	for (int i = 0; i < 10; i++)
		CHECK_EQ(fault(i % 6), i % 6 == 1 ? SIGILL : i % 6 == 2 ? SIGTRAP
					     : i % 6 == 3 ? SIGFPE
							  : SIGSEGV);
	for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], SIG_DFL);
	stack_t off = { .ss_flags = SS_DISABLE };
	CHECK(sigaltstack(&off, 0) == 0);
	/* A fault with the signal blocked is fatal, as on Linux. */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		sigset_t m;
		sigemptyset(&m);
		sigaddset(&m, SIGSEGV);
		sigprocmask(SIG_BLOCK, &m, 0);
		*(volatile int *)bad_ptr(16) = 1;
		_exit(0);
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
	PASSED("faults in ring 3 reach their handlers");
}

/* ---- forged sigreturn frames --------------------------------------------------------- */

static int report_fd = -1;

/* Where a forged frame sends the program: it reports CS and RFLAGS, then tries `cli`, which
 * ring 3 without IOPL may not do. */
void landed_c(void)
{
	unsigned long v[2];
	unsigned short cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	__asm__ volatile("pushf; pop %0" : "=r"(v[1]));
	v[0] = cs;
	(void)!write(report_fd, v, sizeof v);
	__asm__ volatile("cli");
	_exit(0);
}
void landed(void);
__asm__(".text\n.globl landed\nlanded:\n and $-16, %rsp\n call landed_c\n ud2\n");

enum { F_KERNEL_CS, F_LINUX_KERNEL_CS, F_FLAGS, F_NONCANONICAL_RIP, F_KERNEL_RIP,
       F_NONCANONICAL_RSP, F_BAD_FPSTATE, F_COUNT };
static const char *const forgery_names[] = {
	"kernel CS and SS", "Linux's kernel CS and SS", "IOPL 3, NT, VM, AC, reserved flags",
	"non-canonical RIP", "kernel RIP", "non-canonical RSP", "fpstate in the kernel",
};
static int forgery;

static void forging_handler(int sig, siginfo_t *si, void *ucv)
{
	(void)sig, (void)si;
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	/* csgsfs: cs, gs, fs, ss (16 bits each). */
	unsigned long *csgsfs = (unsigned long *)&g[REG_CSGSFS];
	g[REG_RIP] = (greg_t)landed;
	switch (forgery) {
	case F_KERNEL_CS: /* ours: 0x08 code, 0x10 data */
		*csgsfs = (*csgsfs & 0x0000ffffffff0000UL) | 0x08 | 0x10UL << 48;
		break;
	case F_LINUX_KERNEL_CS:
		*csgsfs = (*csgsfs & 0x0000ffffffff0000UL) | 0x10 | 0x18UL << 48;
		break;
	case F_FLAGS:
		g[REG_EFL] |= 0x3000 | 0x4000 | 0x20000 | 0x80000 | 0x100000 | 0x8 | 0x20 |
			      0x8000 | 0xffffffff00400000UL;
		g[REG_EFL] &= ~0x202UL; /* IF and the always-one bit cleared */
		break;
	case F_NONCANONICAL_RIP:
		g[REG_RIP] = (greg_t)0x0000800000000000UL;
		break;
	case F_KERNEL_RIP:
		g[REG_RIP] = (greg_t)0xffffffff80100000UL;
		break;
	case F_NONCANONICAL_RSP:
		g[REG_RSP] = (greg_t)0x8000000000001000UL;
		break;
	case F_BAD_FPSTATE:
		uc->uc_mcontext.fpregs = bad_ptr(0xffffffff80100000UL);
		break;
	}
}

static void forged_frames(void)
{
	for (forgery = 0; forgery < F_COUNT; forgery++) {
		int p[2];
		CHECK(pipe(p) == 0);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			report_fd = p[1];
			handle_info(SIGUSR1, forging_handler, 0);
			raise(SIGUSR1);
			_exit(50); /* the forged frame did not take us to landed */
		}
		close(p[1]);
		unsigned long v[2] = { 0, 0 };
		ssize_t n = read(p[0], v, sizeof v);
		close(p[0]);
		int st;
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		const char *what = forgery_names[forgery];
		if (n == sizeof v) {
			/* Sanitised: it landed, in ring 3, without IOPL, VM or NT, interrupts on,
			 * and `cli` faulted. */
			printf("signals: forged frame (%s): sanitised, cs %#lx rflags %#lx\n", what,
			       v[0], v[1]);
			CHECK_EQ(v[0] & 3, 3);
			CHECK_EQ(v[1] & 0x3000, 0);
			CHECK_EQ(v[1] & 0x24000, 0);
			CHECK(v[1] & 0x200);
			CHECK(v[1] & 0x2);
			CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
		} else {
			/* Refused: killed by SIGSEGV before reaching landed. */
			printf("signals: forged frame (%s): refused, %s %d\n", what,
			       WIFSIGNALED(st) ? "signal" : "exit",
			       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
			CHECK_EQ(n, 0);
			/* Linux: SIGBUS for a non-canonical stack pointer (a #SS fault). */
			CHECK(WIFSIGNALED(st) &&
			      (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS));
		}
		/* A frame that must not work at all. */
		if (forgery == F_NONCANONICAL_RIP || forgery == F_KERNEL_RIP ||
		    forgery == F_NONCANONICAL_RSP)
			CHECK_EQ(n, 0);
	}
	/* rt_sigreturn with no handler frame, on a stack of zeros. */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		static unsigned long zeros[1024] __attribute__((aligned(16)));
		__asm__ volatile("mov %0, %%rsp\n mov $15, %%eax\n syscall" ::"r"(zeros + 16)
				 : "memory");
		_exit(51);
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
	/* And with the stack pointer in the kernel. */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		__asm__ volatile("mov %0, %%rsp\n mov $15, %%eax\n syscall" ::"r"(
					 0xffffffff80100000UL)
				 : "memory");
		_exit(52);
	}
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
	/* A system call whose return address is not canonical: `syscall` in the last two bytes
	 * of user space, so RCX = 0x800000000000 (the classic sysret trap). Linux cannot map that
	 * page at all; where it can be mapped, the program must die of SIGSEGV in ring 3. */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		unsigned char *top = mmap(bad_ptr(0x7ffffffff000UL), 4096,
					  PROT_READ | PROT_WRITE | PROT_EXEC,
					  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (top == MAP_FAILED)
			_exit(53);
		top[4094] = 0x0f, top[4095] = 0x05; /* syscall */
		__asm__ volatile("mov $39, %%eax\n jmp *%0" ::"r"(top + 4094) : "rax", "memory");
		_exit(54);
	}
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	printf("signals: syscall at the top of user space: %s %d\n",
	       WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 53) || (WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV));
	PASSED("forged sigreturn frames never reach ring 0");
}

int main(void)
{
	setvbuf(stdout, 0, _IONBF, 0);
	registers();
	masks_and_pending();
	sigkill_and_sigstop();
	eintr_and_restart();
	flags();
	siginfo_fields();
	alt_stack();
	alarms_and_timers();
	one_alarm_per_process();
	faults();
	forged_frames();
	ALL_PASSED();
	return 0;
}
