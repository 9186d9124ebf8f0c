/* scratchnet — train, evaluate, inspect and apply the MLP (see docs/cli.md). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "job.h"
#include "scratchnet/shard.h"
#include "scratchnet/export.h"
#include "scratchnet/gemm.h"
#include "scratchnet/image.h"
#include "scratchnet/layers.h"
#include "scratchnet/fit.h"
#include "scratchnet/modelfile.h"
#include "scratchnet/train.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static const char *PROG = "scratchnet";

static void usage(FILE *f)
{
    char isas[128];
    sn_isa_names(isas, sizeof isas, "|", "|");
    fprintf(f,
            "usage: scratchnet train [--data DIR] [--net mlp|cnn|lenet5|SPEC] [--epochs 20|10] [--batch 128]\n"
            "                        [--lr 0.05] [--opt sgd|momentum|nesterov|adam] [--threads N] [--seed 42]\n"
            "                        [--val 10000] [--eval-every 1] [--save FILE] [--csv FILE] [--quiet]\n"
            "                        [--checkpoint FILE] [--resume FILE] [--schedule cosine|constant]\n"
            "                        [--denormals flush|keep] [--deskew on|off] [--width-limit on|off]\n"
            "                        [--augment none|KEY=RANGE[@PROB],...] [--shards S]\n"
            "         (epochs: 20 for a dense net, 10 with convolutions; augment: " CLI_DEFAULT_AUGMENT ";\n"
            "          keys rot, scale, shear, shift, thick)\n"
            "       scratchnet eval    [--model FILE] [--data DIR] [--threads N] [--confusion] [--json]\n"
            "                          [--errors OUT.png]\n"
            "       scratchnet predict [--model FILE] [--probs] IMAGE...   (PGM or PNG)\n"
            "       scratchnet info    [--model FILE]\n"
            "       scratchnet export  --format onnx|npz MODEL OUT   (for onnxruntime, NumPy, ...)\n"
            "       scratchnet drawn   [--model FILE] [--data DIR] [--count 2000] [--seed 1] [--threads N]\n"
            "                          [--width-limit on|off|PX] [--csv FILE] [--out DIR]   (drawn-digit accuracy)\n"
            "Environment: SCRATCHNET_DATA (data directory), SCRATCHNET_ISA=%s,\n"
            "OMP_NUM_THREADS, SCRATCHNET_TEAM=auto|always|solo|alternate (busy-machine policy).\n"
            "Exit codes: 0 ok, 1 runtime failure, 2 usage error. The contract: docs/cli.md.\n",
            isas);
}

static int default_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Returns the value after flag argv[*i], or NULL with a message. The next flag is not
 * a value: `--epochs --save x` is an --epochs without one (a negative number still is a
 * value, for the range message). */
