/* bench: the benchmark harness (see docs/cli.md and README). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "job.h"

int main(int argc, char **argv)
{
    cli_openmp_defaults(argv);
    if (cli_asks_version(argc, argv, 1)) {
        cli_print_version("bench");
        return 0;
    }
    if (cli_asks_help(argc, argv, 1)) {
        bench_usage(stdout);
        return 0;
    }
    bench_set_command(argc, argv);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--report")) return bench_report_main(argc, argv);
        if (!strcmp(argv[i], "--sweep")) {
            /* Under an MPI launcher: the sweep over the job's processes (job_sweep.c). */
            cli_job job;
            int rc = cli_job_init(&job, &argc, &argv, "bench");
            if (rc) return rc;
            rc = job.size > 1 ? bench_sweep_job(argc, argv, &job) : bench_sweep_main(argc, argv);
            cli_job_finish(&job);
            return rc;
        }
        if (!strcmp(argv[i], "--gemm")) return bench_gemm_main(argc, argv);
        if (!strcmp(argv[i], "--peers")) return bench_peers_main(argc, argv);
        if (!strcmp(argv[i], "--merge")) return bench_merge_main(argc, argv);
    }
    fprintf(stderr, "bench: expected --sweep, --gemm, --peers, --merge or --report (see bench --help)\n");
    return EXIT_USAGE;
}
