/* bench --report DIR [--out FILE]: DIR/report.md, a Markdown report made from what the
 * harness wrote in DIR: env.json (the machine), summary.csv and scaling.csv (a sweep),
 * peers.csv (bench --peers --out DIR), gemm.csv (bench --gemm --csv DIR/gemm.csv), and the
 * charts beside them. Medians with their 95% intervals, the commands that made them (the
 * CSVs' "# command:" lines), so that result tables are generated, never typed. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench.h"
#include "cli.h"
#include "scratchnet/modelfile.h"
#include "stats.h"

enum { MAX_COLS = 48, MAX_ROWS = 20000 };

/* A CSV of ours: '#' lines (the command among them), a header, rows of fields. */
typedef struct table {
    char command[4096], cpu[256], date[64];
    char *head[MAX_COLS];
    int ncols, nrows;
    char **cell; /* nrows x ncols */
    char *text;
} table;

static void table_free(table *t)
{
    free(t->cell), free(t->text);
    memset(t, 0, sizeof *t);
}

/* Splits s at commas in place into at most cap fields; returns how many. */
static int split(char *s, char **f, int cap)
{
    int n = 0;
    s[strcspn(s, "\r\n")] = 0;
    for (char *p = s; p && n < cap; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) f[n++] = p;
    for (int i = 1; i < n; i++) f[i][-1] = 0;
    return n;
}

/* 1 read, 0 absent, -1 unreadable (with a message). */
static int table_read(const char *dir, const char *name, table *t)
{
    char path[4096];
    memset(t, 0, sizeof *t);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : (fprintf(stderr, "bench --report: %s: %s\n", path, strerror(errno)), -1);
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    t->text = malloc((size_t)size + 1);
    t->cell = calloc((size_t)MAX_ROWS * MAX_COLS, sizeof(char *));
    if (!t->text || !t->cell || fread(t->text, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        table_free(t);
        fprintf(stderr, "bench --report: cannot read %s\n", path);
        return -1;
    }
    fclose(f);
    t->text[size] = 0;
    for (char *line = t->text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (line[0] == '#') {
            if (!strncmp(line, "# command: ", 11)) snprintf(t->command, sizeof t->command, "%s", line + 11);
            else if (!strncmp(line, "# cpu: ", 7)) snprintf(t->cpu, sizeof t->cpu, "%.*s", (int)strcspn(line + 7, ";"), line + 7);
            else if (strstr(line, "; date ") && !t->date[0])
                snprintf(t->date, sizeof t->date, "%.10s", strstr(line, "; date ") + 7);
        } else if (!t->ncols) {
            t->ncols = split(line, t->head, MAX_COLS);
        } else if (*line && t->nrows < MAX_ROWS) {
            char **row = &t->cell[(size_t)t->nrows * MAX_COLS];
            if (split(line, row, MAX_COLS) == t->ncols) t->nrows++;
        }
    }
    if (!t->ncols) {
        fprintf(stderr, "bench --report: %s has no header line\n", path);
        table_free(t);
        return -1;
    }
    return 1;
}

static int col(const table *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++)
        if (!strcmp(t->head[i], name)) return i;
    return -1;
}

static const char *cell(const table *t, int row, int c)
{
    return c >= 0 ? t->cell[(size_t)row * MAX_COLS + c] : "";
}

static void print_command(FILE *o, const table *t)
{
    if (t->command[0]) fprintf(o, "Command: `%s`", t->command);
    else fprintf(o, "Command: not recorded (a CSV from before bench recorded its command line)");
    fprintf(o, "%s%s%s\n\n", t->date[0] ? "; measured " : "", t->date, t->date[0] ? "." : ".");
}

/* ---- the machine, from env.json ------------------------------------------------ */

/* The value of a top-level "key" of our env.json, unquoted, into out ("" if absent). */
static void json_value(const char *json, const char *key, char *out, size_t cap)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\n  \"%s\": ", key);
    const char *p = json ? strstr(json, pat) : NULL;
    out[0] = 0;
    if (!p) return;
    p += strlen(pat);
    size_t n = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"' && n + 1 < cap; p++) {
            if (*p == '\\' && p[1]) p++;
            out[n++] = *p;
        }
    } else {
        int depth = 0;
        for (; *p && n + 1 < cap; p++) {
            if (*p == '[' || *p == '{') depth++;
            if (*p == ']' || *p == '}') depth--;
            if (depth < 0 || (depth == 0 && (*p == ',' || *p == '\n'))) break;
            if (*p != '"') out[n++] = *p;
        }
    }
    out[n] = 0;
}

