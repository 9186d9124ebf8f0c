/* bench --peers: the same network and hyperparameters in NumPy, PyTorch and TensorFlow.js
 * (our own scripts in bench/peers/), measured in the same run as scratchnet, one table.
 * OpenBLAS (under NumPy and PyTorch) gets the strongest OPENBLAS_CORETYPE for the CPU
 * (bench_set_openblas_coretype) so that we race the peers at their best; the table says so. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "scratchnet/fit.h"
#include "scratchnet/gemm.h"
#include "scratchnet/train.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct peer_row {
    char name[64];
    int epochs, batch, threads;
    double train_loss, val_loss, test_acc, train_s, samples_per_s;
    int ok;
} peer_row;

/* Parses the one-line result every peer prints last:
 * "result name=... epochs=.. batch=.. threads=.. train_loss=.. val_loss=.. test_acc=.. train_s=.. samples_per_s=.." */
static int parse_result(const char *line, peer_row *r)
{
    return sscanf(line, "result name=%63s epochs=%d batch=%d threads=%d train_loss=%lf val_loss=%lf test_acc=%lf "
                        "train_s=%lf samples_per_s=%lf",
                  r->name, &r->epochs, &r->batch, &r->threads, &r->train_loss, &r->val_loss, &r->test_acc,
                  &r->train_s, &r->samples_per_s) == 9;
}

static int run_peer(const char *script, const char *data, int epochs, int batch, int threads, float lr, peer_row *r)
{
    char path[4096], cmd[8192];
    if (!cli_find_resource(script, path, sizeof path)) return 0;
    /* Debian's python3-numpy and python3-torch belong to the system interpreter, which
     * a pyenv or venv earlier in PATH would hide. */
    const char *python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    const size_t len = strlen(path);
    const int node = len > 4 && !strcmp(path + len - 4, ".mjs"); /* the TF.js peer */
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=%d OPENBLAS_NUM_THREADS=%d "
             "%s '%s' --data '%s' --epochs %d --batch %d --threads %d --lr %.9g 2>&1",
             threads, threads, node ? "node" : python, path, data, epochs, batch, threads, lr);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    char line[1024];
    int ok = 0;
    while (fgets(line, sizeof line, p)) {
        if (parse_result(line, r)) ok = 1;
        else fprintf(stderr, "  %s", line);
    }
    int st = pclose(p);
    return ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* DIR/peers.csv: the table above as CSV with '#' provenance lines, written to a temporary
 * file and renamed, so a reader never sees half of it. */
static int write_csv(const char *dir, const peer_row *rows, int n, int load)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench: --out: cannot create %s: %s\n", dir, strerror(errno));
        return EXIT_RUNTIME;
    }
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/peers.csv", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "bench: --out: cannot write %s: %s\n", tmp, strerror(errno));
        return EXIT_RUNTIME;
    }
    bench_write_provenance(f, "bench --peers");
    fprintf(f, "# load: %d busy processes beside the runs (--load)\n", load);
    fprintf(f, "implementation,epochs,batch,threads,train_loss,val_loss,test_acc,train_s,samples_per_s\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%s,%d,%d,%d,%.6f,%.6f,%.6f,%.6f,%.0f\n", rows[i].name, rows[i].epochs, rows[i].batch,
                rows[i].threads, rows[i].train_loss, rows[i].val_loss, rows[i].test_acc, rows[i].train_s,
                rows[i].samples_per_s);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "bench: --out: cannot write %s: %s\n", path, strerror(errno));
        remove(tmp);
        return EXIT_RUNTIME;
    }
    printf("wrote %s\n", path);
    return 0;
}

