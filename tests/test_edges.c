/* The rough edges a new user meets (issue #18): named directories that do not exist,
 * output paths checked before any work, help and versions everywhere, a flag without
 * its value, Ctrl-C during checkpointed training, a small digit on a large canvas, and
 * sweeps that would overwrite or drop earlier results. Each case runs the programs as
 * a user would and checks the exit code, the message and that nothing was done. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

static char out[65536], err[65536];

static int run(const char *cmd) { return tu_run(cmd, out, sizeof out, err, sizeof err); }

/* A quick model (1 plain epoch on the subset) at dir/m.bin. */
static void train_quick(const char *dir)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s train --quiet --epochs 1 --val 0 --augment none --data %s --save %s/m.bin",
             TU_SCRATCHNET, TU_SUBSET, dir);
    cr_assert_eq(run(cmd), 0, "%s", err);
}

Test(edges, named_data_directory_must_exist)
{
    char cmd[4096], dir[512];
    snprintf(dir, sizeof dir, "%s/no/such/mnist", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s train --quiet --data %s --save %s/m.bin", TU_SCRATCHNET, dir, tu_tmpdir());
    cr_assert_eq(run(cmd), 1, "%s", err);
    cr_assert(strstr(err, dir) && strstr(err, "does not exist"), "%s", err);
    cr_assert(!tu_exists(dir), "the directory was created");
    snprintf(cmd, sizeof cmd, "SCRATCHNET_DATA=%s %s drawn --count 5", dir, TU_SCRATCHNET);
    cr_assert_neq(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "SCRATCHNET_DATA=%s %s --sweep batch=32 --epochs 1 --no-plot --out %s", dir, TU_BENCH,
             tu_tmpdir());
    cr_assert_eq(run(cmd), 1, "%s", err);
    cr_assert(strstr(err, "does not exist") && !tu_exists(dir), "%s", err);
}

/* Every output path is checked before data is loaded or an epoch runs: exit 2, the
 * flag and the reason in the message, nothing printed on stdout. */
static void expect_bad_output(const char *cmd, const char *needle)
{
    cr_assert_eq(run(cmd), 2, "'%s' exited otherwise: %s", cmd, err);
    cr_assert(strstr(err, needle), "'%s': stderr lacks '%s': %s", cmd, needle, err);
    cr_assert(!strstr(out, "epoch") && !strstr(out, "test_acc"), "'%s' worked first: %s", cmd, out);
}

Test(edges, output_paths_checked_before_any_work)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s train --data %s --save %s/nodir/sub/m.bin", TU_SCRATCHNET, TU_SUBSET, dir);
    expect_bad_output(cmd, "--save: cannot write");
    snprintf(cmd, sizeof cmd, "%s train --data %s --save %s", TU_SCRATCHNET, TU_SUBSET, dir);
    expect_bad_output(cmd, "is a directory");
    snprintf(cmd, sizeof cmd, "%s train --data %s --save %s/m.bin --checkpoint %s/a/b/ck.bin", TU_SCRATCHNET, TU_SUBSET,
             dir, dir);
    expect_bad_output(cmd, "--checkpoint: cannot write");
    snprintf(cmd, sizeof cmd, "%s train --data %s --save %s/m.bin --csv %s/a/b/c.csv", TU_SCRATCHNET, TU_SUBSET, dir, dir);
    expect_bad_output(cmd, "--csv: cannot write");
    cr_assert(!tu_exists(tu_path(dir, "m.bin")));
    /* One missing level is created, as models/ is. */
    snprintf(cmd, sizeof cmd, "%s train --quiet --epochs 1 --val 0 --augment none --data %s --save %s/new/m.bin",
             TU_SCRATCHNET, TU_SUBSET, dir);
    cr_assert_eq(run(cmd), 0, "%s", err);
    cr_assert(tu_exists(tu_path(dir, "new/m.bin")));
    snprintf(cmd, sizeof cmd, "%s drawn --model %s/new/m.bin --data %s --csv %s/a/b/d.csv", TU_SCRATCHNET, dir,
             TU_SUBSET, dir);
    expect_bad_output(cmd, "--csv: cannot write");
    snprintf(cmd, sizeof cmd, "%s --peers --out %s/a/b --data %s", TU_BENCH, dir, TU_SUBSET);
    expect_bad_output(cmd, "--out: cannot create");
    snprintf(cmd, sizeof cmd, "%s --sweep batch=32 --out %s/a/b --data %s", TU_BENCH, dir, TU_SUBSET);
    expect_bad_output(cmd, "--out: cannot create");
    snprintf(cmd, sizeof cmd, "%s --gemm --quick --no-blas --csv %s/a/b/g.csv", TU_BENCH, dir);
    expect_bad_output(cmd, "--csv: cannot write");
    snprintf(cmd, sizeof cmd, "%s --gemm --quick --isa neon", TU_BENCH);
    expect_bad_output(cmd, "not a kernel ISA");
}

