/* scratchnet — data-parallel training with fixed shards, the same bits for any number of
 * processes.
 *
 * Every batch of n rows is split into S fixed shards (shard j: rows [j n / S,
 * (j + 1) n / S)); each shard's gradient is that of its rows' share of the batch's mean
 * loss, and the S gradients are summed in one fixed binary tree: sum(lo, hi) =
 * sum(lo, mid) + sum(mid, hi), mid = (lo + hi) / 2, element by element. With R processes
 * (R a power of two dividing S) process r computes shards [r S / R, (r + 1) S / R), which
 * is a whole subtree of that tree, and the processes then exchange partial sums with
 * fixed partners (r XOR 1, r XOR 2, ...): each level of the exchange is a level of the
 * tree, and a float sum a + b is b + a, so every process ends with the same bits, and
 * with the bits one process computing all S shards gets. Then every process applies the
 * same update. The batch's loss is summed the same way (in double).
 *
 * S = 1 is not this path: it is the ordinary step, today's bits. The library knows
 * nothing of MPI: the exchange is a function the program supplies (src/cli/job.c). */
#ifndef SCRATCHNET_SHARD_H
#define SCRATCHNET_SHARD_H

#include <stddef.h>

#include "scratchnet/train.h"

/* Swaps `bytes` bytes with process `partner`: sends send, receives into recv (both
 * processes call it with each other at the same point). 0 on success. */
typedef int (*sn_exchange_fn)(void *user, int partner, const void *send, void *recv, size_t bytes);

typedef struct sn_shards {
    int count;             /* S >= 1 */
    int rank, ranks;       /* this process and how many; ranks a power of two dividing S */
    sn_exchange_fn exchange; /* NULL when ranks == 1 */
    void *user;
    float *bufs;           /* S / ranks gradients, owned (sn_shards_init / sn_shards_free) */
    float *recv;           /* one gradient plus the loss: what a partner sends */
    size_t nparams;
    int failed;            /* an exchange failed: the epoch stops (sn_train_epoch returns SN_EIO) */
    /* Where the time goes, summed over the steps so far (the cost model's figures):
     * computing this process's shards, summing them, exchanging and adding partners'
     * sums, and updating. */
    double compute_s, sum_s, exchange_s, update_s;
    long steps;
} sn_shards;

/* Checks S and R (exit-2 material: the message says why) and allocates the buffers for a
 * model of nparams parameters. */
int sn_shards_init(sn_shards *s, int count, int rank, int ranks, sn_exchange_fn exchange, void *user, size_t nparams,
                   sn_error *err);
void sn_shards_free(sn_shards *s);

/* From now on t's epochs are sharded (s stays the caller's); NULL: back to ordinary steps. */
void sn_trainer_set_shards(sn_trainer *t, sn_shards *s);

/* sn_evaluate over the processes: process r evaluates rows [r N / R, (r + 1) N / R) of
 * ds, the processes exchange their rows' losses and correctness level by level (each
 * level doubles the rows everyone holds), and every process sums all N in row order: the
 * figures sn_evaluate gives in one process, bit for bit, for 1/R of the work. */
int sn_shards_evaluate(sn_shards *s, sn_trainer *t, const sn_dataset *ds, double *loss, double *acc, sn_error *err);

/* One sharded epoch (sn_train_epoch calls it when shards are set). */
int sn_shards_epoch(sn_trainer *t, const sn_dataset *ds, sn_epoch_stats *st, sn_progress_fn progress, void *user);

#endif
