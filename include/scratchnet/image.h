/* scratchnet — images for predict and draw: PGM/PNG reading and the MNIST-style
 * preprocessing that turns what people draw into what the network was trained on.
 *
 * MNIST digits were size-normalised to fit a 20x20 box (aspect ratio kept, anti-
 * aliased), then placed in 28x28 so that their centre of mass is at the centre.
 * sn_image_to_mnist does exactly that for any input:
 *   polarity -> light ink on dark, background removed -> ink bounding box ->
 *   area resampling of the box to fit 20x20 -> placement by centre of mass. */
#ifndef SCRATCHNET_IMAGE_H
#define SCRATCHNET_IMAGE_H

#include "scratchnet/error.h"

#define SN_IMAGE_MAX_SIDE 16384
#define SN_IMAGE_MAX_PIXELS (64 * 1024 * 1024)

typedef struct sn_image {
    int w, h;
    float *px; /* h x w grey levels in [0, 1], owned */
} sn_image;

/* Reads PGM (P2 ASCII or P5 binary, maxval 1..65535) or PNG (any colour type, alpha
 * composited on white; needs libpng at build time). */
int sn_image_read(sn_image *img, const char *path, sn_error *err);
int sn_image_create(sn_image *img, int w, int h, sn_error *err); /* zeroed */
/* SN_EFORMAT unless 1 <= w, h <= SN_IMAGE_MAX_SIDE and w h <= SN_IMAGE_MAX_PIXELS, the
 * message saying which limit and both limits. */
int sn_image_check_size(long w, long h, sn_error *err);
void sn_image_free(sn_image *img);

/* In place: makes the ink light (1) on a dark (0) background, whatever the input's
 * polarity, and stretches so the background is 0. The background level is the median
 * of the border pixels. Returns 1 if it inverted the image. */
int sn_image_normalize_ink(sn_image *img);

/* Bounding box of pixels > threshold; returns 0 if there are none. x1/y1 exclusive. */
int sn_ink_bbox(const float *px, int w, int h, float threshold, int *x0, int *y0, int *x1, int *y1);

/* Area (box-filter) resampling: every destination pixel is the exact average of the
 * source area it covers, so downscaling anti-aliases. src (sh x sw) -> dst (dh x dw). */
void sn_resample_area(float *dst, int dw, int dh, const float *src, int sw, int sh);

/* Centre of mass of an h x w image, in pixel coordinates (pixel centres at +0.5).
 * Returns 0 if the total mass is 0. */
int sn_center_of_mass(const float *px, int w, int h, double *cx, double *cy);

/* What a model was trained on beyond MNIST's own pipeline (the model file records it;
 * a model without records has none, and reads images exactly as before):
 *   deskew      the 28x28 digit is deskewed (sn_deskew) after the MNIST pipeline;
 *   max_width   > 0: strokes wider than this (sn_stroke_width, 28x28 pixels) are thinned
 *               before the digit is placed; the limit comes from MNIST's training images
 *               (their 90th percentile), never from drawn data. */
typedef struct sn_preprocess {
    int deskew;
    float max_width;
} sn_preprocess;

/* The full MNIST pipeline into out (28 x 28, [0,1]), then pre (NULL: none). SN_EINVAL
 * with "empty" in the message if the image has (almost) no ink: it is not classified. */
int sn_image_to_mnist(const sn_image *img, const sn_preprocess *pre, float *out, sn_error *err);

/* The same pipeline from a raw ink canvas (h x w, ink already light on dark), used by
 * draw; no polarity step. */
int sn_canvas_to_mnist(const float *ink, int w, int h, const sn_preprocess *pre, float *out, sn_error *err);

/* Second-moment deskew (the classic MNIST slant correction): src (h x w) sheared along
 * x about its centre of mass by the slope cov(x,y)/var(y), so its principal axis is
 * upright, sampled bilinearly (zero outside) into dst (h x w; not src). An image with no
 * mass, or too flat to have a slope, is copied. Returns the slope removed. */
double sn_deskew(const float *src, float *dst, int w, int h);

/* Estimated stroke width of an h x w image in pixels: 2 x ink mass / total variation
 * (a stroke of width s and length L has mass sL and two edges of length L). 0 for an
 * empty image. */
double sn_stroke_width(const float *px, int w, int h);

#endif
