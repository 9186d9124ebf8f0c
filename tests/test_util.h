/* Helpers shared by the Criterion tests: temporary directories, files, child runs. */
#ifndef SN_TEST_UTIL_H
#define SN_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A fresh directory under $TMPDIR (or /tmp); returns a static-lifetime path. */
const char *tu_tmpdir(void);
/* dir/name into a static rotating buffer. */
const char *tu_path(const char *dir, const char *name);
void tu_write(const char *path, const void *data, size_t len);
void tu_write_gz(const char *path, const void *data, size_t len);
/* Reads a whole file (malloc'd) or returns NULL. */
unsigned char *tu_read(const char *path, size_t *len);
int tu_exists(const char *path);
/* Runs a shell command line; returns its exit status (or -1), stderr captured into
 * err (cap bytes) when err is non-NULL. */
int tu_run(const char *cmd, char *out, size_t out_cap, char *err, size_t err_cap);
/* Deterministic pseudo-random floats in [-1, 1). */
void tu_fill(float *x, size_t n, uint64_t seed);
/* An IDX image / label file in memory: header + payload. */
unsigned char *tu_idx_images(int count, int rows, int cols, size_t *len);
unsigned char *tu_idx_labels(int count, size_t *len);

#ifndef SN_TEST_BUILD_DIR
#define SN_TEST_BUILD_DIR "."
#endif
#ifndef SN_TEST_SOURCE_DIR
#define SN_TEST_SOURCE_DIR "."
#endif
#define TU_SUBSET SN_TEST_SOURCE_DIR "/tests/data/mnist-subset"
#define TU_SCRATCHNET SN_TEST_BUILD_DIR "/scratchnet"
#define TU_BENCH SN_TEST_BUILD_DIR "/bench"

#endif
