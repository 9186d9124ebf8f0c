/* scratchnet — model and checkpoint files.
 *
 * Layout (all integers and floats little-endian, written byte by byte, so the file is
 * portable across endianness):
 *   "SCRNTNET"  u32 version=2  u32 kind (1 model, 2 checkpoint)  u32 nsizes  u32 sizes[]
 *   version 2:  u32 nlayers, then per layer: u32 type (layer.h: 1 dense)  u32 nfields
 *                 u32 fields[nfields]   (dense: in, out, relu)
 *               u32 npre, then per preprocessing record: u32 type  u32 nbytes  bytes[nbytes]
 *                 1 deskew (0 bytes): inputs are deskewed (image.h, sn_preprocess)
 *                 2 stroke width limit (f32, pixels): drawn strokes are thinned to it
 *                 3 augmentation (f32 range[5], f32 prob[5]; augment.h): how it was
 *                   trained; a checkpoint resumes only with the same
 *                 4 training record (u64 saved_at, u32 epochs, batch, opt, f32 lr,
 *                   test_acc, then the commit, 0..47 bytes): provenance for `info`
 *                 5 shards (u32 S, 2..4096): trained in S fixed shards a batch
 *                   (shard.h); a checkpoint resumes only with the same
 *                 each at most once; only what is on is written, so a model without
 *                 them is byte-identical to one from before they existed; a reader
 *                 refuses types it does not know
 *   kind 2 only: u32 opt  f32 lr  u32 batch  u32 val  u64 seed  u32 epochs  u32 cosine
 *                u32 epoch (done)  u64 step
 *                u64 rng[4]
 *   f32 params[nparams]   (W1 b1 W2 b2 ..., each W in x out, row-major)
 *   kind 2 only: f32 opt_state[nparams * (0|1|2)]
 *   u32 CRC-32 (zlib polynomial) of every byte after the magic
 * Version 1 files (no layer or preprocessing records: a dense MLP) still load.
 * Files are written to a temporary file in the same directory, fsync'd and renamed:
 * a crash leaves the old file or the new one, never a torn one. */
#ifndef SCRATCHNET_MODELFILE_H
#define SCRATCHNET_MODELFILE_H

#include "scratchnet/error.h"
#include "scratchnet/model.h"
#include "scratchnet/train.h"

typedef struct sn_trainer sn_trainer; /* train.h; checkpoints read and write one */

#define SN_MODEL_VERSION 2

int sn_model_save(const sn_net *m, const char *path, sn_error *err);
/* Creates *m from the file; refuses bad magic, version, sizes, length or CRC. */
int sn_model_load(sn_net *m, const char *path, sn_error *err);

/* The format version of a model or checkpoint file (1 or 2), from its header alone. */
int sn_model_file_version(const char *path, int *version, sn_error *err);

/* Checkpoint: model, optimiser state, RNG state, epochs done and the arguments that
 * must match on resume (layers, optimiser, lr, batch, val, seed). */
int sn_checkpoint_save(const sn_trainer *t, const char *path, sn_error *err);
/* Loads into a trainer created with the same configuration; refuses a checkpoint
 * whose arguments differ, naming the first mismatch. */
int sn_checkpoint_load(sn_trainer *t, const char *path, sn_error *err);

/* What a checkpoint says of its run, read without a trainer: the network, its
 * preprocessing, the arguments that must match on resume (cfg: opt, lr, batch, val,
 * seed, epochs, cosine, aug; the rest defaults) and its progress. For `train --resume`
 * alone and `info`. */
typedef struct sn_checkpoint_info {
    sn_layer layers[SN_MAX_LAYERS];
    int nlayers;
    sn_preprocess pre;
    sn_augment aug;
    sn_train_config cfg;
    int shards; /* --shards S > 1 of the run; 0: ordinary steps */
    int epoch;  /* epochs done */
    long step;  /* optimiser steps done */
} sn_checkpoint_info;
int sn_checkpoint_info_read(const char *path, sn_checkpoint_info *info, sn_error *err);

/* Writes len bytes to path atomically (temp file + fsync + rename). Also used by the
 * CSV/PNG writers. */
int sn_write_file_atomic(const char *path, const void *data, size_t len, sn_error *err);
/* Creates the parent directory of path if it is missing (one level, like the seed
 * project's models/). */
int sn_ensure_parent_dir(const char *path, sn_error *err);

#endif