static const char *value_of(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc || !strncmp(argv[*i + 1], "--", 2)) {
        fprintf(stderr, "%s: %s needs a value\n", PROG, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int isa_or_die(void)
{
    sn_error err;
    sn_team_mode team;
    if (sn_isa_init(&err) != SN_OK || sn_team_mode_from_env(&team, &err) != SN_OK) {
        fprintf(stderr, "%s: %s\n", PROG, err.msg);
        return 0;
    }
    return 1;
}

/* ---- train ---------------------------------------------------------------- */
typedef struct train_args {
    const char *data, *save, *csv, *checkpoint, *resume;
    sn_layer net[SN_MAX_LAYERS]; /* --net / --layers: a description (W, b unset) */
    int nlayers, eval_every, quiet;
    int opt_given, lr_given, epochs_given, augment_given;
    int deskew, width_limit; /* --deskew, --width-limit: the model's preprocessing (image.h) */
    const char *given[64];   /* the flags given, in order (--layers recorded as --net) */
    int ngiven;
    int resume_failed;       /* --resume's checkpoint could not be read: a runtime failure */
    int shards;              /* --shards S: data-parallel steps (shard.h); 0: ordinary steps */
    int silent;              /* a rank > 0 of an MPI job: rank 0 prints the epochs */
    sn_train_config cfg;
} train_args;

static int was_given(const train_args *a, const char *flag)
{
    for (int i = 0; i < a->ngiven; i++)
        if (!strcmp(a->given[i], flag)) return 1;
    return 0;
}

/* `--resume FILE` alone continues the run FILE holds: every setting the checkpoint
 * records (network, optimiser, lr, batch, val, seed, schedule, epochs, deskew, width
 * limit, augmentation) is taken from it; one given on the command line that differs is
 * a usage error naming both (--epochs may grow a constant-schedule run). */
static int take_checkpoint_settings(train_args *a)
{
    sn_checkpoint_info ck;
    sn_error err;
    if (sn_checkpoint_info_read(a->resume, &ck, &err)) {
        fprintf(stderr, "%s: --resume: %s\n", PROG, err.msg);
        a->resume_failed = 1;
        return 0;
    }
    char mine[512], theirs[512];
    int conflicts = 0;
#define CONFLICT(flag, fmt, have, want)                                                                       \
    do {                                                                                                      \
        fprintf(stderr, "%s: %s " fmt " conflicts with the checkpoint %s, made with %s " fmt "\n", PROG, flag, \
                want, a->resume, flag, have);                                                                 \
        conflicts++;                                                                                          \
    } while (0)
    sn_net_format(ck.layers, ck.nlayers, ',', theirs, sizeof theirs);
    sn_net_format(a->net, a->nlayers, ',', mine, sizeof mine);
    if (was_given(a, "--net") && strcmp(mine, theirs)) CONFLICT("--net", "%s", theirs, mine);
    memcpy(a->net, ck.layers, sizeof ck.layers), a->nlayers = ck.nlayers;
    if (was_given(a, "--opt") && a->cfg.opt != ck.cfg.opt)
        CONFLICT("--opt", "%s", sn_opt_name(ck.cfg.opt), sn_opt_name(a->cfg.opt));
    if (was_given(a, "--lr") && a->cfg.lr != ck.cfg.lr) CONFLICT("--lr", "%g", ck.cfg.lr, a->cfg.lr);
    if (was_given(a, "--batch") && a->cfg.batch != ck.cfg.batch) CONFLICT("--batch", "%d", ck.cfg.batch, a->cfg.batch);
    if (was_given(a, "--val") && a->cfg.val != ck.cfg.val) CONFLICT("--val", "%d", ck.cfg.val, a->cfg.val);
    if (was_given(a, "--seed") && a->cfg.seed != ck.cfg.seed)
        CONFLICT("--seed", "%llu", (unsigned long long)ck.cfg.seed, (unsigned long long)a->cfg.seed);
    if (was_given(a, "--schedule") && a->cfg.cosine != ck.cfg.cosine)
        CONFLICT("--schedule", "%s", ck.cfg.cosine ? "cosine" : "constant", a->cfg.cosine ? "cosine" : "constant");
    if (was_given(a, "--epochs") && ck.cfg.cosine && a->cfg.epochs != ck.cfg.epochs)
        CONFLICT("--epochs", "%d", ck.cfg.epochs, a->cfg.epochs);
    if (was_given(a, "--epochs") && a->cfg.epochs < ck.epoch) {
        fprintf(stderr, "%s: --epochs %d: the checkpoint %s has done %d epochs already\n", PROG, a->cfg.epochs,
                a->resume, ck.epoch);
        conflicts++;
    }
    if (was_given(a, "--deskew") && a->deskew != ck.pre.deskew)
        CONFLICT("--deskew", "%s", ck.pre.deskew ? "on" : "off", a->deskew ? "on" : "off");
    if (was_given(a, "--width-limit") && a->width_limit != (ck.pre.max_width > 0))
        CONFLICT("--width-limit", "%s", ck.pre.max_width > 0 ? "on" : "off", a->width_limit ? "on" : "off");
    sn_augment_format(&ck.aug, theirs, sizeof theirs);
    sn_augment_format(&a->cfg.aug, mine, sizeof mine);
    if (was_given(a, "--augment") && memcmp(&a->cfg.aug, &ck.aug, sizeof ck.aug)) CONFLICT("--augment", "%s", theirs, mine);
    if (was_given(a, "--shards") && (a->shards > 1 ? a->shards : 0) != ck.shards)
        CONFLICT("--shards", "%d", ck.shards ? ck.shards : 1, a->shards);
#undef CONFLICT
    if (conflicts) return 0;
    a->cfg.opt = ck.cfg.opt, a->cfg.lr = ck.cfg.lr, a->cfg.batch = ck.cfg.batch, a->cfg.val = ck.cfg.val;
    a->cfg.seed = ck.cfg.seed, a->cfg.cosine = ck.cfg.cosine, a->cfg.aug = ck.aug;
    if (!was_given(a, "--shards")) a->shards = ck.shards;
    if (!was_given(a, "--epochs")) a->cfg.epochs = ck.cfg.epochs;
    a->deskew = ck.pre.deskew, a->width_limit = ck.pre.max_width > 0;
    a->opt_given = a->lr_given = a->epochs_given = a->augment_given = 1; /* no defaults over them */
    return 1;
}

static int parse_train(int argc, char **argv, train_args *a)
{
    memset(a, 0, sizeof *a);
    a->cfg = sn_train_defaults();
    a->cfg.threads = default_threads();
    a->save = CLI_DEFAULT_MODEL;
    a->eval_every = 1;
    a->deskew = a->width_limit = 1;
    sn_error err;
    const int def[] = { 784, 50, 25, 10 };
    sn_net_mlp_layers(def, 4, a->net);
    a->nlayers = 3;
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i], *v;
        if (!strcmp(f, "--quiet")) { a->quiet = 1; continue; }
        if (strncmp(f, "--", 2) != 0) {
            fprintf(stderr, "%s train: unexpected argument '%s'\n", PROG, f);
            return 0;
        }
        static const char *const with_value[] = { "--data", "--net", "--layers", "--epochs", "--batch", "--lr", "--opt",
                                                  "--threads", "--seed", "--val", "--eval-every", "--save",
                                                  "--csv", "--checkpoint", "--resume", "--schedule", "--denormals",
                                                  "--deskew", "--width-limit", "--augment", "--shards", NULL };
        int known = 0;
        for (int k = 0; with_value[k]; k++) known |= !strcmp(f, with_value[k]);
        if (!known) {
            fprintf(stderr, "%s train: unknown flag '%s'\n", PROG, f);
            usage(stderr);
            return 0;
        }
        if (!(v = value_of(argc, argv, &i))) return 0;
        if (a->ngiven < 64) a->given[a->ngiven++] = !strcmp(f, "--layers") ? "--net" : f;
        if (!strcmp(f, "--data")) a->data = v;
        else if (!strcmp(f, "--save")) a->save = v;
        else if (!strcmp(f, "--csv")) a->csv = v;
        else if (!strcmp(f, "--checkpoint")) a->checkpoint = v;
        else if (!strcmp(f, "--resume")) a->resume = v;
        else if (!strcmp(f, "--epochs")) {
            if (!cli_int(PROG, f, v, 1, 1000000, &a->cfg.epochs)) return 0;
            a->epochs_given = 1;
        }
        else if (!strcmp(f, "--batch")) { if (!cli_int(PROG, f, v, 1, 60000, &a->cfg.batch)) return 0; }
        else if (!strcmp(f, "--threads")) { if (!cli_int(PROG, f, v, 1, 1024, &a->cfg.threads)) return 0; }
        else if (!strcmp(f, "--shards")) { if (!cli_int(PROG, f, v, 1, 4096, &a->shards)) return 0; }
        else if (!strcmp(f, "--val")) { if (!cli_int(PROG, f, v, 0, 59999, &a->cfg.val)) return 0; }
        else if (!strcmp(f, "--eval-every")) { if (!cli_int(PROG, f, v, 1, 1000000, &a->eval_every)) return 0; }
        else if (!strcmp(f, "--seed")) { if (!cli_u64(PROG, f, v, &a->cfg.seed)) return 0; }
        else if (!strcmp(f, "--lr")) {
            if (!cli_float(PROG, f, v, 0.0, &a->cfg.lr)) return 0;
            a->lr_given = 1;
        }
        else if (!strcmp(f, "--deskew") || !strcmp(f, "--width-limit")) {
            if (strcmp(v, "on") && strcmp(v, "off")) {
                fprintf(stderr, "%s: %s: '%s' is not allowed; expected on or off\n", PROG, f, v);
                return 0;
            }
            *(!strcmp(f, "--deskew") ? &a->deskew : &a->width_limit) = !strcmp(v, "on");
        } else if (!strcmp(f, "--augment")) {
            if (sn_augment_parse(v, &a->cfg.aug, &err) != SN_OK) {
                fprintf(stderr, "%s: --augment: %s\n", PROG, err.msg);
                return 0;
            }
            a->augment_given = 1;
        }
        else if (!strcmp(f, "--denormals")) {
            if (strcmp(v, "flush") && strcmp(v, "keep")) {
                fprintf(stderr, "%s: --denormals: '%s' is not allowed; expected flush or keep\n", PROG, v);
                return 0;
            }
            a->cfg.keep_denormals = !strcmp(v, "keep");
        } else if (!strcmp(f, "--schedule")) {
            if (strcmp(v, "cosine") && strcmp(v, "constant")) {
                fprintf(stderr, "%s: --schedule: '%s' is not allowed; expected cosine or constant\n", PROG, v);
                return 0;
            }
            a->cfg.cosine = !strcmp(v, "cosine");
        } else if (!strcmp(f, "--opt")) {
            if (sn_opt_parse(v, &a->cfg.opt) != SN_OK) {
                fprintf(stderr, "%s: --opt: '%s' is not allowed; expected sgd, momentum, nesterov or adam\n", PROG, v);
                return 0;
            }
            a->opt_given = 1;
        } else if (!strcmp(f, "--net") || !strcmp(f, "--layers")) {
            if (sn_net_parse(v, a->net, &a->nlayers, &err) != SN_OK) {
                fprintf(stderr, "%s: %s: %s\n", PROG, f, err.msg);
                return 0;
            }
            if (a->net[0].in != 784 || a->net[a->nlayers - 1].out != 10) {
                fprintf(stderr, "%s: %s: '%s' is not allowed; MNIST needs 784 inputs first and 10 outputs last\n",
                        PROG, f, v);
                return 0;
            }

        }
    }
    if (a->resume && !take_checkpoint_settings(a)) return 0;
    /* Defaults that depend on other flags: a network with convolutions trains with Adam
     * (the cnn preset, 1 epoch: 0.9839 against momentum's 0.9796), and each optimiser at
     * its own learning rate (optim.h). */
    int has_conv = 0;
    for (int l = 0; l < a->nlayers; l++) has_conv |= a->net[l].ops == sn_layer_type_named("conv", 4);
    if (!a->opt_given && has_conv) a->cfg.opt = SN_OPT_ADAM;
    if (!a->lr_given) a->cfg.lr = sn_opt_default_lr(a->cfg.opt);
    /* The model train saves is the one draw should use: augmented training (stroke
     * thickness and a small affine warp; docs/cli.md and the README say what each buys),
     * which needs more epochs than plain training to converge: 20 for a dense net (1.8 s
     * on 2 threads), 10 for one with convolutions (each epoch costs ~50x more). */
    if (!a->augment_given) sn_augment_parse(CLI_DEFAULT_AUGMENT, &a->cfg.aug, NULL);
    if (!a->epochs_given) a->cfg.epochs = has_conv ? 10 : 20;
    /* Every output path before any work: not after ten epochs. */
    return cli_check_output(PROG, "--save", a->save, 0) && (!a->csv || cli_check_output(PROG, "--csv", a->csv, 0)) &&
           (!a->checkpoint || cli_check_output(PROG, "--checkpoint", a->checkpoint, 0));
}

