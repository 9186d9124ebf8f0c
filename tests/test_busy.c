/* A busy machine must not break training: `scratchnet train` on 2 threads beside a
 * CPU-bound process pinned to one core stays within a generous bound of 1 thread, and
 * saves the same bits. Before the team policy (pace.h) and bounded waits (sync.h),
 * 2 threads ran at 0.01-0.5x of 1 thread in this situation. The suite runs alone
 * (--jobs=1) without OMP_WAIT_POLICY, as a user would run the program. */
#define _GNU_SOURCE /* sched_setaffinity, prctl */
#include <criterion/criterion.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

static pid_t start_busy_child(void)
{
    const pid_t parent = getpid();
    fflush(NULL);
    const pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork failed");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(0);
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(0, &one);
        sched_setaffinity(0, sizeof one, &one); /* a neighbour on core 0 */
        volatile unsigned long x = 0;
        for (;;) x = x * 6364136223846793005ul + 1;
    }
    return pid;
}

/* Trains on the subset; returns train_s (training steps only) from the summary line. */
static double train(int threads, const char *save)
{
    char cmd[1024], out[4096], err[4096];
    snprintf(cmd, sizeof cmd,
             "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u SCRATCHNET_TEAM %s train --data %s --epochs 10 --batch 32 "
             "--val 0 --threads %d --quiet --save %s",
             TU_SCRATCHNET, TU_SUBSET, threads, save);
    const int rc = tu_run(cmd, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: exit %d: %s", cmd, rc, err);
    const char *p = strstr(out, "train_s=");
    cr_assert(p, "no train_s in: %s", out);
    return atof(p + 8);
}

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

Test(busy, two_threads_beside_a_busy_process)
{
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) cr_skip_test("needs 2 CPUs");
    const char *dir = tu_tmpdir();
    const pid_t busy = start_busy_child();
    usleep(100000);
    /* Alternating runs, medians: the neighbour and the host are the same for both. */
    enum { RUNS = 5 };
    double t1[RUNS], t2[RUNS];
    for (int i = 0; i < RUNS; i++) {
        t1[i] = train(1, tu_path(dir, "one.bin"));
        t2[i] = train(2, tu_path(dir, "two.bin"));
    }
    kill(busy, SIGKILL);
    waitpid(busy, NULL, 0);
    qsort(t1, RUNS, sizeof *t1, by_value);
    qsort(t2, RUNS, sizeof *t2, by_value);
    const double m1 = t1[RUNS / 2], m2 = t2[RUNS / 2];
    cr_log_info("beside a busy process: 1 thread %.3f s, 2 threads %.3f s (median of %d)", m1, m2, RUNS);
    /* 3x: generous (the target, 2 threads >= 1 thread, is the benchmark's to check);
     * the collapse it guards against was 2-100x. */
    cr_assert_leq(m2, 3.0 * m1, "2 threads took %.3f s, 1 thread %.3f s: more than 3x", m2, m1);
    size_t n1, n2;
    unsigned char *a = tu_read(tu_path(dir, "one.bin"), &n1), *b = tu_read(tu_path(dir, "two.bin"), &n2);
    cr_assert(a && b && n1 == n2 && memcmp(a, b, n1) == 0, "1 and 2 threads saved different models under load");
    free(a), free(b);
}
