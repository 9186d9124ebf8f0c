/* bench --merge DIR... [--out DIR] [--force] [--no-plot] [--quiet]: one sweep's CSVs and
 * charts from its parts (bench --sweep ... --part K/N, e.g. a scheduler's array job).
 *
 * Each part's CSVs carry "# grid: ..." (the keys, epochs, val and run count) and
 * "# part: K/N". The parts must share the grid and the header, be parts 1..N of the same
 * N once each, and together hold every run once; then summary.csv gets the rows in run
 * order and sweep.csv in (run, epoch) order, with part 1's provenance and a line naming
 * the parts, and the charts are drawn as for a sweep run in one piece. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "cli.h"
#include "scratchnet/modelfile.h"

enum { MAX_PARTS = 4096 };

typedef struct csv {
    char *comments; /* '#' lines of the file (part 1's are kept) */
    char *header;
    char **rows;    /* data lines, with their newline */
    int nrows;
    char grid[8192];
    int part, parts;
} csv;

static void csv_free(csv *c)
{
    for (int i = 0; i < c->nrows; i++) free(c->rows[i]);
    free(c->rows), free(c->comments), free(c->header);
    memset(c, 0, sizeof *c);
}

static char *append(char *s, const char *line)
{
    const size_t a = s ? strlen(s) : 0, b = strlen(line);
    char *p = realloc(s, a + b + 1);
    if (!p) { free(s); return NULL; }
    memcpy(p + a, line, b + 1);
    return p;
}

/* Reads DIR/name; 0 with a message naming the file and what is wrong. */
static int csv_read(const char *dir, const char *name, csv *c)
{
    char path[4096], line[8192];
    memset(c, 0, sizeof *c);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench --merge: %s: %s\n", path, strerror(errno));
        return 0;
    }
    int cap = 0, ok = 1;
    while (ok && fgets(line, sizeof line, f)) {
        if (line[0] == '#') {
            if (!strncmp(line, "# grid: ", 8)) snprintf(c->grid, sizeof c->grid, "%s", line + 8);
            else if (!strncmp(line, "# part: ", 8)) sscanf(line + 8, "%d/%d", &c->part, &c->parts);
            else ok = (c->comments = append(c->comments, line)) != NULL;
        } else if (!c->header) {
            ok = (c->header = append(NULL, line)) != NULL;
        } else {
            if (c->nrows == cap) {
                cap = cap ? 2 * cap : 256;
                char **r = realloc(c->rows, sizeof(char *) * (size_t)cap);
                if (!r) { ok = 0; break; }
                c->rows = r;
            }
            ok = (c->rows[c->nrows++] = append(NULL, line)) != NULL;
        }
    }
    fclose(f);
    if (!ok) fprintf(stderr, "bench --merge: out of memory reading %s\n", path);
    else if (!c->header || !c->grid[0] || c->parts < 1 || c->parts > MAX_PARTS || c->part < 1 || c->part > c->parts) {
        fprintf(stderr, "bench --merge: %s is not a part of a sweep (no header, '# grid:' or '# part: K/N' line); "
                        "make the parts with bench --sweep ... --part K/N\n", path);
        ok = 0;
    }
    if (!ok) csv_free(c);
    return ok;
}

/* Data rows sort by run, then epoch, then repetition (sweep.csv's; their positions are
 * found from the header). */
static int epoch_column, rep_column;
static int field_int(const char *row, int col)
{
    for (int i = 0; i < col && row; i++) row = strchr(row, ',') ? strchr(row, ',') + 1 : NULL;
    return row ? atoi(row) : 0;
}
static int by_run_epoch(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    const int rx = atoi(x), ry = atoi(y);
    if (rx != ry) return (rx > ry) - (rx < ry);
    const int ex = epoch_column < 0 ? 0 : field_int(x, epoch_column), ey = epoch_column < 0 ? 0 : field_int(y, epoch_column);
    if (ex != ey || rep_column < 0) return (ex > ey) - (ex < ey);
    const int px = field_int(x, rep_column), py = field_int(y, rep_column);
    return (px > py) - (px < py);
}

static int column_of(const char *header, const char *name)
{
    int col = 0;
    for (const char *p = header; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL, col++)
        if (!strncmp(p, name, strlen(name)) && (p[strlen(name)] == ',' || p[strlen(name)] == '\n')) return col;
    return -1;
}

