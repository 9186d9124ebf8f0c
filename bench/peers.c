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
#include "stats.h"

enum { MAX_BLOCKS = 100 }; /* --repeat */

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct peer_row {
    char name[64];
    int epochs, batch, threads, rep; /* rep: the block (--repeat), 1-based */
    double train_loss, val_loss, test_acc, train_s, samples_per_s;
    int ok;
    double core_frac_min; /* the noise sentinel's slowest CPU during the row (noise.c) */
    int noisy;
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

/* The C + OpenBLAS peer (bench/peers/cblas_mlp.c), built beside bench: its path, or 0. */
static int cblas_peer_path(char *path, size_t cap)
{
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 0;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash) return 0;
    *slash = 0;
    if (strlen(self) + sizeof "/cblas_mlp" > cap) return 0;
    memcpy(path, self, strlen(self));
    memcpy(path + strlen(self), "/cblas_mlp", sizeof "/cblas_mlp");
    return access(path, X_OK) == 0;
}

/* script: a peer under bench/peers/ (.py: the system Python; .mjs: node), or an
 * executable's absolute path; layers: the MLP's sizes for peers that take them, or NULL. */
static int run_peer(const char *script, const char *data, int epochs, int batch, int threads, float lr,
                    const char *layers, const char *name, peer_row *r)
{
    char path[4096], cmd[8192];
    if (script[0] == '/') snprintf(path, sizeof path, "%s", script);
    else if (!cli_find_resource(script, path, sizeof path)) return 0;
    /* Debian's python3-numpy and python3-torch belong to the system interpreter, which
     * a pyenv or venv earlier in PATH would hide. */
    const char *python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    const size_t len = strlen(path);
    const int node = len > 4 && !strcmp(path + len - 4, ".mjs"); /* the TF.js peer */
    const int native = script[0] == '/';
    char extra[600] = "";
    if (layers) snprintf(extra, sizeof extra, " --layers '%s'", layers);
    if (name) snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " --name '%s'", name);
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=%d OPENBLAS_NUM_THREADS=%d "
             "%s '%s' --data '%s' --epochs %d --batch %d --threads %d --lr %.9g%s 2>&1",
             threads, threads, native ? "" : node ? "node" : python, path, data, epochs, batch, threads, lr, extra);
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
    fprintf(f, "implementation,epochs,batch,threads,train_loss,val_loss,test_acc,train_s,samples_per_s,rep,"
               "core_frac_min,noisy\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%s,%d,%d,%d,%.6f,%.6f,%.6f,%.6f,%.0f,%d,%.4f,%d\n", rows[i].name, rows[i].epochs, rows[i].batch,
                rows[i].threads, rows[i].train_loss, rows[i].val_loss, rows[i].test_acc, rows[i].train_s,
                rows[i].samples_per_s, rows[i].rep, rows[i].core_frac_min, rows[i].noisy);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "bench: --out: cannot write %s: %s\n", path, strerror(errno));
        remove(tmp);
        return EXIT_RUNTIME;
    }
    printf("wrote %s\n", path);
    return 0;
}

/* scratchnet itself, same hyperparameters as the peers: the MLP with momentum 0.9 and lr
 * 0.05, or the cnn preset with Adam and lr 0.002 (or --lr); cosine schedule, He init,
 * 50,000 train / 10,000 validation. 0 with a message on failure. */
