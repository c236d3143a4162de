/* vdso: clock_gettime, gettimeofday and time, called many times the ordinary way (libc, which
 * uses the vDSO when the kernel maps one), agree with the system call and never go backwards.
 * Prints how many system calls it made itself, so that a test can compare the kernel's count.
 * Then the same in a forked child and in an exec'd one. Also looks the vDSO up as libc does (AT_SYSINFO_EHDR) and prints what it found. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 100000
/* Checks against the system call, which costs ~60 µs in our guest on kvm_pvm. */
#define AGREE 500

static int64_t ns(const struct timespec *t) { return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec; }

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("vdso: FAIL " __VA_ARGS__);                                                     \
            printf("\n");                                                                          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* The symbol `name` of the vDSO at `eh`, found through DT_HASH and DT_SYMTAB as musl does. */
static void *vdso_sym(const Elf64_Ehdr *eh, const char *name) {
    const Elf64_Phdr *ph = (const void *)((const char *)eh + eh->e_phoff);
    const Elf64_Dyn *dyn = 0;
    uintptr_t base = (uintptr_t)-1;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && base == (uintptr_t)-1)
            base = (uintptr_t)eh + ph[i].p_offset - ph[i].p_vaddr;
        else if (ph[i].p_type == PT_DYNAMIC)
            dyn = (const void *)((const char *)eh + ph[i].p_offset);
    }
    if (!dyn || base == (uintptr_t)-1) return 0;
    const char *strs = 0;
    const Elf64_Sym *syms = 0;
    const uint32_t *hash = 0;
    for (; dyn->d_tag; dyn++) {
        if (dyn->d_tag == DT_STRTAB) strs = (const char *)(base + dyn->d_un.d_ptr);
        if (dyn->d_tag == DT_SYMTAB) syms = (const void *)(base + dyn->d_un.d_ptr);
        if (dyn->d_tag == DT_HASH) hash = (const void *)(base + dyn->d_un.d_ptr);
    }
    if (!strs || !syms || !hash) return 0;
    for (uint32_t i = 0; i < hash[1]; i++)
        if (syms[i].st_shndx && !strcmp(strs + syms[i].st_name, name))
            return (void *)(base + syms[i].st_value);
    return 0;
}

