/*
 * test_cuda_emu.cpp: the emulated device's own tests (emulated build only): that it
 * executes CUDA's model and refuses what the hardware refuses, with small kernels of
 * its own written here, launched through the same CUDA_LAUNCH as kernels/.
 *
 * Each case runs in its own process (Criterion's default), so a case that makes a kernel
 * fail (a sticky error, as on a GPU) leaves the next one a fresh device.
 *   execution: every thread and block runs once, barriers order shared memory, shuffles
 *     exchange, blocks run in an order that changes from launch to launch;
 *   breaches: a barrier or shuffle not every thread reaches, a block that is not a
 *     multiple of 32 under a full-mask shuffle, divergent barriers, refused launch
 *     configurations, host pointers as kernel arguments, writes past a buffer;
 *   memory: new buffers and shared memory hold NaN, work runs at the synchronization
 *     (a copy read before it is stale);
 *   graphs: a replay reads device memory as it is at the replay; what a capture refuses;
 *   cuBLAS: cublasSgemm against a double reference on odd shapes, every transpose, padded
 *     leading dimensions, and beta = 0 not reading C; TF32 rounds the inputs;
 *   devices: listing them (`cuvae devices`) leaves the backend's device current.
 */
#include "cuda_common.cuh"

#include "backend.h"
#include "vae_util.h"

#include <criterion/criterion.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <vector>

#define CHECK(call) cr_assert_eq((call), cudaSuccess, "%s failed", #call)

template <typename T>
static T *dev_alloc(size_t n)
{
    T *p = nullptr;
    CHECK(cudaMalloc(&p, n * sizeof(T)));
    return p;
}

template <typename T>
static std::vector<T> download(const T *d, size_t n)
{
    std::vector<T> h(n);
    CHECK(cudaMemcpyAsync(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost, nullptr));
    CHECK(cudaStreamSynchronize(nullptr));
    return h;
}

template <typename T>
static void upload(T *d, const std::vector<T> &h)
{
    CHECK(cudaMemcpyAsync(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, nullptr));
    CHECK(cudaStreamSynchronize(nullptr));
}

/* ---- execution ------------------------------------------------------------------ */

/* out[global thread] = its block's sum of threadIdx.x, through shared memory and two barriers. */
static __global__ void block_total_kernel(int *out)
{
    __shared__ int v[256];
    v[threadIdx.x] = (int)threadIdx.x;
    __syncthreads();
    int s = 0;
    for (unsigned int i = 0; i < blockDim.x; i++)
        s += v[i];
    __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}

Test(emu_exec, every_thread_runs_and_barriers_order_shared_memory)
{
    const int blocks = 5, threads = 256;
    int *d = dev_alloc<int>(blocks * threads);
    CUDA_LAUNCH(block_total_kernel, blocks, threads, 0, nullptr)(d);
    CHECK(cudaGetLastError());
    std::vector<int> h = download(d, blocks * threads);
    for (int i = 0; i < blocks * threads; i++)
        cr_assert_eq(h[(size_t)i], threads * (threads - 1) / 2, "thread %d saw %d", i, h[(size_t)i]);
}

static __global__ void warp_sum_kernel(float *out, const float *in)
{
    const float s = warp_sum(in[threadIdx.x]);
    out[threadIdx.x] = __shfl_sync(0xffffffffu, s, 5);
}

Test(emu_exec, shuffles_exchange_among_the_lanes)
{
    float *in = dev_alloc<float>(64), *out = dev_alloc<float>(64);
    std::vector<float> h(64);
    for (int i = 0; i < 64; i++)
        h[(size_t)i] = (float)i;
    upload(in, h);
    CUDA_LAUNCH(warp_sum_kernel, 1, 64, 0, nullptr)(out, in);
    std::vector<float> r = download(out, 64);
    for (int i = 0; i < 64; i++)
        cr_assert_eq(r[(size_t)i], i < 32 ? 496.0f : 1520.0f, "lane %d got %g", i, r[(size_t)i]);
}

/* Thread 0 of each block takes a ticket: the order in which the blocks ran. */
static __global__ void ticket_kernel(int *order, int *counter)
{
    if (threadIdx.x != 0)
        return;
    int t = *counter;
    for (int seen; (seen = atomicCAS(counter, t, t + 1)) != t;)
        t = seen;
    order[blockIdx.x] = t;
}