/* The parts' files of one name merged into out/name; 0 on failure. */
static int merge_file(char **dirs, int ndirs, const char *name, const char *out, int *nruns_out, int check_runs)
{
    csv *c = calloc((size_t)ndirs, sizeof *c);
    if (!c) return 0;
    int ok = 1, total = 0;
    for (int i = 0; i < ndirs && ok; i++) ok = csv_read(dirs[i], name, &c[i]);
    char *seen = NULL;
    int nruns = 0;
    if (ok && sscanf(strstr(c[0].grid, "(") ? strstr(c[0].grid, "(") : "", "(%d runs)", &nruns) != 1) {
        fprintf(stderr, "bench --merge: %s/%s: the grid line has no run count\n", dirs[0], name);
        ok = 0;
    }
    for (int i = 1; i < ndirs && ok; i++) {
        if (strcmp(c[i].grid, c[0].grid) || strcmp(c[i].header, c[0].header)) {
            fprintf(stderr, "bench --merge: %s and %s are parts of different sweeps (grid %.*s against %.*s)\n", dirs[0],
                    dirs[i], (int)strcspn(c[0].grid, "\n"), c[0].grid, (int)strcspn(c[i].grid, "\n"), c[i].grid);
            ok = 0;
        } else if (c[i].parts != c[0].parts) {
            fprintf(stderr, "bench --merge: %s is part of %d, %s part of %d\n", dirs[0], c[0].parts, dirs[i], c[i].parts);
            ok = 0;
        }
    }
    if (ok) {
        const int parts = c[0].parts;
        char have[MAX_PARTS + 1] = { 0 };
        for (int i = 0; i < ndirs && ok; i++) {
            if (have[c[i].part]) {
                fprintf(stderr, "bench --merge: part %d/%d is given twice (%s)\n", c[i].part, parts, dirs[i]);
                ok = 0;
            }
            have[c[i].part] = 1;
        }
        for (int k = 1; k <= parts && ok; k++)
            if (!have[k]) {
                fprintf(stderr, "bench --merge: part %d/%d is missing (%d of %d parts given)\n", k, parts, ndirs, parts);
                ok = 0;
            }
    }
    if (ok) {
        for (int i = 0; i < ndirs; i++) total += c[i].nrows;
        seen = calloc((size_t)nruns + 1, 1);
        ok = seen != NULL;
    }
    char **rows = ok ? malloc(sizeof(char *) * (size_t)(total ? total : 1)) : NULL;
    int n = 0;
    for (int i = 0; i < ndirs && rows; i++)
        for (int r = 0; r < c[i].nrows; r++) {
            const int run = atoi(c[i].rows[r]);
            if (run < 1 || run > nruns) {
                fprintf(stderr, "bench --merge: %s/%s: run %d is not in the grid's 1..%d\n", dirs[i], name, run, nruns);
                ok = 0;
            } else if (check_runs && seen[run]) {
                fprintf(stderr, "bench --merge: run %d is in two parts (the second: %s)\n", run, dirs[i]);
                ok = 0;
            }
            if (run >= 1 && run <= nruns) seen[run] = 1;
            rows[n++] = c[i].rows[r];
        }
    if (ok && rows && check_runs)
        for (int run = 1; run <= nruns && ok; run++)
            if (!seen[run]) {
                fprintf(stderr, "bench --merge: run %d of %d is in no part (an unfinished part? rerun it with --resume)\n",
                        run, nruns);
                ok = 0;
            }
    if (ok && rows) {
        epoch_column = column_of(c[0].header, "epoch"), rep_column = column_of(c[0].header, "rep");
        qsort(rows, (size_t)n, sizeof(char *), by_run_epoch);
        char *text = append(NULL, c[0].comments ? c[0].comments : "");
        char line[512];
        snprintf(line, sizeof line, "# merged by bench --merge from %d parts (first: %s)\n# grid: ", ndirs, dirs[0]);
        text = text ? append(text, line) : NULL;
        text = text ? append(text, c[0].grid) : NULL;
        text = text ? append(text, c[0].header) : NULL;
        for (int i = 0; i < n && text; i++) text = append(text, rows[i]);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", out, name);
        sn_error err;
        if (!text) ok = 0, fprintf(stderr, "bench --merge: out of memory\n");
        else if (sn_write_file_atomic(path, text, strlen(text), &err)) ok = 0, fprintf(stderr, "bench --merge: %s\n", err.msg);
        free(text);
    }
    free(rows), free(seen);
    for (int i = 0; i < ndirs; i++) csv_free(&c[i]);
    free(c);
    *nruns_out = nruns;
    return ok;
}

