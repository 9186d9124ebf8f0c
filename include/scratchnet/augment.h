/* scratchnet — the training-time image pipeline: deskewing a dataset once, and
 * on-the-fly augmentation (random stroke thickness and small affine warps) drawn fresh
 * for every (epoch, image).
 *
 * Every random draw of an image comes from an RNG seeded by (run seed, epoch, image
 * row) alone, never from a thread's stream or the shuffle, so an augmented epoch is the
 * same bits for any thread count, and a resumed run continues exactly. */
#ifndef SCRATCHNET_AUGMENT_H
#define SCRATCHNET_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "scratchnet/data.h"
#include "scratchnet/error.h"

/* The kinds of augmentation, in the order they are applied to an image. */
typedef enum sn_aug_kind {
    SN_AUG_ROT,   /* rotation about the centre, degrees: U(-r, r) */
    SN_AUG_SCALE, /* zoom factor U(1 - r, 1 + r) */
    SN_AUG_SHEAR, /* slant x += k (y - centre), k ~ U(-r, r) */
    SN_AUG_SHIFT, /* translation in pixels, each axis U(-r, r) */
    SN_AUG_THICK, /* stroke thickness: t ~ U(-r, r) plus-shaped grey dilations (t > 0) or
                     erosions (t < 0), each of 3x3 cross, the last one blended in by the
                     fraction: v + f (dilate/erode(v) - v); one step widens a stroke ~2 px */
    SN_AUG_KINDS
} sn_aug_kind;

/* Each kind's range (0: off) and the probability an image gets it. */
typedef struct sn_augment {
    float range[SN_AUG_KINDS];
    float prob[SN_AUG_KINDS];
} sn_augment;

/* "none", or items "KEY=RANGE[@PROB]" joined by ',' with keys rot, scale, shear, shift,
 * thick (PROB defaults to 1), e.g. "thick=0.5,rot=10,scale=0.1,shift=2" or
 * "thick=0.8@0.5". Every kind not named is off. SN_EINVAL naming the bad item. */
int sn_augment_parse(const char *spec, sn_augment *a, sn_error *err);
/* The spec that parses back to a, "none" if nothing is on. */
void sn_augment_format(const sn_augment *a, char *out, size_t cap);
int sn_augment_active(const sn_augment *a);
const char *sn_aug_kind_name(sn_aug_kind k);
/* Largest range each kind accepts (rot 45, scale 0.5, shear 1, shift 8, thick 2). */
float sn_aug_kind_max(sn_aug_kind k);

/* Images up to this many pixels a side (MNIST's are 28): the pixel loops work in
 * fixed buffers on the stack. Larger images are refused with SN_EINVAL. */
#define SN_AUGMENT_MAX_SIDE 64

/* One rows x cols image of uint8 grey levels, src -> dst (distinct), with the draws of
 * (seed, epoch, row). */
int sn_augment_image(const sn_augment *a, uint64_t seed, int epoch, int row, const uint8_t *src, uint8_t *dst,
                     int rows, int cols, sn_error *err);
/* Images [0, count) of src into dst (count x rows*cols), on up to `threads` threads,
 * with workspace (sn_augment_workspace_bytes(threads) bytes, any contents, 16-byte
 * aligned as malloc gives). */
int sn_augment_dataset(const sn_augment *a, uint64_t seed, int epoch, const sn_dataset *src, int count,
                       uint8_t *dst, int threads, void *workspace, sn_error *err);
size_t sn_augment_workspace_bytes(int threads);

/* Deskews every image of ds in place (sn_deskew, rounded back to uint8), on up to
 * `threads` threads. */
int sn_dataset_deskew(sn_dataset *ds, int threads, sn_error *err);

/* The q-quantile (0..1) of sn_stroke_width over the images of ds: the prediction-time
 * width limit is MNIST's 90th percentile. SN_ENOMEM only. */
int sn_dataset_stroke_width(const sn_dataset *ds, double q, int threads, double *width, sn_error *err);

#endif