Test(emu_exec, blocks_run_once_each_in_an_order_that_changes)
{
    const int blocks = 64;
    int *order = dev_alloc<int>(blocks), *counter = dev_alloc<int>(1);
    std::vector<std::vector<int>> runs;
    for (int r = 0; r < 2; r++) {
        CHECK(cudaMemsetAsync(counter, 0, sizeof(int), nullptr));
        CUDA_LAUNCH(ticket_kernel, blocks, 32, 0, nullptr)(order, counter);
        runs.push_back(download(order, blocks));
        std::vector<int> seen(blocks, 0);
        for (int b = 0; b < blocks; b++) {
            cr_assert(runs[r][(size_t)b] >= 0 && runs[r][(size_t)b] < blocks);
            seen[(size_t)runs[r][(size_t)b]]++;
        }
        for (int t = 0; t < blocks; t++)
            cr_assert_eq(seen[(size_t)t], 1, "ticket %d taken %d times", t, seen[(size_t)t]);
    }
    int identity = 1;
    for (int b = 0; b < blocks; b++)
        identity &= runs[0][(size_t)b] == b;
    cr_expect(!identity, "the blocks ran in index order");
    cr_expect(runs[0] != runs[1], "two launches ran their blocks in the same order");
}

/* ---- breaches ---------------------------------------------------------------------- */

static __global__ void partial_barrier_kernel(int *out)
{
    if (threadIdx.x < 16)
        __syncthreads(); /* the other threads exit: a real GPU may hang or misbehave */
    out[threadIdx.x] = 1;
}

static __global__ void divergent_barrier_kernel(int *out)
{
    if (threadIdx.x & 1)
        __syncthreads();
    else
        __syncthreads();
    out[threadIdx.x] = 1;
}

static __global__ void partial_shuffle_kernel(float *out)
{
    float v = (float)threadIdx.x;
    if (threadIdx.x != 3)
        v = __shfl_xor_sync(0xffffffffu, v, 1); /* lane 3 never arrives */
    out[threadIdx.x] = v;
}

static __global__ void full_mask_shuffle_kernel(float *out)
{
    out[threadIdx.x] = warp_sum((float)threadIdx.x);
}

/* The launch is accepted; the fault shows at the synchronization, sticky, as on a GPU. */
static void expect_launch_failure(void)
{
    cr_assert_eq(cudaStreamSynchronize(nullptr), cudaErrorLaunchFailure);
    cr_assert_eq(cudaDeviceSynchronize(), cudaErrorLaunchFailure, "the failure is not sticky");
}

Test(emu_breach, a_barrier_that_part_of_the_block_never_reaches_fails)
{
    int *d = dev_alloc<int>(64);
    CUDA_LAUNCH(partial_barrier_kernel, 1, 64, 0, nullptr)(d);
    CHECK(cudaGetLastError());
    expect_launch_failure();
}

Test(emu_breach, barriers_in_divergent_code_fail)
{
    int *d = dev_alloc<int>(64);
    CUDA_LAUNCH(divergent_barrier_kernel, 1, 64, 0, nullptr)(d);
    expect_launch_failure();
}

Test(emu_breach, a_shuffle_that_a_lane_of_its_mask_never_reaches_fails)
{
    float *d = dev_alloc<float>(32);
    CUDA_LAUNCH(partial_shuffle_kernel, 1, 32, 0, nullptr)(d);
    expect_launch_failure();
}

Test(emu_breach, a_full_mask_shuffle_in_a_block_of_48_threads_fails)
{
    float *d = dev_alloc<float>(48);
    CUDA_LAUNCH(full_mask_shuffle_kernel, 1, 48, 0, nullptr)(d);
    expect_launch_failure();
}

