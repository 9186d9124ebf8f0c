/* Drawn digits, synthesised from MNIST skeletons (drawn.h). */
#include "scratchnet/drawn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/rng.h"

void sn_brush_stamp(float *canvas, int w, int h, float cx, float cy, float radius, float feather, int erase)
{
    const int x0 = (int)floorf(cx - radius), x1 = (int)ceilf(cx + radius);
    const int y0 = (int)floorf(cy - radius), y1 = (int)ceilf(cy + radius);
    for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < h; y++)
        for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < w; x++) {
            if (!erase && canvas[(size_t)y * w + x] >= 1.0f) continue; /* full already: most of a thick stroke */
            const float d = sqrtf((x + 0.5f - cx) * (x + 0.5f - cx) + (y + 0.5f - cy) * (y + 0.5f - cy));
            float v = (radius - d) / feather;
            if (v <= 0) continue;
            if (v > 1) v = 1;
            float *p = &canvas[(size_t)y * w + x];
            *p = erase ? (*p < 1 - v ? *p : 1 - v) : (*p > v ? *p : v);
        }
}

void sn_drawn_style_random(uint64_t seed, int index, sn_drawn_style *s)
{
    sn_rng rng;
    sn_rng_seed(&rng, seed ^ (0xd1b54a32d192ed03ull * (uint64_t)(index + 1)));
#define U(lo, hi) ((float)((lo) + ((hi) - (lo)) * sn_rng_uniform(&rng)))
    s->pen = U(0.06, 0.30);
    s->soft = U(0.05, 0.5);
    s->height = U(90, 250);
    s->slant = U(-0.45, 0.45);
    s->angle = U(-12, 12);
    s->aspect = U(0.75, 1.25);
    s->px = U(0, 1);
    s->py = U(0, 1);
#undef U
}

enum { UP = 4, SK = 28 * UP }; /* the skeleton's grid: 4x MNIST's */

/* Zhang-Suen thinning of a binary SK x SK image in place (1 ink, 0 paper): peels
 * boundary pixels in two alternating sub-passes until none can go without breaking
 * the shape's connectivity, leaving 1-pixel-wide centre lines. */
static void thin(uint8_t *b)
{
    uint8_t del[SK * SK];
    for (int changed = 1; changed;) {
        changed = 0;
        for (int pass = 0; pass < 2; pass++) {
            memset(del, 0, sizeof del);
            for (int y = 1; y < SK - 1; y++)
                for (int x = 1; x < SK - 1; x++) {
                    const uint8_t *c = b + y * SK + x;
                    if (!*c) continue;
                    /* Neighbours clockwise from north: p2 .. p9. */
                    const int p[8] = { c[-SK], c[-SK + 1], c[1], c[SK + 1], c[SK], c[SK - 1], c[-1], c[-SK - 1] };
                    int n = 0, t = 0;
                    for (int i = 0; i < 8; i++) n += p[i], t += !p[i] && p[(i + 1) & 7];
                    if (n < 2 || n > 6 || t != 1) continue;
                    if (pass == 0 ? (p[0] && p[2] && p[4]) || (p[2] && p[4] && p[6])
                                  : (p[0] && p[2] && p[6]) || (p[0] && p[4] && p[6]))
                        continue;
                    del[y * SK + x] = 1;
                }
            for (int i = 0; i < SK * SK; i++)
                if (del[i]) b[i] = 0, changed = 1;
        }
    }
}

