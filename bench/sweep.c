/* bench --sweep: trains one model per configuration of the Cartesian product, writes
 * sweep.csv (per epoch) and summary.csv (per run) as runs finish, then renders
 * loss.png, accuracy.png and throughput.png with gnuplot from plots/. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "scratchnet/fit.h"
#include "scratchnet/gemm.h"
#include "scratchnet/modelfile.h"
#include "scratchnet/train.h"
#include "stats.h"
#include "sweep_spec.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static const char *SWEEP_HEADER =
    "run,batch,lr,threads,opt,seed,layers,deskew,augment,epoch,train_loss,val_loss,val_acc,epoch_s,samples_per_s,"
    "load,solo_steps,rep";
static const char *SUMMARY_HEADER =
    "run,batch,lr,threads,opt,seed,layers,deskew,augment,epochs,train_loss,val_loss,val_acc,test_loss,test_acc,train_s,"
    "samples_per_s,status,load,tta_s,reps,samples_per_s_mad,samples_per_s_ci_lo,samples_per_s_ci_hi,noisy_reps";

/* Config columns shared by both CSVs: batch,lr,threads,opt,seed,layers,deskew,augment */
static void config_cols(char *out, size_t cap, const sweep_run *r)
{
    /* An MLP as 784:50:25:10, as it always was; other nets with their items ' '-separated
     * (a spec's ',' would split the CSV field). */
    char layers[512], augment[128];
    sn_net_format(r->net, r->nlayers, sn_net_is_mlp(r->net, r->nlayers) ? ':' : ' ', layers, sizeof layers);
    sn_augment_format(&r->aug, augment, sizeof augment);
    for (char *p = augment; *p; p++)
        if (*p == ',') *p = ' ';
    snprintf(out, cap, "%d,%g,%d,%s,%llu,%s,%s,%s", r->batch, r->lr, r->threads, sn_opt_name(r->opt),
             (unsigned long long)r->seed, layers, r->deskew ? "on" : "off", augment);
}

/* A deep copy of src into *dst; 0 for want of memory (dst then owns nothing). */
static int copy_dataset(const sn_dataset *src, sn_dataset *dst)
{
    const size_t bytes = (size_t)src->count * src->rows * src->cols;
    *dst = *src;
    dst->images = malloc(bytes ? bytes : 1);
    dst->labels = malloc(src->count ? (size_t)src->count : 1);
    if (!dst->images || !dst->labels) {
        free(dst->images), free(dst->labels);
        memset(dst, 0, sizeof *dst);
        return 0;
    }
    memcpy(dst->images, src->images, bytes);
    memcpy(dst->labels, src->labels, (size_t)src->count);
    return 1;
}

typedef struct run_result {
    double train_loss, val_loss, val_acc, test_loss, test_acc, train_s, eval_s;
    long samples;
    int diverged, collapsed;
    double tta_s; /* < 0: the target was not reached (or none was set) */
    double speed; /* samples/s of the timed epochs (with --repeat, epoch 1 is a warm-up) */
    /* The noise sentinel's account of the run (noise.c). */
    double core_frac_min, steal_s;
    int slow_cpu, noisy;
    long nivcsw;
} run_result;

typedef struct sweep_ctx {
    const sweep_spec *spec;
    int nruns, val, quiet, load;
    sn_dataset all, test;
    sn_dataset all_deskewed, test_deskewed; /* when a run has deskew=on */
    double target_acc;                      /* --target-acc: > 0 adds time-to-accuracy */
    int repeat, rep;                        /* --repeat: blocks; the one running (1-based) */
    int include_noisy;                      /* --include-noisy: noisy repetitions count too */
    double precision;                       /* --precision P%: > 0 adds blocks until CIs are this narrow */
    int max_repeat;                         /* --max-repeat: the most blocks --precision may run */
    bench_noise noise;                      /* the sentinel's CPUs and session best */
    int sentinel;                           /* 0: --no-sentinel (the ranks of an MPI job) */
    FILE *sweep_csv, *summary_csv, *reps_csv;
} sweep_ctx;

/* The fit loop's hooks for one run: a progress bar per epoch, then the sweep.csv row. */
typedef struct run_report {
    cli_progress bar; /* first: the struct is the progress hook's user (cli_progress_update) */
    sweep_ctx *c;
    int index, epochs;
    const char *cols, *label;
    char blabel[300];
    double train_s;   /* training seconds so far */
    double timed_s;   /* of them, the epochs that count for speed (with --repeat, epoch 1 warms up) */
    long timed_rows;
    double tta_s;     /* training seconds until the first evaluation at or above --target-acc; < 0: not yet */
} run_report;

static void run_epoch_begin(void *user, int epoch, int epochs)
{
    run_report *r = user;
    snprintf(r->blabel, sizeof r->blabel, "run %d/%d epoch %d/%d", r->index + 1, r->c->nruns, epoch, epochs);
    cli_progress_begin(&r->bar, r->blabel, !r->c->quiet);
}

static int run_epoch_end(void *user, const sn_trainer *t, const sn_fit_epoch *e, sn_error *err)
{
    run_report *r = user;
    const sn_epoch_stats *st = &e->stats;
    (void)err;
    cli_progress_end(&r->bar);
    r->train_s += st->train_s;
    if (r->c->repeat == 1 || st->epoch > 1 || r->epochs == 1) r->timed_s += st->train_s, r->timed_rows += t->ntrain;
    if (r->c->target_acc > 0 && r->tta_s < 0 && e->evaluated && e->val_acc >= r->c->target_acc) r->tta_s = r->train_s;
    fprintf(r->c->sweep_csv, "%d,%s,%d,%.6f,%.6f,%.6f,%.6f,%.0f,%d,%d,%d\n", r->index + 1, r->cols, st->epoch,
            st->train_loss, e->val_loss, e->val_acc, st->train_s, st->samples_per_s, r->c->load, st->solo_steps,
            r->c->rep);
    fflush(r->c->sweep_csv);
    if (!r->c->quiet)
        fprintf(stderr, "run %d/%d (%s) epoch %d/%d train_loss=%.4f val_acc=%.4f samples_per_s=%.0f eval_s=%.3f\n",
                r->index + 1, r->c->nruns, r->label, st->epoch, r->epochs, st->train_loss, e->val_acc,
                st->samples_per_s, e->eval_s);
    return SN_OK;
}

/* reps.csv: one row per run and repetition, everything run_result holds, so that a
 * repeated sweep's --resume restores the repetitions it already has. */
static const char *REPS_HEADER =
    "run,batch,lr,threads,opt,seed,layers,deskew,augment,epochs,rep,status,samples_per_s,train_s,train_loss,val_loss,"
    "val_acc,test_loss,test_acc,tta_s,eval_s,samples,core_frac_min,slow_cpu,nivcsw,steal_s,noisy";
enum { REPS_FIRST_RESULT = 11 }; /* the column after rep */

static void write_rep_row(sweep_ctx *c, int index, const sweep_run *r, const run_result *x)
{
    char cols[768], tta[32] = "", frac[32] = "", cpu[16] = ""; /* empty: no sentinel (--no-sentinel) */
    config_cols(cols, sizeof cols, r);
    if (x->tta_s >= 0 && !x->diverged) snprintf(tta, sizeof tta, "%.6f", x->tta_s);
    if (c->sentinel) snprintf(frac, sizeof frac, "%.4f", x->core_frac_min), snprintf(cpu, sizeof cpu, "%d", x->slow_cpu);
    fprintf(c->reps_csv, "%d,%s,%d,%d,%s,%.3f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%s,%.6f,%ld,%s,%s,%ld,%.3f,%d\n",
            index + 1, cols, r->epochs, c->rep, x->diverged ? "diverged" : x->collapsed ? "collapsed" : "ok", x->speed,
            x->train_s, x->train_loss, x->val_loss, x->val_acc, x->test_loss, x->test_acc, tta, x->eval_s, x->samples,
            frac, cpu, x->nivcsw, x->steal_s, x->noisy);
    fflush(c->reps_csv);
}