Test(emu_breach, launch_configurations_the_hardware_refuses_are_refused)
{
    int *d = dev_alloc<int>(64);
    CUDA_LAUNCH(block_total_kernel, 1, 1025, 0, nullptr)(d);
    cr_assert_eq(cudaGetLastError(), cudaErrorInvalidConfiguration, "1025 threads per block");
    CUDA_LAUNCH(block_total_kernel, 1, dim3(32, 32, 2), 0, nullptr)(d);
    cr_assert_eq(cudaGetLastError(), cudaErrorInvalidConfiguration, "32 x 32 x 2 threads");
    CUDA_LAUNCH(block_total_kernel, dim3(1, 65536), 32, 0, nullptr)(d);
    cr_assert_eq(cudaGetLastError(), cudaErrorInvalidConfiguration, "gridDim.y 65536");
    CUDA_LAUNCH(block_total_kernel, 0, 32, 0, nullptr)(d);
    cr_assert_eq(cudaGetLastError(), cudaErrorInvalidConfiguration, "an empty grid");
    CUDA_LAUNCH(block_total_kernel, 1, 32, 64 * 1024, nullptr)(d);
    cr_assert_eq(cudaGetLastError(), cudaErrorInvalidValue, "64 KiB of dynamic shared memory");
    CHECK(cudaGetLastError()); /* not sticky: the device still works */
    CUDA_LAUNCH(block_total_kernel, 1, 32, 0, nullptr)(d);
    CHECK(cudaStreamSynchronize(nullptr));
}

Test(emu_breach, a_host_pointer_as_a_kernel_argument_fails)
{
    static int host[64];
    CUDA_LAUNCH(block_total_kernel, 1, 32, 0, nullptr)(host);
    cr_assert_eq(cudaStreamSynchronize(nullptr), cudaErrorIllegalAddress);
}

static __global__ void write_at_kernel(float *x, long long i)
{
    x[i] = 1.0f;
}

#if defined(__SANITIZE_ADDRESS__)
/* Under ASan the guard bytes are poisoned: ASan itself reports the write and exits 1. */
Test(emu_breach, a_write_just_past_a_buffer_is_caught, .exit_code = 1)
#else
Test(emu_breach, a_write_just_past_a_buffer_is_caught)
#endif
{
    float *x = dev_alloc<float>(100); /* 400 bytes in a 512-byte span: index 100 hits guard bytes */
    CUDA_LAUNCH(write_at_kernel, 1, 1, 0, nullptr)(x, 100LL);
    cr_assert_eq(cudaStreamSynchronize(nullptr), cudaErrorIllegalAddress);
}

Test(emu_breach, a_write_before_a_buffer_is_caught)
{
#if defined(__SANITIZE_ADDRESS__)
    cr_skip_test("under ASan this write is ASan's to report (a_write_just_past_a_buffer_is_caught shows it)");
#endif
    float *x = dev_alloc<float>(64);
    CUDA_LAUNCH(write_at_kernel, 1, 1, 0, nullptr)(x, -3LL);
    cr_assert_eq(cudaStreamSynchronize(nullptr), cudaErrorIllegalAddress);
}

#if defined(__SANITIZE_ADDRESS__)
/* ASan takes the fault, reports it and exits 1. */
Test(emu_breach, a_write_a_page_past_a_buffer_faults, .exit_code = 1)
#else
Test(emu_breach, a_write_a_page_past_a_buffer_faults, .signal = SIGSEGV)
#endif
{
    float *x = dev_alloc<float>(64);
    CUDA_LAUNCH(write_at_kernel, 1, 1, 0, nullptr)(x, 64LL + 512); /* into the no-access page after it */
    cudaStreamSynchronize(nullptr);
}

/* ---- memory and ordering -------------------------------------------------------------- */

static __global__ void read_shared_first_kernel(float *out)
{
    __shared__ float s[32];
    out[blockIdx.x * 32 + threadIdx.x] = s[threadIdx.x]; /* never written: undefined */
    __syncthreads();
    s[threadIdx.x] = 1.0f; /* the next block must not see this */
}

Test(emu_memory, new_buffers_and_shared_memory_hold_nan)
{
    float *x = dev_alloc<float>(96);
    std::vector<float> h = download(x, 96);
    for (float v : h)
        cr_assert(std::isnan(v), "a new buffer holds %g", v);
    CUDA_LAUNCH(read_shared_first_kernel, 3, 32, 0, nullptr)(x);
    h = download(x, 96);
    for (float v : h)
        cr_assert(std::isnan(v), "shared memory read before any write gave %g", v);
}

