/* Image readers for predict: PGM (P2/P5) by hand, PNG through libpng's simplified API.
 * Every header value is checked before anything is allocated from it. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/image.h"

#ifdef SN_HAVE_PNG
#include <png.h>
#endif

/* Next header integer of a PGM, skipping white space and # comments. */
static int pgm_int(FILE *f, long *out)
{
    int c;
    for (;;) {
        c = fgetc(f);
        if (c == '#') {
            while (c != '\n' && c != EOF) c = fgetc(f);
        } else if (!isspace(c)) {
            break;
        }
    }
    if (c == EOF || !isdigit(c)) return 0;
    long v = 0;
    while (c != EOF && isdigit(c)) {
        if (v > 100000000) return 0;
        v = v * 10 + (c - '0');
        c = fgetc(f);
    }
    if (c != EOF && !isspace(c)) return 0;
    *out = v;
    return 1;
}

static int read_pgm(sn_image *img, FILE *f, const char *path, int binary, sn_error *err)
{
    long w, h, maxval;
    if (!pgm_int(f, &w) || !pgm_int(f, &h) || !pgm_int(f, &maxval))
        return sn_fail(err, SN_EFORMAT, "%s: bad PGM header: expected width, height and maxval", path);
    if (maxval < 1 || maxval > 65535)
        return sn_fail(err, SN_EFORMAT, "%s: PGM maxval %ld, expected 1..65535", path, maxval);
    sn_error cerr;
    if (sn_image_check_size(w, h, &cerr)) return sn_fail(err, SN_EFORMAT, "%s: PGM %s", path, cerr.msg);
    int rc = sn_image_create(img, (int)w, (int)h, &cerr);
    if (rc) return sn_fail(err, rc, "%s: %s", path, cerr.msg);
    size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++) {
        long v;
        if (binary) {
            int hi = fgetc(f), lo = maxval > 255 ? fgetc(f) : 0;
            if (hi == EOF || lo == EOF) {
                sn_image_free(img);
                return sn_fail(err, SN_EFORMAT, "%s: truncated: %zu pixels expected, found %zu", path, n, i);
            }
            v = maxval > 255 ? (long)hi << 8 | lo : hi;
        } else if (!pgm_int(f, &v)) {
            sn_image_free(img);
            return sn_fail(err, SN_EFORMAT, "%s: truncated or bad ASCII PGM: pixel %zu of %zu unreadable", path, i, n);
        }
        if (v > maxval) {
            sn_image_free(img);
            return sn_fail(err, SN_EFORMAT, "%s: pixel %zu is %ld, above maxval %ld", path, i, v, maxval);
        }
        img->px[i] = (float)v / (float)maxval;
    }
    return SN_OK;
}

#ifdef SN_HAVE_PNG
static int read_png(sn_image *img, const char *path, sn_error *err)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&pi, path))
        return sn_fail(err, SN_EFORMAT, "%s: bad PNG: %s", path, pi.message);
    sn_error serr;
    if (sn_image_check_size((long)pi.width, (long)pi.height, &serr)) {
        png_image_free(&pi);
        return sn_fail(err, SN_EFORMAT, "%s: PNG %s", path, serr.msg);
    }
    pi.format = PNG_FORMAT_GRAY; /* libpng converts any colour type to 8-bit grey */
    size_t n = PNG_IMAGE_SIZE(pi);
    unsigned char *buf = malloc(n);
    if (!buf) {
        png_image_free(&pi);
        return sn_fail(err, SN_ENOMEM, "%s: out of memory", path);
    }
    png_color white = { 255, 255, 255 }; /* transparent areas count as paper */
    if (!png_image_finish_read(&pi, &white, buf, 0, NULL)) {
        free(buf);
        return sn_fail(err, SN_EFORMAT, "%s: bad PNG data: %s", path, pi.message);
    }
    int rc = sn_image_create(img, (int)pi.width, (int)pi.height, err);
    if (!rc)
        for (size_t i = 0; i < (size_t)pi.width * pi.height; i++) img->px[i] = buf[i] / 255.0f;
    free(buf);
    return rc;
}
#endif

int sn_image_read(sn_image *img, const char *path, sn_error *err)
{
    img->px = NULL;
    img->w = img->h = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return sn_fail(err, SN_EIO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char sig[8] = { 0 };
    size_t got = fread(sig, 1, sizeof sig, f);
    int rc;
    if (got >= 2 && sig[0] == 'P' && (sig[1] == '2' || sig[1] == '5')) {
        fseek(f, 2, SEEK_SET);
        rc = read_pgm(img, f, path, sig[1] == '5', err);
        fclose(f);
        return rc;
    }
    fclose(f);
    static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    if (got == 8 && memcmp(sig, png_sig, 8) == 0) {
#ifdef SN_HAVE_PNG
        return read_png(img, path, err);
#else
        return sn_fail(err, SN_EUNSUPPORTED, "%s: PNG support was not built (libpng missing); use PGM", path);
#endif
    }
    return sn_fail(err, SN_EFORMAT, "%s: not a PGM (P2/P5) or PNG image", path);
}
