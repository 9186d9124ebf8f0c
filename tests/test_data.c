/* IDX reader on good and bad fixtures (made here, in a temporary directory), the
 * committed gzip subset, and batch assembly. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/data.h"
#include "test_util.h"

static int load_pair(const char *dir, const void *img, size_t ilen, const void *lab, size_t llen,
                     int gz, sn_dataset *ds, sn_error *err)
{
    const char *ip = tu_path(dir, gz ? "img.gz" : "img"), *lp = tu_path(dir, gz ? "lab.gz" : "lab");
    if (gz) tu_write_gz(ip, img, ilen), tu_write_gz(lp, lab, llen);
    else tu_write(ip, img, ilen), tu_write(lp, lab, llen);
    return sn_dataset_load(ds, ip, lp, err);
}

Test(idx, good_raw_and_gzip_agree)
{
    size_t il, ll;
    unsigned char *img = tu_idx_images(5, 28, 28, &il), *lab = tu_idx_labels(5, &ll);
    sn_dataset a, b;
    sn_error err;
    cr_assert_eq(load_pair(tu_tmpdir(), img, il, lab, ll, 0, &a, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(load_pair(tu_tmpdir(), img, il, lab, ll, 1, &b, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(a.count, 5);
    cr_assert_eq(b.count, 5);
    cr_assert(memcmp(a.images, img + 16, 5 * 784) == 0);
    cr_assert(memcmp(a.images, b.images, 5 * 784) == 0);
    cr_assert(memcmp(a.labels, b.labels, 5) == 0);
    cr_assert_eq(a.labels[3], 3);
    sn_dataset_free(&a);
    sn_dataset_free(&b);
    free(img), free(lab);
}

static void expect_refusal(const unsigned char *img, size_t il, const unsigned char *lab, size_t ll,
                           int gz, const char *needle)
{
    sn_dataset ds;
    sn_error err = { 0 };
    int rc = load_pair(tu_tmpdir(), img, il, lab, ll, gz, &ds, &err);
    cr_assert_neq(rc, SN_OK, "accepted a bad file (expected: %s)", needle);
    cr_assert(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    cr_assert(strstr(err.msg, "img") || strstr(err.msg, "lab"), "message must name the file: %s", err.msg);
}

Test(idx, truncated_images_refused_raw_and_gzip)
{
    size_t il, ll;
    unsigned char *img = tu_idx_images(5, 28, 28, &il), *lab = tu_idx_labels(5, &ll);
    expect_refusal(img, il - 100, lab, ll, 0, "truncated");
    expect_refusal(img, il - 100, lab, ll, 1, "truncated");
    expect_refusal(img, 10, lab, ll, 0, "truncated"); /* inside the header */
    free(img), free(lab);
}

Test(idx, wrong_magic_refused)
{
    size_t il, ll;
    unsigned char *img = tu_idx_images(5, 28, 28, &il), *lab = tu_idx_labels(5, &ll);
    img[3] = 0x04; /* 2052 */
    expect_refusal(img, il, lab, ll, 0, "magic");
    img[3] = 0x03;
    free(lab);
    lab = tu_idx_labels(20, &ll);
    expect_refusal(lab, ll, lab, ll, 0, "magic"); /* labels where images belong */
    free(img), free(lab);
}

Test(idx, count_mismatch_refused)
{
    size_t il, ll;
    unsigned char *img = tu_idx_images(5, 28, 28, &il), *lab = tu_idx_labels(4, &ll);
    expect_refusal(img, il, lab, ll, 0, "has 5 images but");
    free(img), free(lab);
}

Test(idx, label_out_of_range_refused)
{
    size_t il, ll;
    unsigned char *img = tu_idx_images(5, 28, 28, &il), *lab = tu_idx_labels(5, &ll);
    lab[8 + 2] = 10;
    expect_refusal(img, il, lab, ll, 1, "label 2 is 10");
    free(img), free(lab);
}

