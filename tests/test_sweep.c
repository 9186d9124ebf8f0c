/* The sweep harness: the spec parser on good and bad specs, and whole sweeps on the
 * committed subset (CSV files, plots, divergence, resume). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scratchnet/gemm.h"
#include "stats.h"
#include "sweep_spec.h"
#include "test_util.h"

static sweep_run defaults(void)
{
    sweep_run d = { .batch = 128, .lr = 0.05f, .threads = 1, .epochs = 10, .opt = SN_OPT_MOMENTUM, .seed = 42,
                    .nlayers = 3 };
    sn_net_mlp_layers((const int[]){ 784, 50, 25, 10 }, 4, d.net);
    return d;
}

Test(sweep_spec, cartesian_product_in_stable_order)
{
    sweep_spec s;
    sweep_run d = defaults(), r;
    sweep_spec_init(&s, &d);
    cr_assert_eq(sweep_spec_add(&s, "lr=0.1,0.01", NULL), SN_OK);
    cr_assert_eq(sweep_spec_add(&s, "batch=32,64,128", NULL), SN_OK);
    cr_assert_eq(sweep_spec_count(&s), 6);
    /* First key given varies slowest. */
    sweep_spec_run(&s, 0, &r);
    cr_assert(r.lr == 0.1f && r.batch == 32);
    sweep_spec_run(&s, 2, &r);
    cr_assert(r.lr == 0.1f && r.batch == 128);
    sweep_spec_run(&s, 3, &r);
    cr_assert(r.lr == 0.01f && r.batch == 32);
    cr_assert_eq(r.epochs, 10, "unswept keys keep their defaults");
    char label[256];
    sweep_run_label(&s, &r, label, sizeof label);
    cr_assert_str_eq(label, "lr=0.01 batch=32");
    sweep_spec_free(&s);
}

Test(sweep_spec, every_key_and_layer_syntax)
{
    sweep_spec s;
    sweep_run d = defaults(), r;
    sweep_spec_init(&s, &d);
    cr_assert_eq(sweep_spec_add(&s, "layers=784:50:25:10,784:100:10", NULL), SN_OK);
    cr_assert_eq(sweep_spec_add(&s, "opt=sgd,momentum,adam", NULL), SN_OK);
    cr_assert_eq(sweep_spec_add(&s, "threads=1,2", NULL), SN_OK);
    cr_assert_eq(sweep_spec_add(&s, "epochs=1", NULL), SN_OK);
    cr_assert_eq(sweep_spec_add(&s, "seed=0,7", NULL), SN_OK);
    cr_assert_eq(sweep_spec_count(&s), 2 * 3 * 2 * 1 * 2);
    sweep_spec_run(&s, sweep_spec_count(&s) - 1, &r);
    cr_assert(r.nlayers == 2 && r.net[0].out == 100);
    cr_assert(r.opt == SN_OPT_ADAM && r.threads == 2 && r.epochs == 1 && r.seed == 7);
    sweep_spec_free(&s);
    sweep_spec_init(&s, &d);
    cr_assert_eq(sweep_spec_add(&s, "layers=784,64,10", NULL), SN_OK, "one ',' list is one network");
    cr_assert_eq(sweep_spec_count(&s), 1);
    sweep_spec_free(&s);
    sweep_spec_init(&s, &d);
    cr_assert_eq(sweep_spec_add(&s, "layers=\"784,64,10\";'784,32,10'", NULL), SN_OK, "';' between quoted lists");
    cr_assert_eq(sweep_spec_count(&s), 2);
    sweep_spec_run(&s, 1, &r);
    cr_assert_eq(r.net[0].out, 32);
    sweep_spec_free(&s);
    /* net=: presets separated by ',', specs by ';'; layers and net are one key */
    sweep_spec_init(&s, &d);
    cr_assert_eq(sweep_spec_add(&s, "net=mlp,cnn", NULL), SN_OK);
    cr_assert_eq(sweep_spec_count(&s), 2);
    sweep_spec_run(&s, 1, &r);
    cr_assert(r.nlayers == 6 && !strcmp(r.net[0].ops->type, "conv") && r.net[5].out == 10);
    char label[256];
    sweep_run_label(&s, &r, label, sizeof label);
    cr_assert_str_eq(label, "net=conv3x3x32-pool2-conv3x3x64-pool2-dense128-dense10");
    sn_error err;
    cr_assert_eq(sweep_spec_add(&s, "layers=784,10", &err), SN_EINVAL);
    cr_assert(strstr(err.msg, "give one"), "%s", err.msg);
    sweep_spec_free(&s);
    sweep_spec_init(&s, &d);
    cr_assert_eq(sweep_spec_add(&s, "net=784,dense:100,leaky,dense10;conv3x3x8,pool2,dense10", NULL), SN_OK);
    cr_assert_eq(sweep_spec_count(&s), 2);
    cr_assert_eq(sweep_spec_add(&s, "epochs=1", NULL), SN_OK);
    cr_assert_neq(sweep_spec_add(&s, "layers=784,10", NULL), SN_OK);
    sweep_spec_free(&s);
    sweep_spec_init(&s, &d);
    cr_assert_eq(sweep_spec_add(&s, "net=conv3x3x8,pool9,dense10", &err), SN_EINVAL);
    cr_assert(strstr(err.msg, "net: ") && strstr(err.msg, "pool9"), "%s", err.msg);
    sweep_spec_free(&s);
    /* deskew=on,off; augment= specs separated by ';' (a single spec keeps its ','). */
    sweep_spec_init(&s, &d);
    cr_assert_eq(sweep_spec_add(&s, "deskew=off,on", NULL), SN_OK);
    cr_assert_eq(sweep_spec_add(&s, "augment=none;thick=1,rot=8@0.5", NULL), SN_OK);
    cr_assert_eq(sweep_spec_count(&s), 4);
    sweep_spec_run(&s, 3, &r);
    cr_assert(r.deskew == 1 && r.aug.range[SN_AUG_ROT] == 8.0f && r.aug.prob[SN_AUG_ROT] == 0.5f);
    sweep_run_label(&s, &r, label, sizeof label);
    cr_assert_str_eq(label, "deskew=on augment=rot=8@0.5,thick=1");
    sweep_spec_run(&s, 0, &r);
    cr_assert(r.deskew == 0 && !sn_augment_active(&r.aug));
    sweep_spec_free(&s);
    sweep_spec_init(&s, &d);
    cr_assert_eq(sweep_spec_add(&s, "augment=thick=1,shift=2", NULL), SN_OK);
    cr_assert_eq(sweep_spec_count(&s), 1, "one spec with ',' is one value");
    cr_assert_eq(sweep_spec_add(&s, "deskew=maybe", &err), SN_EINVAL);
    cr_assert(strstr(err.msg, "deskew: 'maybe'"), "%s", err.msg);
    sweep_spec_free(&s);
}

