/* scratchnet — MNIST data: the IDX reader (raw or gzip) and batch assembly.
 * Images stay uint8 in memory (47 MB for the training set); batches are converted to
 * float x/255 as they are assembled. */
#ifndef SCRATCHNET_DATA_H
#define SCRATCHNET_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "scratchnet/error.h"

typedef struct sn_dataset {
    int count;        /* images == labels */
    int rows, cols;   /* 28 x 28 for MNIST */
    uint8_t *images;  /* count x (rows*cols), owned */
    uint8_t *labels;  /* count, each 0..9, owned */
} sn_dataset;

/* Largest image count accepted from a header, so a hostile header cannot make us
 * allocate more than the data that is actually there plus this bound. */
#define SN_IDX_MAX_COUNT 10000000

/* Reads an IDX3 uint8 image file (magic 2051), raw or gzip-compressed.
 * On success *pixels is malloc'd count*rows*cols bytes. */
int sn_idx_read_images(const char *path, uint8_t **pixels, int *count, int *rows, int *cols,
                       sn_error *err);
/* Reads an IDX1 uint8 label file (magic 2049), raw or gzip; every label must be 0..9. */
int sn_idx_read_labels(const char *path, uint8_t **labels, int *count, sn_error *err);

/* Loads an image/label pair; the counts must agree and images must be 28x28. */
int sn_dataset_load(sn_dataset *ds, const char *images_path, const char *labels_path,
                    sn_error *err);
void sn_dataset_free(sn_dataset *ds);

/* The four MNIST file names, with ".gz" accepted in place of the raw file. */
typedef enum sn_split { SN_SPLIT_TRAIN = 0, SN_SPLIT_TEST = 1 } sn_split;

/* Path of the raw or .gz file for a split in dir, in out (size cap). Returns SN_OK if
 * found, SN_EIO (with the expected raw path in out) if neither exists. */
int sn_mnist_path(const char *dir, sn_split split, int labels, char *out, size_t cap);
/* 1 if all four files (raw or .gz) are present in dir. */
int sn_mnist_present(const char *dir);
int sn_mnist_load(sn_dataset *ds, const char *dir, sn_split split, sn_error *err);

/* A view of rows [first, first+count) of ds (no copy; do not free). */
sn_dataset sn_dataset_slice(const sn_dataset *ds, int first, int count);

/* out (n x pixels) = images[idx[b]] / 255 for b < n; labels copied to y if non-NULL.
 * idx NULL means rows first..first+n in order. */
void sn_batch_gather(const sn_dataset *ds, const int *idx, int first, int n, float *out,
                     uint8_t *y);

/* Pixels [p0, p1) of the same n images, no labels: out (n x (p1 - p0), rows ldo apart)
 * = images[idx[b]][p0 .. p1) / 255. The trainer's threads each convert their own pixels. */
void sn_batch_gather_pixels(const sn_dataset *ds, const int *idx, int first, int n, int p0, int p1, float *out,
                            int ldo);

#endif