static void report_machine(FILE *o, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/env.json", dir);
    FILE *f = fopen(path, "r");
    char *text = f ? malloc(1 << 16) : NULL;
    const size_t n = text ? fread(text, 1, (1 << 16) - 1, f) : 0;
    if (f) fclose(f);
    if (!text) {
        fprintf(o, "## Machine\n\nNo env.json in %s: the machine is not recorded.\n\n", dir);
        return;
    }
    text[n] = 0;
    static const char *const keys[][2] = {
        { "cpu_model", "CPU" }, { "online_cores", "online cores" }, { "smt_active", "SMT active" },
        { "kernel_isa", "scratchnet kernels" }, { "compiler_and_flags", "compiler and flags" }, { "commit", "commit" },
        { "os_kernel", "OS kernel" }, { "governor", "frequency governor" }, { "loadavg_at_start", "load average at start" },
        { "steal_percent_at_start", "steal at start (%)" }, { "openmp", "OpenMP" }, { "blas", "BLAS settings" },
    };
    fprintf(o, "## Machine\n\nFrom `env.json`.\n\n| | |\n|---|---|\n");
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char v[1024];
        json_value(text, keys[i][0], v, sizeof v);
        if (v[0]) fprintf(o, "| %s | %s |\n", keys[i][1], v);
    }
    fprintf(o, "\n");
    free(text);
}

/* ---- a sweep -------------------------------------------------------------------- */

static const char *const CONFIG_COLS[] = { "batch", "lr", "threads", "opt", "seed", "layers", "deskew", "augment",
                                           "epochs" };
enum { NCONFIG = sizeof CONFIG_COLS / sizeof CONFIG_COLS[0] };

