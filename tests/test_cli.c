/* The programs as users run them: argument validation (exit 2, nothing written), bad
 * files (exit 1, message naming the file), and train -> save -> eval agreement on the
 * committed subset. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "scratchnet/model.h"
#include "test_util.h"

static char out[65536], err[65536];

static void expect_usage_error(const char *args, const char *needle)
{
    const char *dir = tu_tmpdir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s train --data %s --save %s/m.bin --csv %s/c.csv %s", TU_SCRATCHNET,
             TU_SUBSET, dir, dir, args);
    int rc = tu_run(cmd, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 2, "'%s' exited %d, want 2; stderr: %s", args, rc, err);
    cr_assert(strstr(err, needle) != NULL, "'%s': stderr lacks '%s': %s", args, needle, err);
    cr_assert(!tu_exists(tu_path(dir, "m.bin")) && !tu_exists(tu_path(dir, "c.csv")),
              "'%s' wrote a file before validating", args);
    cr_assert_eq(out[0], '\0', "'%s' printed results: %s", args, out);
}

Test(cli, bad_arguments_exit_2_and_write_nothing)
{
    expect_usage_error("--batch 0", "--batch");
    expect_usage_error("--lr -1", "--lr");
    expect_usage_error("--lr nan", "'nan'");
    expect_usage_error("--lr 1e99", "--lr");
    expect_usage_error("--lr 1e-50", "--lr"); /* rounds to 0 as a float */
    expect_usage_error("--threads 0", "--threads");
    expect_usage_error("--layers 784,0,10", "--layers");
    expect_usage_error("--layers 784,50,9", "10 outputs");
    expect_usage_error("--epochs 3x", "'3x'");
    expect_usage_error("--opt rmsprop", "sgd, momentum, nesterov or adam");
    expect_usage_error("--frobnicate", "unknown flag '--frobnicate'");
    expect_usage_error("--batch", "needs a value");
    expect_usage_error("--val 60000", "--val");
    expect_usage_error("--net 784,dense:50,tanh,dense:10", "unknown layer type 'tanh'");
    expect_usage_error("--net 784,dense:50,leaky:3,dense:10", "0 < SLOPE < 1");
    expect_usage_error("--net 784,dense:50,leaky", "10 outputs");
    expect_usage_error("--augment spin=3", "augmentation item 'spin'");
    expect_usage_error("--augment rot=90", "0..45");
    expect_usage_error("--augment thick=1@2", "probability");
    expect_usage_error("--deskew maybe", "--deskew: 'maybe'");
    expect_usage_error("--width-limit 3", "--width-limit: '3'");
}

/* The drawn-digit pipeline as a user meets it: train records its preprocessing and
 * augmentation (info shows them), `drawn` scores a model on synthesised drawn digits
 * (with or without its width limit) and writes its table and canvases, and a model
 * trained without any of it records none. */