Test(edges, help_and_version_everywhere)
{
    static const char *const helps[] = {
        "scratchnet --help", "scratchnet -h",       "scratchnet train --help", "scratchnet eval -h",
        "scratchnet predict -h", "scratchnet info --help", "scratchnet drawn --help", "bench --help",
        "bench --sweep --help", "bench --gemm -h",   "bench --peers --help",   "draw --help",
    };
    char cmd[4096];
    for (size_t i = 0; i < sizeof helps / sizeof *helps; i++) {
        if (!strncmp(helps[i], "draw", 4) && !tu_exists(SN_TEST_BUILD_DIR "/draw")) continue;
        snprintf(cmd, sizeof cmd, "%s/%s", SN_TEST_BUILD_DIR, helps[i]);
        cr_assert_eq(run(cmd), 0, "'%s': %s", helps[i], err);
        cr_assert(strstr(out, "usage:"), "'%s' printed no usage on stdout: %s", helps[i], out);
    }
    static const char *const versions[] = { "scratchnet", "bench", "draw" };
    for (size_t i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "%s/%s", SN_TEST_BUILD_DIR, versions[i]);
        if (!tu_exists(cmd)) continue;
        snprintf(cmd, sizeof cmd, "%s/%s --version", SN_TEST_BUILD_DIR, versions[i]);
        cr_assert_eq(run(cmd), 0, "%s", err);
        cr_assert(!strncmp(out, versions[i], strlen(versions[i])) && strstr(out, " (commit "), "%s", out);
    }
    /* A flag followed by another flag has no value. */
    snprintf(cmd, sizeof cmd, "%s train --epochs --save x.bin", TU_SCRATCHNET);
    cr_assert_eq(run(cmd), 2);
    cr_assert(strstr(err, "--epochs needs a value"), "%s", err);
    /* draw: a replay file that is not there is a runtime failure, found before a window. */
    if (tu_exists(SN_TEST_BUILD_DIR "/draw")) {
        snprintf(cmd, sizeof cmd, "SDL_VIDEODRIVER=dummy %s/draw --replay %s/none.events", SN_TEST_BUILD_DIR,
                 tu_tmpdir());
        cr_assert_eq(run(cmd), 1, "%s", err);
        cr_assert(strstr(err, "none.events"), "%s", err);
    }
}

/* SIGTERM (Ctrl-C's twin: a background job ignores SIGINT) during checkpointed
 * training: exit 130 and the command that continues the run, which then works. */
Test(edges, interrupted_training_says_how_to_resume)
{
    char dir[512], ck[600], log[600], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(ck, sizeof ck, "%s/ck.bin", dir);
    snprintf(log, sizeof log, "%s/stderr", dir);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen(log, "w", stderr);
        execl(TU_SCRATCHNET, "scratchnet", "train", "--quiet", "--epochs", "2000", "--batch", "100", "--val", "0",
              "--threads", "1", "--schedule", "constant", "--augment", "none", "--data", TU_SUBSET, "--checkpoint", ck,
              "--save", tu_path(dir, "m.bin"), (char *)NULL);
        _exit(127);
    }
    for (int waited = 0; !tu_exists(ck) && waited < 600; waited++) {
        struct timespec tick = { 0, 50000000L };
        nanosleep(&tick, NULL);
    }
    cr_assert(tu_exists(ck), "no checkpoint after 30 s");
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "status %d", st);
    size_t len;
    char *text = (char *)tu_read(log, &len);
    cr_assert(text);
    text[len] = 0;
    cr_assert(strstr(text, "interrupted") && strstr(text, "scratchnet train --resume") && strstr(text, "ck.bin"), "%s",
              text);
    free(text);
    /* The command it printed continues the run (one more epoch than the checkpoint
     * holds: how many it holds depends on the machine's speed); fewer is refused. */
    snprintf(cmd, sizeof cmd, "%s info --model %s", TU_SCRATCHNET, ck);
    cr_assert_eq(run(cmd), 0, "%s", err);
    int done = 0;
    cr_assert(sscanf(strstr(out, "progress: "), "progress: %d", &done) == 1 && done >= 1, "%s", out);
    snprintf(cmd, sizeof cmd, "%s train --quiet --data %s --resume %s --epochs %d --save %s/m.bin", TU_SCRATCHNET,
             TU_SUBSET, ck, done + 1, dir);
    cr_assert_eq(run(cmd), 0, "%s", err);
    if (done >= 2) {
        snprintf(cmd, sizeof cmd, "%s train --quiet --data %s --resume %s --epochs %d", TU_SCRATCHNET, TU_SUBSET, ck,
                 done - 1);
        cr_assert_eq(run(cmd), 2, "fewer epochs than the checkpoint holds is refused: %s", err);
        cr_assert(strstr(err, "has done"), "%s", err);
    }
}