static void report_sweep(FILE *o, const char *dir, const table *s)
{
    fprintf(o, "## Training sweep\n\n");
    print_command(o, s);
    /* The configuration columns that vary name the runs; the rest are said once. */
    int varies[NCONFIG] = { 0 }, any = 0;
    for (int k = 0; k < NCONFIG; k++) {
        const int c = col(s, CONFIG_COLS[k]);
        for (int r = 1; r < s->nrows && c >= 0; r++) varies[k] |= strcmp(cell(s, r, c), cell(s, 0, c)) != 0;
        any |= varies[k];
    }
    if (s->nrows) {
        fprintf(o, "Every run: ");
        int first = 1;
        for (int k = 0; k < NCONFIG; k++)
            if (!varies[k] && col(s, CONFIG_COLS[k]) >= 0)
                fprintf(o, "%s%s=%s", first ? "" : ", ", CONFIG_COLS[k], cell(s, 0, col(s, CONFIG_COLS[k]))), first = 0;
        fprintf(o, ".\n\n");
    }
    const int c_reps = col(s, "reps"), c_lo = col(s, "samples_per_s_ci_lo"), c_hi = col(s, "samples_per_s_ci_hi");
    const int c_noisy = col(s, "noisy_reps"), c_tta = col(s, "tta_s"), c_speed = col(s, "samples_per_s");
    int any_tta = 0;
    for (int r = 0; r < s->nrows; r++) any_tta |= cell(s, r, c_tta)[0] != 0;
    fprintf(o, "| run |%s test acc | val acc | train s | samples/s (median) | 95%% CI | reps | noisy | status |%s\n",
            any ? " configuration |" : "", any_tta ? " time to target (s) |" : "");
    fprintf(o, "|---:|%s---:|---:|---:|---:|---|---:|---:|---|%s\n", any ? "---|" : "", any_tta ? "---:|" : "");
    for (int r = 0; r < s->nrows; r++) {
        char conf[1024] = "";
        size_t len = 0;
        for (int k = 0; k < NCONFIG; k++)
            if (varies[k])
                len += (size_t)snprintf(conf + len, sizeof conf - len, "%s%s=%s", len ? " " : "", CONFIG_COLS[k],
                                        cell(s, r, col(s, CONFIG_COLS[k])));
        const double med = atof(cell(s, r, c_speed)), lo = atof(cell(s, r, c_lo)), hi = atof(cell(s, r, c_hi));
        char ci[96] = "-";
        const int reps = c_reps >= 0 ? atoi(cell(s, r, c_reps)) : 1, noisy = c_noisy >= 0 ? atoi(cell(s, r, c_noisy)) : 0;
        if (c_lo >= 0 && med > 0 && reps > 1 && (reps - noisy >= 2 || noisy == reps))
            snprintf(ci, sizeof ci, "[%.0f, %.0f] (+-%.1f%%)", lo, hi, 50.0 * (hi - lo) / med);
        else if (reps > 1)
            snprintf(ci, sizeof ci, "- (one quiet rep)");
        fprintf(o, "| %s |%s%s%s %.4f | %.4f | %.2f | %.0f | %s | %s | %s | %s |", cell(s, r, 0), any ? " " : "", conf,
                any ? " |" : "", atof(cell(s, r, col(s, "test_acc"))), atof(cell(s, r, col(s, "val_acc"))),
                atof(cell(s, r, col(s, "train_s"))), med, ci, c_reps >= 0 ? cell(s, r, c_reps) : "1",
                c_noisy >= 0 ? cell(s, r, c_noisy) : "-", cell(s, r, col(s, "status")));
        if (any_tta) fprintf(o, " %s |", cell(s, r, c_tta)[0] ? cell(s, r, c_tta) : "not reached");
        fprintf(o, "\n");
    }
    fprintf(o, "\nA median over the repetitions that learned and that the noise sentinel found quiet; the\n"
               "interval is a percentile bootstrap of that median (`bench --sweep --repeat N`).\n\n");
    table sc;
    if (table_read(dir, "scaling.csv", &sc) == 1) {
        fprintf(o, "### Thread scaling\n\nPer block, each configuration's speed over its fewest-thread variant "
                   "(the two ran back to back); the median ratio and its 95%% interval.\n\n");
        fprintf(o, "| configuration | threads | speedup | 95%% CI | efficiency | blocks |\n|---|---:|---:|---|---:|---:|\n");
        for (int r = 0; r < sc.nrows; r++)
            fprintf(o, "| %s | %s | %.2fx | [%.2f, %.2f] | %.0f%% | %s |\n", cell(&sc, r, col(&sc, "label")),
                    cell(&sc, r, col(&sc, "threads")), atof(cell(&sc, r, col(&sc, "speedup"))),
                    atof(cell(&sc, r, col(&sc, "speedup_ci_lo"))), atof(cell(&sc, r, col(&sc, "speedup_ci_hi"))),
                    100 * atof(cell(&sc, r, col(&sc, "efficiency"))), cell(&sc, r, col(&sc, "blocks")));
        fprintf(o, "\n");
        table_free(&sc);
    }
}

/* ---- peers ---------------------------------------------------------------------- */