/* Fields of a reps.csv row back into a result; 0 if the row is malformed. */
static int parse_rep_row(char *line, run_result *x)
{
    char *f[40];
    int n = 0;
    line[strcspn(line, "\n")] = 0;
    for (char *p = line; p && n < 40; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) f[n++] = p;
    for (int i = 1; i < n; i++) f[i][-1] = 0;
    if (n != 27) return 0;
    const int k = REPS_FIRST_RESULT;
    memset(x, 0, sizeof *x);
    x->diverged = !strcmp(f[k], "diverged"), x->collapsed = !strcmp(f[k], "collapsed");
    x->speed = atof(f[k + 1]), x->train_s = atof(f[k + 2]), x->train_loss = atof(f[k + 3]);
    x->val_loss = atof(f[k + 4]), x->val_acc = atof(f[k + 5]), x->test_loss = atof(f[k + 6]);
    x->test_acc = atof(f[k + 7]), x->tta_s = f[k + 8][0] ? atof(f[k + 8]) : -1.0, x->eval_s = atof(f[k + 9]);
    x->samples = atol(f[k + 10]), x->core_frac_min = f[k + 11][0] ? atof(f[k + 11]) : NAN;
    x->slow_cpu = f[k + 12][0] ? atoi(f[k + 12]) : -1;
    x->nivcsw = atol(f[k + 13]), x->steal_s = atof(f[k + 14]), x->noisy = atoi(f[k + 15]);
    return 1;
}

static int run_one(sweep_ctx *c, int index, const sweep_run *r, run_result *res)
{
    sn_error err;
    sn_net model;
    sn_trainer t;
    sn_train_config cfg = sn_train_defaults();
    cfg.epochs = r->epochs, cfg.batch = r->batch, cfg.lr = r->lr, cfg.opt = r->opt, cfg.threads = r->threads;
    cfg.seed = r->seed, cfg.val = c->val, cfg.aug = r->aug;
    memset(res, 0, sizeof *res);
    const sn_dataset *all = r->deskew ? &c->all_deskewed : &c->all, *test = r->deskew ? &c->test_deskewed : &c->test;
    const int ntrain = all->count - c->val;
    sn_dataset train = sn_dataset_slice(all, 0, ntrain), val = sn_dataset_slice(all, ntrain, c->val);
    if (sn_net_create(&model, r->net, r->nlayers, &err) || sn_trainer_create(&t, &model, &cfg, ntrain, &err)) {
        fprintf(stderr, "bench: run %d: %s\n", index + 1, err.msg);
        return 0;
    }
    char cols[768], label[768];
    config_cols(cols, sizeof cols, r);
    sweep_run_label(c->spec, r, label, sizeof label);
    run_report report = { .c = c, .index = index, .epochs = r->epochs, .cols = cols, .label = label, .tta_s = -1 };
    const sn_fit_hooks hooks = { .user = &report, .epoch_begin = run_epoch_begin, .progress = cli_progress_update,
                                 .epoch_end = run_epoch_end };
    sn_fit_result fit;
    bench_noise_run noise = { .core_frac_min = NAN, .slow_cpu = -1 };
    if (c->sentinel) bench_noise_begin(&c->noise, &noise);
    const int fit_failed = sn_fit(&t, &train, &val, 1, &hooks, &fit, &err) != SN_OK;
    if (c->sentinel) bench_noise_end(&c->noise, &noise);
    if (fit_failed) goto failed;
    res->core_frac_min = noise.core_frac_min, res->slow_cpu = noise.slow_cpu, res->noisy = noise.noisy;
    res->nivcsw = noise.nivcsw, res->steal_s = noise.steal_s;
    res->train_s = fit.train_s, res->samples = fit.samples, res->eval_s = fit.eval_s;
    res->train_loss = fit.last.stats.train_loss, res->val_loss = fit.last.val_loss, res->val_acc = fit.last.val_acc;
    res->tta_s = report.tta_s;
    res->speed = report.timed_s > 0 ? (double)report.timed_rows / report.timed_s : 0.0;
    if (fit.diverged) {
        cli_progress_end(&report.bar);
        res->diverged = 1;
        fprintf(stderr, "run %d/%d (%s): diverged in epoch %d (loss NaN or infinite); recorded as diverged\n",
                index + 1, c->nruns, label, fit.diverged_epoch);
    }
    if (!res->diverged) {
        double t0 = sn_now();
        if (sn_evaluate(&model, &t.fwd, test, r->threads, &res->test_loss, &res->test_acc, &err)) goto failed;
        res->eval_s += sn_now() - t0;
        /* Learned nothing: the validation accuracy (the test's without a validation set)
         * near chance. Marked, and kept out of the speed chart. */
        const double acc = c->val > 0 ? res->val_acc : res->test_acc;
        if (acc < SN_COLLAPSED_ACC) {
            res->collapsed = 1;
            fprintf(stderr, "run %d/%d (%s): collapsed (accuracy %.4f, chance is 0.10); recorded as collapsed\n",
                    index + 1, c->nruns, label, acc);
        }
    } else {
        res->train_loss = res->val_loss = res->val_acc = res->test_loss = res->test_acc = NAN;
    }
    write_rep_row(c, index, r, res);
    sn_trainer_free(&t);
    sn_net_free(&model);
    return 1;
failed:
    fprintf(stderr, "bench: run %d: %s\n", index + 1, err.msg);
    sn_trainer_free(&t);
    sn_net_free(&model);
    return 0;
}

/* The speeds of a configuration's repetitions that count: those that learned (neither
 * diverged nor collapsed) and were quiet (or all, with --include-noisy). If every one
 * that learned was noisy, those count (a sweep on a machine that is never quiet still
 * reports), and *all_noisy says so. Returns how many. */
static int counted_speeds(const sweep_ctx *c, const run_result *reps, int n, double *speeds, int *all_noisy)
{
    int ns = 0;
    *all_noisy = 0;
    for (int pass = 0; pass < 2 && !ns; pass++) {
        for (int k = 0; k < n; k++)
            if (reps[k].speed > 0 && !reps[k].diverged && !reps[k].collapsed &&
                (pass || c->include_noisy || !reps[k].noisy))
                speeds[ns++] = reps[k].speed;
        if (pass && ns) *all_noisy = 1;
    }
    return ns;
}

/* The median speed of a configuration's repetitions with its bootstrap 95% interval
 * (seeded by the configuration: the same data, the same interval); 0 if none counts. */
static double speed_interval(const sweep_ctx *c, int index, const run_result *reps, int n, double *lo, double *hi,
                             double *mad, int *counted, int *all_noisy)
{
    double speeds[BENCH_BASELINE_MAX_REPS];
    int fallback;
    const int ns = counted_speeds(c, reps, n < BENCH_BASELINE_MAX_REPS ? n : BENCH_BASELINE_MAX_REPS, speeds, &fallback);
    if (all_noisy) *all_noisy = fallback;
    *lo = *hi = 0;
    if (mad) *mad = 0;
    if (counted) *counted = ns;
    if (!ns) return 0;
    stats_median_ci(speeds, ns, 2000, 0x5eed + (uint64_t)index, lo, hi);
    if (mad) *mad = stats_mad(speeds, ns);
    return stats_median(speeds, ns);
}