static void csv_write_header(FILE *f)
{
    fprintf(f, "# scratchnet train; commit %s; %s; cpu %s; isa %s\n", cli_commit(), cli_build_info(),
            cli_cpu_model(), sn_isa_name(sn_isa_active()));
    fprintf(f, "epoch,train_loss,val_loss,val_acc,epoch_s,samples_per_s\n");
}

/* Ctrl-C (or SIGTERM) during `train --checkpoint`: say how to continue and exit 130,
 * at once, or right after a checkpoint being written is whole. The messages are made
 * before training, since a signal handler may only write(). */
static struct {
    volatile sig_atomic_t saving, saved, pending;
    char resume[4200], none[200];
    size_t resume_len, none_len;
} ctrl_c;

static void say_resume_and_exit(void)
{
    if (ctrl_c.saved) (void)!write(STDERR_FILENO, ctrl_c.resume, ctrl_c.resume_len);
    else (void)!write(STDERR_FILENO, ctrl_c.none, ctrl_c.none_len);
    _exit(130);
}

static void on_ctrl_c(int sig)
{
    (void)sig;
    if (ctrl_c.saving) ctrl_c.pending = 1;
    else say_resume_and_exit();
}

static void catch_ctrl_c(const char *checkpoint)
{
    snprintf(ctrl_c.resume, sizeof ctrl_c.resume,
             "\n%s: interrupted; %s holds the last finished epoch. Continue with:\n  scratchnet train --resume %s\n",
             PROG, checkpoint, checkpoint);
    snprintf(ctrl_c.none, sizeof ctrl_c.none, "\n%s: interrupted before the first epoch ended: no checkpoint yet\n",
             PROG);
    ctrl_c.resume_len = strlen(ctrl_c.resume), ctrl_c.none_len = strlen(ctrl_c.none);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_ctrl_c;
    sigemptyset(&sa.sa_mask);
    /* An ignored SIGINT (a background job, nohup) stays ignored. */
    struct sigaction old;
    if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler != SIG_IGN) sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The fit loop's hooks: a progress bar per epoch, then the epoch line, the CSV row and
 * the checkpoint. */
