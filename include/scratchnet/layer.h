/* scratchnet — the layer interface. A network (model.h) is a list of layers over one
 * parameter block; training (train.c) and evaluation walk the list in their phases and
 * know nothing of what a layer computes. A layer type is an ops table:
 *  - row-wise work (forward, input gradient) runs on the calling thread for the rows it
 *    is given, so a team splits a batch by rows with no synchronisation inside;
 *  - the weight gradient reduces over the whole batch, so it is cut into items that any
 *    thread of a team may compute, each element reduced over the batch in order on one
 *    thread: the same bits for any team.
 * Shapes are per row: a layer maps `in` floats to `out` floats. A row is also an image,
 * ih x iw x ic in, oh x ow x oc out, stored NHWC (channels last: a pixel's channels are
 * contiguous, so a convolution's patch rows are runs of memory and its GEMM output is
 * NHWC again); a flat row is 1 x 1 x in. */
#ifndef SCRATCHNET_LAYER_H
#define SCRATCHNET_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "scratchnet/error.h"
#include "scratchnet/gemm.h" /* sn_epilogue */
#include "scratchnet/rng.h"

#define SN_MAX_WIDTH 65536 /* floats per row in or out of a layer */

typedef struct sn_layer sn_layer;

typedef struct sn_layer_ops {
    const char *type; /* its name in a net spec (model.h) and in `info`: "dense" */
    unsigned file_id; /* its number in model files (modelfile.h); never renumbered */
    /* Its model-file record: in, out, relu, then nextra fields (save_extra writes them,
     * load_extra reads them back; NULL when nextra is 0). A type whose fields record its
     * input image (ih, iw, ic) sets it in load_extra; others take the previous layer's. */
    int nextra;
    void (*save_extra)(const sn_layer *l, uint32_t *fields);
    void (*load_extra)(sn_layer *l, const uint32_t *fields);
    /* From a net spec's item "TYPE[ARG]" or "TYPE:ARG": sets the output (out, oh, ow, oc),
     * relu and the type's parameters from arg (NULL when there is none), the input (in,
     * ih, iw, ic) being set. fuse_relu: the item asks for a ReLU on the output (a compact
     * item that is not the last); types that cannot fuse one ignore it. SN_EINVAL, saying
     * why, if the argument is missing, malformed or out of range for the input. */
    int (*configure)(sn_layer *l, const char *arg, int fuse_relu, sn_error *err);
    /* The output image (oh, ow, oc) from the input's and the type's parameters (dense:
     * out itself); configure calls it, and so does a model-file reader. check tells
     * whether the result is consistent (out = oh * ow * oc, sizes in range). */
    void (*reshape)(sn_layer *l);
    /* Whether a layer (read from a file, or built) is one this type can be: shapes
     * consistent, parameters in range. SN_EFORMAT, saying why, if not. */
    int (*check)(const sn_layer *l, sn_error *err);
    /* The compact spec item for this layer, "dense50", "leaky:0.1", "conv3x3x32/same":
     * with compact set, the form whose ReLU is implied (a type that fuses one); the caller
     * knows whether that matches l->relu. */
    void (*spec)(const sn_layer *l, int compact, char *out, size_t cap);
    /* Its parameters in the model's block: nweights floats of W, then nbiases of b. */
    size_t (*nweights)(const sn_layer *l);
    size_t (*nbiases)(const sn_layer *l);
    /* Initial parameters (draws from rng in a fixed order). */
    void (*init)(const sn_layer *l, sn_rng *rng);
    /* Workspace floats the functions below need for `rows` rows, per thread. */
    size_t (*workspace)(const sn_layer *l, int rows);
    /* Y (rows x out) = layer(X (rows x in)). */
    void (*forward)(const sn_layer *l, float *Y, const float *X, int rows, float *ws);
    /* dX (rows x in) = dLoss/dX from dY (rows x out); X is the layer's input, which is
     * the previous layer's output: its activation's derivative is applied here (X > 0
     * for ReLU) when `relu_in` is set. */
    void (*backward_input)(const sn_layer *l, float *dX, const float *dY, const float *X, int relu_in, int rows,
                           float *ws);
    /* The weight gradient of an n-row batch (X: n x in inputs, dY: n x out), cut into
     * grad_items(l, n, parts) independent items for a team of `parts` threads (never
     * fewer for a larger n or team). Each element's order of additions must not depend
     * on `parts` (split by fixed groups, not by team shares: a product's shape picks
     * its kernel, and so its order). Item i
     * writes its part of gW / gb (this layer's views of the gradient block); with
     * `update` set it calls update->done on every piece it finishes (the fused optimiser
     * step, while the piece is in cache). */
    int (*grad_items)(const sn_layer *l, int n, int parts);
    void (*grad_item)(const sn_layer *l, int item, int n, int parts, const float *X, const float *dY, float *gW,
                      float *gb, const sn_epilogue *update, float *ws);
    /* The thread (of `parts`) that item i is best computed on (its share of a split). */
    int (*grad_item_owner)(const sn_layer *l, int item, int n, int parts);
    /* Optional (NULL: none): the weight gradient of `rows` rows (at most SN_IMAGE_ROWS,
     * model.h) on their own, gW and gb overwritten, within workspace(l, rows). For a
     * trainer that computes a first image layer's gradient chunk by chunk while the
     * chunk's activations are in cache, and sums the chunks' partials in chunk order. */
    void (*grad_rows)(const sn_layer *l, const float *X, const float *dY, int rows, float *gW, float *gb, float *ws);
    /* Optional (NULL: none; then both): forward that also writes R (rows x out floats),
     * what backward_recorded needs in place of the input X (max pooling: each output's
     * winner), for a trainer that does not keep X (a first layer's large output). Same
     * Y, and the same dX, as forward and backward_input. */
    void (*forward_record)(const sn_layer *l, float *Y, float *R, const float *X, int rows, float *ws);
    void (*backward_recorded)(const sn_layer *l, float *dX, const float *dY, const float *R, int relu_in, int rows,
                              float *ws);
} sn_layer_ops;