/* One configuration's summary.csv row from its n repetitions (1 without --repeat): the
 * learning figures of the first (training is bit-identical, so every repetition's are the
 * same), the median training time, and the speed as the median over the repetitions that
 * count (counted_speeds), with its median absolute deviation and a bootstrap 95% interval,
 * and how many repetitions the sentinel found noisy. A line on stdout with --repeat. */
static void write_summary(sweep_ctx *c, int index, const sweep_run *r, const run_result *reps, int n)
{
    const run_result *res = &reps[0];
    char cols[768];
    config_cols(cols, sizeof cols, r);
    double times[BENCH_BASELINE_MAX_REPS], mad, lo, hi;
    int counted, all_noisy, noisy = 0, worst = 0;
    if (n > BENCH_BASELINE_MAX_REPS) n = BENCH_BASELINE_MAX_REPS;
    for (int k = 0; k < n; k++) {
        times[k] = reps[k].train_s;
        noisy += reps[k].noisy;
        if (reps[k].core_frac_min < reps[worst].core_frac_min) worst = k;
    }
    double median = speed_interval(c, index, reps, n, &lo, &hi, &mad, &counted, &all_noisy);
    if (!counted && res->train_s > 0) median = lo = hi = res->samples / res->train_s; /* diverged: what it ran at */
    char tta[32] = ""; /* empty: no target, or not reached */
    if (res->tta_s >= 0 && !res->diverged) snprintf(tta, sizeof tta, "%.6f", res->tta_s);
    fprintf(c->summary_csv, "%d,%s,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.0f,%s,%d,%s,%d,%.0f,%.0f,%.0f,%d\n", index + 1,
            cols, r->epochs, res->train_loss, res->val_loss, res->val_acc, res->test_loss, res->test_acc,
            stats_median(times, n), median, res->diverged ? "diverged" : res->collapsed ? "collapsed" : "ok", c->load,
            tta, n, mad, lo, hi, noisy);
    fflush(c->summary_csv);
    if (c->repeat == 1 && c->precision <= 0) return;
    char label[640], noise[160] = "";
    sweep_run_label(c->spec, r, label, sizeof label);
    if (noisy)
        snprintf(noise, sizeof noise, ", %d of %d reps noisy (cpu %d at %.1f%%)%s", noisy, n, reps[worst].slow_cpu,
                 100.0 * reps[worst].core_frac_min,
                 c->include_noisy ? ", counted (--include-noisy)" : all_noisy ? ", counted: none was quiet" : ", left out");
    printf("run %d (%s): median %.0f samples/s, 95%% CI [%.0f, %.0f] (+-%.1f%%), %d reps%s\n", index + 1, label, median,
           lo, hi, median > 0 ? 50.0 * (hi - lo) / median : 0.0, n, noise);
}

/* ---- resume: keep the runs summary.csv records as finished ------------------- */

/* The run a CSV row records if its leading columns (run, configuration, epochs) are this
 * grid's run of that number (*prefix: their length), else 0, and *foreign is set to the
 * first such row's number: another grid's results, which a resume would drop. */
static int grid_run_of_row(const sweep_spec *spec, int nruns, const char *line, size_t *prefix, int *foreign)
{
    const int run = atoi(line);
    if (run >= 1 && run <= nruns) {
        sweep_run r;
        sweep_spec_run(spec, run - 1, &r);
        char cols[768], want[800];
        config_cols(cols, sizeof cols, &r);
        *prefix = (size_t)snprintf(want, sizeof want, "%d,%s,%d,", run, cols, r.epochs);
        if (strncmp(line, want, *prefix) == 0) return run;
    }
    if (!*foreign) *foreign = run ? run : -1;
    return 0;
}

/* Reads finished run numbers whose configuration matches the planned run. A recorded
 * run that is not this grid's run of that number (another grid's results) sets *foreign
 * to its number: resuming would drop it, so the caller refuses. */
static int read_finished(const char *path, const sweep_spec *spec, int nruns, unsigned char *done, int *foreign)
{
    *foreign = 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[2048];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || strncmp(line, "run,", 4) == 0) continue;
        size_t prefix;
        const int run = grid_run_of_row(spec, nruns, line, &prefix, foreign);
        if (run) done[run - 1] = 1, count++;
    }
    fclose(f);
    return count;
}

/* Rewrites path keeping '#' lines, the header, and the data rows of finished work: with
 * stride 0, rows of runs with done[run - 1]; else (a file with a rep column) rows of
 * (run, rep) with done[(run - 1) * stride + rep - 1]. */
static int keep_finished_rows(const char *path, const unsigned char *done, int nruns, int stride)
{
    size_t len = 0;
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    char *out = NULL, line[2048];
    size_t cap = 0;
    int rep_col = -1;
    while (fgets(line, sizeof line, f)) {
        int keep = line[0] == '#';
        if (!keep && strncmp(line, "run,", 4) == 0) {
            keep = 1;
            int col = 0;
            for (char *p = line; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL, col++)
                if (!strncmp(p, "rep", 3) && (p[3] == ',' || p[3] == '\n' || !p[3])) rep_col = col;
        } else if (!keep) {
            const int run = atoi(line);
            if (run >= 1 && run <= nruns && !stride) keep = done[run - 1];
            else if (run >= 1 && run <= nruns && rep_col > 0) {
                const char *p = line;
                for (int i = 0; i < rep_col && p; i++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
                const int rep = p ? atoi(p) : 0;
                keep = rep >= 1 && rep <= stride && done[(size_t)(run - 1) * stride + rep - 1];
            }
        }
        if (!keep) continue;
        size_t n = strlen(line);
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *no = realloc(out, cap);
            if (!no) { free(out); fclose(f); return 0; }
            out = no;
        }
        memcpy(out + len, line, n);
        len += n;
    }
    fclose(f);
    sn_error err;
    int ok = sn_write_file_atomic(path, out ? out : "", len, &err) == SN_OK;
    free(out);
    return ok;
}

/* A repeated sweep's finished repetitions from reps.csv: res[(run - 1) * stride + rep - 1]
 * and done[] alike for every row whose configuration is this grid's run of that number;
 * a row of another grid sets *foreign to its run. Returns how many. */
static int read_finished_reps(const char *path, const sweep_spec *spec, int nruns, int stride, run_result *res,
                              unsigned char *done, int *foreign)
{
    *foreign = 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[2048];
    int count = 0, header = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        if (strncmp(line, "run,", 4) == 0) {
            header = strncmp(line, REPS_HEADER, strlen(REPS_HEADER)) == 0;
            continue;
        }
        if (!header) continue; /* rows under no header (or another's) are not read, nor kept */
        size_t prefix;
        const int run = grid_run_of_row(spec, nruns, line, &prefix, foreign);
        if (!run) continue;
        const int rep = atoi(line + prefix);
        run_result x;
        if (rep < 1 || rep > stride || !parse_rep_row(line, &x)) continue; /* beyond --max-repeat, or torn */
        res[(size_t)(run - 1) * stride + rep - 1] = x;
        count += !done[(size_t)(run - 1) * stride + rep - 1];
        done[(size_t)(run - 1) * stride + rep - 1] = 1;
    }
    fclose(f);
    return count;
}

/* ---- plots -------------------------------------------------------------------- */

/* Time to accuracy across seeds, MLPerf-style: the runs of one configuration but for the
 * seed are a group; its figure is the olympic mean of their tta_s (the fastest and the
 * slowest dropped when there are 3 or more), and the runs that never reached the target
 * are counted, not averaged. Printed to stdout, one line a group. */