Test(cli, preprocessing_recorded_and_drawn_scores_it)
{
    char dir[256], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir()); /* tu_run's own directories reuse its buffers */
    snprintf(cmd, sizeof cmd, "%s train --quiet --epochs 2 --val 0 --data %s --save %s/m.bin", TU_SCRATCHNET,
             TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    snprintf(cmd, sizeof cmd, "%s info --model %s/m.bin", TU_SCRATCHNET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "preprocessing: deskew on, stroke width limit "), "%s", out);
    cr_assert(strstr(out, "trained with augmentation: rot=8,scale=0.1,shear=0.2,shift=1.5,thick=1"), "%s", out);
    /* The training record: SOURCE_DATE_EPOCH (set for the tests) pins the date. */
    cr_assert(strstr(out, "trained: 2025-11-29 00:00 UTC, 2 epochs, momentum lr 0.05, batch 128, test accuracy 0."),
              "%s", out);

    snprintf(cmd, sizeof cmd, "%s drawn --model %s/m.bin --data %s --count 60 --csv %s/drawn.csv --out %s",
             TU_SCRATCHNET, dir, TU_SUBSET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    double acc = -1;
    cr_assert(sscanf(out, "drawn_acc=%lf n=60", &acc) == 1, "%s", out);
    /* 2 epochs on 3,000 images: well above chance (0.1) on drawn digits. */
    cr_assert(acc > 0.4 && acc <= 1.0, "drawn accuracy %g", acc);
    cr_assert(strstr(out, "pen    thick") && strstr(out, "slant  slanted"), "%s", out);
    size_t len;
    char *csv = (char *)tu_read(tu_path(dir, "drawn.csv"), &len);
    const char *head = "group,bin,lo,hi,n,acc\nall,all,0,0,60,";
    cr_assert(csv && len > strlen(head) && !strncmp(csv, head, strlen(head)), "%.80s", csv);
    free(csv);
    cr_assert(tu_exists(tu_path(dir, "drawn-00000-label7.pgm")), "the canvases are written (test digit 0 is a 7)");
    snprintf(cmd, sizeof cmd, "%s predict --model %s/m.bin %s/drawn-00000-label7.pgm", TU_SCRATCHNET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "digit="), "%s", out);
    snprintf(cmd, sizeof cmd, "%s drawn --model %s/m.bin --data %s --count 20 --width-limit off", TU_SCRATCHNET, dir,
             TU_SUBSET);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    snprintf(cmd, sizeof cmd, "%s drawn --model %s/m.bin --data %s --out %s/missing", TU_SCRATCHNET, dir, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    cr_assert(strstr(err, "missing") && strstr(err, "not an existing directory"), "%s", err);

    snprintf(cmd, sizeof cmd, "%s train --quiet --epochs 1 --val 0 --deskew off --width-limit off --augment none "
             "--data %s --save %s/plain.bin", TU_SCRATCHNET, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    snprintf(cmd, sizeof cmd, "%s info --model %s/plain.bin", TU_SCRATCHNET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "preprocessing: deskew off, stroke width limit off") &&
              strstr(out, "trained with augmentation: none"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s drawn --model %s/plain.bin --data %s --width-limit on", TU_SCRATCHNET, dir,
             TU_SUBSET);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "no limit recorded: %s", err);
    snprintf(cmd, sizeof cmd, "%s drawn --model %s/plain.bin --data %s --count 20 --width-limit 3.37", TU_SCRATCHNET,
             dir, TU_SUBSET);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "a limit given: %s", err);
    snprintf(cmd, sizeof cmd, "%s drawn --model %s/plain.bin --data %s --width-limit 0.1", TU_SCRATCHNET, dir,
             TU_SUBSET);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    cr_assert(strstr(err, "0.5..20"), "%s", err);
}

/* --net: a network with its own activation layers trains, saves, evaluates to the same
 * figures, and `info` lists its layers with their arguments. */
/* `train --net NET` for 2 epochs on the subset into dir/model, at least min_acc on the
 * test set, and `eval` of the saved model printing the same accuracy. */
static void train_and_eval_net(const char *net, const char *dir, const char *model, double min_acc)
{
    char cmd[4096], ta[64], ea[64];
    snprintf(cmd, sizeof cmd, "%s train --epochs 2 --val 500 --batch 64 --net %s --data %s --save %s/%s", TU_SCRATCHNET,
             net, TU_SUBSET, dir, model);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(err, net) || sn_net_preset(net), "the start line names the net: %s", err);
    const char *last = strstr(out, "test_acc=");
    cr_assert(last && sscanf(last, "test_acc=%63s", ta) == 1, "%s", out);
    cr_assert(atof(ta) > min_acc, "%s: accuracy %s after 2 epochs on 2,500 images", net, ta);
    snprintf(cmd, sizeof cmd, "%s eval --model %s/%s --data %s", TU_SCRATCHNET, dir, model, TU_SUBSET);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(sscanf(strstr(out, "test_acc="), "test_acc=%63s", ea) == 1 && !strcmp(ea, ta), "eval %s, train %s", out, ta);
}

Test(cli, net_spec_trains_and_reloads)
{
    const char *dir = tu_tmpdir();
    char cmd[4096];
    train_and_eval_net("784,dense:40,leaky:0.1,dense10", dir, "m.bin", 0.75);
    snprintf(cmd, sizeof cmd, "%s info --model %s/m.bin", TU_SCRATCHNET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "layers: 784,dense:40,leaky:0.1,dense10"), "%s", out);
    cr_assert(strstr(out, "layer 2: leaky 40 -> 40 (leaky:0.1), no parameters"), "%s", out);
}

