/* The algorithmic reference for every tuned kernel: plain loops in the textbook order,
 * accumulated in double so that it is a better oracle than any float kernel. */
#include "scratchnet/gemm.h"

/* C[i][j] = beta * C[i][j] + s, then the epilogue (sn_epilogue's order). */
static void ref_store(float *C, int ldc, int i, int j, double s, float beta, const sn_epilogue *ep)
{
    float *c = &C[(size_t)i * ldc + j];
    float v = (float)(beta != 0.0f ? (double)beta * *c + s : s);
    if (ep) {
        if (ep->bias) v += ep->bias[j];
        if (ep->relu && v < 0.0f) v = 0.0f;
        if (ep->mask && !(ep->mask[(size_t)i * ep->ldmask + j] > 0.0f)) v = 0.0f;
    }
    *c = v;
}

static void ref_done(float *C, int ldc, int m, int n, const sn_epilogue *ep)
{
    if (ep && ep->done)
        for (int i = 0; i < m; i++) ep->done(ep->user, C + (size_t)i * ldc, n);
}

void sn_gemm_ref(sn_trans ta, sn_trans tb, int m, int n, int k,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc, const sn_epilogue *ep)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++) {
                float a = ta == SN_N ? A[(size_t)i * lda + p] : A[(size_t)p * lda + i];
                float b = tb == SN_N ? B[(size_t)p * ldb + j] : B[(size_t)j * ldb + p];
                s += (double)a * (double)b;
            }
            ref_store(C, ldc, i, j, s, beta, ep);
        }
    ref_done(C, ldc, m, n, ep);
}

void sn_gemm_gathered_ref(int m, int n, int k, const float *A, const int *roff, const int *koff, const float *B,
                          int ldb, float beta, float *C, int ldc, const sn_epilogue *ep)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++) s += (double)A[roff[i] + koff[p]] * (double)B[(size_t)p * ldb + j];
            ref_store(C, ldc, i, j, s, beta, ep);
        }
    ref_done(C, ldc, m, n, ep);
}
