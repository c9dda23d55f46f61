/*
 * gemm.cu: row-major C = alpha op(A) op(B) + beta C on cuBLAS, in FP32.
 *
 * The one place where row-major meets cuBLAS's column-major. A row-major
 * (r, c) matrix with leading dimension ld is, read column-major, the (c, r)
 * matrix of its transpose with the same ld. So row-major
 *     C(M,N) = op(A)(M,K) op(B)(K,N)
 * is column-major
 *     C^T(N,M) = op(B)^T(N,K) op(A)^T(K,M),
 * where the column-major view of B is B^T: op(B)^T is that view untransposed
 * when trans_b == 0, transposed when trans_b != 0 (and likewise for A). Hence
 *     cublasSgemm(h, opB, opA, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc).
 *
 * Precision: the handle's math mode, set in cuda_backend.cu: CUBLAS_DEFAULT_MATH
 * (FP32, the default), or CUBLAS_TF32_TENSOR_OP_MATH after vae_cuda_set_tf32
 * (--tf32), under which cublasSgemm may round A and B to TF32 (10 mantissa
 * bits) for the tensor cores and still sums in FP32. Nothing else changes here.
 *
 * Not here: any host-side copy: every pointer is device memory. alpha and beta
 * are passed by host pointer, which a graph capture records by value.
 */
#include "cuda_common.cuh"

extern "C" void cuda_gemm(vae_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M < 0 || N < 0 || K < 0)
        vae_fatal("gemm: negative shape M=%d N=%d K=%d", M, N, K);
    if (M == 0 || N == 0)
        return;
    /* Row-major leading dimensions: each stored row must hold its columns. */
    const int a_cols = trans_a ? M : K; /* A is (K, lda>=M) transposed, (M, lda>=K) not */
    const int b_cols = trans_b ? K : N; /* B is (N, ldb>=K) transposed, (K, ldb>=N) not */
    if (lda < (a_cols > 1 ? a_cols : 1) || ldb < (b_cols > 1 ? b_cols : 1) || ldc < N)
        vae_fatal("gemm: leading dimension too small: trans_a=%d trans_b=%d M=%d N=%d K=%d "
                  "lda=%d (needs >= %d) ldb=%d (needs >= %d) ldc=%d (needs >= %d)",
                  trans_a, trans_b, M, N, K, lda, a_cols, ldb, b_cols, ldc, N);

    const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasSgemm(cuda_ctx_of(be)->cublas, op_b, op_a, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
}