typedef struct train_report {
    cli_progress bar; /* first: the struct is the progress hook's user (cli_progress_update) */
    const train_args *a;
    FILE *csv;
    char label[32];
    int checkpoint_failed;
    sn_shards *shards; /* a job's: evaluation split over its processes */
} train_report;

static int report_evaluate(void *user, sn_trainer *t, const sn_dataset *ds, double *loss, double *acc, sn_error *err)
{
    const train_report *r = user;
    return sn_shards_evaluate(r->shards, t, ds, loss, acc, err);
}

static void report_epoch_begin(void *user, int epoch, int epochs)
{
    train_report *r = user;
    snprintf(r->label, sizeof r->label, "epoch %d/%d", epoch, epochs);
    cli_progress_begin(&r->bar, r->label, !r->a->quiet);
}

static int report_epoch_end(void *user, const sn_trainer *t, const sn_fit_epoch *e, sn_error *err)
{
    train_report *r = user;
    const sn_epoch_stats *st = &e->stats;
    cli_progress_end(&r->bar);
    if (!r->a->silent && (e->evaluated || r->a->cfg.val == 0)) {
        char vl[32] = "-", va[32] = "-"; /* no validation set (--val 0): '-', not nan */
        if (e->evaluated) snprintf(vl, sizeof vl, "%.4f", e->val_loss), snprintf(va, sizeof va, "%.4f", e->val_acc);
        printf("epoch %d/%d train_loss=%.4f val_loss=%s val_acc=%s epoch_s=%.3f samples_per_s=%.0f\n", st->epoch,
               r->a->cfg.epochs, st->train_loss, vl, va, st->train_s, st->samples_per_s);
        fflush(stdout);
    }
    if (r->csv) {
        fprintf(r->csv, "%d,%.6f,%.6f,%.6f,%.6f,%.0f\n", st->epoch, st->train_loss, e->val_loss, e->val_acc,
                st->train_s, st->samples_per_s);
        fflush(r->csv);
    }
    if (r->a->checkpoint) {
        ctrl_c.saving = 1; /* Ctrl-C now waits for the file to be whole */
        const int rc = sn_checkpoint_save(t, r->a->checkpoint, err);
        r->checkpoint_failed = rc != SN_OK;
        ctrl_c.saved |= rc == SN_OK;
        ctrl_c.saving = 0;
        if (ctrl_c.pending) say_resume_and_exit();
        return rc;
    }
    return SN_OK;
}

static int train_in_job(int argc, char **argv, cli_job *job);

/* train, as one process or as every process of an MPI job (job.h): with --shards S each
 * of R processes computes S / R shards of every batch, and rank 0 alone prints and
 * writes files (the model, --csv, --checkpoint). */
static int cmd_train(int argc, char **argv)
{
    cli_job job;
    const int rc = cli_job_init(&job, &argc, &argv, PROG);
    if (rc) return rc;
    const int out = train_in_job(argc, argv, &job);
    cli_job_finish(&job);
    return out;
}

