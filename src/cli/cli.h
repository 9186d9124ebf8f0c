/* Shared by the programs (scratchnet, bench, draw): strict argument parsing with the
 * docs/cli.md messages, data-directory resolution with fetch-on-first-use, progress bars.
 * Unlike the library, this code prints (to stderr) — it is the program talking. */
#ifndef SN_CLI_H
#define SN_CLI_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "scratchnet/data.h"

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* First thing in main: give OpenMP's runtime a short spin before its idle threads sleep
 * (GOMP_SPINCOUNT=20000, unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT), by
 * re-executing the program once with it in the environment. See cli.c for why. */
void cli_openmp_defaults(char **argv);

/* Parse a flag's value or print "prog: --flag: 'x' is not ...; expected ..." and
 * return 0. */
int cli_int(const char *prog, const char *flag, const char *text, long min, long max, int *out);
int cli_u64(const char *prog, const char *flag, const char *text, uint64_t *out);
int cli_float(const char *prog, const char *flag, const char *text, double min_excl, float *out);

/* The data directory: --data, else $SCRATCHNET_DATA, else data/mnist in the source tree. */
const char *cli_data_dir(const char *flag_value);
/* Ensures the four MNIST files are in dir, running data/fetch-mnist.sh when they are
 * missing (saying so on stderr). Prints the fetch command and returns 0 on failure. */
int cli_ensure_mnist(const char *prog, const char *dir);
/* Loads train (all 60000) and test sets; prints the library's message on failure. */
int cli_load_mnist(const char *prog, const char *dir, sn_dataset *train, sn_dataset *test);

/* train's default augmentation (augment.h): what the drawn-digit measurements chose. */
#define CLI_DEFAULT_AUGMENT "thick=1,rot=8,shear=0.2,scale=0.1,shift=1.5"

/* Output paths are checked before any work (the README's promise): a file to write
 * must not be a directory, and its directory must exist and be writable, or be one
 * missing level under one that is (it is created, as models/ is). A directory to
 * write into (dir = 1) must exist, or be one missing level under a writable one.
 * Prints "prog: FLAG: PATH: why" and returns 0 if not. */
int cli_check_output(const char *prog, const char *flag, const char *path, int dir);

/* Default model path: models/scratch.bin under the current directory. */
#define CLI_DEFAULT_MODEL "models/scratch.bin"

/* Path of a file installed or shipped in the source tree (e.g. "plots/loss.gp"). */
int cli_find_resource(const char *rel, char *out, size_t cap);

/* A progress bar on stderr when it is a TTY: "label [=====>    ] 42% extra". */
typedef struct cli_progress {
    int enabled;
    const char *label;
    double start;
} cli_progress;
void cli_progress_begin(cli_progress *p, const char *label, int enabled);
/* An sn_progress_fn: p is the cli_progress (or a struct that starts with one). */
void cli_progress_update(void *p, int done, int total);
void cli_progress_end(cli_progress *p);

/* `scratchnet eval`'s reports (eval_report.c): the confusion matrix (confusion), JSON
 * (json: instead of the text), a PNG gallery of the misclassified digits (errors_png).
 * pred and prob: each test row's prediction and its probability. 0 on a write error. */
int cli_eval_report(const char *prog, const char *model, const sn_dataset *test, const uint8_t *pred,
                    const float *prob, double loss, double acc, int confusion, const char *errors_png, int json);
int cli_png_supported(void);

/* `scratchnet drawn` (drawn.c): accuracy on synthesised drawn digits. */
int cli_cmd_drawn(int argc, char **argv);

/* -h / --help and --version, anywhere in argv[from..] before a "--": every program and
 * subcommand answers them (usage on stdout, exit 0). */
int cli_asks_help(int argc, char **argv, int from);
int cli_asks_version(int argc, char **argv, int from);
/* "PROG 0.1.0 (commit abc1234)" on stdout. */
void cli_print_version(const char *prog);

/* s as a JSON string (quotes, backslashes and control characters escaped); NULL: null. */
void cli_json_string(FILE *f, const char *s);

/* Compiler, flags, commit and CPU for reports. */
const char *cli_cpu_model(void);
const char *cli_build_info(void);
const char *cli_commit(void);

#endif
