/* bench — the benchmark harness: --sweep (training runs, CSV, plots), --gemm (kernels
 * against the reference and, where installed, OpenBLAS and BLIS), --peers. */
#ifndef SN_BENCH_H
#define SN_BENCH_H

#include <stdio.h>
#include <sys/types.h>

int bench_gemm_main(int argc, char **argv);
int bench_sweep_main(int argc, char **argv);
int bench_peers_main(int argc, char **argv);

/* common.c: the command line, recorded once by main (quoted for a shell) for the
 * provenance lines and env.json. */
void bench_set_command(int argc, char **argv);
const char *bench_command(void);
/* report.c: bench --report DIR. */
int bench_report_main(int argc, char **argv);
/* common.c: '#' lines for the top of a CSV: commit, command, compiler, flags, CPU, ISA,
 * threads, date. */
void bench_write_provenance(FILE *f, const char *what);

/* sweep.c: whether gnuplot runs here; a chart script (plots/, found in the source tree
 * or the install) rendered from DIR's sweep.csv, summary.csv and labels (0 on failure, with
 * a warning); note: a line under the title, "" for none. */
int bench_gnuplot_available(void);
/* sweep.c: time to accuracy per configuration across seeds (olympic mean, range, runs
 * that never reached the target) from a summary.csv, on stdout. */
void bench_report_tta(const char *summary_path, double target);
/* Appends " [diverged]" / " [collapsed]" to the legend labels of runs summary.csv
 * records so (replacing older marks); 0 if the files could not be read or written. */
int bench_mark_labels(const char *labels_path, const char *summary_path, int nruns);
int bench_render(const char *script, const char *outdir, const char *labels_path, int nruns, int val,
                 const char *note);
/* env.c: DIR/env.json, the environment of a benchmark (CPU, features, cores, SMT, ISA,
 * compiler, commit and dirty state, OS kernel, governor, load and steal at start, OpenMP
 * and BLAS settings, SHA-256 of the MNIST files in data_dir). 0 (with a message) on failure. */
int bench_write_env_json(const char *dir, const char *data_dir);

/* baseline.c: a repeated sweep's speeds saved (--save-baseline) and compared with a later
 * sweep's (--baseline): Mann-Whitney U, Hodges-Lehmann shift, verdict per configuration. */
enum { BENCH_BASELINE_MAX_REPS = 100, EXIT_REGRESSED = 3 /* --fail-on-regression */ };
typedef struct bench_baseline_conf {
    char cols[800]; /* the configuration's summary.csv columns */
    int n;
    double s[BENCH_BASELINE_MAX_REPS];
} bench_baseline_conf;
typedef struct bench_baseline {
    char cpu[256];
    int cores, nconf;
    bench_baseline_conf *conf;
} bench_baseline;
int bench_baseline_load(const char *path, bench_baseline *b); /* 0 with a message naming the line */
void bench_baseline_free(bench_baseline *b);
int bench_baseline_check_machine(const bench_baseline *b, const char *path); /* same CPU model and cores */
/* cols[i] NULL: configuration i is not in this run (another --part). speeds: nconf x
 * repeat, 0 where a repetition did not count. */
int bench_baseline_save(const char *path, const char *grid, int nconf, const char *const *cols, const double *speeds,
                        int repeat);
/* Prints a line per configuration; returns how many regressed (p < 0.01 and slower by more
 * than threshold, a fraction). */
int bench_baseline_compare(const bench_baseline *b, int nconf, const char *const *cols, const char *const *labels,
                           const double *speeds, int repeat, double threshold);

/* job_sweep.c: bench --sweep as every process of an MPI job (job.h): each runs its part,
 * rank 0 gathers and merges them. */
struct cli_job;
int bench_sweep_job(int argc, char **argv, struct cli_job *job);

/* merge.c: bench --merge DIR... combines the parts of a sweep (--part K/N). */
int bench_merge_main(int argc, char **argv);

/* common.c: the usage lines of every mode. */
void bench_usage(FILE *f);

/* common.c: a comma-separated list of up to cap integers in [min, max] into vals; returns
 * how many, or 0 after printing the usage message naming flag and text. */
int bench_int_list(const char *flag, const char *text, long min, long max, int *vals, int cap);

/* Race OpenBLAS at its best: set OPENBLAS_CORETYPE to the strongest kernel family this
 * CPU runs (SkylakeX with AVX-512, Haswell with AVX2+FMA), overriding any value already in
 * the environment, before OpenBLAS loads. Debian's 0.3.21 autodetects Sapphire Rapids as
 * Prescott, and an environment may preset a weaker family (Haswell runs the MLP shapes at
 * ~60% of SkylakeX on an AVX-512 CPU). Returns a one-line account for the output. */
const char *bench_set_openblas_coretype(void);

/* The same for BLIS: Debian's 0.9 picks its 'generic' kernels on AMD family 26 (Zen 5),
 * a quarter of its 'skx' speed there. BLIS_ARCH_TYPE is read as a number, the index in
 * BLIS 0.9's arch_t: 0 = skx (AVX-512), 3 = haswell (AVX2). */
const char *bench_set_blis_arch(void);

/* noise.c: the noise sentinel. A run is noisy when its slowest core's sustained FMA rate
 * (probed before and after it, pinned to each allowed CPU in turn) falls below
 * BENCH_NOISE_QUIET_FRAC of the best rate any probe reached this session. */
enum { BENCH_NOISE_MAX_CPUS = 256 };
#define BENCH_NOISE_QUIET_FRAC 0.9
typedef struct bench_noise {
    int ncpus, cpu[BENCH_NOISE_MAX_CPUS]; /* the CPUs the process may run on */
    double best;                          /* GFLOP/s: the session's best probe */
} bench_noise;
typedef struct bench_noise_run {
    double before[BENCH_NOISE_MAX_CPUS];
    double core_frac_min; /* the slowest CPU (the worse of its two probes) / session best */
    int slow_cpu;         /* which CPU that was */
    long nivcsw;          /* involuntary context switches of this process during the run */
    double steal_s;       /* steal time of all CPUs during the run (seconds; 0 if unknown) */
    int noisy;            /* core_frac_min < BENCH_NOISE_QUIET_FRAC */
} bench_noise_run;
/* Finds the allowed CPUs and the session's best from three probes of each; 0 if the
 * affinity could not be read. */
int bench_noise_init(bench_noise *nz);
void bench_noise_probe(bench_noise *nz, double *rate); /* rate[i]: GFLOP/s of cpu[i] */
void bench_noise_begin(bench_noise *nz, bench_noise_run *r);
void bench_noise_end(bench_noise *nz, bench_noise_run *r);

/* --load N: N busy child processes for the duration of a benchmark (load.c). */
enum { BENCH_LOAD_MAX = 64 };
typedef struct bench_load {
    int n;
    pid_t pid[BENCH_LOAD_MAX];
} bench_load;
/* Starts n (<= BENCH_LOAD_MAX) busy processes; 0 (with a message) if it could not. */
int bench_load_start(int n, bench_load *load);
void bench_load_stop(bench_load *load);

#endif
