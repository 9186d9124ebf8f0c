/* The sweep specification: KEY=V1,V2,... arguments -> a list of run configurations,
 * the Cartesian product in a stable order (the first key varies slowest). */
#ifndef SN_SWEEP_SPEC_H
#define SN_SWEEP_SPEC_H

#include <stdint.h>

#include "scratchnet/error.h"
#include "scratchnet/model.h"
#include "scratchnet/optim.h"

#define SWEEP_MAX_VALUES 64
#define SWEEP_MAX_RUNS 4096

typedef enum sweep_key {
    KEY_BATCH, KEY_LR, KEY_THREADS, KEY_EPOCHS, KEY_OPT, KEY_SEED, KEY_LAYERS, KEY_NET, KEY_DESKEW, KEY_AUGMENT,
    KEY_COUNT
} sweep_key;

typedef struct sweep_run {
    int batch;
    float lr;
    int threads;
    int epochs;
    sn_opt_kind opt;
    uint64_t seed;
    sn_layer net[SN_MAX_LAYERS]; /* the network (layers= or net=; W, b unset) */
    int nlayers;
    int deskew;      /* the images deskewed (augment.h) */
    sn_augment aug;  /* on-the-fly augmentation */
} sweep_run;

typedef struct sweep_spec {
    int given[KEY_COUNT];  /* 1 if the key was swept (it then appears in legends) */
    int order[KEY_COUNT];  /* keys in the order given, then the rest */
    int nvalues[KEY_COUNT];
    char *values[KEY_COUNT][SWEEP_MAX_VALUES]; /* canonical text of each value */
    sweep_run base;        /* defaults for keys not swept */
} sweep_spec;

/* Valid keys, for messages: "batch, lr, threads, epochs, opt, seed, layers, net, deskew,
 * augment". */
const char *sweep_keys_help(void);

void sweep_spec_init(sweep_spec *s, const sweep_run *defaults);
void sweep_spec_free(sweep_spec *s);
/* Adds one "KEY=V1,V2,..." argument. layers values use ':' between sizes
 * (784:50:25:10,784:100:10), or ';' between whole lists of ',' sizes, or a single
 * ',' list; net values (net specs, model.h) are separated by ';', or by ',' when every
 * value is a preset name (net=mlp,cnn); values may be quoted. layers and net name the
 * same thing: not both. deskew values are on and off; augment values (augment.h specs)
 * are separated by ';' (augment=none;thick=1,rot=8). SN_EINVAL with a message naming key
 * and value. */
int sweep_spec_add(sweep_spec *s, const char *arg, sn_error *err);
/* Number of runs in the product (capped at SWEEP_MAX_RUNS + 1 to flag "too many"). */
int sweep_spec_count(const sweep_spec *s);
/* Run i (0-based) of the product. */
void sweep_spec_run(const sweep_spec *s, int i, sweep_run *out);
/* "batch=64 lr=0.01 threads=2": the swept keys only (all keys if none swept). */
void sweep_run_label(const sweep_spec *s, const sweep_run *r, char *out, size_t cap);

#endif