Test(sweep_spec, bad_specs_refused_with_reason)
{
    struct { const char *arg, *needle; } bad[] = {
        { "color=red", "valid keys: batch, lr, threads, epochs, opt, seed, layers" },
        { "batch", "KEY=V1,V2" },
        { "batch=", "empty value" },
        { "batch=32,,64", "empty value" },
        { "batch=32,", "empty value" },
        { "batch=0", "'0'" },
        { "batch=12x", "'12x'" },
        { "lr=-1", "lr: '-1'" },
        { "lr=nan", "'nan'" },
        { "lr=inf", "'inf'" },
        { "lr=1e-50", "'1e-50'" }, /* positive as a double, 0 as a float: found by the fuzzer */
        { "threads=0", "threads" },
        { "opt=rmsprop", "sgd, momentum, nesterov or adam" },
        { "seed=-3", "seed" },
        { "layers=784:0:10", "layers" },
        { "layers=100:10", "784 inputs" },
        { "augment=spin=2", "augment: augmentation item 'spin'" },
        { "augment=none;;thick=1", "empty value" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sweep_spec s;
        sweep_run d = defaults();
        sn_error err = { 0 };
        sweep_spec_init(&s, &d);
        cr_assert_eq(sweep_spec_add(&s, bad[i].arg, &err), SN_EINVAL, "'%s' accepted", bad[i].arg);
        cr_assert(strstr(err.msg, bad[i].needle), "'%s': message '%s' lacks '%s'", bad[i].arg, err.msg, bad[i].needle);
        sweep_spec_free(&s);
    }
    sweep_spec s;
    sweep_run d = defaults();
    sn_error err;
    sweep_spec_init(&s, &d);
    cr_assert_eq(sweep_spec_add(&s, "batch=1", NULL), SN_OK);
    cr_assert_eq(sweep_spec_add(&s, "batch=2", &err), SN_EINVAL);
    cr_assert(strstr(err.msg, "twice"), "%s", err.msg);
    sweep_spec_free(&s);
}

static char out[65536], err[65536];

static int count_data_rows(const char *path, const char *status)
{
    size_t len;
    char *d = (char *)tu_read(path, &len);
    if (!d) return -1;
    d[len] = 0;
    int n = 0;
    for (char *line = strtok(d, "\n"); line; line = strtok(NULL, "\n"))
        if (line[0] != '#' && strncmp(line, "run,", 4) && (!status || strstr(line, status))) n++;
    free(d);
    return n;
}

static int has_png_signature(const char *path, size_t *len)
{
    unsigned char *d = tu_read(path, len);
    int ok = d && *len > 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0;
    free(d);
    return ok;
}

Test(sweep_run, two_configurations_write_csvs_and_plots, .timeout = 120)
{
    const char *dir = tu_tmpdir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s --sweep batch=64,128 --epochs 1 --val 500 --quiet --data %s --out %s", TU_BENCH,
             TU_SUBSET, dir);
    int rc = tu_run(cmd, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "bench exited %d: %s", rc, err);
    cr_assert_eq(count_data_rows(tu_path(dir, "sweep.csv"), NULL), 2, "one row per run per epoch");
    cr_assert_eq(count_data_rows(tu_path(dir, "summary.csv"), ",ok"), 2);
    size_t len;
    char *s = (char *)tu_read(tu_path(dir, "summary.csv"), &len);
    s[len] = 0;
    cr_assert(strstr(s, "\nrun,batch,lr,threads,opt,seed,layers,deskew,augment,epochs,train_loss,val_loss,val_acc,"
                        "test_loss,test_acc,train_s,samples_per_s,status,load,tta_s,reps,samples_per_s_mad,"
                        "samples_per_s_ci_lo,samples_per_s_ci_hi,noisy_reps\n"), "%s", s);
    cr_assert(strstr(s, "# kernel isa:") && strstr(s, "# cpu:") && strstr(s, "commit"), "provenance lines: %s", s);
    free(s);
    s = (char *)tu_read(tu_path(dir, "sweep.csv"), &len);
    s[len] = 0;
    cr_assert(strstr(s, "\nrun,batch,lr,threads,opt,seed,layers,deskew,augment,epoch,train_loss,val_loss,val_acc,epoch_s,"
                        "samples_per_s,load,solo_steps,rep\n"));
    cr_assert(strstr(s, "\n2,128,0.05,"), "run 2 is batch=128: %s", s);
    free(s);
    if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
        cr_assert(has_png_signature(tu_path(dir, "loss.png"), &len), "loss.png is not a PNG");
        cr_assert(len > 10000, "loss.png is only %zu bytes", len);
        cr_assert(has_png_signature(tu_path(dir, "accuracy.png"), &len));
        cr_assert(has_png_signature(tu_path(dir, "throughput.png"), &len));
    }
}

