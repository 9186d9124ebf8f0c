/* The n-vectorised microkernel body, included by kernel_template.h once per variant.
 * The includer defines RV_NAME, RV_MR (rows), RV_NV (vectors of VL columns) and
 * RV_A(A, lda, i, p), the address of op(A)[i][p].
 *   C (RV_MR x RV_NV*VL, ldc) (+)= op(A) (RV_MR x k) * B (k x RV_NV*VL, rows ldb apart)
 * then the tile epilogue. Loops over the tile have constant trip counts and are fully
 * unrolled: the accumulators live in registers. No include guard: included twice. */
static void RV_NAME(int k, const float *restrict A, int lda, const float *restrict B, int ldb, float *restrict C,
                    int ldc, int accumulate, const sn_tile_ep *ep)
{
    vec acc[RV_MR][RV_NV];
#pragma GCC unroll 16
    for (int i = 0; i < RV_MR; i++)
#pragma GCC unroll 8
        for (int v = 0; v < RV_NV; v++)
            acc[i][v] = VZERO();

    for (int p = 0; p < k; p++) {
        vec b[RV_NV];
#pragma GCC unroll 8
        for (int v = 0; v < RV_NV; v++)
            b[v] = VLOAD(B + (size_t)p * ldb + v * VL);
#pragma GCC unroll 16
        for (int i = 0; i < RV_MR; i++) {
            vec a = VBCAST(RV_A(A, lda, i, p));
#pragma GCC unroll 8
            for (int v = 0; v < RV_NV; v++)
                acc[i][v] = VFMA(a, b[v], acc[i][v]);
        }
    }

#pragma GCC unroll 16
    for (int i = 0; i < RV_MR; i++)
#pragma GCC unroll 8
        for (int v = 0; v < RV_NV; v++) {
            float *c = C + (size_t)i * ldc + v * VL;
            vec r = accumulate ? VADD(acc[i][v], VLOAD(c)) : acc[i][v];
            if (ep) EP_VECTOR(ep, r, i, v * VL, VLOAD);
            VSTORE(c, r);
        }
}

#undef RV_NAME
#undef RV_MR
#undef RV_NV
#undef RV_A
