/* scratchnet — a network: a list of layers (layer.h) over one parameter block, layer
 * l mapping sizes[l] floats per row to sizes[l+1]; the last layer's outputs are the
 * logits (the softmax lives in the loss). The parameters are one block, each layer's W
 * then b in layer order (dense: W_l sizes[l] x sizes[l+1], in x out, row-major, then
 * b_l); W[l] and b[l] point into it. The default is the MLP 784-50-25-10: dense layers
 * with ReLU fused into all but the last.
 *
 * A net spec names the layers (docs/cli.md has the grammar): a preset ("mlp", "cnn",
 * "lenet5"), or an optional input (a width N, or an image HxWxC; else 28x28x1) and items
 * "TYPEARG" (compact: a dense or convolution layer gets a ReLU unless it is the last
 * item) or "TYPE:ARG" (explicit: no ReLU), from layer.c's registry: "dense50",
 * "conv3x3x32/same", "pool2", "relu", "leaky:0.1"; a bare width N is "denseN".
 * "784,50,25,10" is the default MLP, and so is "784,dense:50,relu,dense:25,relu,
 * dense:10" (a relu after a dense layer is fused). */
#ifndef SCRATCHNET_MODEL_H
#define SCRATCHNET_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "scratchnet/augment.h"
#include "scratchnet/error.h"
#include "scratchnet/image.h"
#include "scratchnet/layer.h"
#include "scratchnet/rng.h"

#define SN_MAX_LAYERS 16      /* layers of a network */
#define SN_MAX_PARAMS 100000000 /* 400 MB of float32: refuse larger models */

/* A model's provenance, written by `train` (model file record 4). */
typedef struct sn_train_record {
    int present;
    int64_t saved_at;   /* Unix seconds (SOURCE_DATE_EPOCH when set, for reproducible files) */
    int epochs, batch;
    int opt;            /* sn_opt_kind */
    float lr, test_acc; /* test_acc < 0: not measured */
    char commit[48];    /* the program's git commit */
} sn_train_record;

typedef struct sn_net {
    int nlayers;                   /* layers (sizes has nlayers + 1 entries) */
    int sizes[SN_MAX_LAYERS + 1];
    size_t nparams;
    float *params;                 /* owned, 64-byte aligned */
    float *W[SN_MAX_LAYERS];       /* point into params; don't free */
    float *b[SN_MAX_LAYERS];
    sn_layer layer[SN_MAX_LAYERS]; /* the network as layers (layer.h) */
    sn_preprocess pre;             /* what its inputs go through (image.h); none by default */
    sn_augment aug;                /* how it was trained (augment.h): recorded, not applied */
    sn_train_record record;        /* when and how it was trained, for `info`; may be absent */
    int shards;                    /* trained in S > 1 fixed shards a batch (shard.h); 0: ordinary steps */
} sn_net;

/* A network of these layers (ops, in, out, relu, arg set; W and b ignored): checks them
 * (sn_net_check), allocates zeroed parameters and points each layer's W and b into them. */
int sn_net_create(sn_net *m, const sn_layer *layers, int nlayers, sn_error *err);
/* Whether layers form a network: 1..SN_MAX_LAYERS, each valid for its type (ops->check),
 * widths chained, parameters bounded. SN_EINVAL naming the first bad layer. */
int sn_net_check(const sn_layer *layers, int nlayers, sn_error *err);
/* The MLP of sizes (2..17 entries, each 1..65536): dense layers, ReLU but the last. */
int sn_net_create_mlp(sn_net *m, const int *sizes, int nsizes, sn_error *err);
void sn_net_mlp_layers(const int *sizes, int nsizes, sn_layer *layers);
/* Whether layers are such an MLP (what the peers and the sizes-only formats describe). */
int sn_net_is_mlp(const sn_layer *layers, int nlayers);
void sn_net_free(sn_net *m);
/* Parameter count for sizes, or 0 if they are invalid. */
size_t sn_mlp_count_params(const int *sizes, int nsizes);
/* He-normal weights (std sqrt(2/fan_in)), zero biases. */
void sn_net_init_he(sn_net *m, sn_rng *rng);
/* Carves W/b pointers out of a parameter-shaped block (params, gradients, moments). */
void sn_net_views(const sn_net *m, float *block, float **W, float **b);

/* "784,50,25,10" -> sizes. Returns SN_EINVAL with the offending item in err. */
int sn_parse_layers(const char *text, int *sizes, int *nsizes, sn_error *err);
/* sizes -> "784,50,25,10" (separator sep). */
void sn_format_layers(const int *sizes, int nsizes, char sep, char *out, size_t cap);
/* The spec of a preset network ("mlp", "cnn", "lenet5"), or NULL. */
const char *sn_net_preset(const char *name);
/* A net spec (above) -> layers (W, b NULL), checked. SN_EINVAL naming the bad item. */
int sn_net_parse(const char *text, sn_layer *layers, int *nlayers, sn_error *err);
/* layers -> a spec that parses back to them: the sizes form "784,50,25,10" for an MLP,
 * else "784,dense:100,leaky:0.01,dense:10" (items separated by sep). */
void sn_net_format(const sn_layer *layers, int nlayers, char sep, char *out, size_t cap);

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

int sn_forward_ctx_create(sn_forward_ctx *c, const sn_net *m, int capacity, int threads, sn_error *err);
void sn_forward_ctx_free(sn_forward_ctx *c);
/* This thread's workspace (thread number from OpenMP; 0 outside a parallel region). */
float *sn_forward_ctx_local_ws(const sn_forward_ctx *c);

/* The first layer whose output is a flat row (1 x 1 x out): the layers before it give
 * images, whose activations are large; nlayers if there is none. */
int sn_net_first_flat_layer(const sn_net *m);

/* Rows at a time through the image layers: a few images' activations (a 26x26x32 map is
 * 86 KiB an image) stay in L2 through all of them; a whole share would not. Flat layers
 * take all the rows at once (their products want the rows; by 4 rows a 1600 x 128 dense
 * layer ran at a third of the speed). Rows are computed alone either way: same bits. */
#define SN_IMAGE_ROWS 4

/* Layers l0.. of rows [r0, r0 + rows) (act[l0] filled), as sn_net_forward_rows. */
void sn_net_forward_from(const sn_net *m, sn_forward_ctx *c, int l0, int r0, int rows, float *ws);

/* Rows [r0, r0 + rows) of act[0] through the network on the calling thread alone, with
 * workspace ws (sn_forward_ctx_local_ws); several threads may run disjoint rows at once.
 * Per element, the result does not depend on how the rows are split. */
void sn_net_forward_rows(const sn_net *m, sn_forward_ctx *c, int r0, int rows, float *ws);
/* Rows [0, n) on the calling thread; returns the logits (n x classes). */
const float *sn_net_forward(const sn_net *m, sn_forward_ctx *c, int n);

/* Part `part` of `parts` of an n-row batch: [*r0, *r0 + *rows), contiguous shares that are
 * whole multiples of `granule` rows except the last (possibly empty). */
void sn_share_rows(int n, int granule, int part, int parts, int *r0, int *rows);

#endif
