/* Fuzz target: the PGM/PNG reader and the MNIST preprocessing of whatever it accepts. */
#include <math.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "scratchnet/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_path(data, size);
    sn_image img;
    sn_error err;
    if (sn_image_read(&img, p, &err) != SN_OK) return 0;
    if ((long)img.w * img.h <= 1 << 20) { /* keep each execution fast */
        float out[784];
        if (sn_image_to_mnist(&img, NULL, out, &err) == SN_OK)
            for (int i = 0; i < 784; i++)
                if (!(out[i] >= 0.0f && out[i] <= 1.0f)) abort(); /* MNIST range, never NaN */
    }
    sn_image_free(&img);
    return 0;
}
