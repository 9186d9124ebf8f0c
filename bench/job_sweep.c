/* mpiexec -n R bench --sweep ...: the sweep over the R processes of an MPI job.
 *
 * Rank k runs the runs i with i mod R = k (bench --sweep --part k+1/R) into
 * OUT/mpi-parts/k+1-of-R, rank 0 having fetched the data first; then every rank sends
 * its part's files to rank 0, which writes them there (the same bytes again on a shared
 * file system) and merges the parts into OUT as bench --merge does: the same sweep.csv,
 * summary.csv and reps.csv rows, in run order, and the same charts as a sweep run by one
 * process. --resume resumes every rank's part (the same R: parts are per rank count). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "cli.h"
#include "job.h"
#include "scratchnet/modelfile.h"

static const char *const PART_FILES[] = { "sweep.csv", "summary.csv", "reps.csv", "labels.txt", NULL };

int bench_sweep_job(int argc, char **argv, cli_job *job)
{
    const char *out = ".", *data = NULL;
    int resume = 0, force = 0, no_plot = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "--part") || !strcmp(a, "--save-baseline") || !strcmp(a, "--baseline"))) {
            if (job->rank == 0)
                fprintf(stderr, "bench: %s is not for a sweep over the %d processes of an MPI job: %s\n", a, job->size,
                        !strcmp(a, "--part") ? "the job already splits the runs (rank k takes runs i with i mod R = k)"
                                             : "compare speeds on one machine, in one process");
            return EXIT_USAGE;
        }
        if (!strcmp(a, "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(a, "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(a, "--resume")) resume = 1;
        else if (!strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "--no-plot")) no_plot = 1;
        else if (!strcmp(a, "--quiet")) quiet = 1;
    }
    /* The same refusal a one-process sweep gives, before any work. */
    char summary[4096], parts_dir[4096], mine[4200];
    snprintf(summary, sizeof summary, "%s/summary.csv", out);
    snprintf(parts_dir, sizeof parts_dir, "%s/mpi-parts", out);
    snprintf(mine, sizeof mine, "%s/%d-of-%d", parts_dir, job->rank + 1, job->size);
    struct stat st;
    if (!resume && !force && stat(summary, &st) == 0) {
        if (job->rank == 0)
            fprintf(stderr, "bench: --out %s already holds a sweep (summary.csv); add --resume to continue it, --force "
                            "to replace it, or name another --out\n", out);
        return EXIT_USAGE;
    }
    /* Rank 0 fetches the data (if it must) before the others read it. */
    int failed = 0;
    if (job->rank == 0) {
        failed = !cli_ensure_mnist("bench", cli_data_dir(data));
        failed |= (mkdir(out, 0777) != 0 && errno != EEXIST) || (mkdir(parts_dir, 0777) != 0 && errno != EEXIST);
        if (failed && errno) fprintf(stderr, "bench: --out: cannot create %s: %s\n", parts_dir, strerror(errno));
    }
    if (cli_job_sum_int(job, failed)) return EXIT_RUNTIME;
    /* This rank's part: the arguments as given, its --part and its --out. */
    char part[64];
    snprintf(part, sizeof part, "%d/%d", job->rank + 1, job->size);
    char **args = calloc((size_t)argc + 8, sizeof(char *));
    if (!args) return EXIT_RUNTIME;
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) { i++; continue; }
        args[n++] = argv[i];
    }
    args[n++] = "--part", args[n++] = part, args[n++] = "--out", args[n++] = mine;
    /* Ranks share nodes: one's probes would slow the others' runs, and each would see the
     * others' work as noise. */
    args[n++] = "--no-sentinel";
    if (job->rank > 0 && !quiet) args[n++] = "--quiet";
    args[n] = NULL;
    const int rc = bench_sweep_main(n, args);
    free(args);
    if (cli_job_sum_int(job, rc != 0)) {
        if (job->rank == 0) fprintf(stderr, "bench: a part of the sweep failed (see above); nothing merged\n");
        return rc ? rc : EXIT_RUNTIME;
    }
    /* Every part's files to rank 0, then the merge. */
    failed = 0;
    if (job->rank > 0) {
        for (int f = 0; PART_FILES[f]; f++) {
            char path[4400];
            snprintf(path, sizeof path, "%s/%s", mine, PART_FILES[f]);
            FILE *fp = fopen(path, "rb");
            char *buf = NULL;
            long len = 0;
            if (fp && fseek(fp, 0, SEEK_END) == 0 && (len = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0 &&
                (buf = malloc((size_t)len + 1)) && fread(buf, 1, (size_t)len, fp) == (size_t)len) {
            } else {
                len = 0;
            }
            if (fp) fclose(fp);
            failed |= cli_job_send(job, 0, buf ? buf : "", (size_t)len) != 0;
            free(buf);
        }
    } else {
        for (int r = 1; r < job->size; r++) {
            char dir[4200];
            snprintf(dir, sizeof dir, "%s/%d-of-%d", parts_dir, r + 1, job->size);
            if (mkdir(dir, 0777) != 0 && errno != EEXIST) failed = 1;
            for (int f = 0; PART_FILES[f]; f++) {
                char *buf;
                size_t len;
                if (cli_job_recv(job, r, &buf, &len)) { failed = 1; continue; }
                char path[4400];
                snprintf(path, sizeof path, "%s/%s", dir, PART_FILES[f]);
                sn_error err;
                if (len && sn_write_file_atomic(path, buf, len, &err)) {
                    fprintf(stderr, "bench: %s\n", err.msg);
                    failed = 1;
                }
                free(buf);
            }
        }
    }
    if (cli_job_sum_int(job, failed)) {
        if (job->rank == 0) fprintf(stderr, "bench: the parts could not be gathered at rank 0\n");
        return EXIT_RUNTIME;
    }
    if (job->rank > 0) return 0;
    char **margs = calloc((size_t)job->size + 8, sizeof(char *));
    char(*dirs)[4200] = calloc((size_t)job->size, sizeof *dirs);
    if (!margs || !dirs) {
        free(margs), free(dirs);
        return EXIT_RUNTIME;
    }
    int m = 0;
    margs[m++] = argv[0], margs[m++] = "--merge";
    for (int r = 0; r < job->size; r++) {
        snprintf(dirs[r], sizeof dirs[r], "%s/%d-of-%d", parts_dir, r + 1, job->size);
        margs[m++] = dirs[r];
    }
    margs[m++] = "--out", margs[m++] = (char *)out, margs[m++] = "--force";
    if (no_plot) margs[m++] = "--no-plot";
    if (quiet) margs[m++] = "--quiet";
    margs[m] = NULL;
    if (!quiet) fprintf(stderr, "bench: %d processes' parts gathered in %s; merging\n", job->size, parts_dir);
    const int mrc = bench_merge_main(m, margs);
    free(margs), free(dirs);
    return mrc;
}