int sn_drawn_render(const uint8_t *digit, const sn_drawn_style *s, float *canvas, sn_error *err)
{
    memset(canvas, 0, sizeof(float) * SN_DRAWN_SIDE * SN_DRAWN_SIDE);
    uint8_t *b = malloc(SK * SK);
    if (!b) return sn_fail(err, SN_ENOMEM, "out of memory");
    /* Bilinear 4x upsampling, thresholded at half ink. */
    for (int y = 0; y < SK; y++)
        for (int x = 0; x < SK; x++) {
            const float fx = (x + 0.5f) / UP - 0.5f, fy = (y + 0.5f) / UP - 0.5f;
            const int x0 = (int)floorf(fx), y0 = (int)floorf(fy);
            const float ax = fx - x0, ay = fy - y0;
#define AT(X, Y) ((X) >= 0 && (X) < 28 && (Y) >= 0 && (Y) < 28 ? digit[(Y) * 28 + (X)] : 0)
            const float v = (1 - ay) * ((1 - ax) * AT(x0, y0) + ax * AT(x0 + 1, y0)) +
                            ay * ((1 - ax) * AT(x0, y0 + 1) + ax * AT(x0 + 1, y0 + 1));
#undef AT
            b[y * SK + x] = v >= 127.5f;
        }
    thin(b);
    /* The skeleton's extent, to size the digit by its height. */
    int miny = SK, maxy = -1;
    double sx = 0, sy = 0, n = 0;
    for (int y = 0; y < SK; y++)
        for (int x = 0; x < SK; x++)
            if (b[y * SK + x]) {
                miny = y < miny ? y : miny, maxy = y > maxy ? y : maxy;
                sx += x, sy += y, n++;
            }
    if (maxy < 0) {
        free(b);
        return sn_fail(err, SN_EINVAL, "digit has no ink to draw");
    }
    /* Skeleton grid -> canvas: about the skeleton's centre, scale to the style's height
     * (less the pen, which adds to it), stretch, slant and rotate; then shrink if the
     * ink would not fit on the canvas with a margin, and move into the room left. */
    const float mx = (float)(sx / n), my = (float)(sy / n);
    const float th = s->angle * (float)(M_PI / 180.0), c = cosf(th), sn = sinf(th);
    float k = (s->height * (1 - s->pen)) / (float)(maxy - miny + 1);
    float stroke = s->pen * s->height;
    float lo[2] = { 1e30f, 1e30f }, hi[2] = { -1e30f, -1e30f };
    for (int y = 0; y < SK; y++)
        for (int x = 0; x < SK; x++) {
            if (!b[y * SK + x]) continue;
            float u = (x - mx) * s->aspect, v = (float)(y - my);
            u -= s->slant * v; /* a positive slant leans the top to the right */
            const float q[2] = { c * u + sn * v, -sn * u + c * v };
            for (int d = 0; d < 2; d++) lo[d] = q[d] < lo[d] ? q[d] : lo[d], hi[d] = q[d] > hi[d] ? q[d] : hi[d];
        }
    /* The brush reaches stroke / 2 + feather / 2 from the skeleton; feather = soft x
     * stroke + 1, and the 1 pixel is inside the 8-pixel margin. */
    const float room = SN_DRAWN_SIDE - 16;
    for (int d = 0; d < 2; d++) {
        const float extent = (hi[d] - lo[d]) * k + stroke * (1 + s->soft);
        if (extent > room) k *= room / extent, stroke *= room / extent;
    }
    const float feather = s->soft * stroke + 1.0f, radius = stroke / 2 + feather / 2;
    const float reach = stroke * (1 + s->soft);
    const float ox = 8 + reach / 2 - lo[0] * k + s->px * (room - (hi[0] - lo[0]) * k - reach);
    const float oy = 8 + reach / 2 - lo[1] * k + s->py * (room - (hi[1] - lo[1]) * k - reach);
    /* The pen moves along every link of the 8-connected skeleton (to the E, SE, S and
     * SW neighbours), stamping at most a canvas pixel apart, as draw's strokes do. */
    static const int link[4][2] = { { 1, 0 }, { 1, 1 }, { 0, 1 }, { -1, 1 } };
    for (int y = 0; y < SK; y++)
        for (int x = 0; x < SK; x++) {
            if (!b[y * SK + x]) continue;
            float px[5], py[5];
            int np = 0;
            for (int e = -1; e < 4; e++) {
                const int nx = e < 0 ? x : x + link[e][0], ny = e < 0 ? y : y + link[e][1];
                if (e >= 0 && (nx < 0 || nx >= SK || ny >= SK || !b[ny * SK + nx])) continue;
                float u = (nx - mx) * s->aspect, v = (float)(ny - my);
                u -= s->slant * v;
                px[np] = ox + k * (c * u + sn * v), py[np] = oy + k * (-sn * u + c * v);
                np++;
            }
            sn_brush_stamp(canvas, SN_DRAWN_SIDE, SN_DRAWN_SIDE, px[0], py[0], radius, feather, 0);
            for (int e = 1; e < np; e++) {
                const float dx = px[e] - px[0], dy = py[e] - py[0];
                const int steps = (int)sqrtf(dx * dx + dy * dy) + 1;
                for (int i = 1; i < steps; i++)
                    sn_brush_stamp(canvas, SN_DRAWN_SIDE, SN_DRAWN_SIDE, px[0] + dx * i / steps,
                                   py[0] + dy * i / steps, radius, feather, 0);
            }
        }
    free(b);
    return SN_OK;
}
