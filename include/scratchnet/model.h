/* scratchnet — the MLP: sizes[0] inputs, ReLU hidden layers, linear output (the
 * softmax lives in the loss). All parameters are one block, W1 b1 W2 b2 ..., with
 * W_l (sizes[l] x sizes[l+1], in x out, row-major) and b_l (sizes[l+1]); W and b point
 * into it. In x out makes the forward product X * W an nn product with a narrow n and
 * the weight gradient X^T * dY a tn one: the two shapes the kernels are tuned for. */
#ifndef SCRATCHNET_MODEL_H
#define SCRATCHNET_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "scratchnet/error.h"
#include "scratchnet/layer.h"
#include "scratchnet/rng.h"

#define SN_MAX_LAYERS 16      /* weight layers */
#define SN_MAX_WIDTH 65536    /* units in one layer */
#define SN_MAX_PARAMS 100000000 /* 400 MB of float32: refuse larger models */

typedef struct sn_mlp {
    int nlayers;                   /* weight layers (sizes has nlayers + 1 entries) */
    int sizes[SN_MAX_LAYERS + 1];
    size_t nparams;
    float *params;                 /* owned, 64-byte aligned */
    float *W[SN_MAX_LAYERS];       /* point into params; don't free */
    float *b[SN_MAX_LAYERS];
    sn_layer layer[SN_MAX_LAYERS]; /* the network as layers (layer.h): dense, ReLU but the last */
} sn_mlp;

/* Validates sizes (2..17 entries, each 1..65536, total parameters bounded), allocates
 * zeroed parameters. */
int sn_mlp_create(sn_mlp *m, const int *sizes, int nsizes, sn_error *err);
void sn_mlp_free(sn_mlp *m);
/* Parameter count for sizes, or 0 if they are invalid. */
size_t sn_mlp_count_params(const int *sizes, int nsizes);
/* He-normal weights (std sqrt(2/fan_in)), zero biases. */
void sn_mlp_init_he(sn_mlp *m, sn_rng *rng);
/* Carves W/b pointers out of a parameter-shaped block (params, gradients, moments). */
void sn_mlp_views(const sn_mlp *m, float *block, float **W, float **b);

/* "784,50,25,10" -> sizes. Returns SN_EINVAL with the offending item in err. */
int sn_parse_layers(const char *text, int *sizes, int *nsizes, sn_error *err);
/* sizes -> "784,50,25,10" (separator sep). */
void sn_format_layers(const int *sizes, int nsizes, char sep, char *out, size_t cap);

/* Reusable buffers for running the network on up to `capacity` rows with up to
 * `threads` threads. */
typedef struct sn_forward_ctx {
    int capacity, threads;
    float *act[SN_MAX_LAYERS + 1]; /* act[0]: input rows, act[l]: layer l output */
    float *ws_local;               /* one GEMM workspace per thread, ws_stride floats apart */
    size_t ws_stride;
    float *loss;                   /* capacity */
    uint8_t *y, *correct;          /* capacity */
    void *block;                   /* one allocation for all of the above */
} sn_forward_ctx;

int sn_forward_ctx_create(sn_forward_ctx *c, const sn_mlp *m, int capacity, int threads, sn_error *err);
void sn_forward_ctx_free(sn_forward_ctx *c);
/* This thread's workspace (thread number from OpenMP; 0 outside a parallel region). */
float *sn_forward_ctx_local_ws(const sn_forward_ctx *c);

/* Rows [r0, r0 + rows) of act[0] through the network on the calling thread alone, with
 * workspace ws (sn_forward_ctx_local_ws); several threads may run disjoint rows at once.
 * Per element, the result does not depend on how the rows are split. */
void sn_mlp_forward_rows(const sn_mlp *m, sn_forward_ctx *c, int r0, int rows, float *ws);
/* Rows [0, n) on the calling thread; returns the logits (n x classes). */
const float *sn_mlp_forward(const sn_mlp *m, sn_forward_ctx *c, int n);

/* Part `part` of `parts` of an n-row batch: [*r0, *r0 + *rows), contiguous shares that are
 * whole multiples of `granule` rows except the last (possibly empty). */
void sn_share_rows(int n, int granule, int part, int parts, int *r0, int *rows);

#endif