/* All the checks, as `who` (the program, or a forked or exec'd child). */
static int checks(const char *who) {
    long own_syscalls = 0;
    const Elf64_Ehdr *eh = (const void *)getauxval(AT_SYSINFO_EHDR);
    if (eh && !memcmp(eh->e_ident, ELFMAG, SELFMAG)) {
        const char *names[] = {"__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time",
                               "__vdso_getcpu"};
        for (int i = 0; i < 4; i++)
            printf("%s: %s %s\n", who, names[i], vdso_sym(eh, names[i]) ? "found" : "missing");
        int (*getcpu_fn)(unsigned *, unsigned *, void *) = vdso_sym(eh, "__vdso_getcpu");
        unsigned cpu = 99, node = 99;
        if (getcpu_fn) {
            CHECK(getcpu_fn(&cpu, &node, 0) == 0 && cpu < 64 && node < 64, "getcpu %u %u", cpu,
                  node);
        }
    } else {
        printf("%s: no vDSO\n", who);
    }

    /* Each clock: a libc reading between two system-call readings lies between them. */
    clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME, CLOCK_MONOTONIC_RAW};
    for (int c = 0; c < 4; c++) {
        struct timespec a, b, s;
        int64_t prev = 0;
        for (int i = 0; i < AGREE; i++) {
            syscall(SYS_clock_gettime, clocks[c], &s);
            clock_gettime(clocks[c], &a);
            CHECK(ns(&a) >= ns(&s), "clock %d: libc %lld before the syscall's %lld", clocks[c],
                  (long long)ns(&a), (long long)ns(&s));
            CHECK(ns(&a) >= prev, "clock %d went backwards", clocks[c]);
            CHECK(a.tv_nsec >= 0 && a.tv_nsec < 1000000000, "clock %d: tv_nsec %ld", clocks[c],
                  a.tv_nsec);
            syscall(SYS_clock_gettime, clocks[c], &b);
            CHECK(ns(&b) >= ns(&a), "clock %d: syscall %lld before libc's %lld", clocks[c],
                  (long long)ns(&b), (long long)ns(&a));
            prev = ns(&a);
            own_syscalls += 2;
            if (failures > 10) return 1;
        }
    }

    /* Many calls in a row: monotonic, and cheap enough for ROUNDS of them. */
    struct timespec t0, t1, prev = {0, 0};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < ROUNDS; i++) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        CHECK(ns(&t) >= ns(&prev), "monotonic went backwards at %d", i);
        prev = t;
        if (failures > 10) return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);

    /* gettimeofday and time against CLOCK_REALTIME by the system call. Linux's time() is the
       coarse clock (the seconds of the last tick), which may trail CLOCK_REALTIME by a tick across
       a second's boundary, so its lower bound is CLOCK_REALTIME_COARSE read before it. */
    for (int i = 0; i < AGREE; i++) {
        struct timespec s, sc, e;
        struct timeval tv;
        syscall(SYS_clock_gettime, CLOCK_REALTIME_COARSE, &sc);
        syscall(SYS_clock_gettime, CLOCK_REALTIME, &s);
        gettimeofday(&tv, 0);
        time_t t = time(0);
        syscall(SYS_clock_gettime, CLOCK_REALTIME, &e);
        own_syscalls += 3;
        int64_t us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
        CHECK(us >= ns(&s) / 1000 && us <= ns(&e) / 1000, "gettimeofday %lld outside [%lld, %lld]",
              (long long)us, (long long)ns(&s) / 1000, (long long)ns(&e) / 1000);
        CHECK(tv.tv_usec >= 0 && tv.tv_usec < 1000000, "tv_usec %ld", (long)tv.tv_usec);
        CHECK(t >= sc.tv_sec && t <= e.tv_sec, "time %lld outside [%lld, %lld]", (long long)t,
              (long long)sc.tv_sec, (long long)e.tv_sec);
        if (failures > 10) return 1;
    }

    /* A clock the vDSO leaves to the kernel gets the kernel's own answer. */
    struct timespec cpu;
    errno = 0;
    int r = clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    int e = r ? errno : 0;
    long k = syscall(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, &cpu);
    int ke = k ? errno : 0;
    own_syscalls++;
    CHECK(e == ke, "CLOCK_PROCESS_CPUTIME_ID: libc says %d, the kernel %d", e, ke);
    printf("%s: CLOCK_PROCESS_CPUTIME_ID -> %d\n", who, e);

    printf("%s: %d monotonic reads took %lld ns\n", who, ROUNDS,
           (long long)(ns(&t1) - ns(&t0)));
    printf("%s: own system calls %ld\n", who, own_syscalls);
    printf("%s: %s\n", who, failures ? "FAILED" : "all agree");
    fflush(stdout);
    return failures != 0;
}

/* The checks, then again in a forked child (fork keeps the vDSO) and in a child that execs
 * this program (exec maps it anew): `vdso exec` is that child. `vdso write` and
 * `vdso writedata` write to the image and to the data page: both are killed by SIGSEGV. */
int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "exec")) return checks("vdso exec");
    if (argc > 1 && (!strcmp(argv[1], "write") || !strcmp(argv[1], "writedata"))) {
        /* The image, or the page below it (our data page; Linux's vvar): read-only, SIGSEGV. */
        volatile char *p = (volatile char *)getauxval(AT_SYSINFO_EHDR);
        if (!p) return 2;
        if (!strcmp(argv[1], "writedata")) p -= 4096;
        printf("vdso: writing to %p\n", (void *)p);
        fflush(stdout);
        *p = *p;
        printf("vdso: still alive\n");
        return 1;
    }
    if (checks("vdso")) return 1;
    pid_t child = fork();
    if (child == 0) _exit(checks("vdso fork"));
    int status = -1;
    waitpid(child, &status, 0);
    if (status != 0) {
        printf("vdso: the forked child ended with status %#x\n", status);
        return 1;
    }
    child = fork();
    if (child == 0) {
        char *args[] = {argv[0], "exec", 0};
        execv("/proc/self/exe", args);
        _exit(126);
    }
    waitpid(child, &status, 0);
    if (status != 0) {
        printf("vdso: the exec'd child ended with status %#x\n", status);
        return 1;
    }
    printf("vdso: fork and exec agree too\n");
    return 0;
}