/* A binary PGM of w x h, white paper with black rectangles (x0, y0, x1, y1) as ink. */
static void write_pgm(const char *path, int w, int h, const int (*rects)[4], int nrects)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fprintf(f, "P5\n%d %d\n255\n", w, h);
    unsigned char *row = malloc((size_t)w);
    for (int y = 0; y < h; y++) {
        memset(row, 255, (size_t)w);
        for (int r = 0; r < nrects; r++)
            if (y >= rects[r][1] && y < rects[r][3])
                for (int x = rects[r][0]; x < rects[r][2]; x++) row[x] = 0;
        fwrite(row, 1, (size_t)w, f);
    }
    free(row);
    fclose(f);
}

Test(edges, small_digit_on_a_large_canvas_is_read)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    train_quick(dir);
    /* A 104-pixel-tall "7" with 12-pixel strokes on a 2000 x 2000 page: 2,200 pixels of
     * ink, 0.06% of the page; it used to be "empty" (the threshold grew with the page). */
    const int seven[][4] = { { 900, 900, 980, 912 }, { 968, 900, 980, 1004 } };
    write_pgm(tu_path(dir, "seven.pgm"), 2000, 2000, seven, 2);
    snprintf(cmd, sizeof cmd, "%s predict --model %s/m.bin %s/seven.pgm", TU_SCRATCHNET, dir, dir);
    cr_assert_eq(run(cmd), 0, "%s", err);
    cr_assert(strstr(out, "seven.pgm digit="), "%s", out);
    /* A blank page is empty, and the message names the file. */
    write_pgm(tu_path(dir, "blank.pgm"), 300, 200, seven, 0);
    snprintf(cmd, sizeof cmd, "%s predict --model %s/m.bin %s/blank.pgm", TU_SCRATCHNET, dir, dir);
    cr_assert_eq(run(cmd), 0, "%s", err);
    cr_assert(strstr(out, "blank.pgm empty") && strstr(err, "blank.pgm: empty image"), "%s / %s", out, err);
    /* Too many pixels: one message for both limits (the header alone decides). */
    tu_write(tu_path(dir, "huge.pgm"), "P5\n10000 10000\n255\n", 19);
    snprintf(cmd, sizeof cmd, "%s predict --model %s/m.bin %s/huge.pgm", TU_SCRATCHNET, dir, dir);
    cr_assert_eq(run(cmd), 1, "%s", err);
    cr_assert(strstr(err, "huge.pgm") && strstr(err, "100000000 pixels") && strstr(err, "pixels in all"), "%s", err);
}

/* Sweeps do not lose results: a second sweep into the same --out is refused without
 * --resume or --force; --resume with another grid is refused rather than dropping the
 * runs it does not have; --force replaces. With --val 0 the charts still come out and
 * train prints '-' for the missing validation figures. */