Test(sweep_run, huge_learning_rate_is_recorded_as_diverged, .timeout = 120)
{
    const char *dir = tu_tmpdir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s --sweep lr=1e9,0.05 --epochs 2 --val 500 --quiet --data %s --out %s", TU_BENCH,
             TU_SUBSET, dir);
    int rc = tu_run(cmd, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "a diverged run must not fail the sweep: exit %d: %s", rc, err);
    cr_assert_eq(count_data_rows(tu_path(dir, "summary.csv"), ",diverged"), 1);
    cr_assert_eq(count_data_rows(tu_path(dir, "summary.csv"), ",ok"), 1, "the sweep goes on after a divergence");
    cr_assert(strstr(err, "diverged"), "%s", err);
    /* No NaN reaches the per-epoch CSV that the plots read. */
    size_t len;
    char *s = (char *)tu_read(tu_path(dir, "sweep.csv"), &len);
    s[len] = 0;
    cr_assert_null(strstr(s, "nan"), "%s", s);
    free(s);
}

Test(sweep_run, bad_keys_exit_2_before_any_work)
{
    const char *dir = tu_tmpdir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s --sweep batch=32 colour=red --data %s --out %s/o", TU_BENCH, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    cr_assert(strstr(err, "valid keys"), "%s", err);
    cr_assert(!tu_exists(tu_path(dir, "o")), "output directory created before validation");
    snprintf(cmd, sizeof cmd, "%s --frob", TU_BENCH);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    snprintf(cmd, sizeof cmd, "%s --sweep net=cnn layers=784,10 --data %s --out %s/o", TU_BENCH, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    cr_assert(strstr(err, "give one"), "%s", err);
    /* the peers' nets are the ones their scripts build */
    snprintf(cmd, sizeof cmd, "%s --peers --net lenet5 --data %s", TU_BENCH, TU_SUBSET);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    cr_assert(strstr(err, "expected mlp, cnn or an MLP's sizes"), "%s", err);
    snprintf(cmd, sizeof cmd, "%s --peers --net 784,x,10 --data %s", TU_BENCH, TU_SUBSET);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
}

Test(sweep_run, resume_skips_finished_runs, .timeout = 120)
{
    const char *dir = tu_tmpdir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s --sweep batch=64,128 --epochs 1 --val 500 --quiet --no-plot --data %s --out %s",
             TU_BENCH, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    /* Simulate a sweep killed during run 2: drop its summary row, leave a partial epoch row. */
    size_t len;
    char *s = (char *)tu_read(tu_path(dir, "summary.csv"), &len);
    s[len] = 0;
    char *run2 = strstr(s, "\n2,");
    cr_assert_not_null(run2);
    run2[1] = 0;
    tu_write(tu_path(dir, "summary.csv"), s, strlen(s));
    free(s);
    snprintf(cmd, sizeof cmd, "%s --sweep batch=64,128 --epochs 1 --val 500 --no-plot --resume --data %s --out %s",
             TU_BENCH, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(err, "1 of 2 runs already finished"), "%s", err);
    cr_assert_eq(count_data_rows(tu_path(dir, "summary.csv"), ",ok"), 2);
    cr_assert_eq(count_data_rows(tu_path(dir, "sweep.csv"), NULL), 2, "run 2's partial rows replaced, not doubled");
}

/* bench --gemm keeps working (the Quick start does not run it): every case of one batch
 * size is validated against the reference and printed as the contract's row, with its
 * fraction of the ceiling measured in the same run, and the CSV has one row per case.
 * No BLAS (--no-blas): the tests never load OpenBLAS. Speeds are not asserted. ~6 s.
 * No Criterion .timeout here (meson's 300 s for the suite applies): with one on a test
 * this long, Criterion 2.4.1 leaks 48 bytes of its own and LeakSanitizer fails the run. */
Test(bench_gemm, validates_and_prints_every_case)
{
    const char *isa = sn_isa_supported(SN_ISA_AVX2) ? "avx2" : "scalar";
    const char *dir = tu_tmpdir(), *csv = tu_path(dir, "gemm.csv");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s --gemm --no-blas --quick --batch 32 --threads 1 --isa %s --csv %s", TU_BENCH, isa,
             csv);
    int rc = tu_run(cmd, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "bench --gemm exited %d: %s%s", rc, out, err);
    cr_assert_null(strstr(out, "INVALID"), "%s", out);
    char row[128];
    snprintf(row, sizeof row, "op=nn m=32 n=50 k=784 isa=%s threads=1 gflops=", isa);
    cr_assert(strstr(out, row), "missing '%s' in: %s", row, out);
    snprintf(row, sizeof row, "op=tn m=784 n=50 k=32 isa=%s threads=1 gflops=", isa);
    cr_assert(strstr(out, row), "missing '%s' in: %s", row, out);
    if (!strcmp(isa, "avx2")) {
        cr_assert(strstr(out, "# fma peak, register-only loop, GFLOP/s: avx2 "), "%s", out);
        cr_assert(strstr(out, " peak="), "rows carry their fraction of the ceiling: %s", out);
    }
    char tag[16];
    snprintf(tag, sizeof tag, ",%s,", isa);
    cr_assert_eq(count_data_rows(csv, tag), 7, "7 cases for one batch size, one ISA, one thread count");
    size_t len;
    char *s = (char *)tu_read(csv, &len);
    s[len] = 0;
    cr_assert(strstr(s, "\ncase,op,m,n,k,what,isa,threads,gflops,residual,of_peak\n"), "%s", s);
    free(s);
    /* A bad list is refused before any work. */
    snprintf(cmd, sizeof cmd, "%s --gemm --threads 0,2", TU_BENCH);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
}

/* The data rows of path with their first ncols columns only (the configuration and the
 * learning figures; the timing columns differ between any two runs). */
