/*
 * emu_cublas.cpp: the emulated device's cublasSgemm and the handle calls around it
 * (tests/cuda_emu/include/cublas_v2.h says what is kept of cuBLAS's contract).
 *
 *   C(m, n) = alpha op(A)(m, k) op(B)(k, n) + beta C        column-major, as cuBLAS
 *   op(A)(i, p) = A[i + p lda] (N) or A[p + i lda] (T)     and likewise for B
 *
 * The product is a reference GEMM: each element sums its k products in order in FP32
 * (no FMA contraction: the emulated build has none), which is neither cuBLAS's order nor
 * the CPU backend's oneDNN, so a CPU-against-emulator comparison still meets a different
 * summation, as it does on a GPU. Queued on the handle's stream like a kernel.
 */
#include "cublas_v2.h"

#include "emu_internal.h"

#include <cstdio>
#include <cstring>
#include <vector>

struct cuda_emu_cublas {
    cudaStream_t stream;
    cublasMath_t math;
    cublasPointerMode_t pointer_mode;
};

namespace {

/* Round to TF32: 10 explicit mantissa bits, to nearest, ties to even (NaN and infinity kept). */
float round_tf32(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u)
        return x;
    const uint32_t lsb = (u >> 13) & 1u;
    u += 0xfffu + lsb;
    u &= ~0x1fffu;
    memcpy(&x, &u, 4);
    return x;
}

/* op(M)(r, c) for r < rows, c < cols into out (rows x cols, column-major, ld = rows). */
void gather_op(std::vector<float> &out, const float *M, int ld, int trans, int rows, int cols, int tf32)
{
    out.resize((size_t)rows * (size_t)cols);
    for (int c = 0; c < cols; c++)
        for (int r = 0; r < rows; r++) {
            const float v = trans ? M[(size_t)c + (size_t)r * (size_t)ld] : M[(size_t)r + (size_t)c * (size_t)ld];
            out[(size_t)r + (size_t)c * (size_t)rows] = tf32 ? round_tf32(v) : v;
        }
}

void sgemm_run(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc, int tf32)
{
    std::vector<float> a, b, acc((size_t)m);
    gather_op(a, A, lda, ta, m, k, tf32); /* (m, k) */
    gather_op(b, B, ldb, tb, k, n, tf32); /* (k, n) */
    for (int j = 0; j < n; j++) {
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int p = 0; p < k; p++) {
            const float bv = b[(size_t)p + (size_t)j * (size_t)k];
            const float *ap = &a[(size_t)p * (size_t)m];
            for (int i = 0; i < m; i++)
                acc[(size_t)i] += ap[i] * bv;
        }
        float *cj = C + (size_t)j * (size_t)ldc;
        for (int i = 0; i < m; i++)
            cj[i] = beta == 0.0f ? alpha * acc[(size_t)i] : alpha * acc[(size_t)i] + beta * cj[i];
    }
}

} // namespace

extern "C" {

cublasStatus_t cublasCreate(cublasHandle_t *handle)
{
    *handle = new cuda_emu_cublas{nullptr, CUBLAS_DEFAULT_MATH, CUBLAS_POINTER_MODE_HOST};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle)
{
    if (handle == nullptr)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream)
{
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void *workspace, size_t bytes)
{
    (void)handle;
    if (bytes > 0 && !cuda_emu_is_device_range(workspace, bytes))
        return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)
{
    if (mode != CUBLAS_DEFAULT_MATH && mode != CUBLAS_TF32_TENSOR_OP_MATH)
        return CUBLAS_STATUS_INVALID_VALUE;
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode)
{
    handle->pointer_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetAtomicsMode(cublasHandle_t handle, cublasAtomicsMode_t mode)
{
    (void)handle;
    (void)mode; /* the reference GEMM has no atomics either way */
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetProperty(libraryPropertyType type, int *value)
{
    /* The cuBLAS API version the emulation follows (13.0). */
    *value = type == MAJOR_VERSION ? 13 : 0;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t status)
{
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

const char *cublasGetStatusString(cublasStatus_t status)
{
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument (the emulator "
                                             "printed which above)";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    default: return cublasGetStatusName(status);
    }
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                           const float *beta, float *C, int ldc)
{
    if (handle == nullptr)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    const int ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    const int a_rows = ta ? k : m, b_rows = tb ? n : k; /* the stored (column-major) rows */
    if (m < 0 || n < 0 || k < 0 || lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) ||
        ldc < (m > 1 ? m : 1)) {
        fprintf(stderr, "cuda emulator: cublasSgemm(%c, %c, m=%d, n=%d, k=%d, lda=%d, ldb=%d, ldc=%d): a bad shape or "
                        "leading dimension\n", ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, lda, ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (handle->pointer_mode != CUBLAS_POINTER_MODE_HOST)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m == 0 || n == 0)
        return CUBLAS_STATUS_SUCCESS;
    /* The stored extent of each operand: its last column's start plus its rows. */
    const size_t a_bytes = k == 0 ? 0 : ((size_t)lda * (size_t)((ta ? m : k) - 1) + (size_t)a_rows) * 4;
    const size_t b_bytes = k == 0 ? 0 : ((size_t)ldb * (size_t)((tb ? k : n) - 1) + (size_t)b_rows) * 4;
    const size_t c_bytes = ((size_t)ldc * (size_t)(n - 1) + (size_t)m) * 4;
    if ((a_bytes && !cuda_emu_is_device_range(A, a_bytes)) || (b_bytes && !cuda_emu_is_device_range(B, b_bytes)) ||
        !cuda_emu_is_device_range(C, c_bytes)) {
        fprintf(stderr, "cuda emulator: cublasSgemm: an operand is not (wholly) in device memory: A %p (%zu bytes), "
                        "B %p (%zu bytes), C %p (%zu bytes)\n", (const void *)A, a_bytes, (const void *)B, b_bytes,
                (void *)C, c_bytes);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    const float al = *alpha, be = *beta; /* host pointers, read now: a capture records the values */
    const int tf32 = handle->math == CUBLAS_TF32_TENSOR_OP_MATH;
    cudaError_t err = cuda_emu_issue_kernel(handle->stream, "cublasSgemm", [=]() {
        sgemm_run(ta, tb, m, n, k, al, A, lda, B, ldb, be, C, ldc, tf32);
    });
    return err == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

} /* extern "C" */