static int train_in_job(int argc, char **argv, cli_job *job)
{
    train_args a;
    if (!parse_train(argc, argv, &a)) return a.resume_failed ? EXIT_RUNTIME : EXIT_USAGE;
    if (!isa_or_die()) return EXIT_USAGE;
    sn_shards shards = { 0 };
    if (job->size > 1 && !a.shards) {
        if (job->rank == 0)
            fprintf(stderr, "%s: started as %d processes: give --shards S (a multiple of %d) to split every batch "
                            "over them; without it each would train the same model alone\n", PROG, job->size,
                    job->size);
        return EXIT_USAGE;
    }
    if (a.shards && a.shards > a.cfg.batch) {
        if (job->rank == 0)
            fprintf(stderr, "%s: --shards %d is more than --batch %d: a shard needs rows\n", PROG, a.shards,
                    a.cfg.batch);
        return EXIT_USAGE;
    }
    if (job->rank > 0) a.quiet = a.silent = 1, a.csv = NULL, a.checkpoint = NULL; /* rank 0 speaks and writes */

    /* Rank 0 loads first (and fetches the data if it must); the others after it. */
    sn_dataset all, test;
    if (job->size > 1 && cli_job_sum_int(job, job->rank == 0 && !cli_ensure_mnist(PROG, cli_data_dir(a.data))))
        return EXIT_RUNTIME;
    if (!cli_load_mnist(PROG, cli_data_dir(a.data), &all, &test)) return EXIT_RUNTIME;
    int rc = EXIT_RUNTIME;
    sn_error err;
    sn_net model = { 0 };
    sn_trainer t = { 0 };
    FILE *csv = NULL;
    if (a.cfg.val >= all.count) {
        fprintf(stderr, "%s: --val: '%d' is not allowed; it must leave training images (the set has %d)\n",
                PROG, a.cfg.val, all.count);
        sn_dataset_free(&all);
        sn_dataset_free(&test);
        return EXIT_USAGE;
    }
    const int ntrain = all.count - a.cfg.val;
    sn_dataset train = sn_dataset_slice(&all, 0, ntrain), val = sn_dataset_slice(&all, ntrain, a.cfg.val);

    if (sn_net_create(&model, a.net, a.nlayers, &err)) {
        fprintf(stderr, "%s: %s\n", PROG, err.msg);
        goto out;
    }
    /* The model's preprocessing: its training, validation and test images are deskewed
     * once, here; predict, eval and draw do what the model file records. */
    if (a.deskew) {
        if (sn_dataset_deskew(&all, a.cfg.threads, &err) || sn_dataset_deskew(&test, a.cfg.threads, &err)) {
            fprintf(stderr, "%s: %s\n", PROG, err.msg);
            goto out;
        }
        model.pre.deskew = 1;
    }
    if (a.width_limit) {
        double width;
        if (sn_dataset_stroke_width(&train, 0.9, a.cfg.threads, &width, &err)) {
            fprintf(stderr, "%s: %s\n", PROG, err.msg);
            goto out;
        }
        model.pre.max_width = (float)width;
    }
    if (sn_trainer_create(&t, &model, &a.cfg, ntrain, &err)) {
        fprintf(stderr, "%s: %s\n", PROG, err.msg);
        goto out;
    }
    if (a.shards) {
        if (sn_shards_init(&shards, a.shards, job->rank, job->size, job->size > 1 ? cli_job_exchange : NULL, job,
                           model.nparams, &err)) {
            if (job->rank == 0) fprintf(stderr, "%s: %s\n", PROG, err.msg);
            rc = EXIT_USAGE;
            goto out;
        }
        sn_trainer_set_shards(&t, &shards);
    }
    if (a.resume) {
        if (sn_checkpoint_load(&t, a.resume, &err)) {
            fprintf(stderr, "%s: --resume: %s\n", PROG, err.msg);
            goto out;
        }
        if (!a.quiet) fprintf(stderr, "resumed from %s after epoch %d\n", a.resume, t.epoch);
    }
    if (a.csv) {
        if (sn_ensure_parent_dir(a.csv, &err) || !(csv = fopen(a.csv, "w"))) {
            fprintf(stderr, "%s: --csv: cannot write %s\n", PROG, a.csv);
            goto out;
        }
        csv_write_header(csv);
    }

    char layers[512];
    sn_net_format(a.net, a.nlayers, ',', layers, sizeof layers);
    char augment[128];
    sn_augment_format(&a.cfg.aug, augment, sizeof augment);
    if (!a.quiet)
        fprintf(stderr, "training %s (%zu parameters) on %d images, %s lr=%g batch=%d threads=%d isa=%s seed=%llu\n"
                        "  deskew=%s width_limit=%.2f augment=%s%s",
                layers, model.nparams, ntrain, sn_opt_name(a.cfg.opt), a.cfg.lr, a.cfg.batch,
                a.cfg.threads, sn_isa_name(sn_isa_active()), (unsigned long long)a.cfg.seed,
                a.deskew ? "on" : "off", model.pre.max_width, augment, a.shards ? "" : "\n");
    if (!a.quiet && a.shards)
        fprintf(stderr, " shards=%d over %d process%s (%d each)\n", a.shards, job->size, job->size > 1 ? "es" : "",
                a.shards / job->size);

    if (a.checkpoint) {
        ctrl_c.saved = a.resume && !strcmp(a.resume, a.checkpoint); /* it holds an epoch already */
        catch_ctrl_c(a.checkpoint);
    }
    train_report report = { .a = &a, .csv = csv, .shards = &shards };
    const sn_fit_hooks hooks = { .user = &report, .epoch_begin = report_epoch_begin, .progress = cli_progress_update,
                                 .epoch_end = report_epoch_end, .evaluate = job->size > 1 ? report_evaluate : NULL };
    sn_fit_result fit;
    if (sn_fit(&t, &train, &val, a.eval_every, &hooks, &fit, &err)) {
        cli_progress_end(&report.bar);
        fprintf(stderr, "%s: %s%s%s\n", PROG, report.checkpoint_failed ? "--checkpoint: " : "", err.msg,
                shards.failed ? " (an exchange with another process failed)" : "");
        goto out;
    }
    if (fit.diverged) {
        cli_progress_end(&report.bar);
        fprintf(stderr, "%s: training diverged in epoch %d (loss became NaN or infinite); "
                        "try a smaller --lr. No model saved.\n", PROG, fit.diverged_epoch);
        goto out;
    }
    const double train_s = fit.train_s;
    const long samples = fit.samples;
    double tl, ta;
    if (job->size > 1 ? sn_shards_evaluate(&shards, &t, &test, &tl, &ta, &err)
                      : sn_evaluate(&model, &t.fwd, &test, a.cfg.threads, &tl, &ta, &err)) {
        fprintf(stderr, "%s: %s\n", PROG, err.msg);
        goto out;
    }
    /* A run that learned nothing is not a model: like a diverged one, no file. */
    if (ta < SN_COLLAPSED_ACC) {
        fprintf(stderr, "%s: training collapsed: test accuracy %.4f is near chance (0.10), the network learned "
                        "nothing; try a smaller --lr. No model saved.\n", PROG, ta);
        goto out;
    }
    /* Provenance for `info`. SOURCE_DATE_EPOCH (the reproducible-builds convention)
     * pins the date, so two runs can save byte-identical files. */
    model.record = (sn_train_record){ .present = 1, .epochs = t.epoch, .batch = a.cfg.batch, .opt = (int)a.cfg.opt,
                                      .lr = a.cfg.lr, .test_acc = (float)ta };
    const char *epoch_env = getenv("SOURCE_DATE_EPOCH");
    model.record.saved_at = epoch_env && *epoch_env ? (int64_t)strtoll(epoch_env, NULL, 10) : (int64_t)time(NULL);
    snprintf(model.record.commit, sizeof model.record.commit, "%s", cli_commit());
    if (job->rank > 0) { /* the same model, bit for bit: rank 0 saves it */
        rc = 0;
        goto out;
    }
    if (sn_model_save(&model, a.save, &err)) {
        fprintf(stderr, "%s: --save: %s\n", PROG, err.msg);
        goto out;
    }
    if (!a.quiet) fprintf(stderr, "saved %s\n", a.save);
    if (!a.quiet && a.shards && shards.steps)
        fprintf(stderr, "shards: per step %.1f us computing %d shard%s, %.1f us summing them, %.1f us exchanging with "
                        "%d partner%s, %.1f us updating (rank 0, %ld steps)\n", 1e6 * shards.compute_s / shards.steps,
                a.shards / job->size, a.shards / job->size > 1 ? "s" : "", 1e6 * shards.sum_s / shards.steps,
                1e6 * shards.exchange_s / shards.steps, job->size > 1 ? __builtin_ctz((unsigned)job->size) : 0,
                job->size == 2 ? "" : "s", 1e6 * shards.update_s / shards.steps, shards.steps);
    printf("test_loss=%.4f test_acc=%.4f train_s=%.3f samples_per_s=%.0f\n", tl, ta, train_s,
           train_s > 0 ? samples / train_s : 0.0);
    rc = 0;
out:
    if (csv) fclose(csv);
    sn_shards_free(&shards);
    sn_trainer_free(&t);
    sn_net_free(&model);
    sn_dataset_free(&all);
    sn_dataset_free(&test);
    return rc;
}