static char *rows_without_timing(const char *path, int ncols)
{
    size_t len;
    char *d = (char *)tu_read(path, &len), *out = calloc(len + 1, 1);
    cr_assert(d && out, "%s", path);
    d[len] = 0;
    for (char *line = strtok(d, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *p = line;
        for (int c = 0; c < ncols && p; c++) p = strchr(p + (c > 0), ',');
        if (p) *p = 0;
        strcat(out, line), strcat(out, "\n");
    }
    free(d);
    return out;
}

/* Array-job sweeps: --part K/N runs a slice of the grid, bench --merge makes one sweep of
 * the parts whose rows equal a sweep run in one piece (timing aside), with its charts;
 * a missing, repeated or foreign part is refused. */
Test(sweep_run, parts_merge_into_the_whole_sweep)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    const char *grid = "batch=32,64,128 opt=momentum,adam --epochs 1 --val 500 --quiet";
    snprintf(cmd, sizeof cmd, "%s --sweep %s --no-plot --data %s --out %s/whole", TU_BENCH, grid, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    for (int k = 1; k <= 4; k++) {
        snprintf(cmd, sizeof cmd, "%s --sweep %s --data %s --out %s/p%d --part %d/4", TU_BENCH, grid, TU_SUBSET, dir, k, k);
        cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    }
    cr_assert_eq(count_data_rows(tu_path(dir, "p1/summary.csv"), ",ok"), 2, "runs 1 and 5 of 6");
    cr_assert_eq(count_data_rows(tu_path(dir, "p4/summary.csv"), ",ok"), 1, "run 4");
    snprintf(cmd, sizeof cmd, "%s --merge %s/p4 %s/p2 %s/p1 %s/p3 --out %s/merged", TU_BENCH, dir, dir, dir, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    static const struct { const char *file; int cols; } files[] = { { "summary.csv", 15 }, { "sweep.csv", 13 },
                                                                    { "reps.csv", 12 } };
    for (int f = 0; f < 3; f++) {
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/whole/%s", dir, files[f].file);
        snprintf(b, sizeof b, "%s/merged/%s", dir, files[f].file);
        char *x = rows_without_timing(a, files[f].cols), *y = rows_without_timing(b, files[f].cols);
        cr_assert_str_eq(y, x, "%s differs from the sweep in one piece", files[f].file);
        free(x), free(y);
    }
    size_t len;
    cr_assert(has_png_signature(tu_path(dir, "merged/loss.png"), &len), "the merged sweep's chart");
    snprintf(cmd, sizeof cmd, "%s --merge %s/p1 %s/p2 %s/p3 --out %s/m2", TU_BENCH, dir, dir, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 1);
    cr_assert(strstr(err, "part 4/4 is missing"), "%s", err);
    snprintf(cmd, sizeof cmd, "%s --merge %s/p1 %s/p1 %s/p3 %s/p4 --out %s/m2", TU_BENCH, dir, dir, dir, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 1);
    cr_assert(strstr(err, "given twice"), "%s", err);
    snprintf(cmd, sizeof cmd, "%s --sweep batch=16 --epochs 1 --val 500 --quiet --data %s --out %s/other --part 1/1",
             TU_BENCH, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    snprintf(cmd, sizeof cmd, "%s --merge %s/p1 %s/other --out %s/m2", TU_BENCH, dir, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 1);
    cr_assert(strstr(err, "different sweeps"), "%s", err);
    snprintf(cmd, sizeof cmd, "%s --sweep batch=16 --part 3/2 --out %s/x", TU_BENCH, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2);
    cr_assert(strstr(err, "--part: '3/2'"), "%s", err);
}

/* --target-acc: tta_s is the training time summed over the epochs up to the first whose
 * validation accuracy reaches the target, as sweep.csv's rows give it; a run that never
 * reaches it has none, and the olympic-mean line counts it. */
Test(sweep_run, time_to_accuracy_from_the_epochs)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s --sweep lr=0.05,0.0005 seed=1,2,3 --epochs 3 --val 500 --target-acc 0.85 --quiet "
             "--data %s --out %s", TU_BENCH, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "tta (target 0.8500): batch=128 lr=0.05") && strstr(out, "olympic mean") &&
                  strstr(out, "lr=0.0005") && strstr(out, "not reached by any of 3 runs"),
              "%s", out);
    size_t len;
    char *sweep = (char *)tu_read(tu_path(dir, "sweep.csv"), &len), *summary = NULL;
    cr_assert(sweep);
    sweep[len] = 0;
    double sum[7] = { 0 }, hand[7] = { -1, -1, -1, -1, -1, -1, -1 };
    for (char *line = strtok(sweep, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !strncmp(line, "run,", 4)) continue;
        /* run,batch,lr,threads,opt,seed,layers,deskew,augment,epoch,train_loss,val_loss,val_acc,epoch_s,... */
        char *f[20];
        int nf = 0;
        for (char *p = line; p && nf < 20; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) f[nf++] = p;
        const int run = atoi(f[0]);
        sum[run] += atof(f[13]);
        if (hand[run] < 0 && atof(f[12]) >= 0.85) hand[run] = sum[run];
    }
    summary = (char *)tu_read(tu_path(dir, "summary.csv"), &len);
    cr_assert(summary);
    summary[len] = 0;
    int checked = 0;
    for (char *line = strtok(summary, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !strncmp(line, "run,", 4)) continue;
        const int run = atoi(line);
        const char *tta = line; /* tta_s is the 20th column */
        for (int col = 0; col < 19 && tta; col++) tta = strchr(tta, ',') ? strchr(tta, ',') + 1 : NULL;
        cr_assert(tta);
        char tta_text[32];
        snprintf(tta_text, sizeof tta_text, "%.*s", (int)strcspn(tta, ","), tta);
        tta = tta_text;
        if (hand[run] < 0) cr_assert_eq(*tta, 0, "run %d: tta_s '%s' but the target was never reached", run, tta);
        else cr_assert(fabs(atof(tta) - hand[run]) < 1e-5, "run %d: tta_s %s, by hand %.6f", run, tta, hand[run]);
        checked++;
    }
    cr_assert_eq(checked, 6);
    cr_assert(hand[1] > 0 && hand[4] < 0, "lr 0.05 reaches 0.85 in 3 epochs, lr 0.0005 does not");
    free(sweep), free(summary);
    snprintf(cmd, sizeof cmd, "%s --sweep batch=64 --target-acc 0.9 --val 0 --out %s/x", TU_BENCH, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2);
    cr_assert(strstr(err, "needs a validation set"), "%s", err);
}