Test(idx, wrong_dimensions_and_hostile_headers_refused)
{
    size_t il, ll;
    unsigned char *img = tu_idx_images(5, 20, 20, &il), *lab = tu_idx_labels(5, &ll);
    expect_refusal(img, il, lab, ll, 0, "expected 28x28");
    free(img);
    img = tu_idx_images(5, 28, 28, &il);
    /* 0xFFFFFFFF images: must be refused from the header, not allocated. */
    img[4] = img[5] = img[6] = img[7] = 0xFF;
    expect_refusal(img, il, lab, ll, 0, "implausible");
    expect_refusal(img, il, lab, ll, 1, "implausible");
    /* A plausible count that the data does not back: gzip must fail as truncated
     * after reading what is there, never allocate the promised size up front. */
    img[4] = 0x00, img[5] = 0x98, img[6] = 0x96, img[7] = 0x80; /* 10,000,000 */
    expect_refusal(img, il, lab, ll, 1, "truncated");
    free(img), free(lab);
}

Test(idx, trailing_bytes_refused)
{
    size_t il, ll;
    unsigned char *img = tu_idx_images(5, 28, 28, &il), *lab = tu_idx_labels(5, &ll);
    expect_refusal(img, il, lab, ll - 1, 0, "truncated");
    unsigned char *longer = calloc(ll + 3, 1);
    memcpy(longer, lab, ll);
    expect_refusal(img, il, longer, ll + 3, 0, "longer");
    expect_refusal(img, il, longer, ll + 3, 1, "longer");
    free(img), free(lab), free(longer);
}

Test(idx, corrupt_gzip_refused)
{
    size_t il, ll;
    unsigned char *img = tu_idx_images(50, 28, 28, &il), *lab = tu_idx_labels(50, &ll);
    const char *dir = tu_tmpdir();
    tu_write_gz(tu_path(dir, "img.gz"), img, il);
    size_t gl;
    unsigned char *gz = tu_read(tu_path(dir, "img.gz"), &gl);
    cr_assert_not_null(gz);
    for (size_t i = gl / 3; i < gl / 3 + 64; i++) gz[i] ^= 0x5a; /* scramble the deflate stream */
    tu_write(tu_path(dir, "img.gz"), gz, gl);
    uint8_t *px;
    int count, rows, cols;
    sn_error err;
    cr_assert_neq(sn_idx_read_images(tu_path(dir, "img.gz"), &px, &count, &rows, &cols, &err), SN_OK);
    cr_assert(strstr(err.msg, "img.gz") != NULL, "%s", err.msg);
    free(gz), free(img), free(lab);
}

Test(idx, missing_file_named)
{
    sn_dataset ds;
    sn_error err;
    cr_assert_eq(sn_dataset_load(&ds, "/nonexistent/imgs", "/nonexistent/labs", &err), SN_EIO);
    cr_assert(strstr(err.msg, "/nonexistent/imgs") != NULL, "%s", err.msg);
}

Test(mnist, committed_subset_loads_and_gathers)
{
    sn_dataset tr, te;
    sn_error err;
    cr_assert(sn_mnist_present(TU_SUBSET), "subset missing in %s", TU_SUBSET);
    cr_assert_eq(sn_mnist_load(&tr, TU_SUBSET, SN_SPLIT_TRAIN, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(sn_mnist_load(&te, TU_SUBSET, SN_SPLIT_TEST, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(tr.count, 3000);
    cr_assert_eq(te.count, 1000);
    cr_assert_eq(tr.labels[0], 5, "the first MNIST training digit is a 5");
    cr_assert_eq(te.labels[0], 7, "the first MNIST test digit is a 7");
    int idx[2] = { 1, 0 };
    float x[2 * 784];
    uint8_t y[2];
    sn_batch_gather(&tr, idx, 0, 2, x, y);
    cr_assert_eq(y[0], tr.labels[1]);
    cr_assert_eq(y[1], 5);
    for (int p = 0; p < 784; p++) {
        cr_assert_float_eq(x[784 + p], tr.images[p] / 255.0f, 1e-7);
        cr_assert(x[p] >= 0.0f && x[p] <= 1.0f);
    }
    sn_dataset_free(&tr);
    sn_dataset_free(&te);
}