void bench_report_tta(const char *summary_path, double target)
{
    enum { MAXG = 512, MAXV = 256 };
    static char key[MAXG][700];
    static double v[MAXG][MAXV];
    static int nv[MAXG], miss[MAXG];
    int ng = 0, tta_col = -1;
    FILE *f = fopen(summary_path, "r");
    char line[4096];
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "run,", 4)) { /* the header says where tta_s is */
            int col = 0;
            for (char *p = line; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL, col++)
                if (!strncmp(p, "tta_s", 5) && (p[5] == ',' || !p[5])) tta_col = col;
            continue;
        }
        /* Fields: run,batch,lr,threads,opt,seed,layers,deskew,augment,epochs,...,tta_s. */
        char *field[32];
        int nf = 0;
        for (char *p = line; p && nf < 32; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) field[nf++] = p;
        for (int i = 1; i < nf; i++) field[i][-1] = 0;
        if (nf < 20 || tta_col < 0 || tta_col >= nf) continue;
        char k[700];
        snprintf(k, sizeof k, "batch=%s lr=%s threads=%s opt=%s layers=%s deskew=%s augment=%s epochs=%s", field[1],
                 field[2], field[3], field[4], field[6], field[7], field[8], field[9]);
        int g = 0;
        while (g < ng && strcmp(key[g], k)) g++;
        if (g == ng) {
            if (ng == MAXG) continue;
            snprintf(key[ng], sizeof key[ng], "%s", k), nv[ng] = miss[ng] = 0, ng++;
        }
        if (field[tta_col][0] && nv[g] < MAXV) v[g][nv[g]++] = atof(field[tta_col]);
        else miss[g]++;
    }
    fclose(f);
    for (int g = 0; g < ng; g++) {
        const int n = nv[g], runs = n + miss[g];
        if (!n) {
            printf("tta (target %.4f): %s: not reached by any of %d run%s\n", target, key[g], runs, runs > 1 ? "s" : "");
            continue;
        }
        stats_sort(v[g], n);
        const int lo = n >= 3, hi = n >= 3 ? n - 1 : n;
        double sum = 0;
        for (int i = lo; i < hi; i++) sum += v[g][i];
        printf("tta (target %.4f): %s: %s %.3f s over %d run%s (range %.3f-%.3f s)", target, key[g],
               n >= 3 ? "olympic mean" : "mean", sum / (hi - lo), runs, runs > 1 ? "s" : "", v[g][0], v[g][n - 1]);
        if (miss[g]) printf("; %d of %d did not reach it", miss[g], runs);
        printf("\n");
    }
}

/* Configurations equal but for threads form a group; group[i] is its first member. */
static void thread_groups(const sweep_run *runs, int nruns, int *group)
{
    char(*key)[768] = malloc(sizeof *key * (size_t)nruns);
    for (int i = 0; i < nruns; i++) {
        group[i] = i;
        if (!key) continue; /* without memory, every configuration its own group */
        sweep_run nothreads = runs[i];
        nothreads.threads = 0;
        config_cols(key[i], sizeof key[i], &nothreads);
        for (int j = 0; j < i; j++)
            if (!strcmp(key[j], key[i])) { group[i] = group[j]; break; }
    }
    free(key);
}

/* The widest 95% interval of the configurations of this part, as a percentage of its
 * median (half-width), over their first n repetitions; *which: its run index. */
static double widest_interval(const sweep_ctx *c, const run_result *res, int stride, int n, int part, int parts,
                              int *which)
{
    double widest = 0;
    *which = -1;
    for (int i = 0; i < c->nruns; i++) {
        if (i % parts != part - 1) continue;
        double lo, hi;
        const double med = speed_interval(c, i, &res[(size_t)i * stride], n, &lo, &hi, NULL, NULL, NULL);
        if (med > 0 && 50.0 * (hi - lo) / med > widest) widest = 50.0 * (hi - lo) / med, *which = i;
    }
    return widest;
}

/* --repeat N: N blocks; each visits every configuration of this part once, in an order
 * shuffled per block (seeded: the same for every rerun), so a slow minute of the machine
 * spreads over the configurations instead of hitting one. Configurations that differ
 * only in threads run back to back, so each block gives their speed ratio under the same
 * conditions. --precision P% then adds blocks while any interval is wider than P% (up to
 * stride = --max-repeat blocks). res/done: stride slots per configuration, those of a
 * --resume already filled. Returns the blocks run (0 on failure). */
static int run_repeated(sweep_ctx *c, const sweep_run *runs, const int *group, int part, int parts, int stride,
                        run_result *res, unsigned char *done)
{
    const int nruns = c->nruns;
    int *order = malloc(sizeof(int) * (size_t)nruns);
    int ok = order != NULL, rep;
    for (rep = 0; ok && rep < stride; rep++) {
        if (rep >= c->repeat) {
            if (c->precision <= 0) break;
            int which;
            const double widest = widest_interval(c, res, stride, rep, part, parts, &which);
            if (widest <= c->precision) break;
            if (!c->quiet)
                fprintf(stderr, "bench: --precision %g%%: after %d blocks the widest interval is +-%.1f%% (run %d); "
                                "block %d of at most %d\n", c->precision, rep, widest, which + 1, rep + 1, stride);
        }
        c->rep = rep + 1;
        stats_permutation(order, nruns, 0xb10c + (uint64_t)rep);
        for (int o = 0; ok && o < nruns; o++) {
            const int g = order[o];
            if (group[g] != g) continue; /* a group runs when its leader comes up */
            /* The group's members in this part, fewest threads first. */
            int members[64], nm = 0;
            for (int i = g; i < nruns && nm < 64; i++)
                if (group[i] == g && i % parts == part - 1) members[nm++] = i;
            for (int a = 1; a < nm; a++)
                for (int b = a; b > 0 && runs[members[b]].threads < runs[members[b - 1]].threads; b--) {
                    const int t = members[b];
                    members[b] = members[b - 1], members[b - 1] = t;
                }
            for (int m = 0; ok && m < nm; m++) {
                const size_t slot = (size_t)members[m] * stride + rep;
                if (done[slot]) continue; /* --resume: this repetition is in reps.csv */
                ok = run_one(c, members[m], &runs[members[m]], &res[slot]);
                done[slot] = (unsigned char)ok;
            }
        }
        if (ok && !c->quiet) fprintf(stderr, "bench: --repeat: block %d done\n", rep + 1);
    }
    free(order);
    if (!order) fprintf(stderr, "bench: out of memory\n");
    return ok ? rep : 0;
}

/* Thread scaling within groups (configurations equal but for threads): each variant's
 * speed over the group's fewest-thread one, per block, so both ran under the same
 * conditions; the median ratio with a bootstrap interval, and the efficiency (ratio over
 * the thread ratio). Printed, and written to DIR/scaling.csv for plots/scaling.gp;
 * returns how many rows (0: no threads sweep). */