/* The statistics behind --repeat: median and MAD by hand; the bootstrap interval holds the
 * median, stays inside the sample, is the same for the same seed and narrows as the
 * sample grows; a seeded permutation is one. */
Test(stats, median_mad_bootstrap_and_permutation)
{
    const double odd[] = { 5, 1, 4, 2, 3 }, even[] = { 4, 1, 3, 2 };
    cr_assert_eq(stats_median(odd, 5), 3.0);
    cr_assert_eq(stats_median(even, 4), 2.5);
    cr_assert_eq(stats_mad(odd, 5), 1.0, "|x - 3| = 2,2,1,1,0: median 1");
    double x[40], lo, hi, lo2, hi2;
    sn_rng rng;
    sn_rng_seed(&rng, 3);
    for (int i = 0; i < 40; i++) x[i] = 100 + 10 * sn_rng_normal(&rng);
    const double m = stats_median(x, 40);
    stats_median_ci(x, 40, 2000, 7, &lo, &hi);
    stats_median_ci(x, 40, 2000, 7, &lo2, &hi2);
    cr_assert(lo == lo2 && hi == hi2, "the same seed, the same interval");
    cr_assert(lo <= m && m <= hi && lo < hi, "[%g, %g] around %g", lo, hi, m);
    /* The median of 40 draws of sd 10 has a standard error of ~1.25 x 10 / sqrt(40) = 2:
     * a 95% interval some 8 wide, certainly between 3 and 16. */
    cr_assert(hi - lo > 3 && hi - lo < 16, "width %g", hi - lo);
    stats_median_ci(x, 10, 2000, 7, &lo2, &hi2);
    cr_assert(hi2 - lo2 > hi - lo, "10 draws give a wider interval than 40: %g vs %g", hi2 - lo2, hi - lo);
    /* A fixed sample and seed give precomputed bounds, on any machine (the resampling
     * draws integers; the medians are means of two sample values, exact in binary). */
    const double fixed[] = { 12, 15, 9, 20, 11, 14, 13, 18, 10, 16 };
    stats_median_ci(fixed, 10, 2000, 42, &lo2, &hi2);
    cr_assert(lo2 == 11 && hi2 == 16, "[%g, %g] for seed 42, precomputed [11, 16] around the median 13.5", lo2, hi2);
    /* The quiet values, or all when none is quiet. */
    const double v[] = { 1, 2, 3, 4 };
    const int some[] = { 0, 1, 0, 1 }, all[] = { 1, 1, 1, 1 };
    double q[4];
    cr_assert_eq(stats_quiet(v, some, 4, q), 2);
    cr_assert(q[0] == 1 && q[1] == 3);
    cr_assert_eq(stats_quiet(v, all, 4, q), 4, "none quiet: all of them");
    double one = 5;
    stats_median_ci(&one, 1, 2000, 7, &lo, &hi);
    cr_assert(lo == 5 && hi == 5);
    int p[100], seen[100] = { 0 };
    stats_permutation(p, 100, 11);
    int moved = 0;
    for (int i = 0; i < 100; i++) {
        cr_assert(p[i] >= 0 && p[i] < 100 && !seen[p[i]]++);
        moved += p[i] != i;
    }
    cr_assert(moved > 90, "shuffled: %d of 100 moved", moved);
}

/* --repeat: every configuration runs once a block (sweep.csv keeps every repetition,
 * with its rep; reps.csv one row each with the noise sentinel's figures), summary.csv one
 * row per configuration with the median speed, its MAD and interval, and the thread
 * ratio within blocks is reported (scaling.csv, scaling.png). --include-noisy: the
 * statistics must not depend on whether the machine (other tests) was busy. Then a sweep
 * "killed" after four of its six repetitions resumes with the two it lacks. */