Test(cli, unknown_command_and_missing_image_exit_2)
{
    cr_assert_eq(tu_run(TU_SCRATCHNET " fly", out, sizeof out, err, sizeof err), 2);
    cr_assert(strstr(err, "unknown command 'fly'"), "%s", err);
    cr_assert_eq(tu_run(TU_SCRATCHNET " predict", out, sizeof out, err, sizeof err), 2);
    cr_assert_eq(tu_run(TU_SCRATCHNET, out, sizeof out, err, sizeof err), 2);
}

/* A data directory with the subset, one file replaced by `bad` (len bytes, raw). */
static const char *data_dir_with(const char *name, const unsigned char *bad, size_t len)
{
    static const char *names[] = { "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                   "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" };
    const char *dir = tu_tmpdir();
    for (int i = 0; i < 4; i++) {
        char src[1024], cmd[2048];
        snprintf(src, sizeof src, "%s/%s.gz", TU_SUBSET, names[i]);
        if (strcmp(names[i], name) == 0) {
            tu_write(tu_path(dir, name), bad, len);
        } else {
            snprintf(cmd, sizeof cmd, "cp %s %s/", src, dir);
            cr_assert_eq(system(cmd), 0);
        }
    }
    return dir;
}

static unsigned char *gunzip_file(const char *path, size_t *len)
{
    gzFile f = gzopen(path, "rb");
    cr_assert_not_null(f);
    size_t cap = 4 << 20;
    unsigned char *b = malloc(cap);
    int n = gzread(f, b, (unsigned)cap);
    gzclose(f);
    cr_assert(n > 0);
    *len = (size_t)n;
    return b;
}

Test(cli, truncated_training_images_exit_1_naming_the_file)
{
    size_t len;
    unsigned char *raw = gunzip_file(TU_SUBSET "/train-images-idx3-ubyte.gz", &len);
    const char *dir = data_dir_with("train-images-idx3-ubyte", raw, len - 5000);
    const char *save = tu_path(tu_tmpdir(), "m.bin");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s train --quiet --epochs 1 --val 0 --data %s --save %s", TU_SCRATCHNET, dir, save);
    int rc = tu_run(cmd, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 1, "exit %d; stderr: %s", rc, err);
    cr_assert(strstr(err, "train-images-idx3-ubyte") && strstr(err, "truncated"), "stderr: %s", err);
    cr_assert(!tu_exists(save), "a model was written from bad data");
    free(raw);
}

Test(cli, corrupt_model_exit_1)
{
    const char *p = tu_path(tu_tmpdir(), "junk.bin");
    tu_write(p, "SCRNTNET garbage", 16);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s eval --model %s --data %s", TU_SCRATCHNET, p, TU_SUBSET);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 1, "%s", err);
    cr_assert(strstr(err, "junk.bin"), "%s", err);
    snprintf(cmd, sizeof cmd, "%s info --model %s/none.bin", TU_SCRATCHNET, tu_tmpdir());
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 1, "%s", err);
    cr_assert(strstr(err, "none.bin"), "%s", err);
}