Test(edges, sweeps_keep_their_results)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s --sweep batch=32,64 --epochs 1 --val 0 --quiet --data %s --out %s", TU_BENCH,
             TU_SUBSET, dir);
    cr_assert_eq(run(cmd), 0, "%s", err);
    cr_assert(tu_exists(tu_path(dir, "loss.png")) && tu_exists(tu_path(dir, "accuracy.png")));
    /* env.json: the environment, for telling results comparable or not. */
    size_t elen;
    char *env = (char *)tu_read(tu_path(dir, "env.json"), &elen);
    cr_assert(env, "no env.json");
    env[elen] = 0;
    cr_assert(env[0] == '{' && strstr(env, "\"cpu_model\": ") && strstr(env, "\"commit\": ") &&
                  strstr(env, "\"kernel_isa\": ") && strstr(env, "\"mnist_sha256\": {") &&
                  strstr(env, "\"t10k-labels-idx1-ubyte.gz\": \""),
              "%s", env);
    free(env);
    cr_assert(!strstr(err, "warning"), "gnuplot complained: %s", err);
    size_t before;
    unsigned char *first = tu_read(tu_path(dir, "summary.csv"), &before);
    cr_assert_eq(run(cmd), 2, "%s", err);
    cr_assert(strstr(err, "already holds a sweep") && strstr(err, "--force"), "%s", err);
    snprintf(cmd, sizeof cmd, "%s --sweep batch=128 --epochs 1 --val 0 --quiet --data %s --out %s --resume", TU_BENCH,
             TU_SUBSET, dir);
    cr_assert_eq(run(cmd), 2, "%s", err);
    cr_assert(strstr(err, "another grid"), "%s", err);
    size_t after;
    unsigned char *second = tu_read(tu_path(dir, "summary.csv"), &after);
    cr_assert(before == after && !memcmp(first, second, before), "the refused runs changed summary.csv");
    free(first), free(second);
    snprintf(cmd, sizeof cmd, "%s --sweep batch=128 --epochs 1 --val 0 --quiet --no-plot --data %s --out %s --force",
             TU_BENCH, TU_SUBSET, dir);
    cr_assert_eq(run(cmd), 0, "%s", err);
    snprintf(cmd, sizeof cmd, "%s train --epochs 1 --val 0 --augment none --data %s --save %s/m.bin", TU_SCRATCHNET,
             TU_SUBSET, dir);
    cr_assert_eq(run(cmd), 0, "%s", err);
    cr_assert(strstr(out, "val_loss=- val_acc=-") && !strstr(out, "nan"), "%s", out);
}

/* eval's reports: the confusion matrix (rows sum to each digit's count, the diagonal to
 * the accuracy), JSON with the same figures, and the gallery of mistakes as a PNG. */
Test(edges, eval_confusion_json_and_error_gallery)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    train_quick(dir);
    snprintf(cmd, sizeof cmd, "%s eval --model %s/m.bin --data %s --confusion", TU_SCRATCHNET, dir, TU_SUBSET);
    cr_assert_eq(run(cmd), 0, "%s", err);
    double acc = 0;
    cr_assert(sscanf(out, "test_loss=%*f test_acc=%lf", &acc) == 1, "%s", out);
    const char *rowp = strstr(out, "acc\n");
    cr_assert(rowp, "%s", out);
    rowp += 4;
    long total = 0, diagonal = 0;
    for (int t = 0; t < 10; t++) {
        int digit, used;
        long v;
        cr_assert(sscanf(rowp, "%d%n", &digit, &used) == 1 && digit == t, "row %d: %.60s", t, rowp);
        rowp += used;
        for (int p = 0; p < 10; p++) {
            cr_assert(sscanf(rowp, "%ld%n", &v, &used) == 1);
            rowp += used, total += v, diagonal += p == t ? v : 0;
        }
        rowp = strchr(rowp, '\n') + 1;
    }
    cr_assert_eq(total, 1000, "the subset's 1,000 test digits");
    cr_assert(diagonal == (long)(acc * 1000 + 0.5), "diagonal %ld, accuracy %g", diagonal, acc);
    snprintf(cmd, sizeof cmd, "%s eval --model %s/m.bin --data %s --json", TU_SCRATCHNET, dir, TU_SUBSET);
    cr_assert_eq(run(cmd), 0, "%s", err);
    long n = 0, errors = 0;
    cr_assert(out[0] == '{' && strstr(out, "\"confusion\": [[") && strstr(out, "\"per_class_acc\": ["), "%s", out);
    cr_assert(sscanf(strstr(out, "\"n\": "), "\"n\": %ld", &n) == 1 && n == 1000);
    cr_assert(sscanf(strstr(out, "\"errors\": "), "\"errors\": %ld", &errors) == 1 && errors == 1000 - diagonal);
    snprintf(cmd, sizeof cmd, "%s eval --model %s/m.bin --data %s --errors %s/errors.png", TU_SCRATCHNET, dir, TU_SUBSET,
             dir);
    cr_assert_eq(run(cmd), 0, "%s", err);
    size_t len;
    unsigned char *png = tu_read(tu_path(dir, "errors.png"), &len);
    cr_assert(png && len > 100 && !memcmp(png, "\x89PNG", 4), "no gallery");
    free(png);
    cr_assert(strstr(err, "misclassified"), "%s", err);
    snprintf(cmd, sizeof cmd, "%s eval --model %s/m.bin --data %s --errors %s/no/dir/e.png", TU_SCRATCHNET, dir,
             TU_SUBSET, dir);
    cr_assert_eq(run(cmd), 2, "%s", err);
}