static void report_peers(FILE *o, const table *p)
{
    fprintf(o, "## scratchnet and its peers\n\n");
    print_command(o, p);
    const int c_name = col(p, "implementation"), c_thr = col(p, "threads"), c_speed = col(p, "samples_per_s");
    const int c_rep = col(p, "rep"), c_noisy = col(p, "noisy");
    /* The implementations (name, threads) in file order and their repetitions. */
    enum { MAXI = 64, MAXR = 100 };
    typedef struct impl { int first, n, noisy, rep[MAXR], noisy_rep[MAXR]; double s[MAXR], med, lo, hi; } impl;
    static impl im[MAXI];
    int ni = 0;
    for (int r = 0; r < p->nrows; r++) {
        int k = 0;
        while (k < ni && (strcmp(cell(p, im[k].first, c_name), cell(p, r, c_name)) ||
                          strcmp(cell(p, im[k].first, c_thr), cell(p, r, c_thr))))
            k++;
        if (k == ni) {
            if (ni == MAXI) continue;
            memset(&im[k], 0, sizeof im[k]), im[k].first = r, ni++;
        }
        if (im[k].n == MAXR) continue;
        im[k].rep[im[k].n] = c_rep >= 0 ? atoi(cell(p, r, c_rep)) : 1;
        im[k].noisy_rep[im[k].n] = c_noisy >= 0 && atoi(cell(p, r, c_noisy));
        im[k].noisy += im[k].noisy_rep[im[k].n];
        im[k].s[im[k].n++] = atof(cell(p, r, c_speed));
    }
    double best_ours = 0;
    for (int k = 0; k < ni; k++) {
        double quiet[MAXR];
        const int nq = stats_quiet(im[k].s, im[k].noisy_rep, im[k].n, quiet);
        im[k].med = stats_median(quiet, nq);
        stats_median_ci(quiet, nq, 2000, 0x9ee5 + (uint64_t)k, &im[k].lo, &im[k].hi);
        if (!strncmp(cell(p, im[k].first, c_name), "scratchnet", 10) && im[k].med > best_ours) best_ours = im[k].med;
    }
    fprintf(o, "Medians over the repetitions the noise sentinel found quiet (all of them if none was).\n\n");
    fprintf(o, "| implementation | threads | epochs | batch | test acc | samples/s (median) | 95%% CI | reps | noisy | "
               "best scratchnet / this |\n|---|---:|---:|---:|---:|---:|---|---:|---:|---:|\n");
    for (int k = 0; k < ni; k++) {
        const int r = im[k].first;
        fprintf(o, "| %s | %s | %s | %s | %.4f | %.0f | [%.0f, %.0f] | %d | %d | %.2fx |\n", cell(p, r, c_name),
                cell(p, r, c_thr), cell(p, r, col(p, "epochs")), cell(p, r, col(p, "batch")),
                atof(cell(p, r, col(p, "test_acc"))), im[k].med, im[k].lo, im[k].hi, im[k].n, im[k].noisy,
                best_ours / im[k].med);
    }
    /* Paired: per repetition, ours over each peer at the same thread count. */
    int header = 0;
    for (int a = 0; a < ni; a++) {
        if (strncmp(cell(p, im[a].first, c_name), "scratchnet", 10)) continue;
        for (int b = 0; b < ni; b++) {
            if (!strncmp(cell(p, im[b].first, c_name), "scratchnet", 10) ||
                strcmp(cell(p, im[a].first, c_thr), cell(p, im[b].first, c_thr)))
                continue;
            double ratio[MAXR];
            const int n = stats_paired_ratios(im[a].s, im[a].rep, im[a].noisy_rep, im[a].n, im[b].s, im[b].rep,
                                              im[b].noisy_rep, im[b].n, ratio, MAXR);
            if (n < 2) continue;
            if (!header)
                fprintf(o, "\nPaired within each block (the two ran back to back; blocks quiet for both when two or "
                           "more were):\n\n| ratio | threads | median | "
                           "95%% CI | blocks |\n|---|---:|---:|---|---:|\n"),
                    header = 1;
            double lo, hi;
            stats_median_ci(ratio, n, 2000, 0x9a1 + (uint64_t)(a * 64 + b), &lo, &hi);
            fprintf(o, "| %s / %s | %s | %.2fx | [%.2f, %.2f] | %d |\n", cell(p, im[a].first, c_name),
                    cell(p, im[b].first, c_name), cell(p, im[a].first, c_thr), stats_median(ratio, n), lo, hi, n);
        }
    }
    fprintf(o, "\n");
}

/* ---- GEMM ----------------------------------------------------------------------- */

static void report_gemm(FILE *o, const table *g)
{
    fprintf(o, "## GEMM kernels\n\n");
    print_command(o, g);
    const int c_case = col(g, "case"), c_op = col(g, "op"), c_m = col(g, "m"), c_n = col(g, "n"), c_k = col(g, "k");
    const int c_what = col(g, "what"), c_isa = col(g, "isa"), c_thr = col(g, "threads"), c_gf = col(g, "gflops");
    const int c_peak = col(g, "of_peak");
    fprintf(o, "| shape | product | threads | scratchnet GFLOP/s (ISA) | of ceiling | OpenBLAS | BLIS | scratchnet / best "
               "BLAS |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (int r = 0; r < g->nrows; r++) {
        /* A (case, threads) group starts at its first row. */
        int seen = 0;
        for (int q = 0; q < r && !seen; q++)
            seen = !strcmp(cell(g, q, c_case), cell(g, r, c_case)) && !strcmp(cell(g, q, c_thr), cell(g, r, c_thr));
        if (seen) continue;
        double ours = 0, openblas = 0, blis = 0, of_peak = 0;
        const char *isa = "";
        for (int q = r; q < g->nrows; q++) {
            if (strcmp(cell(g, q, c_case), cell(g, r, c_case)) || strcmp(cell(g, q, c_thr), cell(g, r, c_thr))) continue;
            const char *who = cell(g, q, c_isa);
            const double gf = atof(cell(g, q, c_gf));
            if (!strcmp(who, "openblas")) openblas = gf;
            else if (!strcmp(who, "blis")) blis = gf;
            else if (strcmp(who, "reference") && gf > ours) ours = gf, isa = who, of_peak = atof(cell(g, q, c_peak));
        }
        const double best = openblas > blis ? openblas : blis;
        char ob[32] = "-", bl[32] = "-", ratio[32] = "-", peak[32] = "-";
        if (openblas > 0) snprintf(ob, sizeof ob, "%.1f", openblas);
        if (blis > 0) snprintf(bl, sizeof bl, "%.1f", blis);
        if (best > 0) snprintf(ratio, sizeof ratio, "%.2fx", ours / best);
        if (of_peak > 0) snprintf(peak, sizeof peak, "%.0f%%", 100 * of_peak);
        fprintf(o, "| %s %sx%sx%s | %s | %s | %.1f (%s) | %s | %s | %s | %s |\n", cell(g, r, c_op), cell(g, r, c_m),
                cell(g, r, c_n), cell(g, r, c_k), cell(g, r, c_what), cell(g, r, c_thr), ours, isa, peak, ob, bl, ratio);
    }
    fprintf(o, "\n");
}