Test(sweep_run, repetitions_with_intervals_and_resume)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(cmd, sizeof cmd,
             "%s --sweep batch=64 threads=1,2 --epochs 2 --val 500 --repeat 3 --include-noisy --quiet --data %s --out %s",
             TU_BENCH, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "run 1 (batch=64 threads=1): median ") && strstr(out, "95% CI [") && strstr(out, "3 reps"),
              "%s", out);
    cr_assert(strstr(out, "threads 1->2 (run 2 vs 1): ") && strstr(out, "efficiency") && strstr(out, "(3 blocks)"),
              "%s", out);
    cr_assert_eq(count_data_rows(tu_path(dir, "summary.csv"), NULL), 2, "one row per configuration");
    cr_assert_eq(count_data_rows(tu_path(dir, "sweep.csv"), NULL), 2 * 2 * 3, "configurations x epochs x reps");
    cr_assert_eq(count_data_rows(tu_path(dir, "reps.csv"), ",ok,"), 2 * 3, "configurations x reps");
    cr_assert_eq(count_data_rows(tu_path(dir, "scaling.csv"), ",all,"), 0, "a group is named by its keys");
    cr_assert_eq(count_data_rows(tu_path(dir, "scaling.csv"), ",batch=64,"), 2, "threads 1 (the base) and 2");
    size_t len;
    cr_assert(has_png_signature(tu_path(dir, "scaling.png"), &len), "scaling.png is not a PNG");
    char *s = (char *)tu_read(tu_path(dir, "summary.csv"), &len);
    s[len] = 0;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !strncmp(line, "run,", 4)) continue;
        /* ...,samples_per_s (17th),status,load,tta_s,reps,mad,ci_lo,ci_hi,noisy_reps */
        char *f[26];
        int nf = 0;
        for (char *p = line; p && nf < 26; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) f[nf++] = p;
        cr_assert_eq(nf, 25, "%s", line);
        const double med = atof(f[16]), lo = atof(f[22]), hi = atof(f[23]);
        cr_assert_eq(atoi(f[20]), 3);
        cr_assert(lo <= med && med <= hi && med > 0, "%s", line);
        cr_assert(atoi(f[24]) >= 0 && atoi(f[24]) <= 3, "noisy_reps: %s", line);
    }
    free(s);
    /* reps.csv: the sentinel's fraction is a fraction; noisy says whether it is under 0.9. */
    s = (char *)tu_read(tu_path(dir, "reps.csv"), &len);
    s[len] = 0;
    cr_assert(strstr(s, "\nrun,batch,lr,threads,opt,seed,layers,deskew,augment,epochs,rep,status,samples_per_s,"
                        "train_s,train_loss,val_loss,val_acc,test_loss,test_acc,tta_s,eval_s,samples,core_frac_min,"
                        "slow_cpu,nivcsw,steal_s,noisy\n"), "%s", s);
    int rows = 0;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !strncmp(line, "run,", 4)) continue;
        char *f[28];
        int nf = 0;
        for (char *p = line; p && nf < 28; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) f[nf++] = p;
        cr_assert_eq(nf, 27, "%s", line);
        const double frac = atof(f[22]);
        cr_assert(frac > 0 && frac <= 1.0, "core_frac_min %g: %s", frac, line);
        cr_assert_eq(atoi(f[26]), frac < 0.9, "%s", line);
        rows++;
    }
    cr_assert_eq(rows, 6);
    free(s);
    /* Killed after four repetitions: the last two rows of reps.csv gone (the summary is
     * written at the end, so it is empty then). */
    s = (char *)tu_read(tu_path(dir, "reps.csv"), &len);
    s[len] = 0;
    for (int k = 0; k < 2; k++) *strrchr(s, '\n') = 0, *(strrchr(s, '\n') + 1) = 0;
    tu_write(tu_path(dir, "reps.csv"), s, strlen(s));
    free(s);
    snprintf(cmd, sizeof cmd,
             "%s --sweep batch=64 threads=1,2 --epochs 2 --val 500 --repeat 3 --include-noisy --no-plot --resume --data "
             "%s --out %s",
             TU_BENCH, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(err, "4 of 6 repetitions already finished"), "%s", err);
    cr_assert(strstr(err, "run 1/2 (batch=64 threads=1) epoch") || strstr(err, "run 2/2 (batch=64 threads=2) epoch"),
              "the missing repetitions ran: %s", err);
    cr_assert_eq(count_data_rows(tu_path(dir, "reps.csv"), ",ok,"), 6, "every repetition once");
    cr_assert_eq(count_data_rows(tu_path(dir, "sweep.csv"), NULL), 2 * 2 * 3, "the rerun's epochs replace, not double");
    cr_assert_eq(count_data_rows(tu_path(dir, "summary.csv"), NULL), 2);
    /* Another grid's repetitions are not resumed into this one. */
    snprintf(cmd, sizeof cmd, "%s --sweep batch=32 --repeat 3 --resume --data %s --out %s", TU_BENCH, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    cr_assert(strstr(err, "another grid"), "%s", err);
}

/* The noise sentinel: with a busy process on every CPU, each probe shares its core, so
 * every repetition is noisy (a fraction near 0.5, far under 0.9); the console says so and
 * the statistics fall back to the noisy ones rather than reporting nothing. */
Test(sweep_run, noise_sentinel_flags_a_busy_machine)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(cmd, sizeof cmd, "%s --sweep batch=64 threads=1 --epochs 1 --val 500 --repeat 3 --load %ld --data %s --out %s",
             TU_BENCH, cpus < 1 ? 1L : cpus > 64 ? 64L : cpus, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "3 of 3 reps noisy (cpu ") && strstr(out, "counted: none was quiet"), "%s", out);
    size_t len;
    char *s = (char *)tu_read(tu_path(dir, "reps.csv"), &len);
    s[len] = 0;
    int noisy = 0;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n"))
        noisy += line[0] != '#' && strncmp(line, "run,", 4) && !strcmp(strrchr(line, ','), ",1");
    free(s);
    cr_assert_eq(noisy, 3, "noisy=1 on every repetition");
}

/* --precision P%: blocks are added until every interval is within +-P%, at most
 * --max-repeat; a loose target stops at --repeat, an impossible one at the bound. */