/* ---- eval / info / predict -------------------------------------------------- */
typedef struct common_args {
    const char *model, *data;
    int threads, probs;
    int confusion, json;  /* eval */
    const char *errors;   /* eval --errors OUT.png */
    char **files;
    int nfiles;
} common_args;

static int parse_common(int argc, char **argv, common_args *a, int allow_files, int allow_data)
{
    memset(a, 0, sizeof *a);
    a->model = CLI_DEFAULT_MODEL;
    a->threads = default_threads();
    a->files = calloc((size_t)argc, sizeof(char *));
    if (!a->files) return 0;
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i], *v;
        if (!strcmp(f, "--model")) {
            if (!(v = value_of(argc, argv, &i))) return 0;
            a->model = v;
        } else if (allow_data && !strcmp(f, "--data")) {
            if (!(v = value_of(argc, argv, &i))) return 0;
            a->data = v;
        } else if (allow_data && !strcmp(f, "--confusion")) {
            a->confusion = 1;
        } else if (allow_data && !strcmp(f, "--json")) {
            a->json = 1;
        } else if (allow_data && !strcmp(f, "--errors")) {
            if (!(v = value_of(argc, argv, &i))) return 0;
            if (!cli_png_supported()) {
                fprintf(stderr, "%s eval: --errors writes PNG, and this build has no libpng\n", PROG);
                return 0;
            }
            if (!cli_check_output(PROG, "--errors", v, 0)) return 0;
            a->errors = v;
        } else if (!strcmp(f, "--threads")) {
            if (!(v = value_of(argc, argv, &i)) || !cli_int(PROG, f, v, 1, 1024, &a->threads)) return 0;
        } else if (allow_files && !strcmp(f, "--probs")) {
            a->probs = 1;
        } else if (allow_files && (strncmp(f, "--", 2) != 0 || !strcmp(f, "--"))) {
            if (!strcmp(f, "--")) { while (++i < argc) a->files[a->nfiles++] = argv[i]; break; }
            a->files[a->nfiles++] = argv[i];
        } else {
            fprintf(stderr, "%s %s: unknown flag or argument '%s'\n", PROG, argv[1], f);
            usage(stderr);
            return 0;
        }
    }
    if (allow_files && a->nfiles == 0) {
        fprintf(stderr, "%s predict: no IMAGE given; expected one or more PGM or PNG files\n", PROG);
        return 0;
    }
    return 1;
}

static int load_model(const char *path, sn_net *m)
{
    sn_error err;
    if (sn_model_load(m, path, &err) == SN_OK) return 1;
    fprintf(stderr, "%s: %s\n", PROG, err.msg);
    if (err.code == SN_EIO && !strcmp(path, CLI_DEFAULT_MODEL))
        fprintf(stderr, "%s: train one first with: scratchnet train\n", PROG);
    return 0;
}