/* bench --gemm says when a row beats the FMA ceiling (a ceiling measured on a busy core:
 * here forced with SCRATCHNET_FMA_CEILING), and its chart labels the shapes. */
Test(edges, gemm_ceiling_warning_and_chart)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(cmd, sizeof cmd,
             "SCRATCHNET_FMA_CEILING=0.5 %s --gemm --quick --no-blas --isa sse2 --threads 1 --batch 32 --csv %s/g.csv",
             TU_BENCH, dir);
    cr_assert_eq(run(cmd), 0, "%s", err);
    cr_assert(strstr(out, "over the FMA ceiling") && strstr(err, "warning:") && strstr(err, "unreliable"), "%s / %s", out,
              err);
    if (run("gnuplot --version") != 0) cr_skip_test("gnuplot not installed");
    snprintf(cmd, sizeof cmd, "gnuplot -e \"csv='%s/g.csv'; out='%s/g.png'; threads=1\" %s/plots/gflops.gp", dir, dir,
             SN_TEST_SOURCE_DIR);
    cr_assert_eq(run(cmd), 0, "%s", err);
    cr_assert(!strstr(err, "warning"), "gnuplot: %s", err);
    cr_assert(tu_exists(tu_path(dir, "g.png")));
    /* The labels are the shapes: set xtics ("nn 32x50x784" 1, ...). */
    /* (one command reading the file: tu_run's </dev/null would be the stdin of a pipe's end) */
    snprintf(cmd, sizeof cmd, "awk -F, '!/^#/ && ++n == 2 { print $2, $3 \"x\" $4 \"x\" $5 }' %s/g.csv", dir);
    cr_assert_eq(run(cmd), 0);
    cr_assert(!strncmp(out, "nn 32x50x784", 12), "%s", out);
}

/* Each optimiser trains at its own default rate: Adam at 0.002, not momentum's 0.05. */
Test(edges, optimisers_default_to_their_own_learning_rate)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    static const char *const opts[][2] = { { "adam", "adam lr=0.002" }, { "nesterov", "nesterov lr=0.05" },
                                           { "sgd", "sgd lr=0.05" } };
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "%s train --opt %s --epochs 1 --val 0 --augment none --data %s --save %s/m.bin",
                 TU_SCRATCHNET, opts[i][0], TU_SUBSET, dir);
        cr_assert_eq(run(cmd), 0, "%s", err);
        cr_assert(strstr(err, opts[i][1]), "--opt %s: %s", opts[i][0], err);
    }
}

/* A run that learns nothing is not "ok": train exits 1 without a model, a sweep marks it
 * "collapsed" (and its legend label), and the speed chart leaves it out. */
Test(edges, runs_that_learn_nothing_are_collapsed)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s train --quiet --lr 5 --epochs 2 --val 500 --augment none --data %s --save %s/m.bin",
             TU_SCRATCHNET, TU_SUBSET, dir);
    cr_assert_eq(run(cmd), 1, "%s", err);
    cr_assert(strstr(err, "collapsed") && strstr(err, "No model saved"), "%s", err);
    cr_assert(!tu_exists(tu_path(dir, "m.bin")));
    snprintf(cmd, sizeof cmd, "%s --sweep lr=0.05,5 --epochs 1 --val 500 --quiet --data %s --out %s/s", TU_BENCH,
             TU_SUBSET, dir);
    cr_assert_eq(run(cmd), 0, "%s", err);
    size_t len;
    char *s = (char *)tu_read(tu_path(dir, "s/summary.csv"), &len);
    cr_assert(s);
    s[len] = 0;
    cr_assert(strstr(s, ",collapsed,") && strstr(s, ",ok,"), "%s", s);
    free(s);
    s = (char *)tu_read(tu_path(dir, "s/labels.txt"), &len);
    cr_assert(s);
    s[len] = 0;
    cr_assert(strstr(s, "\"lr=0.05\" \"lr=5 [collapsed]\""), "%s", s);
    free(s);
}