static int thread_scaling(const sweep_ctx *c, const sweep_run *runs, const int *group, const run_result *res,
                          int stride, int nblocks, int part, int parts, const char *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/scaling.csv", out);
    FILE *f = NULL;
    int rows = 0;
    /* Groups in run order, each group's variants by threads. */
    int *order = malloc(sizeof(int) * (size_t)c->nruns), no = 0;
    if (!order) return 0;
    for (int g = 0; g < c->nruns; g++) {
        if (group[g] != g) continue;
        const int first = no;
        for (int i = g; i < c->nruns; i++)
            if (group[i] == g) {
                int at = no++;
                for (; at > first && runs[order[at - 1]].threads > runs[i].threads; at--) order[at] = order[at - 1];
                order[at] = i;
            }
    }
    for (int oi = 0; oi < no; oi++) {
        const int i = order[oi];
        if (i % parts != part - 1) continue;
        int base = -1;
        for (int j = 0; j < c->nruns; j++)
            if (group[j] == group[i] && j % parts == part - 1 && (base < 0 || runs[j].threads < runs[base].threads))
                base = j;
        if (runs[base].threads == runs[i].threads && base != i) continue;
        int others = 0; /* a group of one configuration has no scaling */
        for (int j = 0; j < c->nruns; j++) others += j != i && group[j] == group[i] && j % parts == part - 1;
        if (!others) continue;
        /* Blocks where both learned and both were quiet (or any, with --include-noisy, or
         * when no block was quiet for both). */
        double ratio[BENCH_BASELINE_MAX_REPS];
        int nr = 0, pass;
        for (pass = c->include_noisy; pass < 2 && !nr; pass++)
            for (int rep = 0; rep < nblocks && nr < BENCH_BASELINE_MAX_REPS; rep++) {
                const run_result *a = &res[(size_t)base * stride + rep], *b = &res[(size_t)i * stride + rep];
                const int counts = pass || (!a->noisy && !b->noisy);
                if (a->speed > 0 && b->speed > 0 && !a->diverged && !b->diverged && !a->collapsed && !b->collapsed &&
                    counts)
                    ratio[nr++] = b->speed / a->speed;
            }
        if (!nr) continue;
        const int noisy_too = pass == 2 && !c->include_noisy;
        double lo, hi, med = stats_median(ratio, nr);
        stats_median_ci(ratio, nr, 2000, 0x7a71 + (uint64_t)i, &lo, &hi);
        const double scale = (double)runs[i].threads / runs[base].threads;
        if (base != i)
            printf("threads %d->%d (run %d vs %d): %.2fx [%.2f, %.2f], efficiency %.0f%% (%d block%s%s)\n",
                   runs[base].threads, runs[i].threads, i + 1, base + 1, med, lo, hi, 100.0 * med / scale, nr,
                   nr > 1 ? "s" : "", noisy_too ? "; no quiet block, noisy ones counted" : "");
        if (!f) {
            f = fopen(path, "w");
            if (!f) {
                fprintf(stderr, "bench: cannot write %s\n", path);
                free(order);
                return 0;
            }
            bench_write_provenance(f, "bench --sweep (thread scaling)");
            fprintf(f, "group,label,run,threads,speedup,speedup_ci_lo,speedup_ci_hi,efficiency,blocks\n");
        }
        /* The group's label: the run's, without its threads=N. */
        char label[640], *t;
        sweep_run_label(c->spec, &runs[base], label, sizeof label);
        if ((t = strstr(label, "threads="))) {
            char *end = strchr(t, ' ');
            memmove(t, end ? end + 1 : t + strlen(t), strlen(end ? end + 1 : t + strlen(t)) + 1);
        }
        for (size_t k = strlen(label); k > 0 && label[k - 1] == ' '; k--) label[k - 1] = 0;
        fprintf(f, "%d,%s,%d,%d,%.4f,%.4f,%.4f,%.4f,%d\n", group[i] + 1, label[0] ? label : "threads only", i + 1, runs[i].threads,
                med, lo, hi, med / scale, nr);
        rows++;
    }
    if (f) fclose(f);
    free(order);
    return rows;
}

int bench_mark_labels(const char *labels_path, const char *summary_path, int nruns)
{
    /* Statuses from the summary's last-but-one column, by run. */
    char *status = calloc((size_t)nruns + 1, 1);
    FILE *f = fopen(summary_path, "r");
    char line[4096];
    if (!status || !f) {
        free(status);
        if (f) fclose(f);
        return 0;
    }
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || !strncmp(line, "run,", 4)) continue;
        const int run = atoi(line);
        if (run < 1 || run > nruns) continue;
        status[run] = strstr(line, ",diverged,") ? 'd' : strstr(line, ",collapsed,") ? 'c' : 0;
    }
    fclose(f);
    /* The labels: nruns quoted words; any earlier mark is replaced. */
    f = fopen(labels_path, "r");
    char *text = f ? malloc(1 << 20) : NULL;
    size_t len = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    if (f) fclose(f);
    if (!text) { free(status); return 0; }
    text[len] = 0;
    char *outbuf = malloc(len + (size_t)nruns * 16 + 2);
    size_t o = 0;
    int run = 0;
    for (char *p = text; outbuf && (p = strchr(p, '"')) && run < nruns;) {
        char *end = strchr(p + 1, '"');
        if (!end) break;
        run++;
        char *mark = strstr(p, " [");
        const size_t n = (size_t)((mark && mark < end ? mark : end) - p - 1);
        o += (size_t)sprintf(outbuf + o, "%s\"%.*s%s\"", run > 1 ? " " : "", (int)n, p + 1,
                             status[run] == 'd' ? " [diverged]" : status[run] == 'c' ? " [collapsed]" : "");
        p = end + 1;
    }
    int ok = 0;
    if (outbuf && run == nruns) {
        outbuf[o++] = '\n';
        sn_error err;
        ok = sn_write_file_atomic(labels_path, outbuf, o, &err) == SN_OK;
    }
    free(outbuf), free(text), free(status);
    return ok;
}

