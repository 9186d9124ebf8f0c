/* Per-pixel loops of the training-time image pipeline (augment.c), in plain C and
 * included by kernel_template.h, so that each ISA's compile flags vectorise them (the
 * warp's taps become gathers with AVX2 and AVX-512). Element-wise and without fused
 * multiply-adds (ISO C: no contraction), so every ISA gives the same bits. */

/* A plus-shaped grey dilation (grow) or erosion of n floats of a frame whose rows are
 * fw apart, each row and its neighbours above and below readable (src points into the
 * frame's interior rows, whole rows): dst[i] = src[i] + t (m - src[i]), m the max (min)
 * of src[i] and its 4 neighbours. One flat loop over whole padded rows: the caller
 * clears the border columns of dst afterwards (a 28-pixel row alone would leave most
 * of a 16-lane loop in its scalar tail). */
static void img_thicken(const float *restrict src, float *restrict dst, long n, long fw, int grow, float t)
{
    if (grow)
        for (long i = 0; i < n; i++) {
            float m = src[i], l = src[i - 1], r = src[i + 1], u = src[i - fw], d = src[i + fw];
            m = l > m ? l : m, m = r > m ? r : m, m = u > m ? u : m, m = d > m ? d : m;
            dst[i] = src[i] + t * (m - src[i]);
        }
    else
        for (long i = 0; i < n; i++) {
            float m = src[i], l = src[i - 1], r = src[i + 1], u = src[i - fw], d = src[i + fw];
            m = l < m ? l : m, m = r < m ? r : m, m = u < m ? u : m, m = d < m ? d : m;
            dst[i] = src[i] + t * (m - src[i]);
        }
}

/* Bilinear samples: out[i] is the frame's image at (u, v) = (a0 gx[i] + a1 gy[i] + o0,
 * a2 gx[i] + a3 gy[i] + o1), in source pixels (centres at integers), i < n; the point is
 * clamped to [-1, umax] x [-1, vmax] so that off the image it reads the frame's zero
 * border. origin points at source pixel (-1, -1) of the frame (fw floats a row, border
 * >= 2 on the right and bottom). One flat loop over the image, not a loop per row: a
 * 28-pixel row would leave most of a 16-lane vector loop in its scalar tail. */
static void img_warp(const float *restrict origin, long fw, float *restrict out, const float *restrict gx,
                     const float *restrict gy, int n, const float *restrict map, float umax, float vmax)
{
    const float a0 = map[0], a1 = map[1], o0 = map[2], a2 = map[3], a3 = map[4], o1 = map[5];
    const int w = (int)fw;
    for (int i = 0; i < n; i++) {
        float u = a0 * gx[i] + a1 * gy[i] + o0, v = a2 * gx[i] + a3 * gy[i] + o1;
        if (u < -1.0f) u = -1.0f;
        if (u > umax) u = umax;
        if (v < -1.0f) v = -1.0f;
        if (v > vmax) v = vmax;
        const int iu = (int)(u + 1.0f), iv = (int)(v + 1.0f); /* floor: both >= 0 */
        const float fu = u + 1.0f - (float)iu, fv = v + 1.0f - (float)iv;
        const int at = iv * w + iu; /* int, not long: gathers take 32-bit indices */
        const float p00 = origin[at], p01 = origin[at + 1], p10 = origin[at + w], p11 = origin[at + w + 1];
        const float top = p00 + fu * (p01 - p00), bottom = p10 + fu * (p11 - p10);
        out[i] = top + fv * (bottom - top);
    }
}

/* dst = src * 255 rounded half up, for src in [0, 1] (what the pipeline makes: blends
 * and bilinear mixes of such values; an ulp over 1 still gives 255). The integer clamp
 * vectorises as a min and a truncating pack; a float clamp did not. */
static void img_to_u8(uint8_t *restrict dst, const float *restrict src, long n)
{
    for (long i = 0; i < n; i++) {
        int q = (int)(src[i] * 255.0f + 0.5f);
        q = q > 255 ? 255 : q;
        q = q < 0 ? 0 : q;
        dst[i] = (uint8_t)q;
    }
}