int bench_peers_main(int argc, char **argv)
{
    int epochs = 10, batch = 128, tlist[4] = { 1, 2 }, nt = 2, load = 0, cnn = 0;
    float lr = 0.0f; /* 0: the net's default */
    const char *data = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--peers")) continue;
        if (i + 1 < argc && !strcmp(argv[i], "--epochs")) { if (!cli_int("bench", argv[i], argv[i + 1], 1, 1000, &epochs)) return EXIT_USAGE; i++; }
        else if (i + 1 < argc && !strcmp(argv[i], "--batch")) { if (!cli_int("bench", argv[i], argv[i + 1], 1, 60000, &batch)) return EXIT_USAGE; i++; }
        else if (i + 1 < argc && !strcmp(argv[i], "--load")) { if (!cli_int("bench", argv[i], argv[i + 1], 0, BENCH_LOAD_MAX, &load)) return EXIT_USAGE; i++; }
        else if (i + 1 < argc && !strcmp(argv[i], "--threads")) {
            if (!(nt = bench_int_list("--threads", argv[++i], 1, 1024, tlist, 4))) return EXIT_USAGE;
        }
        else if (i + 1 < argc && !strcmp(argv[i], "--lr")) { if (!cli_float("bench", argv[i], argv[i + 1], 0.0, &lr)) return EXIT_USAGE; i++; }
        else if (i + 1 < argc && !strcmp(argv[i], "--net")) {
            const char *v = argv[++i];
            if (strcmp(v, "mlp") && strcmp(v, "cnn")) {
                fprintf(stderr, "bench --peers: --net: '%s' is not allowed; expected mlp or cnn (the nets the peer "
                                "scripts build)\n", v);
                return EXIT_USAGE;
            }
            cnn = !strcmp(v, "cnn");
        }
        else if (i + 1 < argc && !strcmp(argv[i], "--data")) data = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--out")) out = argv[++i];
        else {
            fprintf(stderr, "bench --peers: unknown flag or missing value '%s'; expected --net mlp|cnn --epochs N --batch N "
                            "--threads N --lr X --data DIR --out DIR\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (out && !cli_check_output("bench", "--out", out, 1)) return EXIT_USAGE;
    sn_error err;
    sn_team_mode team;
    if (sn_isa_init(&err) || sn_team_mode_from_env(&team, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return EXIT_USAGE;
    }
    const char *coretype = bench_set_openblas_coretype();   /* inherited by the peers' processes */
    const char *dir = cli_data_dir(data);
    sn_dataset all, test;
    if (!cli_load_mnist("bench", dir, &all, &test)) return EXIT_RUNTIME;
    /* Busy processes beside every row (ours and the peers'); the kernel kills them if
     * bench dies on the way (load.c). */
    bench_load busy;
    if (!bench_load_start(load, &busy)) return EXIT_RUNTIME;

    peer_row rows[16];
    int n = 0;
    for (int ti = 0; ti < nt; ti++) {
        const int threads = tlist[ti];
        /* scratchnet itself, same run, same hyperparameters as the peers: the MLP with
         * momentum 0.9 and lr 0.05, or the cnn preset with Adam and lr 0.002 (or --lr);
         * cosine schedule, He init, 50,000 train / 10,000 validation. */
        sn_net m;
        sn_trainer t;
        sn_layer layers[SN_MAX_LAYERS];
        int nl;
        sn_train_config cfg = sn_train_defaults();
        cfg.epochs = epochs, cfg.batch = batch, cfg.threads = threads;
        cfg.opt = cnn ? SN_OPT_ADAM : SN_OPT_MOMENTUM;
        cfg.lr = lr > 0.0f ? lr : sn_opt_default_lr(cfg.opt);
        sn_dataset train = sn_dataset_slice(&all, 0, 50000), val = sn_dataset_slice(&all, 50000, 10000);
        if (sn_net_parse(cnn ? "cnn" : "mlp", layers, &nl, &err) || sn_net_create(&m, layers, nl, &err) ||
            sn_trainer_create(&t, &m, &cfg, 50000, &err)) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return EXIT_RUNTIME;
        }
        peer_row *r = &rows[n++];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "scratchnet%s(%s)", cnn ? "-cnn" : "", sn_isa_name(sn_isa_active()));
        r->epochs = epochs, r->batch = batch, r->threads = threads;
        sn_fit_result fit;
        if (sn_fit(&t, &train, NULL, 0, NULL, &fit, &err)) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return EXIT_RUNTIME;
        }
        r->train_s = fit.train_s;
        r->train_loss = fit.diverged ? NAN : fit.last.stats.train_loss;
        double vl, va, tl;
        if (sn_evaluate(&m, &t.fwd, &val, threads, &vl, &va, &err) ||
            sn_evaluate(&m, &t.fwd, &test, threads, &tl, &r->test_acc, &err)) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return EXIT_RUNTIME;
        }
        r->val_loss = vl;
        r->samples_per_s = 50000.0 * epochs / r->train_s;
        r->ok = 1;
        sn_trainer_free(&t);
        sn_net_free(&m);
        static const char *const mlp_scripts[] = { "bench/peers/numpy_mlp.py", "bench/peers/torch_mlp.py", NULL };
        static const char *const cnn_scripts[] = { "bench/peers/torch_cnn.py", NULL };
        const char *const *scripts = cnn ? cnn_scripts : mlp_scripts;
        for (int s = 0; scripts[s]; s++) {
            peer_row *p = &rows[n];
            memset(p, 0, sizeof *p);
            fprintf(stderr, "bench --peers: running %s with %d thread(s) ...\n", scripts[s], threads);
            if (run_peer(scripts[s], dir, epochs, batch, threads, cfg.lr, p)) p->ok = 1, n++;
            else fprintf(stderr, "bench --peers: %s did not run (python3-numpy / python3-torch installed?)\n", scripts[s]);
        }
        /* TensorFlow.js (wasm backend, one thread under Node): once, beside the first
         * thread count; skipped, saying so, without node or its packages. */
        char tfjs[4096];
        if (!cnn && ti == 0) {
            if (system("command -v node >/dev/null 2>&1") != 0)
                fprintf(stderr, "bench --peers: tfjs: skipped, node is not installed\n");
            else if (!cli_find_resource("bench/peers/tfjs/node_modules/@tensorflow/tfjs-backend-wasm", tfjs, sizeof tfjs))
                fprintf(stderr, "bench --peers: tfjs: skipped, its packages are not installed "
                                "(npm ci --prefix bench/peers/tfjs)\n");
            else {
                peer_row *p = &rows[n];
                memset(p, 0, sizeof *p);
                fprintf(stderr, "bench --peers: running bench/peers/tfjs/tfjs_mlp.mjs (1 thread) ...\n");
                if (run_peer("bench/peers/tfjs/tfjs_mlp.mjs", dir, epochs, batch, 1, cfg.lr, p)) p->ok = 1, n++;
                else fprintf(stderr, "bench --peers: tfjs_mlp.mjs did not run\n");
            }
        }
    }
    bench_load_stop(&busy);
    sn_dataset_free(&all);
    sn_dataset_free(&test);
    double best_peer = 0, best_ours = 0;
    for (int i = 0; i < n; i++) {
        int ours = strncmp(rows[i].name, "scratchnet", 10) == 0;
        if (ours && rows[i].samples_per_s > best_ours) best_ours = rows[i].samples_per_s;
        if (!ours && rows[i].samples_per_s > best_peer) best_peer = rows[i].samples_per_s;
    }
    printf("Measured in one run on %s; OpenBLAS under NumPy/PyTorch with %s; %d busy processes beside "
           "(--load).\n\n",
           cli_cpu_model(), coretype, load);
    printf("| implementation | epochs | batch | threads | train loss | val loss | test acc | train s | samples/s | best scratchnet / this |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++)
        printf("| %s | %d | %d | %d | %.4f | %.4f | %.4f | %.2f | %.0f | %.2fx |\n", rows[i].name, rows[i].epochs,
               rows[i].batch, rows[i].threads, rows[i].train_loss, rows[i].val_loss, rows[i].test_acc, rows[i].train_s,
               rows[i].samples_per_s, best_ours / rows[i].samples_per_s);
    if (best_peer > 0) printf("\nbest scratchnet / best peer: %.2fx\n", best_ours / best_peer);
    if (!out) return 0;
    const int rc = write_csv(out, rows, n, load);
    return rc ? rc : bench_write_env_json(out, dir) ? 0 : EXIT_RUNTIME;
}