Test(cli, train_save_eval_agree, .timeout = 120)
{
    const char *dir = tu_tmpdir();
    char cmd[4096], tl[64], ta[64], el[64], ea[64];
    snprintf(cmd, sizeof cmd, "%s train --quiet --epochs 3 --val 500 --batch 64 --data %s --save %s/m.bin --csv %s/t.csv",
             TU_SCRATCHNET, TU_SUBSET, dir, dir);
    int rc = tu_run(cmd, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "train exited %d: %s", rc, err);
    const char *last = strstr(out, "test_loss=");
    cr_assert_not_null(last, "no summary line: %s", out);
    double acc, train_s, sps;
    cr_assert_eq(sscanf(last, "test_loss=%63s test_acc=%63s train_s=%lf samples_per_s=%lf", tl, ta, &train_s, &sps), 4,
                 "summary line format: %s", last);
    acc = atof(ta);
    cr_assert(acc > 0.80, "accuracy %.4f after 3 epochs on 2,500 images", acc);
    cr_assert(train_s > 0 && sps > 0);
    cr_assert_eq(strstr(out, "epoch 3/3") != NULL, 1, "per-epoch lines: %s", out);

    snprintf(cmd, sizeof cmd, "%s eval --model %s/m.bin --data %s", TU_SCRATCHNET, dir, TU_SUBSET);
    rc = tu_run(cmd, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "eval exited %d: %s", rc, err);
    cr_assert_eq(sscanf(out, "test_loss=%63s test_acc=%63s", el, ea), 2, "%s", out);
    cr_assert_str_eq(ea, ta, "eval says %s, train said %s", ea, ta);
    cr_assert_str_eq(el, tl, "eval loss %s, train loss %s", el, tl);

    snprintf(cmd, sizeof cmd, "%s info --model %s/m.bin", TU_SCRATCHNET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "parameters: 40785"), "%s", out);
    size_t len;
    unsigned char *csv = tu_read(tu_path(dir, "t.csv"), &len);
    cr_assert_not_null(csv);
    csv[len] = 0;
    cr_assert(strstr((char *)csv, "epoch,train_loss,val_loss,val_acc,epoch_s,samples_per_s\n"), "%s", csv);
    free(csv);
}