static int cmd_eval(int argc, char **argv)
{
    common_args a;
    int ok = parse_common(argc, argv, &a, 0, 1);
    free(a.files);
    if (!ok) return EXIT_USAGE;
    if (!isa_or_die()) return EXIT_USAGE;
    sn_net m;
    if (!load_model(a.model, &m)) return EXIT_RUNTIME;
    if (m.sizes[0] != 784 || m.sizes[m.nlayers] != 10) {
        fprintf(stderr, "%s: %s: network has %d inputs and %d outputs, MNIST needs 784 and 10\n", PROG,
                a.model, m.sizes[0], m.sizes[m.nlayers]);
        sn_net_free(&m);
        return EXIT_RUNTIME;
    }
    sn_dataset test;
    sn_forward_ctx ctx;
    sn_error err;
    if (!cli_load_mnist(PROG, cli_data_dir(a.data), NULL, &test)) { sn_net_free(&m); return EXIT_RUNTIME; }
    /* As the model was trained. */
    if ((m.pre.deskew && sn_dataset_deskew(&test, a.threads, &err)) ||
        sn_forward_ctx_create(&ctx, &m, 256, a.threads, &err)) {
        fprintf(stderr, "%s: %s\n", PROG, err.msg);
        sn_net_free(&m);
        sn_dataset_free(&test);
        return EXIT_RUNTIME;
    }
    double loss, acc;
    uint8_t *pred = malloc((size_t)test.count);
    float *prob = malloc(sizeof(float) * (size_t)test.count);
    int failed = !pred || !prob;
    if (failed) fprintf(stderr, "%s: out of memory\n", PROG);
    else if ((failed = sn_evaluate_rows(&m, &ctx, &test, a.threads, &loss, &acc, pred, prob, &err) != SN_OK))
        fprintf(stderr, "%s: %s\n", PROG, err.msg);
    else {
        if (!a.json) printf("test_loss=%.4f test_acc=%.4f\n", loss, acc);
        if ((a.confusion || a.json || a.errors) &&
            !cli_eval_report(PROG, a.model, &test, pred, prob, loss, acc, a.confusion, a.errors, a.json))
            failed = 1;
    }
    free(pred), free(prob);
    sn_forward_ctx_free(&ctx);
    sn_net_free(&m);
    sn_dataset_free(&test);
    return failed ? EXIT_RUNTIME : 0;
}

/* "784" for a flat row, "28x28x1" for an image. */
static void shape_text(char *out, size_t cap, int n, int h, int w, int c)
{
    if (h == 1 && w == 1)
        snprintf(out, cap, "%d", n);
    else
        snprintf(out, cap, "%dx%dx%d", h, w, c);
}

static int cmd_info(int argc, char **argv)
{
    common_args a;
    int ok = parse_common(argc, argv, &a, 0, 0);
    free(a.files);
    if (!ok) return EXIT_USAGE;
    /* A checkpoint: its run, and how to continue it. */
    sn_checkpoint_info ck;
    sn_error ckerr;
    if (sn_checkpoint_info_read(a.model, &ck, &ckerr) == SN_OK) {
        char net[512], augment[128];
        sn_net_format(ck.layers, ck.nlayers, ',', net, sizeof net);
        sn_augment_format(&ck.aug, augment, sizeof augment);
        printf("checkpoint: %s\nlayers: %s\nprogress: %d of %d epochs done (%ld steps)\n", a.model, net, ck.epoch,
               ck.cfg.epochs, ck.step);
        printf("settings: --net %s --opt %s --lr %g --batch %d --val %d --seed %llu --schedule %s --epochs %d "
               "--deskew %s --width-limit %s --augment %s --shards %d\n",
               net, sn_opt_name(ck.cfg.opt), ck.cfg.lr, ck.cfg.batch, ck.cfg.val, (unsigned long long)ck.cfg.seed,
               ck.cfg.cosine ? "cosine" : "constant", ck.cfg.epochs, ck.pre.deskew ? "on" : "off",
               ck.pre.max_width > 0 ? "on" : "off", augment, ck.shards ? ck.shards : 1);
        printf("resume with: scratchnet train --resume %s\n", a.model);
        return 0;
    }
    sn_net m;
    if (!load_model(a.model, &m)) return EXIT_RUNTIME;
    char layers[512];
    struct stat st;
    sn_net_format(m.layer, m.nlayers, ',', layers, sizeof layers);
    int version = 0;
    sn_error err;
    if (sn_model_file_version(a.model, &version, &err)) { /* load_model read it a moment ago */
        fprintf(stderr, "%s: %s\n", PROG, err.msg);
        sn_net_free(&m);
        return EXIT_RUNTIME;
    }
    printf("model: %s\nformat: version %d, float32 little-endian, CRC-32 checked\n", a.model, version);
    printf("layers: %s (%s, softmax output)\nparameters: %zu\n", layers,
           sn_net_is_mlp(m.layer, m.nlayers) ? "ReLU hidden" : "net spec", m.nparams);
    if (stat(a.model, &st) == 0) printf("file_bytes: %lld\n", (long long)st.st_size);
    char augment[128];
    sn_augment_format(&m.aug, augment, sizeof augment);
    printf("preprocessing: deskew %s, stroke width limit ", m.pre.deskew ? "on" : "off");
    if (m.pre.max_width > 0) printf("%.2f px\n", m.pre.max_width);
    else printf("off\n");
    printf("trained with augmentation: %s\n", augment);
    if (m.shards) printf("trained in shards: %d per batch (train --shards; the same bits on any number of processes)\n", m.shards);
    if (m.record.present) {
        char when[64] = "?";
        const time_t at = (time_t)m.record.saved_at;
        struct tm utc;
        if (gmtime_r(&at, &utc)) strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &utc);
        printf("trained: %s, %d epoch%s, %s lr %g, batch %d, test accuracy %.4f, commit %s\n", when, m.record.epochs,
               m.record.epochs == 1 ? "" : "s",
               m.record.opt >= 0 && m.record.opt < SN_OPT_COUNT ? sn_opt_name((sn_opt_kind)m.record.opt) : "?",
               m.record.lr, m.record.batch, m.record.test_acc, m.record.commit[0] ? m.record.commit : "unknown");
    } else {
        printf("trained: no record (a file written before 2026-11-29, or not by scratchnet train)\n");
    }
    for (int l = 0; l < m.nlayers; l++) {
        const sn_layer *layer = &m.layer[l];
        const size_t n = layer->ops->nweights(layer);
        char item[64], in[32], out[32];
        layer->ops->spec(layer, layer->relu == (l + 1 < m.nlayers), item, sizeof item);
        shape_text(in, sizeof in, layer->in, layer->ih, layer->iw, layer->ic);
        shape_text(out, sizeof out, layer->out, layer->oh, layer->ow, layer->oc);
        printf("layer %d: %s %s -> %s%s (%s)", l + 1, layer->ops->type, in, out, layer->relu ? " relu" : "", item);
        if (!n) {
            printf(", no parameters\n");
            continue;
        }
        double s = 0, s2 = 0;
        for (size_t i = 0; i < n; i++) s += layer->W[i], s2 += (double)layer->W[i] * layer->W[i];
        printf(", %zu parameters: W %zux%d (in x out) mean=%.5f std=%.5f, b %zu\n", sn_layer_nparams(layer),
               n / (size_t)layer->oc, layer->oc, s / n, sqrt(s2 / n - (s / n) * (s / n)), layer->ops->nbiases(layer));
    }
    sn_net_free(&m);
    return 0;
}

