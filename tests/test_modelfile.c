/* Model and checkpoint files: bit-exact round trips; truncated, corrupt, wrong-magic,
 * absurd-sized and mismatched files refused with a message naming the file. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <zlib.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/modelfile.h"
#include "scratchnet/train.h"
#include "test_util.h"

static void make_model(sn_net *m)
{
    int sizes[] = { 784, 50, 25, 10 };
    sn_rng r;
    cr_assert_eq(sn_net_create_mlp(m, sizes, 4, NULL), SN_OK);
    sn_rng_seed(&r, 7);
    sn_net_init_he(m, &r);
    m->b[0][3] = -0.0f; /* signed zero and a denormal must survive too */
    m->b[1][1] = 1e-40f;
}

Test(modelfile, round_trip_bit_exact)
{
    sn_net a, b;
    sn_error err;
    make_model(&a);
    cr_assert_eq(a.nparams, 40785u, "784-50-25-10 has 40,785 parameters");
    const char *p = tu_path(tu_tmpdir(), "sub/m.bin"); /* parent directory is created */
    cr_assert_eq(sn_model_save(&a, p, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(sn_model_load(&b, p, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(b.nlayers, 3);
    cr_assert(memcmp(a.sizes, b.sizes, sizeof(int) * 4) == 0);
    cr_assert(memcmp(a.params, b.params, a.nparams * sizeof(float)) == 0, "weights differ after reload");
    sn_net_free(&a);
    sn_net_free(&b);
}

static void expect_bad(const unsigned char *data, size_t len, const char *needle)
{
    const char *p = tu_path(tu_tmpdir(), "bad.bin");
    tu_write(p, data, len);
    sn_net m;
    sn_error err = { 0 };
    cr_assert_neq(sn_model_load(&m, p, &err), SN_OK, "accepted a bad model (%s)", needle);
    cr_assert(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    cr_assert(strstr(err.msg, "bad.bin") != NULL, "message must name the file: %s", err.msg);
}

Test(modelfile, corrupt_files_refused)
{
    sn_net a;
    make_model(&a);
    const char *p = tu_path(tu_tmpdir(), "m.bin");
    cr_assert_eq(sn_model_save(&a, p, NULL), SN_OK);
    size_t len;
    unsigned char *d = tu_read(p, &len);
    /* magic, version, kind, nsizes, 4 sizes, 3 layer records of 5 words, no preprocessing */
    cr_assert_eq(len, 8 + 12 + 16 + 4 + 3 * 20 + 4 + 40785 * 4 + 4, "file size %zu", len);

    expect_bad(d, len - 1000, "CRC");        /* truncated */
    expect_bad(d, 10, "not a scratchnet");   /* truncated inside the header */
    expect_bad(d, 0, "not a scratchnet");    /* empty */
    d[5000] ^= 1;                            /* one flipped bit in the weights */
    expect_bad(d, len, "CRC");
    d[5000] ^= 1;
    d[0] = 'X';
    expect_bad(d, len, "magic");
    d[0] = 'S';
    d[8] = 9; /* version */
    expect_bad(d, len, "version");
    d[8] = 1;
    d[20] = 0xff, d[21] = 0xff, d[22] = 0xff, d[23] = 0x7f; /* absurd first layer size */
    expect_bad(d, len, "layer size");
    free(d);
    sn_net_free(&a);
}

Test(modelfile, missing_file_named)
{
    sn_net m;
    sn_error err;
    cr_assert_eq(sn_model_load(&m, "/nonexistent/model.bin", &err), SN_EIO);
    cr_assert(strstr(err.msg, "/nonexistent/model.bin") != NULL);
}

Test(modelfile, checkpoint_round_trip_and_mismatch)
{
    int sizes[] = { 784, 20, 10 };
    sn_net m, m2;
    sn_trainer t, t2;
    sn_train_config cfg = sn_train_defaults();
    cfg.opt = SN_OPT_ADAM, cfg.lr = 0.001f;
    cr_assert_eq(sn_net_create_mlp(&m, sizes, 3, NULL), SN_OK);
    cr_assert_eq(sn_trainer_create(&t, &m, &cfg, 100, NULL), SN_OK);
    t.epoch = 2, t.opt.step = 77;
    tu_fill(t.opt.m, m.nparams, 1);
    tu_fill(t.opt.v, m.nparams, 2);
    sn_rng_next(&t.rng);
    const char *p = tu_path(tu_tmpdir(), "ck.bin");
    sn_error err;
    cr_assert_eq(sn_checkpoint_save(&t, p, &err), SN_OK, "%s", err.msg);

    cr_assert_eq(sn_net_create_mlp(&m2, sizes, 3, NULL), SN_OK);
    cr_assert_eq(sn_trainer_create(&t2, &m2, &cfg, 100, NULL), SN_OK);
    cr_assert_eq(sn_checkpoint_load(&t2, p, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(t2.epoch, 2);
    cr_assert_eq(t2.opt.step, 77);
    cr_assert(memcmp(t2.rng.s, t.rng.s, sizeof t.rng.s) == 0);
    cr_assert(memcmp(m2.params, m.params, m.nparams * 4) == 0);
    cr_assert(memcmp(t2.opt.m, t.opt.m, m.nparams * 4) == 0);
    cr_assert(memcmp(t2.opt.v, t.opt.v, m.nparams * 4) == 0);
    sn_trainer_free(&t2);

    cfg.lr = 0.002f; /* incompatible arguments are refused, naming the flag */
    cr_assert_eq(sn_trainer_create(&t2, &m2, &cfg, 100, NULL), SN_OK);
    cr_assert_neq(sn_checkpoint_load(&t2, p, &err), SN_OK);
    cr_assert(strstr(err.msg, "--lr") != NULL, "%s", err.msg);
    sn_trainer_free(&t2);
    /* A model file is not a checkpoint. */
    cr_assert_eq(sn_model_save(&m, p, NULL), SN_OK);
    cfg.lr = 0.001f;
    cr_assert_eq(sn_trainer_create(&t2, &m2, &cfg, 100, NULL), SN_OK);
    cr_assert_neq(sn_checkpoint_load(&t2, p, &err), SN_OK);
    cr_assert(strstr(err.msg, "expected a checkpoint") != NULL, "%s", err.msg);
    sn_trainer_free(&t2);
    sn_trainer_free(&t);
    sn_net_free(&m);
    sn_net_free(&m2);
}

/* Version 2's records: each layer's type and shape. A version 1 file (no records) still
 * loads, with the same weights; a layer type, a shape or a preprocessing record this
 * program does not know is refused by name. */
static void put32(unsigned char *d, uint32_t v)
{
    d[0] = (unsigned char)v, d[1] = (unsigned char)(v >> 8), d[2] = (unsigned char)(v >> 16), d[3] = (unsigned char)(v >> 24);
}

Test(modelfile, version_2_records_and_version_1_files)
{
    sn_net a, b;
    make_model(&a);
    const char *p = tu_path(tu_tmpdir(), "v2.bin");
    cr_assert_eq(sn_model_save(&a, p, NULL), SN_OK);
    size_t len;
    unsigned char *d = tu_read(p, &len);
    cr_assert_eq(d[8], 2, "written as version 2");
    /* The records after the 4 sizes (offset 36): nlayers, then type, nfields, in, out, relu. */
    const size_t rec = 36;
    cr_assert_eq(d[rec], 3);
    cr_assert_eq(d[rec + 4], 1, "layer 1 is dense");
    cr_assert_eq(d[rec + 12] | d[rec + 13] << 8, 784);
    cr_assert_eq(d[rec + 20], 1, "layer 1 has ReLU");
    cr_assert_eq(d[rec + 2 * 20 + 20], 0, "the last layer has none");

    unsigned char *bad = malloc(len);
    memcpy(bad, d, len);
    put32(bad + rec + 4, 7);
    expect_bad(bad, len, "type 7");
    memcpy(bad, d, len);
    put32(bad + rec + 12, 783);
    expect_bad(bad, len, "dense 783 -> 50");
    memcpy(bad, d, len);
    put32(bad + rec + 4 + 3 * 20, 1); /* one preprocessing record */
    expect_bad(bad, len, "preprocessing record");

    /* The same model as version 1: header and sizes, then the weights and a CRC. */
    const size_t head = 36, payload = len - (rec + 4 + 3 * 20 + 4) - 4;
    const size_t v1len = head + payload + 4;
    unsigned char *v1 = malloc(v1len);
    memcpy(v1, d, head);
    put32(v1 + 8, 1);
    memcpy(v1 + head, d + rec + 4 + 3 * 20 + 4, payload);
    put32(v1 + head + payload, (uint32_t)crc32(0L, v1 + 8, (uInt)(head + payload - 8)));
    const char *p1 = tu_path(tu_tmpdir(), "v1.bin");
    tu_write(p1, v1, v1len);
    sn_error err;
    cr_assert_eq(sn_model_load(&b, p1, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(b.nparams, a.nparams);
    cr_assert(memcmp(a.params, b.params, a.nparams * 4) == 0, "version 1 weights differ");
    /* Old models read images exactly as before: no deskew, no width limit. */
    cr_assert(!b.pre.deskew && b.pre.max_width == 0.0f && !sn_augment_active(&b.aug));
    free(d), free(bad), free(v1);
    sn_net_free(&a), sn_net_free(&b);
}

/* A net spec's layers survive a file: activation layers, their arguments (the slope,
 * bit-exact) and the weights; a checkpoint made with another net is refused naming both
 * nets; a slope or width a type cannot have is refused by name. */
Test(modelfile, any_net_round_trips)
{
    sn_layer layers[SN_MAX_LAYERS], other[SN_MAX_LAYERS];
    int nl, no;
    sn_error err;
    cr_assert_eq(sn_net_parse("784,dense:40,leaky:0.07,dense:20,leaky:0.2,relu,dense:10", layers, &nl, &err), SN_OK,
                 "%s", err.msg);
    sn_net a, b;
    cr_assert_eq(sn_net_create(&a, layers, nl, &err), SN_OK, "%s", err.msg);
    sn_rng r;
    sn_rng_seed(&r, 3);
    sn_net_init_he(&a, &r);
    const char *p = tu_path(tu_tmpdir(), "leaky.bin");
    cr_assert_eq(sn_model_save(&a, p, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(sn_model_load(&b, p, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(b.nlayers, nl);
    for (int l = 0; l < nl; l++)
        cr_assert(b.layer[l].ops == layers[l].ops && b.layer[l].in == layers[l].in &&
                  b.layer[l].out == layers[l].out && b.layer[l].relu == layers[l].relu &&
                  memcmp(&b.layer[l].arg, &layers[l].arg, 4) == 0, "layer %d differs after reload", l + 1);
    cr_assert_eq(b.nparams, a.nparams);
    cr_assert(memcmp(a.params, b.params, a.nparams * 4) == 0, "weights differ after reload");

    /* The leaky layer's record: type 3, 4 fields, slope as float bits. Offsets: magic 8,
     * version, kind, nsizes (7 sizes: 28 bytes) -> records at 8 + 12 + 28 = 48, then
     * nlayers; layer 1 (dense) is 5 words, so layer 2 starts at 48 + 4 + 20. */
    size_t len;
    unsigned char *d = tu_read(p, &len);
    const size_t leaky = 48 + 4 + 20;
    cr_assert_eq(d[leaky], 3, "leaky's file id");
    cr_assert_eq(d[leaky + 4], 4, "4 fields");
    put32(d + leaky + 20, 0x3fc00000u); /* slope 1.5 */
    const size_t crc_at = len - 4;
    put32(d + crc_at, (uint32_t)crc32(0L, d + 8, (uInt)(crc_at - 8)));
    expect_bad(d, len, "leaky slope 1.5");
    free(d);

    /* A checkpoint of this net does not resume another. */
    sn_train_config cfg = sn_train_defaults();
    sn_trainer t, t2;
    sn_net m2;
    cr_assert_eq(sn_trainer_create(&t, &a, &cfg, 100, NULL), SN_OK);
    const char *ck = tu_path(tu_tmpdir(), "leaky-ck.bin");
    cr_assert_eq(sn_checkpoint_save(&t, ck, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(sn_net_parse("784,dense:40,leaky:0.08,dense:20,leaky:0.2,relu,dense:10", other, &no, NULL), SN_OK);
    cr_assert_eq(sn_net_create(&m2, other, no, NULL), SN_OK);
    cr_assert_eq(sn_trainer_create(&t2, &m2, &cfg, 100, NULL), SN_OK);
    cr_assert_neq(sn_checkpoint_load(&t2, ck, &err), SN_OK);
    cr_assert(strstr(err.msg, "leaky:0.07") && strstr(err.msg, "leaky:0.08"), "%s", err.msg);
    sn_trainer_free(&t2), sn_trainer_free(&t);
    sn_net_free(&m2), sn_net_free(&a), sn_net_free(&b);
}

/* Preprocessing records (deskew, stroke width limit, augmentation): written only when
 * set, so a model without them is the bytes it always was; read back exactly; a
 * duplicated or out-of-range record refused. A checkpoint resumes only with the same
 * deskew and augmentation. */
Test(modelfile, preprocessing_records_round_trip)
{
    sn_net a, b;
    make_model(&a);
    const char *plain = tu_path(tu_tmpdir(), "plain.bin"), *p = tu_path(tu_tmpdir(), "pre.bin");
    cr_assert_eq(sn_model_save(&a, plain, NULL), SN_OK);
    a.pre.deskew = 1, a.pre.max_width = 3.37f;
    cr_assert_eq(sn_augment_parse("thick=1,rot=8@0.5", &a.aug, NULL), SN_OK);
    cr_assert_eq(sn_model_save(&a, p, NULL), SN_OK);
    size_t lp, lq;
    unsigned char *dp = tu_read(plain, &lp), *dq = tu_read(p, &lq);
    /* deskew: 8 bytes, width: 12, augmentation: 8 + 40. */
    cr_assert_eq(lq, lp + 8 + 12 + 48, "%zu vs %zu bytes", lq, lp);
    const size_t npre_at = 36 + 4 + 3 * 20;
    cr_assert_eq(dp[npre_at], 0, "no records without preprocessing");
    cr_assert_eq(dq[npre_at], 3);
    sn_error err;
    cr_assert_eq(sn_model_load(&b, p, &err), SN_OK, "%s", err.msg);
    cr_assert(b.pre.deskew == 1 && b.pre.max_width == 3.37f);
    cr_assert(memcmp(&b.aug, &a.aug, sizeof a.aug) == 0);
    sn_net_free(&b);
    /* The second record (the width) made a second deskew record: refused. */
    unsigned char *bad = malloc(lq);
    memcpy(bad, dq, lq);
    put32(bad + npre_at + 4 + 8, 1), put32(bad + npre_at + 4 + 12, 0);
    put32(bad + lq - 4, (uint32_t)crc32(0L, bad + 8, (uInt)(lq - 12)));
    expect_bad(bad, lq, "once");
    /* A width limit out of range. */
    memcpy(bad, dq, lq);
    const float huge = 99.0f;
    memcpy(bad + npre_at + 4 + 8 + 8, &huge, 4);
    put32(bad + lq - 4, (uint32_t)crc32(0L, bad + 8, (uInt)(lq - 12)));
    expect_bad(bad, lq, "stroke width limit");
    free(bad), free(dp), free(dq);
    sn_net_free(&a);

    /* Checkpoints: deskew and augmentation must match on resume. */
    int sizes[] = { 784, 20, 10 };
    sn_net m, m2;
    sn_trainer t, t2;
    sn_train_config cfg = sn_train_defaults();
    cr_assert_eq(sn_augment_parse("thick=1", &cfg.aug, NULL), SN_OK);
    cr_assert_eq(sn_net_create_mlp(&m, sizes, 3, NULL), SN_OK);
    m.pre.deskew = 1;
    cr_assert_eq(sn_trainer_create(&t, &m, &cfg, 100, NULL), SN_OK);
    const char *ck = tu_path(tu_tmpdir(), "ck.bin");
    cr_assert_eq(sn_checkpoint_save(&t, ck, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(sn_net_create_mlp(&m2, sizes, 3, NULL), SN_OK);
    m2.pre.deskew = 1;
    cr_assert_eq(sn_trainer_create(&t2, &m2, &cfg, 100, NULL), SN_OK);
    cr_assert_eq(sn_checkpoint_load(&t2, ck, &err), SN_OK, "%s", err.msg);
    sn_trainer_free(&t2);
    cr_assert_eq(sn_augment_parse("thick=0.5", &cfg.aug, NULL), SN_OK);
    cr_assert_eq(sn_trainer_create(&t2, &m2, &cfg, 100, NULL), SN_OK);
    cr_assert_neq(sn_checkpoint_load(&t2, ck, &err), SN_OK);
    cr_assert(strstr(err.msg, "--augment thick=1") && strstr(err.msg, "thick=0.5"), "%s", err.msg);
    sn_trainer_free(&t2);
    cr_assert_eq(sn_augment_parse("thick=1", &cfg.aug, NULL), SN_OK);
    m2.pre.deskew = 0;
    cr_assert_eq(sn_trainer_create(&t2, &m2, &cfg, 100, NULL), SN_OK);
    cr_assert_neq(sn_checkpoint_load(&t2, ck, &err), SN_OK);
    cr_assert(strstr(err.msg, "--deskew on") != NULL, "%s", err.msg);
    sn_trainer_free(&t2);
    sn_trainer_free(&t);
    sn_net_free(&m), sn_net_free(&m2);
}

/* The training record (type 4): provenance for `info`, round trip with its commit text;
 * a model without one loads with none. */
Test(modelfile, training_record_round_trip)
{
    sn_net a, b;
    make_model(&a);
    a.record = (sn_train_record){ .present = 1, .saved_at = 1764374400, .epochs = 20, .batch = 128, .opt = 1,
                                  .lr = 0.05f, .test_acc = 0.9833f };
    snprintf(a.record.commit, sizeof a.record.commit, "6dca4cf-dirty");
    const char *p = tu_path(tu_tmpdir(), "rec.bin");
    sn_error err;
    cr_assert_eq(sn_model_save(&a, p, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(sn_model_load(&b, p, &err), SN_OK, "%s", err.msg);
    cr_assert(b.record.present && b.record.saved_at == 1764374400 && b.record.epochs == 20 && b.record.batch == 128 &&
              b.record.opt == 1 && b.record.lr == 0.05f && b.record.test_acc == 0.9833f);
    cr_assert_str_eq(b.record.commit, "6dca4cf-dirty");
    cr_assert(memcmp(a.params, b.params, a.nparams * 4) == 0);
    sn_net_free(&b);
    /* A truncated record (its length says less than the fixed part) is refused. */
    size_t len;
    unsigned char *d = tu_read(p, &len);
    const size_t rec = 36 + 4 + 3 * 20 + 4; /* after npre: type, nbytes */
    cr_assert_eq(d[rec], 4);
    put32(d + rec + 4, 20);
    put32(d + len - 4, (uint32_t)crc32(0L, d + 8, (uInt)(len - 12)));
    expect_bad(d, len, "expected 28 once");
    free(d);
    a.record.present = 0;
    cr_assert_eq(sn_model_save(&a, p, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(sn_model_load(&b, p, &err), SN_OK, "%s", err.msg);
    cr_assert(!b.record.present);
    sn_net_free(&a), sn_net_free(&b);
}