Test(cli, resume_equals_uninterrupted_run, .timeout = 120)
{
    const char *dir = tu_tmpdir();
    char cmd[4096];
    const char *common = "train --quiet --val 0 --batch 100 --schedule constant --opt adam --lr 0.002";
    snprintf(cmd, sizeof cmd, "%s %s --epochs 3 --data %s --save %s/straight.bin", TU_SCRATCHNET, common, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    snprintf(cmd, sizeof cmd, "%s %s --epochs 2 --data %s --save %s/two.bin --checkpoint %s/ck.bin", TU_SCRATCHNET,
             common, TU_SUBSET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    snprintf(cmd, sizeof cmd, "%s %s --epochs 3 --data %s --save %s/resumed.bin --resume %s/ck.bin", TU_SCRATCHNET,
             common, TU_SUBSET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    size_t la, lb;
    unsigned char *a = tu_read(tu_path(dir, "straight.bin"), &la), *b = tu_read(tu_path(dir, "resumed.bin"), &lb);
    cr_assert(a && b && la == lb && memcmp(a, b, la) == 0, "2 epochs + resume to 3 != 3 straight epochs");
    free(a), free(b);
    /* The checkpoint alone carries the run: --resume with no other settings (and more
     * epochs, which a constant schedule allows) gives the same bits. */
    snprintf(cmd, sizeof cmd, "%s train --quiet --epochs 3 --data %s --save %s/alone.bin --resume %s/ck.bin",
             TU_SCRATCHNET, TU_SUBSET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    a = tu_read(tu_path(dir, "straight.bin"), &la), b = tu_read(tu_path(dir, "alone.bin"), &lb);
    cr_assert(a && b && la == lb && memcmp(a, b, la) == 0, "resume from the checkpoint alone differs");
    free(a), free(b);
    /* Explicit settings that differ from the checkpoint's are a usage error naming them,
     * before any work. */
    snprintf(cmd, sizeof cmd, "%s train --quiet --val 0 --batch 50 --schedule constant --opt sgd --lr 0.002 --epochs 3 "
             "--data %s --save %s/x.bin --resume %s/ck.bin", TU_SCRATCHNET, TU_SUBSET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    cr_assert(strstr(err, "--batch 50 conflicts") && strstr(err, "made with --batch 100") && strstr(err, "--opt sgd"),
              "%s", err);
    cr_assert(!tu_exists(tu_path(dir, "x.bin")));
    /* info describes a checkpoint: its progress, its settings, how to resume. */
    snprintf(cmd, sizeof cmd, "%s info --model %s/ck.bin", TU_SCRATCHNET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "progress: 2 of 2 epochs done (60 steps)") && strstr(out, "--opt adam --lr 0.002 --batch 100") &&
              strstr(out, "resume with: scratchnet train --resume"), "%s", out);
    /* A missing checkpoint is a runtime failure naming it. */
    snprintf(cmd, sizeof cmd, "%s train --quiet --data %s --resume %s/none.bin", TU_SCRATCHNET, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 1, "%s", err);
    cr_assert(strstr(err, "none.bin"), "%s", err);
}

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scratchnet/modelfile.h"
#include "scratchnet/train.h"

/* SIGKILL at random moments: the checkpoint on disk is always the previous one or the
 * new one, never torn (write to a temporary file, fsync, rename). */
Test(cli, checkpoint_survives_kill_9, .timeout = 120)
{
    const char *dir = tu_tmpdir();
    char ck[512];
    snprintf(ck, sizeof ck, "%s/ck.bin", dir);
    int sizes[] = { 784, 50, 25, 10 };
    sn_train_config cfg = sn_train_defaults();
    cfg.epochs = 1000, cfg.batch = 100, cfg.val = 0, cfg.threads = 1, cfg.cosine = 0;
    unsigned seed = 7;
    int loaded = 0;
    for (int round = 0; round < 12; round++) {
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1), dup2(devnull, 2);
            execl(TU_SCRATCHNET, "scratchnet", "train", "--quiet", "--epochs", "1000", "--batch", "100", "--val", "0",
                  "--threads", "1", "--schedule", "constant", "--data", TU_SUBSET, "--checkpoint", ck,
                  "--deskew", "off", "--augment", "none", "--save", "/dev/null", (char *)NULL);
            _exit(127);
        }
        /* Round 0 waits for the first checkpoint; later rounds find one on disk and
         * kill the run at a random moment: while loading, training, or rewriting it. */
        for (int waited = 0; round == 0 && !tu_exists(ck) && waited < 600; waited++) {
            struct timespec tick = { 0, 50000000L };
            nanosleep(&tick, NULL);
        }
        seed = seed * 1103515245u + 12345u;
        long ns = 50000000L + (long)((seed >> 8) % 750000) * 1000L; /* 0.05 .. 0.8 s */
        struct timespec pause = { 0, ns };
        nanosleep(&pause, NULL);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        cr_assert(WIFSIGNALED(st), "round %d: the run ended before it was killed", round);
        cr_assert(tu_exists(ck), "round %d: no checkpoint after 30 s", round);
        sn_net m;
        sn_trainer t;
        sn_error err;
        cr_assert_eq(sn_net_create_mlp(&m, sizes, 4, NULL), SN_OK);
        cr_assert_eq(sn_trainer_create(&t, &m, &cfg, 3000, NULL), SN_OK);
        cr_assert_eq(sn_checkpoint_load(&t, ck, &err), SN_OK, "round %d: torn checkpoint: %s", round, err.msg);
        cr_assert(t.epoch >= 1);
        loaded++;
        sn_trainer_free(&t);
        sn_net_free(&m);
    }
    cr_assert_eq(loaded, 12);
}

/* A CNN through every command: train (Adam by default for a net with convolutions),
 * eval to the same figures, info's layer table with image shapes, predict on a PGM. */
Test(cli, cnn_trains_evaluates_predicts)
{
    const char *dir = tu_tmpdir();
    char cmd[4096];
    train_and_eval_net("conv3x3x8,pool2,dense10", dir, "c.bin", 0.80);
    snprintf(cmd, sizeof cmd, "%s train --epochs 1 --val 500 --net conv3x3x8,pool2,dense10 --data %s --save %s/d.bin",
             TU_SCRATCHNET, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(err, "adam lr=0.002"), "a net with convolutions trains with Adam by default: %s", err);
    snprintf(cmd, sizeof cmd, "%s info --model %s/c.bin", TU_SCRATCHNET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "layer 1: conv 28x28x1 -> 26x26x8 relu (conv3x3x8), 80 parameters: W 9x8"), "%s", out);
    cr_assert(strstr(out, "layer 2: pool 26x26x8 -> 13x13x8 (pool2), no parameters"), "%s", out);
    cr_assert(strstr(out, "layer 3: dense 13x13x8 -> 10 (dense10), 13530 parameters: W 1352x10"), "%s", out);
    /* a 28x28 digit-like blob, white on black */
    char pgm[28 * 28 + 32];
    const int head = snprintf(pgm, sizeof pgm, "P5\n28 28\n255\n");
    for (int i = 0; i < 28 * 28; i++) pgm[head + i] = (char)((i % 28 > 12 && i % 28 < 16 && i / 28 > 4 && i / 28 < 24) ? 255 : 0);
    tu_write(tu_path(dir, "one.pgm"), pgm, (size_t)head + 28 * 28);
    snprintf(cmd, sizeof cmd, "%s predict --model %s/c.bin %s/one.pgm", TU_SCRATCHNET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "one.pgm digit=") && strstr(out, " p="), "%s", out);
}

