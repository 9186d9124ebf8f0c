/* bench --load N: N CPU-bound busy processes beside the benchmark, so that anyone can
 * see how training behaves on a machine where something else is running (a build, a
 * browser, another job). Each is a child that spins until it is killed: by
 * bench_load_stop, or by the kernel when bench dies in any way (PR_SET_PDEATHSIG), so a
 * Ctrl-C, an error exit or a crash never leaves one behind. */
#define _GNU_SOURCE /* prctl */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include "bench.h"

static void spin_forever(void)
{
    volatile unsigned long x = 0;
    for (;;) x = x * 6364136223846793005ul + 1; /* pure ALU work, no memory traffic */
}

int bench_load_start(int n, bench_load *load)
{
    load->n = 0;
    const pid_t parent = getpid();
    for (int i = 0; i < n && i < BENCH_LOAD_MAX; i++) {
        fflush(NULL); /* a child must not flush the parent's buffered output */
        const pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "bench: --load: cannot start busy process %d of %d: %s\n", i + 1, n, strerror(errno));
            bench_load_stop(load);
            return 0;
        }
        if (pid == 0) {
#if defined(__linux__)
            prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
            if (getppid() != parent) _exit(0); /* the parent died before prctl */
            spin_forever();
        }
        load->pid[load->n++] = pid;
    }
    return 1;
}

void bench_load_stop(bench_load *load)
{
    for (int i = 0; i < load->n; i++) kill(load->pid[i], SIGKILL);
    for (int i = 0; i < load->n; i++)
        while (waitpid(load->pid[i], NULL, 0) < 0 && errno == EINTR) {
        }
    load->n = 0;
}