int bench_merge_main(int argc, char **argv)
{
    const char *out = ".";
    int force = 0, no_plot = 0, quiet = 0, ndirs = 0;
    char **dirs = calloc((size_t)argc, sizeof(char *));
    if (!dirs) return EXIT_RUNTIME;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--merge")) continue;
        if (!strcmp(argv[i], "--force")) force = 1;
        else if (!strcmp(argv[i], "--no-plot")) no_plot = 1;
        else if (!strcmp(argv[i], "--quiet")) quiet = 1;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc && strncmp(argv[i + 1], "--", 2)) out = argv[++i];
        else if (strncmp(argv[i], "--", 2)) dirs[ndirs++] = argv[i];
        else {
            fprintf(stderr, "bench --merge: unknown flag or missing value '%s'\n", argv[i]);
            bench_usage(stderr);
            free(dirs);
            return EXIT_USAGE;
        }
    }
    int rc = EXIT_USAGE;
    char summary[4096], labels[4096];
    struct stat st;
    snprintf(summary, sizeof summary, "%s/summary.csv", out);
    if (!ndirs) fprintf(stderr, "bench --merge: name the parts' directories (bench --merge DIR... --out DIR)\n");
    else if (ndirs > MAX_PARTS) fprintf(stderr, "bench --merge: more than %d parts\n", MAX_PARTS);
    else if (!cli_check_output("bench", "--out", out, 1)) {
    } else if (!force && stat(summary, &st) == 0) {
        fprintf(stderr, "bench --merge: --out %s already holds a sweep; --force replaces it\n", out);
    } else if ((mkdir(out, 0777) != 0 && errno != EEXIST)) {
        fprintf(stderr, "bench --merge: --out: cannot create %s: %s\n", out, strerror(errno));
        rc = EXIT_RUNTIME;
    } else {
        int nruns = 0, nruns2 = 0;
        rc = merge_file(dirs, ndirs, "summary.csv", out, &nruns, 1) && merge_file(dirs, ndirs, "sweep.csv", out, &nruns2, 0)
                 ? 0
                 : EXIT_RUNTIME;
        /* Every repetition (reps.csv), when every part has one (parts from before it: none). */
        int have_reps = 1;
        for (int i = 0; i < ndirs && have_reps; i++) {
            char p[4096];
            snprintf(p, sizeof p, "%s/reps.csv", dirs[i]);
            have_reps = stat(p, &st) == 0;
        }
        if (!rc && have_reps && !merge_file(dirs, ndirs, "reps.csv", out, &nruns2, 0)) rc = EXIT_RUNTIME;
        /* The legend labels: every part has all of them. */
        char from[4096];
        snprintf(from, sizeof from, "%s/labels.txt", dirs[0]);
        snprintf(labels, sizeof labels, "%s/labels.txt", out);
        size_t len = 0;
        FILE *f = rc ? NULL : fopen(from, "rb");
        char *text = f ? malloc(65536) : NULL;
        if (text) len = fread(text, 1, 65535, f);
        if (f) fclose(f);
        sn_error err;
        if (!rc && (!text || (strcmp(from, labels) && sn_write_file_atomic(labels, text, len, &err)))) {
            fprintf(stderr, "bench --merge: cannot copy %s to %s\n", from, labels);
            rc = EXIT_RUNTIME;
        }
        free(text);
        if (!rc) bench_mark_labels(labels, summary, nruns);
        /* The machine: part 1's env.json (each part records its own; a report names one). */
        char env_from[4096], env_to[4096];
        snprintf(env_from, sizeof env_from, "%s/env.json", dirs[0]);
        snprintf(env_to, sizeof env_to, "%s/env.json", out);
        FILE *ef = rc || !strcmp(env_from, env_to) ? NULL : fopen(env_from, "rb");
        if (ef) {
            char *env = malloc(1 << 16);
            const size_t elen = env ? fread(env, 1, 1 << 16, ef) : 0;
            fclose(ef);
            sn_error eerr;
            if (env && elen && sn_write_file_atomic(env_to, env, elen, &eerr))
                fprintf(stderr, "bench --merge: warning: %s\n", eerr.msg);
            free(env);
        }
        /* The grid line says val=V, the target accuracy, and whether threads were swept. */
        int val = 10000;
        double target = 0;
        const char *note = "";
        csv c;
        if (!rc && csv_read(dirs[0], "summary.csv", &c)) {
            const char *v = strstr(c.grid, " val="), *tg = strstr(c.grid, " target=");
            if (v) val = atoi(v + 5);
            if (tg) target = atof(tg + 8);
            const char *t = strstr(c.grid, "threads=");
            if (t && memchr(t, ',', strcspn(t, " \n")))
                note = "runs that differ only in threads coincide: training is bit-identical for any thread count";
            csv_free(&c);
        }
        if (!rc && target > 0) bench_report_tta(summary, target);
        if (!rc && !no_plot) {
            if (!bench_gnuplot_available()) {
                fprintf(stderr, "bench: warning: gnuplot not found (apt-get install gnuplot-nox); CSVs written, no PNGs\n");
            } else {
                int n = bench_render("plots/loss.gp", out, labels, nruns, val, note);
                n += bench_render("plots/accuracy.gp", out, labels, nruns, val, note);
                n += bench_render("plots/throughput.gp", out, labels, nruns, val, "");
                if (target > 0) n += bench_render("plots/tta.gp", out, labels, nruns, val, "");
                if (!quiet && n) fprintf(stderr, "bench: wrote %s/loss.png, accuracy.png, throughput.png\n", out);
            }
        }
        if (!rc && !quiet) fprintf(stderr, "bench --merge: %d runs from %d parts into %s\n", nruns, ndirs, out);
    }
    free(dirs);
    return rc;
}