static int run_ours(const char *net, int cnn, const sn_dataset *all, const sn_dataset *test, int epochs, int batch,
                    int threads, float lr, peer_row *r)
{
    sn_error err;
    sn_net m;
    sn_trainer t;
    sn_layer layers[SN_MAX_LAYERS];
    int nl, ok = 0;
    sn_train_config cfg = sn_train_defaults();
    cfg.epochs = epochs, cfg.batch = batch, cfg.threads = threads;
    cfg.opt = cnn ? SN_OPT_ADAM : SN_OPT_MOMENTUM;
    cfg.lr = lr;
    sn_dataset train = sn_dataset_slice(all, 0, 50000), val = sn_dataset_slice(all, 50000, 10000);
    if (sn_net_parse(net, layers, &nl, &err) || sn_net_create(&m, layers, nl, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 0;
    }
    if (sn_trainer_create(&t, &m, &cfg, 50000, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        sn_net_free(&m);
        return 0;
    }
    snprintf(r->name, sizeof r->name, "scratchnet%s(%s)", cnn ? "-cnn" : "", sn_isa_name(sn_isa_active()));
    r->epochs = epochs, r->batch = batch, r->threads = threads;
    sn_fit_result fit;
    double vl, va, tl;
    if (sn_fit(&t, &train, NULL, 0, NULL, &fit, &err) || sn_evaluate(&m, &t.fwd, &val, threads, &vl, &va, &err) ||
        sn_evaluate(&m, &t.fwd, test, threads, &tl, &r->test_acc, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
    } else {
        r->train_s = fit.train_s;
        r->train_loss = fit.diverged ? NAN : fit.last.stats.train_loss;
        r->val_loss = vl;
        r->samples_per_s = 50000.0 * epochs / r->train_s;
        r->ok = ok = 1;
    }
    sn_trainer_free(&t);
    sn_net_free(&m);
    return ok;
}

/* A median with its bootstrap 95% interval, printed as "1.23x [1.10, 1.30]". */
static void print_ratio_line(const char *what, double *ratio, int n, uint64_t seed)
{
    if (!n) return;
    double lo, hi;
    stats_median_ci(ratio, n, 2000, seed, &lo, &hi);
    printf("%s: %.2fx [%.2f, %.2f] (%d block%s)\n", what, stats_median(ratio, n), lo, hi, n, n > 1 ? "s" : "");
}

int bench_peers_main(int argc, char **argv)
{
    int epochs = 10, batch = 128, tlist[4] = { 1, 2 }, nt = 2, load = 0, cnn = 0, repeat = 1;
    const char *net = "mlp";
    char mlp_sizes[512] = ""; /* an MLP's sizes, "784,256,128,10", for the C + OpenBLAS peer */
    float lr = 0.0f; /* 0: the net's default */
    const char *data = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--peers")) continue;
        if (i + 1 < argc && !strcmp(argv[i], "--epochs")) { if (!cli_int("bench", argv[i], argv[i + 1], 1, 1000, &epochs)) return EXIT_USAGE; i++; }
        else if (i + 1 < argc && !strcmp(argv[i], "--batch")) { if (!cli_int("bench", argv[i], argv[i + 1], 1, 60000, &batch)) return EXIT_USAGE; i++; }
        else if (i + 1 < argc && !strcmp(argv[i], "--load")) { if (!cli_int("bench", argv[i], argv[i + 1], 0, BENCH_LOAD_MAX, &load)) return EXIT_USAGE; i++; }
        else if (i + 1 < argc && !strcmp(argv[i], "--repeat")) { if (!cli_int("bench", argv[i], argv[i + 1], 1, MAX_BLOCKS, &repeat)) return EXIT_USAGE; i++; }
        else if (i + 1 < argc && !strcmp(argv[i], "--threads")) {
            if (!(nt = bench_int_list("--threads", argv[++i], 1, 1024, tlist, 4))) return EXIT_USAGE;
        }
        else if (i + 1 < argc && !strcmp(argv[i], "--lr")) { if (!cli_float("bench", argv[i], argv[i + 1], 0.0, &lr)) return EXIT_USAGE; i++; }
        else if (i + 1 < argc && !strcmp(argv[i], "--net")) {
            const char *v = argv[++i];
            /* mlp and cnn: every peer that builds the net; any other MLP (784,256,128,10):
             * the C + OpenBLAS peer, which takes the sizes. */
            sn_layer layers[SN_MAX_LAYERS];
            int nl;
            sn_error err;
            if (sn_net_parse(v, layers, &nl, &err)) {
                fprintf(stderr, "bench --peers: --net: %s\n", err.msg);
                return EXIT_USAGE;
            }
            if (strcmp(v, "cnn") && !sn_net_is_mlp(layers, nl)) {
                fprintf(stderr, "bench --peers: --net: '%s' is not allowed; expected mlp, cnn or an MLP's sizes such as "
                                "784,256,128,10 (the nets the peers build)\n", v);
                return EXIT_USAGE;
            }
            net = v, cnn = !strcmp(v, "cnn");
            if (!cnn) sn_net_format(layers, nl, ',', mlp_sizes, sizeof mlp_sizes);
        }
        else if (i + 1 < argc && !strcmp(argv[i], "--data")) data = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--out")) out = argv[++i];
        else {
            fprintf(stderr, "bench --peers: unknown flag or missing value '%s'; expected --net mlp|cnn --epochs N --batch N "
                            "--threads N --lr X --repeat N --data DIR --out DIR --load N\n", argv[i]);
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
    if (lr <= 0.0f) lr = sn_opt_default_lr(cnn ? SN_OPT_ADAM : SN_OPT_MOMENTUM);
    const char *coretype = bench_set_openblas_coretype();   /* inherited by the peers' processes */
    const char *dir = cli_data_dir(data);
    sn_dataset all, test;
    if (!cli_load_mnist("bench", dir, &all, &test)) return EXIT_RUNTIME;
    /* The peers of this net: NumPy and PyTorch build 784-50-25-10 (mlp) and the cnn preset;
     * the C + OpenBLAS peer any MLP. */
    char cblas[4096];
    const char *scripts[4];
    float script_lr[4] = { 0 }; /* 0: --lr */
    const char *script_name[4] = { NULL };
    int nscripts = 0;
    const int default_mlp = !strcmp(net, "mlp");
    if (cnn) scripts[nscripts++] = "bench/peers/torch_cnn.py";
    /* The seed project's own "PyTorch CNN" row: the same net with its recipe, Adam 0.01
     * (the table it came from: 1 epoch, batch 128). */
    if (cnn)
        script_lr[nscripts] = 0.01f, script_name[nscripts] = "pytorch-cnn-adam0.01",
        scripts[nscripts++] = "bench/peers/torch_cnn.py";
    if (default_mlp) scripts[nscripts++] = "bench/peers/numpy_mlp.py", scripts[nscripts++] = "bench/peers/torch_mlp.py";
    if (!cnn && cblas_peer_path(cblas, sizeof cblas)) scripts[nscripts++] = cblas;
    else if (!cnn) fprintf(stderr, "bench --peers: c-openblas: skipped, cblas_mlp is not built beside bench\n");
    /* TensorFlow.js (wasm backend, one thread under Node): beside the first thread count;
     * skipped, saying so, without node or its packages. */
    char tfjs[4096];
    int with_tfjs = 0;
    if (default_mlp) {
        if (system("command -v node >/dev/null 2>&1") != 0)
            fprintf(stderr, "bench --peers: tfjs: skipped, node is not installed\n");
        else if (!cli_find_resource("bench/peers/tfjs/node_modules/@tensorflow/tfjs-backend-wasm", tfjs, sizeof tfjs))
            fprintf(stderr, "bench --peers: tfjs: skipped, its packages are not installed "
                            "(npm ci --prefix bench/peers/tfjs)\n");
        else with_tfjs = 1;
    }
    bench_noise noise;
    (void)bench_noise_init(&noise);
    /* Busy processes beside every row (ours and the peers'); the kernel kills them if
     * bench dies on the way (load.c). */
    bench_load busy;
    if (!bench_load_start(load, &busy)) return EXIT_RUNTIME;

    /* --repeat N: N blocks; in each, every thread count runs scratchnet and every peer
     * back to back (ours first in odd blocks, last in even ones, so that neither side
     * always follows the other), for ratios under the same conditions. */
    const int per_block = nt * (1 + 4) + 1;
    peer_row *rows = calloc((size_t)repeat * (size_t)per_block, sizeof *rows);
    int n = 0, failed = 0;
    if (!rows) {
        fprintf(stderr, "bench: out of memory\n");
        bench_load_stop(&busy);
        return EXIT_RUNTIME;
    }
    for (int block = 0; block < repeat && !failed; block++) {
        for (int ti = 0; ti < nt && !failed; ti++) {
            const int threads = tlist[ti];
            const int nimpl = 1 + nscripts + (with_tfjs && ti == 0);
            for (int k = 0; k < nimpl && !failed; k++) {
                /* implementation index: 0 ours, 1.. the scripts, then tfjs */
                const int impl = block % 2 == 0 ? k : (k + 1) % nimpl;
                peer_row *p = &rows[n];
                memset(p, 0, sizeof *p);
                bench_noise_run nr;
                bench_noise_begin(&noise, &nr);
                if (impl == 0) {
                    if (repeat > 1) fprintf(stderr, "bench --peers: block %d/%d: scratchnet, %d thread(s) ...\n",
                                            block + 1, repeat, threads);
                    failed = !run_ours(net, cnn, &all, &test, epochs, batch, threads, lr, p);
                } else {
                    const int tf = impl > nscripts;
                    const char *script = tf ? "bench/peers/tfjs/tfjs_mlp.mjs" : scripts[impl - 1];
                    const int native = script[0] == '/';
                    const char *alias = tf ? NULL : script_name[impl - 1];
                    fprintf(stderr, "bench --peers: %s%s%s%s with %d thread(s) ...\n", repeat > 1 ? "" : "running ", script,
                            alias ? " as " : "", alias ? alias : "", tf ? 1 : threads);
                    const float peer_lr = !tf && script_lr[impl - 1] > 0.0f ? script_lr[impl - 1] : lr;
                    if (run_peer(script, dir, epochs, batch, tf ? 1 : threads, peer_lr, native ? mlp_sizes : NULL,
                                 tf ? NULL : script_name[impl - 1], p))
                        p->ok = 1;
                    else fprintf(stderr, "bench --peers: %s did not run%s\n", script,
                                 tf || native ? "" : " (python3-numpy / python3-torch installed?)");
                }
                bench_noise_end(&noise, &nr);
                p->rep = block + 1, p->core_frac_min = nr.core_frac_min, p->noisy = nr.noisy;
                if (p->ok) n++;
            }
        }
    }
    bench_load_stop(&busy);
    sn_dataset_free(&all);
    sn_dataset_free(&test);
    if (failed) {
        free(rows);
        return EXIT_RUNTIME;
    }
    /* The implementations (name, threads) in first-seen order; per block their speeds. */
    typedef struct impl_stats { char name[64]; int threads, nrep; double speed[MAX_BLOCKS]; int noisy[MAX_BLOCKS], rep[MAX_BLOCKS]; peer_row *first; } impl_stats;
    impl_stats *im = calloc((size_t)per_block, sizeof *im);
    int ni = 0;
    for (int i = 0; im && i < n; i++) {
        int k = 0;
        while (k < ni && (strcmp(im[k].name, rows[i].name) || im[k].threads != rows[i].threads)) k++;
        if (k == ni) {
            if (ni == per_block) continue;
            snprintf(im[k].name, sizeof im[k].name, "%s", rows[i].name), im[k].threads = rows[i].threads;
            im[k].first = &rows[i], ni++;
        }
        im[k].speed[im[k].nrep] = rows[i].samples_per_s, im[k].noisy[im[k].nrep] = rows[i].noisy;
        im[k].rep[im[k].nrep++] = rows[i].rep;
    }
    printf("Measured in one run on %s; OpenBLAS (under NumPy, PyTorch and the C peer) with %s; %d busy processes beside "
           "(--load)%s.\n\n",
           cli_cpu_model(), coretype, load,
           repeat > 1 ? "; medians of the blocks the noise sentinel found quiet, with 95% bootstrap intervals" : "");
    printf("| implementation | epochs | batch | threads | train loss | val loss | test acc | train s | samples/s |%s "
           "best scratchnet / this |\n", repeat > 1 ? " 95% CI | noisy |" : "");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|%s---:|\n", repeat > 1 ? "---|---:|" : "");
    double best_ours = 0, best_peer = 0, med[64] = { 0 };
    for (int k = 0; im && k < ni && k < 64; k++) {
        double quiet[MAX_BLOCKS];
        const int nq = stats_quiet(im[k].speed, im[k].noisy, im[k].nrep, quiet);
        med[k] = stats_median(quiet, nq);
        const int ours = !strncmp(im[k].name, "scratchnet", 10);
        if (ours && med[k] > best_ours) best_ours = med[k];
        if (!ours && med[k] > best_peer) best_peer = med[k];
    }
    for (int k = 0; im && k < ni && k < 64; k++) {
        const peer_row *r = im[k].first;
        char ci[96] = "";
        if (repeat > 1) {
            double lo, hi;
            int noisy = 0;
            for (int j = 0; j < im[k].nrep; j++) noisy += im[k].noisy[j];
            double quiet[MAX_BLOCKS];
            const int nq = stats_quiet(im[k].speed, im[k].noisy, im[k].nrep, quiet);
            stats_median_ci(quiet, nq, 2000, 0x9ee5 + (uint64_t)k, &lo, &hi);
            snprintf(ci, sizeof ci, " [%.0f, %.0f] | %d of %d |", lo, hi, noisy, im[k].nrep);
        }
        printf("| %s | %d | %d | %d | %.4f | %.4f | %.4f | %.2f | %.0f |%s %.2fx |\n", r->name, r->epochs, r->batch,
               r->threads, r->train_loss, r->val_loss, r->test_acc, 50000.0 * r->epochs / med[k], med[k], ci,
               best_ours / med[k]);
    }
    if (best_peer > 0) printf("\nbest scratchnet / best peer: %.2fx\n", best_ours / best_peer);
    /* Paired ratios: per block, ours against each peer at the same thread count, and the
     * best of ours against the best peer, from blocks quiet for both (else all). */
    if (repeat > 1 && im) {
        printf("\nPaired per block (median of the per-block ratios, 95%% bootstrap interval):\n");
        for (int a = 0; a < ni; a++) {
            if (strncmp(im[a].name, "scratchnet", 10)) continue;
            for (int b = 0; b < ni; b++) {
                if (!strncmp(im[b].name, "scratchnet", 10) || im[b].threads != im[a].threads) continue;
                double ratio[MAX_BLOCKS];
                const int nr = stats_paired_ratios(im[a].speed, im[a].rep, im[a].noisy, im[a].nrep, im[b].speed,
                                                   im[b].rep, im[b].noisy, im[b].nrep, ratio, MAX_BLOCKS);
                char what[200];
                snprintf(what, sizeof what, "%s / %s, %d thread%s", im[a].name, im[b].name, im[a].threads,
                         im[a].threads > 1 ? "s" : "");
                print_ratio_line(what, ratio, nr, 0x9a1 + (uint64_t)(a * 64 + b));
            }
        }
        double ratio[MAX_BLOCKS];
        int nr = 0;
        for (int block = 1; block <= repeat; block++) {
            double ours = 0, peer = 0;
            for (int k = 0; k < ni; k++)
                for (int x = 0; x < im[k].nrep; x++)
                    if (im[k].rep[x] == block) {
                        double *best = !strncmp(im[k].name, "scratchnet", 10) ? &ours : &peer;
                        if (im[k].speed[x] > *best) *best = im[k].speed[x];
                    }
            if (ours > 0 && peer > 0) ratio[nr++] = ours / peer;
        }
        print_ratio_line("best scratchnet / best peer", ratio, nr, 0xbe57);
    }
    free(im);
    int rc = 0;
    if (out) {
        rc = write_csv(out, rows, n, load);
        if (!rc && !bench_write_env_json(out, dir)) rc = EXIT_RUNTIME;
    }
    free(rows);
    return rc;
}
