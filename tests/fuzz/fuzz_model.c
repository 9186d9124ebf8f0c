/* Fuzz target: the model loader. An accepted file must round-trip bit for bit. */
#include <string.h>

#include "fuzz_common.h"
#include "scratchnet/modelfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_path(data, size);
    sn_net m;
    sn_error err;
    if (sn_model_load(&m, p, &err) != SN_OK) return 0;
    for (size_t i = 0; i < m.nparams; i++) {
        volatile float sink = m.params[i];
        (void)sink;
    }
    sn_net_free(&m);
    return 0;
}