static int cmd_predict(int argc, char **argv)
{
    common_args a;
    if (!parse_common(argc, argv, &a, 1, 0)) { free(a.files); return EXIT_USAGE; }
    if (!isa_or_die()) { free(a.files); return EXIT_USAGE; }
    sn_net m;
    if (!load_model(a.model, &m)) { free(a.files); return EXIT_RUNTIME; }
    if (m.sizes[0] != 784 || m.sizes[m.nlayers] != 10) {
        fprintf(stderr, "%s: %s: network has %d inputs and %d outputs, digits need 784 and 10\n", PROG,
                a.model, m.sizes[0], m.sizes[m.nlayers]);
        sn_net_free(&m);
        free(a.files);
        return EXIT_RUNTIME;
    }
    sn_forward_ctx ctx;
    sn_error err;
    if (sn_forward_ctx_create(&ctx, &m, 1, 1, &err)) {
        fprintf(stderr, "%s: %s\n", PROG, err.msg);
        sn_net_free(&m);
        free(a.files);
        return EXIT_RUNTIME;
    }
    int failures = 0;
    for (int i = 0; i < a.nfiles; i++) {
        sn_image img;
        if (sn_image_read(&img, a.files[i], &err)) {
            fprintf(stderr, "%s: %s\n", PROG, err.msg);
            failures++;
            continue;
        }
        int rc = sn_image_to_mnist(&img, &m.pre, ctx.act[0], &err);
        sn_image_free(&img);
        if (rc) {
            printf("%s empty\n", a.files[i]); /* reported as such, not classified */
            fprintf(stderr, "%s: %s: %s\n", PROG, a.files[i], err.msg);
            continue;
        }
        float p[10];
        sn_softmax(p, sn_net_forward(&m, &ctx, 1), 1, 10);
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (p[k] > p[best]) best = k;
        printf("%s digit=%d p=%.4f", a.files[i], best, p[best]);
        if (a.probs)
            for (int k = 0; k < 10; k++) printf(" p%d=%.4f", k, p[k]);
        printf("\n");
    }
    sn_forward_ctx_free(&ctx);
    sn_net_free(&m);
    free(a.files);
    return failures ? EXIT_RUNTIME : 0;
}

/* ---- export ---------------------------------------------------------------------- */
static int cmd_export(int argc, char **argv)
{
    const char *format = NULL, *files[2] = { NULL, NULL };
    int nfiles = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--format")) {
            if (!(format = value_of(argc, argv, &i))) return EXIT_USAGE;
        } else if (strncmp(argv[i], "--", 2) && nfiles < 2) {
            files[nfiles++] = argv[i];
        } else {
            fprintf(stderr, "%s export: unexpected argument '%s'\n", PROG, argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!format || (strcmp(format, "onnx") && strcmp(format, "npz")) || nfiles != 2) {
        fprintf(stderr, "%s export: expected --format onnx|npz MODEL OUT%s%s%s\n", PROG, format ? " (got '" : "",
                format ? format : "", format ? "')" : "");
        return EXIT_USAGE;
    }
    if (!cli_check_output(PROG, "OUT", files[1], 0)) return EXIT_USAGE;
    sn_net m;
    if (!load_model(files[0], &m)) return EXIT_RUNTIME;
    sn_error err;
    const int rc = !strcmp(format, "onnx") ? sn_export_onnx(&m, files[1], &err) : sn_export_npz(&m, files[1], &err);
    if (rc) fprintf(stderr, "%s: %s\n", PROG, err.msg);
    else printf("wrote %s (%s, %zu parameters; its input is the 784 preprocessed pixels of a digit)\n", files[1], format,
                m.nparams);
    sn_net_free(&m);
    return rc ? EXIT_RUNTIME : 0;
}

int main(int argc, char **argv)
{
    cli_openmp_defaults(argv);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    /* --version and --help anywhere (before a "--"), for the program and every command:
     * the usage is short enough to show whole. */
    if (cli_asks_version(argc, argv, 1)) {
        cli_print_version("scratchnet");
        return 0;
    }
    if (cli_asks_help(argc, argv, 1)) {
        if (!strcmp(argv[1], "drawn")) return cli_cmd_drawn(argc, argv); /* its own, longer help */
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "train")) return cmd_train(argc, argv);
    if (!strcmp(argv[1], "eval")) return cmd_eval(argc, argv);
    if (!strcmp(argv[1], "predict")) return cmd_predict(argc, argv);
    if (!strcmp(argv[1], "info")) return cmd_info(argc, argv);
    if (!strcmp(argv[1], "drawn")) return cli_cmd_drawn(argc, argv);
    if (!strcmp(argv[1], "export")) return cmd_export(argc, argv);
    fprintf(stderr, "%s: unknown command '%s'; expected train, eval, predict, info, drawn or export\n", PROG, argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
