/* scratchnet — drawn digits, synthesised: an evaluation set that looks like what people
 * draw on a canvas, made by the program itself from MNIST *test* digits (never used
 * for training or tuning).
 *
 * Each digit is thinned to its skeleton (at 4x resolution) and re-inked along it with
 * draw's soft round brush on a 280 x 280 canvas, in a style drawn at random: pen width
 * (relative to the digit's height: 0.06 .. 0.30; MNIST's pen is ~0.12), its edge from
 * hard to soft (feather 0.05 .. 0.5 of the width; draw's own is ~0.3), height 90..250
 * canvas pixels, slant (shear +-0.45), rotation (+-12 degrees), aspect (x 0.75..1.25)
 * and an off-centre position; a digit that would leave the canvas is drawn smaller,
 * pen and all. The canvas then goes through predict's pipeline, as a
 * drawing does. */
#ifndef SCRATCHNET_DRAWN_H
#define SCRATCHNET_DRAWN_H

#include <stdint.h>

#include "scratchnet/data.h"
#include "scratchnet/error.h"

#define SN_DRAWN_SIDE 280 /* canvas pixels a side, as draw's */

typedef struct sn_drawn_style {
    float pen;     /* stroke width (half-ink to half-ink) / digit height */
    float soft;    /* the brush's soft edge: feather = soft x stroke width + 1 pixel */
    float height;  /* digit height, canvas pixels */
    float slant;   /* x += slant * (centre y - y) */
    float angle;   /* degrees, counter-clockwise */
    float aspect;  /* x stretch */
    float px, py;  /* where it lands: 0..1 of the room the canvas leaves it (0.5: centred) */
} sn_drawn_style;

/* A style from the ranges above, drawn from the RNG seeded by (seed, index). */
void sn_drawn_style_random(uint64_t seed, int index, sn_drawn_style *s);

/* draw's brush: a soft disc of ink v at (x, y) on an h x w canvas, v = 1 within
 * radius - feather, fading to 0 at radius; ink only grows (max), or with erase only
 * shrinks (to 1 - v). */
void sn_brush_stamp(float *canvas, int w, int h, float x, float y, float radius, float feather, int erase);

/* Renders the 28 x 28 uint8 digit in style s onto canvas (SN_DRAWN_SIDE^2 floats, ink
 * light on dark). SN_EINVAL if the digit has no skeleton (no ink); SN_ENOMEM. */
int sn_drawn_render(const uint8_t *digit, const sn_drawn_style *s, float *canvas, sn_error *err);

#endif