Test(emu_memory, work_runs_at_the_synchronization_so_a_missing_one_shows)
{
    float *x = dev_alloc<float>(4);
    std::vector<float> ones(4, 1.0f), h(4, 7.0f);
    upload(x, ones);
    CHECK(cudaMemcpyAsync(h.data(), x, sizeof(float) * 4, cudaMemcpyDeviceToHost, nullptr));
    cr_assert_eq(h[0], 7.0f, "the copy ran before any synchronization");
    CHECK(cudaStreamSynchronize(nullptr));
    cr_assert_eq(h[0], 1.0f);
}

/* ---- graphs ------------------------------------------------------------------------------ */

static __global__ void scale_kernel(float *y, const float *x, const float *scale, int n)
{
    const int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n)
        y[i] = x[i] * *scale;
}

Test(emu_graph, a_replay_reads_device_memory_as_it_is_at_the_replay)
{
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    float *x = dev_alloc<float>(40), *y = dev_alloc<float>(40), *scale = dev_alloc<float>(1);
    upload(x, std::vector<float>(40, 3.0f));
    upload(scale, std::vector<float>(1, 2.0f));
    cudaGraph_t g;
    cudaGraphExec_t exec;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    CUDA_LAUNCH(scale_kernel, 2, 32, 0, s)(y, x, scale, 40);
    CHECK(cudaStreamEndCapture(s, &g));
    std::vector<float> h = download(y, 40);
    cr_assert(std::isnan(h[0]), "a captured launch ran during the capture");
    CHECK(cudaGraphInstantiate(&exec, g, 0));
    size_t n = 0;
    enum cudaGraphNodeType type;
    cudaGraphNode_t node;
    CHECK(cudaGraphGetNodes(g, nullptr, &n));
    cr_assert_eq(n, 1);
    CHECK(cudaGraphGetNodes(g, &node, &n));
    CHECK(cudaGraphNodeGetType(node, &type));
    cr_assert_eq(type, cudaGraphNodeTypeKernel);
    for (float k : {2.0f, 5.0f}) {
        upload(scale, std::vector<float>(1, k));
        CHECK(cudaGraphLaunch(exec, s));
        CHECK(cudaStreamSynchronize(s));
        h = download(y, 40);
        for (float v : h)
            cr_assert_eq(v, 3.0f * k, "replay with scale %g gave %g", k, v);
    }
    CHECK(cudaGraphExecDestroy(exec));
    CHECK(cudaGraphDestroy(g));
}

Test(emu_graph, a_capture_refuses_what_a_real_one_refuses)
{
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    float *x = dev_alloc<float>(4), host[4];
    cudaGraph_t g;
    struct {
        const char *what;
        int kind;
    } cases[] = {{"cudaMalloc", 0}, {"cudaStreamSynchronize", 1}, {"a copy to host memory", 2}, {"cudaFree", 3}};
    for (const auto &c : cases) {
        CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        void *p = nullptr;
        cudaError_t e = c.kind == 0   ? cudaMalloc(&p, 16)
                        : c.kind == 1 ? cudaStreamSynchronize(s)
                        : c.kind == 2 ? cudaMemcpyAsync(host, x, 16, cudaMemcpyDeviceToHost, s)
                                      : cudaFree(x);
        cr_assert_eq(e, cudaErrorStreamCaptureUnsupported, "%s during a capture", c.what);
        cr_assert_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated, "%s", c.what);
        cr_assert_null(g);
        (void)cudaGetLastError();
    }
}

/* ---- cuBLAS ----------------------------------------------------------------------------------- */

