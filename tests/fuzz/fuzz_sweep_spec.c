/* Fuzz target: the sweep-spec parser. Input: NUL- or newline-separated KEY=VALUES args. */
#include <stdlib.h>
#include <string.h>

#include "sweep_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    sweep_run d = { .batch = 128, .lr = 0.05f, .threads = 1, .epochs = 1, .opt = SN_OPT_SGD, .seed = 1, .nlayers = 1 };
    sn_net_mlp_layers((const int[]){ 784, 10 }, 2, d.net);
    sweep_spec s;
    sweep_spec_init(&s, &d);
    sn_error err;
    char *save = NULL;
    for (char *arg = strtok_r(text, "\n", &save); arg; arg = strtok_r(NULL, "\n", &save))
        if (sweep_spec_add(&s, arg, &err) != SN_OK) break;
    int n = sweep_spec_count(&s);
    if (n <= SWEEP_MAX_RUNS)
        for (int i = 0; i < n && i < 64; i++) {
            sweep_run r;
            char label[256];
            sweep_spec_run(&s, i, &r);
            sweep_run_label(&s, &r, label, sizeof label);
            if (r.batch < 1 || !(r.lr > 0) || r.threads < 1 || r.epochs < 1) abort();
        }
    sweep_spec_free(&s);
    free(text);
    return 0;
}