Test(sweep_run, precision_adds_blocks_up_to_the_bound)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s --sweep batch=64 --epochs 1 --val 500 --repeat 3 --precision 99%% --include-noisy "
             "--no-plot --data %s --out %s/a", TU_BENCH, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    /* +-99% holds after the first 3 blocks, unless one of them ran 3x slower than the
     * others (a compile beside the tests did that once): then the bench must have said
     * how wide the interval really was, and added blocks for it */
    const int rows = count_data_rows(tu_path(dir, "a/reps.csv"), ",ok,");
    if (rows != 3) {
        const char *said = strstr(err, "--precision 99%: after 3 blocks the widest interval is +-");
        cr_assert(said && rows > 3, "%d blocks for +-99%% with nothing said: %s", rows, err);
        cr_assert_gt(strtod(said + strlen("--precision 99%: after 3 blocks the widest interval is +-"), NULL), 99.0,
                     "%s", err);
    }
    snprintf(cmd, sizeof cmd, "%s --sweep batch=64 --epochs 1 --val 500 --repeat 3 --precision 0.0001%% --max-repeat 5 "
             "--include-noisy --no-plot --data %s --out %s/b", TU_BENCH, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert_eq(count_data_rows(tu_path(dir, "b/reps.csv"), ",ok,"), 5, "no run is that steady: up to the bound");
    cr_assert(strstr(err, "--precision 0.0001%: after 3 blocks the widest interval is"), "%s", err);
    cr_assert(strstr(out, "5 reps"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s --sweep batch=64 --max-repeat 5 --out %s/c", TU_BENCH, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2);
    cr_assert(strstr(err, "give --precision"), "%s", err);
    snprintf(cmd, sizeof cmd, "%s --sweep batch=64 --precision 0 --out %s/c", TU_BENCH, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2);
}

/* bench --report: a sweep's directory becomes report.md with the machine, the command,
 * the medians with intervals and the scaling; a peers.csv gives the paired ratios,
 * computed per block from the blocks quiet for both (hand-made: ours 200/210/220 against
 * 100/100/110 in blocks 1-3, block 3 noisy -> ratios 2.0 and 2.1, median 2.05x; with
 * block 3 it would be 2.00x), and a directory with nothing to report exits 2. */
Test(sweep_run, report_from_the_csvs)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s --sweep batch=64 threads=1,2 --epochs 1 --val 500 --repeat 3 --include-noisy --quiet "
             "--no-plot --data %s --out %s", TU_BENCH, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    static const char peers[] =
        "# bench --peers; date 2026-11-29T10:00:00Z; commit abc\n# command: bench --peers --repeat 3\n"
        "implementation,epochs,batch,threads,train_loss,val_loss,test_acc,train_s,samples_per_s,rep,core_frac_min,noisy\n"
        "scratchnet(avx512),1,128,1,0.3,0.2,0.94,0.25,200,1,0.98,0\nnumpy,1,128,1,0.3,0.2,0.94,0.5,100,1,0.98,0\n"
        "numpy,1,128,1,0.3,0.2,0.94,0.5,100,2,0.97,0\nscratchnet(avx512),1,128,1,0.3,0.2,0.94,0.24,210,2,0.98,0\n"
        "scratchnet(avx512),1,128,1,0.3,0.2,0.94,0.23,220,3,0.98,0\nnumpy,1,128,1,0.3,0.2,0.94,0.45,110,3,0.70,1\n";
    tu_write(tu_path(dir, "peers.csv"), peers, sizeof peers - 1);
    snprintf(cmd, sizeof cmd, "%s --report %s", TU_BENCH, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    size_t len;
    char *r = (char *)tu_read(tu_path(dir, "report.md"), &len);
    cr_assert_not_null(r);
    r[len] = 0;
    cr_assert(strstr(r, "| CPU | ") && strstr(r, "## Training sweep") && strstr(r, "Command: `bench --sweep batch=64 "),
              "%s", r);
    cr_assert(strstr(r, "| 1 | threads=1 | ") && strstr(r, "| 2 | threads=2 | "), "runs named by what varies: %s", r);
    cr_assert(strstr(r, "### Thread scaling") && strstr(r, "| 2 | "), "%s", r);
    cr_assert(strstr(r, "| numpy | 1 | 1 | 128 | 0.9400 | 100 | "), "median of 100, 100, 110: %s", r);
    cr_assert(strstr(r, "| scratchnet(avx512) / numpy | 1 | 2.05x | [2.00, 2.10] | 2 |"), "paired per block: %s", r);
    free(r);
    snprintf(cmd, sizeof cmd, "%s --report %s/nothing-here", TU_BENCH, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2);
    cr_assert(strstr(err, "is not a directory"), "%s", err);
}

/* The baseline statistics: the exact Mann-Whitney p of two fully separated samples of
 * five is 2 / C(10, 5) = 0.00794; the Hodges-Lehmann shift of a sample moved by 10 is 10;
 * and A/A comparisons (both samples from one distribution) call "regressed" (p < 0.01
 * and 3% slower) in at most 1.5% of 1,000 trials. */
Test(stats, mann_whitney_hodges_lehmann_and_a_a_comparisons)
{
    const double a[] = { 1, 2, 3, 4, 5 }, b[] = { 6, 7, 8, 9, 10 };
    cr_assert(fabs(stats_mann_whitney_p(a, 5, b, 5) - 2.0 / 252) < 1e-12, "%g", stats_mann_whitney_p(a, 5, b, 5));
    cr_assert(fabs(stats_mann_whitney_p(b, 5, a, 5) - 2.0 / 252) < 1e-12);
    cr_assert_eq(stats_mann_whitney_p(a, 5, a, 5), 1.0, "identical samples (all ties): p = 1");
    double shift, lo, hi;
    const double c[] = { 11, 12, 13, 14, 15 };
    stats_hodges_lehmann(a, 5, c, 5, &shift, &lo, &hi);
    cr_assert(shift == 10 && lo <= 10 && hi >= 10 && lo < hi, "shift %g [%g, %g]", shift, lo, hi);
    sn_rng rng;
    sn_rng_seed(&rng, 99);
    int flagged = 0;
    for (int t = 0; t < 1000; t++) {
        double x[7], y[7];
        for (int i = 0; i < 7; i++) x[i] = 1e6 * (1 + 0.05 * sn_rng_normal(&rng)), y[i] = 1e6 * (1 + 0.05 * sn_rng_normal(&rng));
        const double p = stats_mann_whitney_p(x, 7, y, 7);
        stats_hodges_lehmann(x, 7, y, 7, &shift, &lo, &hi);
        flagged += p < 0.01 && shift / stats_median(x, 7) < -0.03;
    }
    cr_assert(flagged <= 15, "A/A: %d of 1000 flagged as regressed", flagged);
}

/* --save-baseline then --baseline: the same build is "same"; the scalar kernels against an
 * avx512 baseline regress, and --fail-on-regression exits 3; a tampered baseline, one from
 * another CPU, or a baseline without repetitions are refused (exit 2). */
Test(sweep_run, baselines_and_regressions)
{
    if (!sn_isa_supported(SN_ISA_AVX2)) cr_skip_test("needs a SIMD kernel to regress from");
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    /* --include-noisy: the kernels' difference is the signal here, whatever else runs. */
    const char *common = "--sweep batch=64 threads=1 --epochs 3 --val 500 --repeat 5 --include-noisy --quiet";
    snprintf(cmd, sizeof cmd, "%s %s --data %s --out %s/a --save-baseline %s/base.txt", TU_BENCH, common, TU_SUBSET, dir,
             dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    snprintf(cmd, sizeof cmd, "SCRATCHNET_ISA=scalar %s %s --data %s --out %s/b --baseline %s/base.txt "
             "--fail-on-regression", TU_BENCH, common, TU_SUBSET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 3, "%s / %s", out, err);
    cr_assert(strstr(out, "baseline run 1 (batch=64 threads=1): -") && strstr(out, ": regressed"), "%s", out);
    size_t len;
    char *base = (char *)tu_read(tu_path(dir, "base.txt"), &len);
    cr_assert(base && !strncmp(base, "scratchnet-baseline 1\ncpu\t", 26), "%s", base);
    base[len] = 0;
    /* Tampered: a speed that is not a number. */
    char *bad = strdup(base), *cfg = strstr(bad, "config\t");
    cr_assert(cfg);
    strcpy(strrchr(cfg, '\t') + 1, "fast\n");
    tu_write(tu_path(dir, "bad.txt"), bad, strlen(bad));
    snprintf(cmd, sizeof cmd, "%s %s --data %s --out %s/c --baseline %s/bad.txt", TU_BENCH, common, TU_SUBSET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    cr_assert(strstr(err, "bad.txt: line") && !tu_exists(tu_path(dir, "c/summary.csv")), "%s", err);
    /* Another machine. */
    char *other = malloc(len + 64);
    const char *after = strchr(strstr(base, "cpu\t"), '\n');
    snprintf(other, len + 64, "scratchnet-baseline 1\ncpu\tSome Other CPU%s", after);
    tu_write(tu_path(dir, "other.txt"), other, strlen(other));
    snprintf(cmd, sizeof cmd, "%s %s --data %s --out %s/d --baseline %s/other.txt", TU_BENCH, common, TU_SUBSET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    cr_assert(strstr(err, "cpu 'Some Other CPU'") && strstr(err, "not comparable"), "%s", err);
    snprintf(cmd, sizeof cmd, "%s --sweep batch=64 --baseline %s/base.txt --out %s/e", TU_BENCH, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2);
    cr_assert(strstr(err, "--repeat N with N >= 3"), "%s", err);
    free(base), free(bad), free(other);
}

/* bench --gemm --shapes: exactly the products listed, validated before timing, in order;
 * a bad item is refused (exit 2) naming it. */
Test(bench_gemm, shapes_race_the_products_listed)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s --gemm --no-blas --threads 1 --isa scalar --shapes nn:3x5x7,tt:9x2x300,nt:17x33x5",
             TU_BENCH);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s%s", out, err);
    cr_assert_null(strstr(out, "INVALID"), "%s", out);
    const char *a = strstr(out, "op=nn m=3 n=5 k=7 isa=scalar"), *b = strstr(out, "op=tt m=9 n=2 k=300 isa=scalar"),
               *c = strstr(out, "op=nt m=17 n=33 k=5 isa=scalar");
    cr_assert(a && b && c && a < b && b < c, "the three, in order: %s", out);
    cr_assert_null(strstr(out, "m=32 n=50"), "nothing else: %s", out);
    static const char *const bad[] = { "nx:1x2x3", "nn:1x2", "nn:0x2x3", "nn:1x2x3,", "nn:1x2x3;tn:1x1x1" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(cmd, sizeof cmd, "%s --gemm --no-blas --shapes '%s'", TU_BENCH, bad[i]);
        cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "'%s': %s", bad[i], err);
        cr_assert(strstr(err, "--shapes: '") && strstr(err, "expected OP:MxNxK"), "'%s': %s", bad[i], err);
    }
}

/* The C + OpenBLAS peer does scratchnet's math with OpenBLAS's products: from the same
 * data, shuffle and initial weights its figures agree with `scratchnet train` (plain
 * training: no deskewing, no augmentation) to the 4 digits printed; float sums in
 * another order differ in the last bits, not in these. Skipped without OpenBLAS. */
Test(bench_peers, c_openblas_peer_trains_what_scratchnet_trains)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s/cblas_mlp --data %s --epochs 2 --batch 64 --val 500", SN_TEST_BUILD_DIR, TU_SUBSET);
    const int rc = tu_run(cmd, out, sizeof out, err, sizeof err);
    if (rc == 1 && strstr(err, "OpenBLAS is not installed")) cr_skip_test("OpenBLAS is not installed");
    cr_assert_eq(rc, 0, "%s", err);
    double tl, vl, ta;
    cr_assert(sscanf(strstr(out, "train_loss="), "train_loss=%lf val_loss=%lf test_acc=%lf", &tl, &vl, &ta) == 3, "%s",
              out);
    const char *dir = tu_tmpdir();
    snprintf(cmd, sizeof cmd, "%s train --data %s --epochs 2 --batch 64 --val 500 --deskew off --width-limit off "
             "--augment none --threads 1 --quiet --save %s/m.bin", TU_SCRATCHNET, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    char want[160];
    snprintf(want, sizeof want, "epoch 2/2 train_loss=%.4f val_loss=%.4f", tl, vl);
    cr_assert(strstr(out, want), "'%s' in: %s", want, out);
    snprintf(want, sizeof want, "test_acc=%.4f", ta);
    cr_assert(strstr(out, want), "'%s' in: %s", want, out);
}