Test(emu_cublas, sgemm_follows_the_column_major_contract)
{
    cublasHandle_t h;
    cr_assert_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    const int m = 5, n = 7, k = 3;
    uint64_t rng = 12345;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            const int lda = (ta ? k : m) + 2, ldb = (tb ? n : k) + 1, ldc = m + 3;
            const int acols = ta ? m : k, bcols = tb ? k : n;
            std::vector<float> A((size_t)lda * acols), B((size_t)ldb * bcols), C((size_t)ldc * n);
            for (auto *v : {&A, &B, &C})
                for (float &f : *v) {
                    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                    f = (float)((int)(rng >> 40) % 17 - 8) / 4.0f;
                }
            float *dA = dev_alloc<float>(A.size()), *dB = dev_alloc<float>(B.size()), *dC = dev_alloc<float>(C.size());
            upload(dA, A);
            upload(dB, B);
            for (float beta : {0.0f, 0.5f}) {
                std::vector<float> c0 = C;
                if (beta == 0.0f)
                    for (int j = 0; j < n; j++)
                        for (int i = 0; i < m; i++)
                            c0[(size_t)i + (size_t)j * ldc] = NAN; /* beta 0: C is not read */
                upload(dC, c0);
                const float alpha = 1.5f;
                cr_assert_eq(cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k,
                                         &alpha, dA, lda, dB, ldb, &beta, dC, ldc),
                             CUBLAS_STATUS_SUCCESS);
                std::vector<float> got = download(dC, C.size());
                for (int j = 0; j < n; j++)
                    for (int i = 0; i < m; i++) {
                        double s = 0.0;
                        for (int p = 0; p < k; p++) {
                            const double a = ta ? A[(size_t)p + (size_t)i * lda] : A[(size_t)i + (size_t)p * lda];
                            const double b = tb ? B[(size_t)j + (size_t)p * ldb] : B[(size_t)p + (size_t)j * ldb];
                            s += a * b;
                        }
                        const double want = alpha * s + (beta == 0.0f ? 0.0 : beta * c0[(size_t)i + (size_t)j * ldc]);
                        cr_assert_eq((double)got[(size_t)i + (size_t)j * ldc], want,
                                     "ta=%d tb=%d beta=%g C(%d,%d) = %g, want %g", ta, tb, beta, i, j,
                                     got[(size_t)i + (size_t)j * ldc], want);
                    }
                /* the padding between columns is untouched */
                for (int j = 0; j < n - 1; j++)
                    for (int i = m; i < ldc; i++)
                        cr_assert_eq(got[(size_t)i + (size_t)j * ldc], c0[(size_t)i + (size_t)j * ldc]);
            }
        }
    const float one = 1.0f, zero = 0.0f;
    float *d = dev_alloc<float>(64);
    cr_assert_eq(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, d, 3, d, 4, &zero, d, 4),
                 CUBLAS_STATUS_INVALID_VALUE, "lda 3 < m 4");
    cublasDestroy(h);
}

Test(emu_cublas, tf32_rounds_the_inputs_to_ten_mantissa_bits)
{
    cublasHandle_t h;
    cr_assert_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    const float a = 1.0f + 0x1.0p-12f + 0x1.0p-20f, b = 1.0f; /* below 1 + 2^-11, halfway: TF32 gives 1 */
    float *d = dev_alloc<float>(3);
    upload(d, std::vector<float>{a, b, 0.0f});
    const float one = 1.0f, zero = 0.0f;
    cr_assert_eq(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, d, 1, d + 1, 1, &zero, d + 2, 1),
                 CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(download(d + 2, 1)[0], a, "FP32 keeps every bit");
    cr_assert_eq(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, d, 1, d + 1, 1, &zero, d + 2, 1),
                 CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(download(d + 2, 1)[0], 1.0f, "TF32 keeps 10 mantissa bits");
    upload(d, std::vector<float>{1.0f + 0x1.8p-11f, 1.0f}); /* above the halfway point: rounds up */
    cr_assert_eq(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, d, 1, d + 1, 1, &zero, d + 2, 1),
                 CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(download(d + 2, 1)[0], 1.0f + 0x1.0p-10f);
    cublasDestroy(h);
}

/* ---- several devices ------------------------------------------------------------------------------ */

Test(emu_devices, listing_the_devices_leaves_the_backend_s_device_current)
{
    setenv("CUVAE_EMU_DEVICE_COUNT", "2", 1);
    vae_backend *be = vae_backend_cuda_init(0);
    cr_assert_not_null(be, "%s", vae_last_error());
    char list[4096];
    cr_assert_eq(vae_cuda_describe_devices(list, sizeof list), 2, "%s", list);
    int current = -1;
    CHECK(cudaGetDevice(&current));
    cr_assert_eq(current, 0, "cuvae devices left device %d current", current);
    /* the backend's stream (device 0) still takes work */
    float *x = (float *)be->buffer_alloc(be, 16 * sizeof(float));
    be->bias_act_forward(be, x, x, 1, 16, VAE_ACT_RELU);
    be->synchronize(be);
    be->buffer_free(be, x);
    vae_backend_free(be);
}