int bench_report_main(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--report") && i + 1 < argc && strncmp(argv[i + 1], "--", 2)) dir = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else {
            fprintf(stderr, "bench --report: unknown flag or missing value '%s'; expected bench --report DIR [--out FILE]\n",
                    argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!dir) {
        fprintf(stderr, "bench --report: name the directory: bench --report DIR (a sweep's or --peers' --out)\n");
        return EXIT_USAGE;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "bench --report: %s is not a directory\n", dir);
        return EXIT_USAGE;
    }
    char path[4096];
    if (!out) snprintf(path, sizeof path, "%s/report.md", dir), out = path;
    if (!cli_check_output("bench", "--out", out, 0)) return EXIT_USAGE;
    table sweep, peers, gemm;
    const int hs = table_read(dir, "summary.csv", &sweep), hp = table_read(dir, "peers.csv", &peers),
              hg = table_read(dir, "gemm.csv", &gemm);
    int rc = 0;
    if (hs < 0 || hp < 0 || hg < 0) rc = EXIT_RUNTIME;
    else if (!hs && !hp && !hg) {
        fprintf(stderr, "bench --report: %s holds no summary.csv, peers.csv or gemm.csv: nothing to report\n", dir);
        rc = EXIT_USAGE;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *o = rc ? NULL : open_memstream(&text, &len);
    if (!rc && !o) rc = EXIT_RUNTIME, fprintf(stderr, "bench --report: out of memory\n");
    if (o) {
        fprintf(o, "# scratchnet benchmark report\n\nGenerated by `bench --report %s` from the files in that "
                   "directory; every figure below is read from them.\n\n", dir);
        report_machine(o, dir);
        if (hs > 0) report_sweep(o, dir, &sweep);
        if (hp > 0) report_peers(o, &peers);
        if (hg > 0) report_gemm(o, &gemm);
        static const char *const charts[][2] = {
            { "loss.png", "loss curves" }, { "accuracy.png", "accuracy" }, { "throughput.png", "throughput" },
            { "scaling.png", "thread scaling" }, { "tta.png", "time to accuracy" },
            { "gflops-1t.png", "GEMM, 1 thread" }, { "gflops-2t.png", "GEMM, 2 threads" },
        };
        int any = 0;
        for (size_t i = 0; i < sizeof charts / sizeof charts[0]; i++) {
            char png[4200];
            snprintf(png, sizeof png, "%s/%s", dir, charts[i][0]);
            if (stat(png, &st) != 0) continue;
            if (!any) fprintf(o, "## Charts\n\n"), any = 1;
            fprintf(o, "![%s](%s)\n\n", charts[i][1], charts[i][0]);
        }
        fclose(o);
        sn_error err;
        if (sn_write_file_atomic(out, text, len, &err) != SN_OK) {
            fprintf(stderr, "bench --report: %s\n", err.msg);
            rc = EXIT_RUNTIME;
        } else {
            printf("wrote %s\n", out);
        }
    }
    free(text);
    if (hs > 0) table_free(&sweep);
    if (hp > 0) table_free(&peers);
    if (hg > 0) table_free(&gemm);
    return rc;
}