int bench_gnuplot_available(void)
{
    return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

/* Runs gnuplot on plots/NAME.gp with the CSV paths and the legend labels. */
int bench_render(const char *script, const char *outdir, const char *labels_path, int nruns, int val,
                 const char *note)
{
    char gp[4096], cmd[16384];
    if (!cli_find_resource(script, gp, sizeof gp)) {
        fprintf(stderr, "bench: warning: %s not found (source tree or install); plot skipped\n", script);
        return 0;
    }
    snprintf(cmd, sizeof cmd,
             "gnuplot -e \"sweep='%s/sweep.csv'; summary='%s/summary.csv'; labels='%s'; nruns=%d; outdir='%s'; "
             "val=%d; note='%s'\" '%s'",
             outdir, outdir, labels_path, nruns, outdir, val, note, gp);
    int st = system(cmd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench: warning: gnuplot failed on %s\n", gp);
        return 0;
    }
    return 1;
}


int bench_sweep_main(int argc, char **argv)
{
    const char *out = ".", *data = NULL;
    int no_plot = 0, resume = 0, force = 0, quiet = 0, val = 10000, any_key = 0, load = 0;
    double target_acc = 0;    /* --target-acc A: time to the first validation accuracy >= A */
    int repeat = 1;           /* --repeat N: N blocks, each visiting every configuration once */
    const char *save_baseline = NULL, *baseline_path = NULL; /* --save-baseline, --baseline FILE */
    double threshold = 0.03;  /* --threshold P%: the smallest change a verdict calls a change */
    int fail_on_regression = 0;
    double precision = 0;     /* --precision P%: blocks until every interval is within +-P% */
    int max_repeat = 20, max_repeat_given = 0, include_noisy = 0, sentinel = 1;
    int part = 1, parts = 1;  /* --part K/N: this process runs runs i with i % N == K - 1 */
    char grid[2048] = "";     /* the sweep keys as given: the grid, for --merge to check */
    /* train's defaults but for augmentation (none: a sweep compares configurations; the
     * key augment= sweeps it) and epochs (10). */
    sweep_run defaults = { .batch = 128, .lr = 0.05f, .threads = 1, .epochs = 10, .opt = SN_OPT_MOMENTUM, .seed = 42,
                           .nlayers = 3, .deskew = 1 };
    sn_net_mlp_layers((const int[]){ 784, 50, 25, 10 }, 4, defaults.net);
#ifdef _OPENMP
    defaults.threads = omp_get_max_threads();
#endif
    sweep_spec spec;
    sweep_spec_init(&spec, &defaults);
    sn_error err;
    int epochs_flag = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--sweep")) {
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
                fprintf(stderr, "bench: --sweep needs KEY=V1,V2,...; valid keys: %s\n", sweep_keys_help());
                sweep_spec_free(&spec);
                return EXIT_USAGE;
            }
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                if (sweep_spec_add(&spec, argv[++i], &err)) {
                    fprintf(stderr, "bench: --sweep: %s\n", err.msg);
                    sweep_spec_free(&spec);
                    return EXIT_USAGE;
                }
                const size_t gl = strlen(grid);
                snprintf(grid + gl, sizeof grid - gl, "%s%s", gl ? " " : "", argv[i]);
                any_key = 1;
            }
        } else if (!strcmp(a, "--no-plot")) no_plot = 1;
        else if (!strcmp(a, "--resume")) resume = 1;
        else if (!strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "--part") && i + 1 < argc) {
            char *end;
            const char *v = argv[++i];
            const long k = strtol(v, &end, 10), n = *end == '/' ? strtol(end + 1, &end, 10) : 0;
            if (*end || k < 1 || n < 1 || k > n || n > SWEEP_MAX_RUNS) {
                fprintf(stderr, "bench: --part: '%s' is not allowed; expected K/N with 1 <= K <= N (this slice of N)\n",
                        v);
                sweep_spec_free(&spec);
                return EXIT_USAGE;
            }
            part = (int)k, parts = (int)n;
        }
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--save-baseline") && i + 1 < argc) save_baseline = argv[++i];
        else if (!strcmp(a, "--baseline") && i + 1 < argc) baseline_path = argv[++i];
        else if (!strcmp(a, "--fail-on-regression")) fail_on_regression = 1;
        else if (!strcmp(a, "--threshold") && i + 1 < argc) {
            char *end;
            threshold = strtod(argv[++i], &end) / 100.0;
            if ((*end && strcmp(end, "%")) || !(threshold >= 0 && threshold < 1)) {
                fprintf(stderr, "bench: --threshold: '%s' is not allowed; expected a percentage 0..100, e.g. 3%%\n",
                        argv[i]);
                sweep_spec_free(&spec);
                return EXIT_USAGE;
            }
        }
        else if (!strcmp(a, "--include-noisy")) include_noisy = 1;
        else if (!strcmp(a, "--no-sentinel")) sentinel = 0;
        else if (!strcmp(a, "--precision") && i + 1 < argc) {
            char *end;
            precision = strtod(argv[++i], &end);
            if ((*end && strcmp(end, "%")) || !(precision > 0 && precision < 100)) {
                fprintf(stderr, "bench: --precision: '%s' is not allowed; expected a percentage in (0, 100), e.g. 2%%\n",
                        argv[i]);
                sweep_spec_free(&spec);
                return EXIT_USAGE;
            }
        }
        else if (!strcmp(a, "--max-repeat") && i + 1 < argc) {
            if (!cli_int("bench", a, argv[++i], 2, BENCH_BASELINE_MAX_REPS, &max_repeat)) { sweep_spec_free(&spec); return EXIT_USAGE; }
            max_repeat_given = 1;
        }
        else if (!strcmp(a, "--repeat") && i + 1 < argc) {
            if (!cli_int("bench", a, argv[++i], 1, 100, &repeat)) { sweep_spec_free(&spec); return EXIT_USAGE; }
        }
        else if (!strcmp(a, "--target-acc") && i + 1 < argc) {
            char *end;
            target_acc = strtod(argv[++i], &end);
            if (*end || !(target_acc > 0 && target_acc < 1)) {
                fprintf(stderr, "bench: --target-acc: '%s' is not allowed; expected an accuracy in (0, 1)\n", argv[i]);
                sweep_spec_free(&spec);
                return EXIT_USAGE;
            }
        }
        else if ((!strcmp(a, "--out") || !strcmp(a, "--data") || !strcmp(a, "--epochs") || !strcmp(a, "--val") ||
                  !strcmp(a, "--load")) &&
                 i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(a, "--out")) out = v;
            else if (!strcmp(a, "--load")) {
                if (!cli_int("bench", a, v, 0, BENCH_LOAD_MAX, &load)) { sweep_spec_free(&spec); return EXIT_USAGE; }
            }
            else if (!strcmp(a, "--data")) data = v;
            else if (!strcmp(a, "--val")) {
                if (!cli_int("bench", a, v, 0, 59999, &val)) { sweep_spec_free(&spec); return EXIT_USAGE; }
            } else {
                if (!cli_int("bench", a, v, 1, 100000, &epochs_flag)) { sweep_spec_free(&spec); return EXIT_USAGE; }
            }
        } else {
            fprintf(stderr, "bench: unknown flag or missing value '%s'\n", a);
            bench_usage(stderr);
            sweep_spec_free(&spec);
            return EXIT_USAGE;
        }
    }
    if (!any_key) {
        fprintf(stderr, "bench: --sweep needs KEY=V1,V2,...; valid keys: %s\n", sweep_keys_help());
        sweep_spec_free(&spec);
        return EXIT_USAGE;
    }
    if ((save_baseline || baseline_path) && repeat < 3) {
        fprintf(stderr, "bench: --save-baseline and --baseline need --repeat N with N >= 3: a comparison needs "
                        "repetitions\n");
        sweep_spec_free(&spec);
        return EXIT_USAGE;
    }
    if (save_baseline && !cli_check_output("bench", "--save-baseline", save_baseline, 0)) {
        sweep_spec_free(&spec);
        return EXIT_USAGE;
    }
    if (precision > 0 && repeat == 1) repeat = 3; /* an interval needs a few repetitions to start from */
    if (max_repeat_given && precision <= 0) {
        fprintf(stderr, "bench: --max-repeat bounds --precision's extra blocks; give --precision P%% too\n");
        sweep_spec_free(&spec);
        return EXIT_USAGE;
    }
    if (precision > 0 && max_repeat < repeat) {
        fprintf(stderr, "bench: --max-repeat %d is below --repeat %d\n", max_repeat, repeat);
        sweep_spec_free(&spec);
        return EXIT_USAGE;
    }
    const int repeated = repeat > 1 || precision > 0;   /* blocks, summaries at the end */
    const int stride = precision > 0 ? max_repeat : repeat; /* result slots per configuration */
    if (target_acc > 0 && val == 0) {
        fprintf(stderr, "bench: --target-acc needs a validation set (--val N > 0): time to accuracy is measured there\n");
        sweep_spec_free(&spec);
        return EXIT_USAGE;
    }
    if (epochs_flag) {
        if (spec.given[KEY_EPOCHS]) {
            fprintf(stderr, "bench: --epochs and the sweep key epochs= both given; use one\n");
            sweep_spec_free(&spec);
            return EXIT_USAGE;
        }
        spec.base.epochs = epochs_flag;
    }
    int nruns = sweep_spec_count(&spec);
    if (nruns > SWEEP_MAX_RUNS) {
        fprintf(stderr, "bench: --sweep: the product has more than %d runs\n", SWEEP_MAX_RUNS);
        sweep_spec_free(&spec);
        return EXIT_USAGE;
    }
    sn_team_mode team;
    if (sn_isa_init(&err) || sn_team_mode_from_env(&team, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        sweep_spec_free(&spec);
        return EXIT_USAGE;
    }

    if (!cli_check_output("bench", "--out", out, 1)) {
        sweep_spec_free(&spec);
        return EXIT_USAGE;
    }
    char sweep_path[4096], summary_path[4096], labels_path[4096], reps_path[4096];
    snprintf(reps_path, sizeof reps_path, "%s/reps.csv", out);
    snprintf(sweep_path, sizeof sweep_path, "%s/sweep.csv", out);
    snprintf(summary_path, sizeof summary_path, "%s/summary.csv", out);
    snprintf(labels_path, sizeof labels_path, "%s/labels.txt", out);
    /* Results already there are not lost silently: replacing them takes --force,
     * continuing them --resume with the same grid. */
    struct stat st;
    if (resume && force) {
        fprintf(stderr, "bench: --resume continues the sweep in %s, --force replaces it: give one\n", out);
        sweep_spec_free(&spec);
        return EXIT_USAGE;
    }
    if (!resume && !force && (stat(summary_path, &st) == 0 || stat(sweep_path, &st) == 0)) {
        fprintf(stderr, "bench: --out %s already holds a sweep (summary.csv, sweep.csv); add --resume to continue it, "
                        "--force to replace it, or name another --out\n", out);
        sweep_spec_free(&spec);
        return EXIT_USAGE;
    }
    /* done: runs finished (one-pass sweeps, from summary.csv); done_rep/res: every
     * configuration's stride repetitions, those finished restored from reps.csv. */
    bench_baseline base = { 0 };
    if (baseline_path && (!bench_baseline_load(baseline_path, &base) || !bench_baseline_check_machine(&base, baseline_path))) {
        bench_baseline_free(&base);
        sweep_spec_free(&spec);
        return EXIT_USAGE;
    }
    /* From here on every way out goes through `cleanup`, which frees what is held. */
    sweep_ctx c = { 0 };
    int rc = EXIT_RUNTIME;
    unsigned char *done = calloc((size_t)nruns ? (size_t)nruns : 1, 1);
    unsigned char *done_rep = calloc((size_t)nruns * (size_t)stride + 1, 1);
    run_result *res = calloc((size_t)nruns * (size_t)stride + 1, sizeof *res);
    sweep_run *runs = malloc(sizeof *runs * ((size_t)nruns + 1));
    int *group = malloc(sizeof(int) * ((size_t)nruns + 1));
    int finished = 0;
    if (!done || !done_rep || !res || !runs || !group) {
        fprintf(stderr, "bench: out of memory\n");
        rc = EXIT_RUNTIME;
        goto cleanup;
    }
    for (int i = 0; i < nruns; i++) sweep_spec_run(&spec, i, &runs[i]);
    thread_groups(runs, nruns, group);
    if (resume) {
        int foreign = 0, foreign_rep = 0;
        if (repeated) {
            finished = read_finished_reps(reps_path, &spec, nruns, stride, res, done_rep, &foreign);
        } else {
            finished = read_finished(summary_path, &spec, nruns, done, &foreign);
            (void)read_finished_reps(reps_path, &spec, nruns, 1, res, done_rep, &foreign_rep);
        }
        if (foreign) {
            fprintf(stderr, "bench: --resume: %s records run %d of another grid (its keys differ from these); "
                            "resuming would drop it. Resume with the same keys, name another --out, or --force "
                            "to replace it\n", summary_path, foreign);
            rc = EXIT_USAGE;
            goto cleanup;
        }
    }
    c = (sweep_ctx){ .spec = &spec, .nruns = nruns, .val = val, .quiet = quiet, .load = load, .target_acc = target_acc,
                    .repeat = repeat, .rep = 1, .include_noisy = include_noisy, .precision = precision,
                    .max_repeat = max_repeat };
    if (!cli_load_mnist("bench", cli_data_dir(data), &c.all, &c.test)) {
        rc = EXIT_RUNTIME;
        goto cleanup;
    }
    if (val >= c.all.count) {
        fprintf(stderr, "bench: --val: '%d' is not allowed; the training set has %d images\n", val, c.all.count);
        rc = EXIT_USAGE;
        goto cleanup;
    }
    /* Deskewed copies once, if a run wants them (as train does, before any epoch). */
    int any_deskew = 0;
    for (int i = 0; i < nruns; i++) {
        sweep_run r;
        sweep_spec_run(&spec, i, &r);
        any_deskew |= r.deskew;
    }
    if (any_deskew) {
        if (!copy_dataset(&c.all, &c.all_deskewed) || !copy_dataset(&c.test, &c.test_deskewed)) {
            fprintf(stderr, "bench: out of memory for the deskewed images\n");
            rc = EXIT_RUNTIME;
            goto cleanup;
        }
        if (sn_dataset_deskew(&c.all_deskewed, defaults.threads, &err) ||
            sn_dataset_deskew(&c.test_deskewed, defaults.threads, &err)) {
            fprintf(stderr, "bench: %s\n", err.msg);
            rc = EXIT_RUNTIME;
            goto cleanup;
        }
    }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench: --out: cannot create %s: %s\n", out, strerror(errno));
        rc = EXIT_RUNTIME;
        goto cleanup;
    }
    if (!bench_write_env_json(out, cli_data_dir(data))) {
        rc = EXIT_RUNTIME;
        goto cleanup;
    }
    if (resume) {
        /* A repeated sweep writes its summary at the end: the rows go, the repetitions stay. */
        static const unsigned char none[1];
        const int kept = repeated ? keep_finished_rows(sweep_path, done_rep, nruns, stride) &&
                                        keep_finished_rows(reps_path, done_rep, nruns, stride) &&
                                        keep_finished_rows(summary_path, none, 0, 0)
                                  : keep_finished_rows(sweep_path, done, nruns, 0) &&
                                        keep_finished_rows(reps_path, done, nruns, 0) &&
                                        keep_finished_rows(summary_path, done, nruns, 0);
        if (!kept) {
            fprintf(stderr, "bench: --resume: cannot rewrite the CSVs in %s\n", out);
            rc = EXIT_RUNTIME;
            goto cleanup;
        }
        if (!quiet)
            fprintf(stderr, "bench: --resume: %d of %d %s already finished in %s\n", finished,
                    repeated ? nruns * repeat : nruns, repeated ? "repetitions" : "runs", out);
    }
    /* The sentinel's CPUs and the session's best rate, before any run. */
    c.sentinel = sentinel;
    if (sentinel && !bench_noise_init(&c.noise) && !quiet)
        fprintf(stderr, "bench: warning: the CPU affinity could not be read; the noise sentinel probes where it runs\n");
    const char *mode = resume && finished ? "a" : "w";
    c.sweep_csv = fopen(sweep_path, mode);
    c.summary_csv = fopen(summary_path, mode);
    c.reps_csv = fopen(reps_path, mode);
    if (!c.sweep_csv || !c.summary_csv || !c.reps_csv) {
        fprintf(stderr, "bench: cannot write sweep.csv, summary.csv and reps.csv in %s\n", out);
        rc = EXIT_RUNTIME;
        goto cleanup;
    }
    /* A file without its header (new; resumed from a sweep interrupted before it was
     * written; from before reps.csv) gets the provenance, the grid and the header, at
     * once on disk: an interrupted sweep leaves files a resume can read. */
    FILE *const files[3] = { c.sweep_csv, c.summary_csv, c.reps_csv };
    const char *const headers[3] = { SWEEP_HEADER, SUMMARY_HEADER, REPS_HEADER };
    for (int k = 0; k < 3; k++) {
        fseek(files[k], 0, SEEK_END);
        if (ftell(files[k]) == 0) {
            bench_write_provenance(files[k], k == 2 ? "bench --sweep (every repetition, with the noise sentinel)"
                                                    : "bench --sweep");
            fprintf(files[k], "# load: %d busy processes beside the runs (--load)\n", load);
            /* What bench --merge checks: the same grid in every part, and which part this is. */
            fprintf(files[k], "# grid: %s epochs=%d val=%d target=%g repeat=%d precision=%g (%d runs)\n# part: %d/%d\n",
                    grid, spec.base.epochs, val, target_acc, repeat, precision, nruns, part, parts);
            fprintf(files[k], "%s\n", headers[k]);
        }
        fflush(files[k]);
    }

    /* The busy processes run from the first run to the last, not while plotting. */
    bench_load busy;
    if (!bench_load_start(load, &busy)) goto cleanup;
    if (load && !quiet) fprintf(stderr, "bench: --load: %d busy processes started beside the runs\n", load);
    int ok = 1, ran = 0, regressed = 0;
    double start = sn_now();
    int nblocks = 1;
    if (!repeated) {
        for (int i = 0; i < nruns && ok; i++) {
            if (done[i] || i % parts != part - 1) continue;
            run_result *x = &res[i];
            ok = run_one(&c, i, &runs[i], x);
            if (ok) write_summary(&c, i, &runs[i], x, 1);
            ran++;
            if (ok && !quiet) {
                double el = sn_now() - start;
                int left = 0;
                for (int j = i + 1; j < nruns; j++) left += !done[j] && j % parts == part - 1;
                fprintf(stderr, "run %d/%d done: test_acc=%.4f samples_per_s=%.0f train_s=%.2f eval_s=%.2f%s; ETA %.0f s\n",
                        i + 1, nruns, x->test_acc, x->train_s > 0 ? x->samples / x->train_s : 0, x->train_s, x->eval_s,
                        x->noisy ? " (noisy)" : "", left * el / ran);
            }
        }
    } else {
        nblocks = run_repeated(&c, runs, group, part, parts, stride, res, done_rep);
        ok = nblocks > 0;
        for (int i = 0; ok && i < nruns; i++)
            if (i % parts == part - 1) write_summary(&c, i, &runs[i], &res[(size_t)i * stride], nblocks);
    }
    const int scaling_rows = ok ? thread_scaling(&c, runs, group, res, stride, nblocks, part, parts, out) : 0;
    /* The speeds a baseline keeps: nruns x nblocks, 0 where a repetition does not count. */
    double *speeds = repeated ? calloc((size_t)nruns * (size_t)nblocks + 1, sizeof(double)) : NULL;
    if (repeated && !speeds) ok = 0, fprintf(stderr, "bench: out of memory\n");
    for (int i = 0; ok && speeds && i < nruns; i++) {
        if (i % parts != part - 1) continue;
        const run_result *x = &res[(size_t)i * stride];
        double dummy[BENCH_BASELINE_MAX_REPS];
        int all_noisy;
        (void)counted_speeds(&c, x, nblocks, dummy, &all_noisy);
        for (int k = 0; k < nblocks; k++)
            speeds[(size_t)i * nblocks + k] =
                !x[k].diverged && !x[k].collapsed && (include_noisy || all_noisy || !x[k].noisy) ? x[k].speed : 0;
    }
    bench_load_stop(&busy);
    /* The baseline: this sweep's repetitions saved, or compared with a saved one. */
    if (ok && (save_baseline || baseline_path)) {
        char(*colbuf)[768] = malloc(sizeof *colbuf * (size_t)nruns), (*labbuf)[640] = malloc(sizeof *labbuf * (size_t)nruns);
        const char **cols = calloc((size_t)nruns, sizeof(char *)), **labels = calloc((size_t)nruns, sizeof(char *));
        if (colbuf && labbuf && cols && labels) {
            for (int i = 0; i < nruns; i++) {
                if (i % parts != part - 1) continue;
                sweep_run r;
                sweep_spec_run(&spec, i, &r);
                config_cols(colbuf[i], sizeof colbuf[i], &r);
                sweep_run_label(&spec, &r, labbuf[i], sizeof labbuf[i]);
                cols[i] = colbuf[i], labels[i] = labbuf[i];
            }
            if (save_baseline && !bench_baseline_save(save_baseline, grid, nruns, cols, speeds, nblocks)) ok = 0;
            else if (save_baseline && !quiet) fprintf(stderr, "bench: --save-baseline: wrote %s\n", save_baseline);
            if (baseline_path)
                regressed = bench_baseline_compare(&base, nruns, cols, labels, speeds, nblocks, threshold);
        } else {
            fprintf(stderr, "bench: out of memory\n");
            ok = 0;
        }
        free(colbuf), free(labbuf), free(cols), free(labels);
    }
    free(speeds);
    fclose(c.sweep_csv), fclose(c.summary_csv), fclose(c.reps_csv);
    c.sweep_csv = c.summary_csv = c.reps_csv = NULL;

    /* Legend labels, one per run, quoted for gnuplot's word(). */
    FILE *lf = fopen(labels_path, "w");
    if (lf) {
        for (int i = 0; i < nruns; i++) {
            sweep_run r;
            char label[256];
            sweep_spec_run(&spec, i, &r);
            sweep_run_label(&spec, &r, label, sizeof label);
            fprintf(lf, "\"%s\"%c", label, i + 1 < nruns ? ' ' : '\n');
        }
        fclose(lf);
    }
    bench_mark_labels(labels_path, summary_path, nruns);
    if (ok && !no_plot && parts > 1) {
        if (!quiet) fprintf(stderr, "bench: part %d/%d done; the charts come from bench --merge of all parts\n", part, parts);
    } else if (ok && !no_plot) {
        if (!bench_gnuplot_available()) {
            fprintf(stderr, "bench: warning: gnuplot not found (apt-get install gnuplot-nox); CSVs written, no PNGs\n");
        } else {
            /* Runs that differ only in threads train the same bits: their curves coincide. */
            const char *note = spec.given[KEY_THREADS] && spec.nvalues[KEY_THREADS] > 1
                                   ? "runs that differ only in threads coincide: training is bit-identical for any "
                                     "thread count"
                                   : "";
            int n = bench_render("plots/loss.gp", out, labels_path, nruns, val, note);
            n += bench_render("plots/accuracy.gp", out, labels_path, nruns, val, note);
            n += bench_render("plots/throughput.gp", out, labels_path, nruns, val, "");
            if (target_acc > 0) n += bench_render("plots/tta.gp", out, labels_path, nruns, val, "");
            if (scaling_rows) n += bench_render("plots/scaling.gp", out, labels_path, nruns, val, "");
            if (!quiet && n) fprintf(stderr, "bench: wrote %s/loss.png, accuracy.png, throughput.png\n", out);
        }
    }
    if (ok && target_acc > 0 && parts == 1) bench_report_tta(summary_path, target_acc);
    if (!quiet) fprintf(stderr, "bench: wrote %s and %s\n", sweep_path, summary_path);
    rc = ok ? 0 : EXIT_RUNTIME;
    if (ok && regressed && fail_on_regression) {
        fprintf(stderr, "bench: %d configuration%s regressed against %s (--fail-on-regression)\n", regressed,
                regressed > 1 ? "s" : "", baseline_path);
        rc = EXIT_REGRESSED;
    }
cleanup:
    for (FILE **f = &c.sweep_csv; f; f = f == &c.sweep_csv ? &c.summary_csv : f == &c.summary_csv ? &c.reps_csv : NULL)
        if (*f) fclose(*f);
    bench_baseline_free(&base);
    free(done), free(done_rep), free(res), free(runs), free(group);
    sn_dataset_free(&c.all);
    sn_dataset_free(&c.test);
    sn_dataset_free(&c.all_deskewed);
    sn_dataset_free(&c.test_deskewed);
    sweep_spec_free(&spec);
    return rc;
}
