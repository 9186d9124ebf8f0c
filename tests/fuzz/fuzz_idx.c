/* Fuzz target: the IDX reader (raw and gzip), as images and as labels. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "scratchnet/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_path(data, size);
    uint8_t *buf = NULL;
    int count, rows, cols;
    sn_error err;
    if (sn_idx_read_images(p, &buf, &count, &rows, &cols, &err) == SN_OK) {
        /* Accepted: the header must describe exactly what was read. */
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < (size_t)count * rows * cols; i++) sink ^= buf[i];
        free(buf);
    }
    buf = NULL;
    if (sn_idx_read_labels(p, &buf, &count, &err) == SN_OK) {
        for (int i = 0; i < count; i++)
            if (buf[i] > 9) abort(); /* the reader promised labels 0..9 */
        free(buf);
    }
    return 0;
}