/* A process an MPI launcher says is one of 2, in a build without MPI (the copies would
 * each do all the work) or with a library that says 1 of 1 (another MPI's launcher), is
 * refused before any work: exit 2, naming the launcher. --shards that cannot split a
 * batch is refused too. */
Test(cli, launched_as_one_of_many_without_a_matching_mpi_exits_2)
{
    char cmd[4096];
    const char *dir = tu_tmpdir();
    snprintf(cmd, sizeof cmd, "PMI_SIZE=2 PMI_RANK=0 %s train --data %s --epochs 1 --shards 2 --save %s/m.bin",
             TU_SCRATCHNET, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    cr_assert(strstr(err, "launcher") && strstr(err, "2 processes"), "%s", err);
    snprintf(cmd, sizeof cmd, "PMI_SIZE=2 PMI_RANK=0 %s --sweep batch=32 --data %s --out %s/s", TU_BENCH, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    cr_assert(strstr(err, "launcher"), "%s", err);
    snprintf(cmd, sizeof cmd, "%s train --data %s --epochs 1 --batch 4 --shards 8 --save %s/m.bin", TU_SCRATCHNET,
             TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    cr_assert(strstr(err, "--shards 8 is more than --batch 4"), "%s", err);
    cr_assert(!tu_exists(tu_path(dir, "m.bin")), "nothing written");
}

/* --shards is recorded in checkpoints and models (its bits depend on it): a sharded run
 * resumed from its checkpoint alone continues sharded, to the same bits as the run
 * uninterrupted; another --shards on resume is a conflict (exit 2); info names it. */
Test(cli, shards_recorded_and_resumed)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    const char *common = "--epochs 3 --val 500 --shards 4 --schedule constant --quiet";
    snprintf(cmd, sizeof cmd, "%s train --data %s %s --save %s/full.bin", TU_SCRATCHNET, TU_SUBSET, common, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    snprintf(cmd, sizeof cmd, "%s train --data %s --epochs 2 --val 500 --shards 4 --schedule constant --quiet "
             "--checkpoint %s/ck.bin --save %s/part.bin", TU_SCRATCHNET, TU_SUBSET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    snprintf(cmd, sizeof cmd, "%s train --resume %s/ck.bin --data %s --epochs 3 --save %s/resumed.bin --quiet",
             TU_SCRATCHNET, dir, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    size_t a, b;
    unsigned char *x = tu_read(tu_path(dir, "full.bin"), &a), *y = tu_read(tu_path(dir, "resumed.bin"), &b);
    cr_assert(x && y && a == b && !memcmp(x, y, a), "resumed with the checkpoint's --shards 4: the same bits");
    free(x), free(y);
    snprintf(cmd, sizeof cmd, "%s train --resume %s/ck.bin --data %s --epochs 3 --shards 2 --save %s/x.bin",
             TU_SCRATCHNET, dir, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
    cr_assert(strstr(err, "--shards 2 conflicts with the checkpoint") && strstr(err, "made with --shards 4"), "%s", err);
    snprintf(cmd, sizeof cmd, "%s info --model %s/full.bin", TU_SCRATCHNET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "trained in shards: 4 per batch"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s info --model %s/ck.bin", TU_SCRATCHNET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "--shards 4\n"), "%s", out);
}