struct sn_layer {
    const sn_layer_ops *ops;
    int in, out;    /* floats per row in and out */
    int ih, iw, ic; /* the input as an image (in = ih * iw * ic) */
    int oh, ow, oc; /* the output likewise */
    int relu;       /* the output goes through ReLU (fused into the layer's own write) */
    float arg;      /* leaky ReLU: the slope; 0 for types without a real parameter */
    int k, same;    /* convolution: k x k kernels, zero padding that keeps the size; pool: k x k windows */
    float *W, *b;   /* this layer's parameters in the model's block (NULL: none, or a description) */
};

/* The ops of a layer without parameters (activations, pooling): no weights, no
 * workspace, nothing to initialise, no weight-gradient items. */
size_t sn_layer_none(const sn_layer *l);
size_t sn_layer_no_workspace(const sn_layer *l, int rows);
void sn_layer_no_init(const sn_layer *l, sn_rng *rng);
int sn_layer_no_grad_items(const sn_layer *l, int n, int parts);
void sn_layer_no_grad_item(const sn_layer *l, int item, int n, int parts, const float *X, const float *dY, float *gW,
                           float *gb, const sn_epilogue *update, float *ws);
int sn_layer_any_owner(const sn_layer *l, int item, int n, int parts);

/* reshape for a layer whose output is flat (1 x 1 x out), or the same image as its input. */
void sn_layer_flat_output(sn_layer *l);
void sn_layer_same_output(sn_layer *l);

/* The layer registry (layer.c): every type a net spec may name and a model file may
 * hold. Adding a type is its ops table in its own file plus one row there. */
int sn_layer_type_count(void);
const sn_layer_ops *sn_layer_type_at(int i);
/* By name (the first len characters of name), or by model-file number; NULL if none. */
const sn_layer_ops *sn_layer_type_named(const char *name, size_t len);
const sn_layer_ops *sn_layer_type_with_id(unsigned file_id);
/* Parameters of a layer: nweights + nbiases. */
size_t sn_layer_nparams(const sn_layer *l);

/* The fully connected layer (dense.c): Y = X W + b (W in x out), ReLU unless last.
 * The trainer drives a first dense layer through the input-block functions below. */
extern const sn_layer_ops sn_dense_ops;

/* The dense layer's input-block scheme, for a first layer whose inputs the trainer
 * gathers block by block (train.c): the product split by blocks of input features,
 * P_b (n x out) = X[:, k0:k1] W[k0:k1, :] from the block's own copy Xb (n x (k1 - k0)),
 * the output from the partials summed in block order, and dW's rows of a block. */
void sn_dense_block_forward(const sn_layer *l, float *P, const float *Xb, int k0, int k1, int n, float *ws);
void sn_dense_block_output(const sn_layer *l, float *Y, const float *P, size_t pstride, int nblocks, int rows);
void sn_dense_block_grad(const sn_layer *l, float *gW, const float *Xb, int k0, int k1, const float *dY, int n,
                         const sn_epilogue *update, float *ws);
/* Bias gradient columns [part share of out] summed over the batch: the rest of a blocked
 * first layer's weight gradient, `parts` items. */
void sn_dense_bias_share(const sn_layer *l, float *gb, const float *dY, int n, int part, int parts,
                         const sn_epilogue *update);

#endif
