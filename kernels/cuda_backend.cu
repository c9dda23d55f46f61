/*
 * cuda_backend.cu: the CUDA backend's construction and destruction, its
 * memory ops, and graph capture; it fills the vae_backend table (backend.h)
 * from the list of backend_ops.h with the ops defined in the other files of kernels/.
 *
 * Everything runs on one non-blocking stream, in order. cuBLAS is bound to
 * that stream with a preallocated workspace and pure FP32 math (no TF32 unless
 * vae_cuda_set_tf32 asks for it), so a captured gemm never allocates and the
 * GPU computes what the CPU computes.
 *
 * Not here: any kernel, and any fallback to the CPU. Without a GPU,
 * vae_backend_cuda_init() returns NULL with a message; choosing what to do
 * then is the caller's business (src/backend.c).
 */
#include "backend_ops.h"
#include "cuda_common.cuh"

#include <stdlib.h>
#include <string.h>

/* A captured sequence of ops, ready to replay. */
struct vae_graph {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
};

void cuda_check_not_capturing(cuda_ctx *c, const char *what)
{
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    CUDA_CHECK(cudaStreamIsCapturing(c->stream, &st));
    if (st != cudaStreamCaptureStatusNone || c->capturing)
        vae_fatal("cuda backend: %s during graph capture (between graph_capture_begin and "
                  "graph_capture_end): it cannot be recorded into a graph; move it outside the capture",
                  what);
}

/* ---- memory ------------------------------------------------------------------ */

static void *cuda_buffer_alloc(vae_backend *be, size_t bytes)
{
    cuda_ctx *c = cuda_ctx_of(be);
    cuda_check_not_capturing(c, "buffer_alloc");
    void *p = NULL;
    cudaError_t err = cudaMalloc(&p, bytes ? bytes : 1);
    if (err != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        char why[256];
        (void)cudaGetLastError(); /* clear the allocation error before asking */
        (void)cudaMemGetInfo(&free_b, &total_b);
        vae_fatal("cannot allocate GPU memory: one buffer of %zu bytes %s (%zu MiB in all; cudaMalloc: %s)",
                  bytes, vae_format_memory_shortfall(why, sizeof why, bytes, free_b, be->device_name),
                  total_b >> 20, cudaGetErrorString(err));
    }
    if (bytes)
        CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, c->stream));
    return p;
}

static void cuda_buffer_free(vae_backend *be, void *p)
{
    if (!p)
        return;
    cuda_check_not_capturing(cuda_ctx_of(be), "buffer_free");
    CUDA_CHECK(cudaFree(p));
}

static void cuda_upload(vae_backend *be, void *dst, const void *src, size_t bytes)
{
    cuda_ctx *c = cuda_ctx_of(be);
    if (!bytes)
        return;
    /* Synchronous, so the caller may reuse src at once: it also cannot be captured. */
    cuda_check_not_capturing(c, "upload");
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
}

static void cuda_download(vae_backend *be, void *dst, const void *src, size_t bytes)
{
    cuda_ctx *c = cuda_ctx_of(be);
    cuda_check_not_capturing(c, "download");
    if (bytes)
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream)); /* waits for all earlier work too */
}

static void cuda_memset_zero(vae_backend *be, void *p, size_t bytes)
{
    if (bytes)
        CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, cuda_ctx_of(be)->stream));
}

static void cuda_synchronize(vae_backend *be)
{
    cuda_ctx *c = cuda_ctx_of(be);
    cuda_check_not_capturing(c, "synchronize");
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
}

/* ---- graphs ---------------------------------------------------------------------- */

static void cuda_graph_capture_begin(vae_backend *be)
{
    cuda_ctx *c = cuda_ctx_of(be);
    cuda_check_not_capturing(c, "graph_capture_begin (captures do not nest)");
    /* ThreadLocal: other threads may still use CUDA freely while this one captures. */
    CUDA_CHECK(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal));
    c->capturing = 1;
}

static vae_graph *cuda_graph_capture_end(vae_backend *be)
{
    cuda_ctx *c = cuda_ctx_of(be);
    if (!c->capturing)
        vae_fatal("cuda backend: graph_capture_end without graph_capture_begin");
    cudaGraph_t graph = NULL;
    c->capturing = 0;
    CUDA_CHECK(cudaStreamEndCapture(c->stream, &graph));
    vae_graph *g = (vae_graph *)vae_calloc(1, sizeof *g);
    g->graph = graph;
    CUDA_CHECK(cudaGraphInstantiate(&g->exec, graph, 0));
    return g;
}

static void cuda_graph_launch(vae_backend *be, vae_graph *g)
{
    cuda_ctx *c = cuda_ctx_of(be);
    if (c->capturing)
        vae_fatal("cuda backend: graph_launch during graph capture");
    CUDA_CHECK(cudaGraphLaunch(g->exec, c->stream));
}

/* Add the nodes of graph (and of its child graphs, if any) to out, by type. */
static void cuda_graph_count(cudaGraph_t graph, vae_graph_nodes *out)
{
    size_t n = 0;
    CUDA_CHECK(cudaGraphGetNodes(graph, NULL, &n));
    if (n == 0)
        return;
    cudaGraphNode_t *nodes = (cudaGraphNode_t *)vae_calloc(n, sizeof *nodes);
    CUDA_CHECK(cudaGraphGetNodes(graph, nodes, &n));
    for (size_t i = 0; i < n; i++) {
        enum cudaGraphNodeType type;
        CUDA_CHECK(cudaGraphNodeGetType(nodes[i], &type));
        out->nodes++;
        if (type == cudaGraphNodeTypeKernel) {
            out->kernels++;
        } else if (type == cudaGraphNodeTypeMemset) {
            out->memsets++;
        } else if (type == cudaGraphNodeTypeMemcpy) {
            out->memcpys++;
        } else if (type == cudaGraphNodeTypeGraph) {
            cudaGraph_t child = NULL;
            CUDA_CHECK(cudaGraphChildGraphNodeGetGraph(nodes[i], &child));
            cuda_graph_count(child, out);
        }
    }
    vae_free(nodes);
}

extern "C" void vae_graph_count_nodes(const vae_graph *g, vae_graph_nodes *out)
{
    memset(out, 0, sizeof *out);
    cuda_graph_count(g->graph, out);
}

static void cuda_graph_free(vae_backend *be, vae_graph *g)
{
    if (!g)
        return;
    cuda_ctx *c = cuda_ctx_of(be);
    /* A launch still running holds the executable graph: let it finish first. */
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    CUDA_CHECK(cudaGraphExecDestroy(g->exec));
    CUDA_CHECK(cudaGraphDestroy(g->graph));
    vae_free(g);
}

/* ---- construction ---------------------------------------------------------------- */

/* One small gemm of each transpose, run eagerly: cuBLAS finishes its lazy set-up
 * (for the handle's math mode) here rather than inside the first graph capture. */
static void cuda_warm_gemms(vae_backend *be)
{
    float *warm = (float *)cuda_buffer_alloc(be, 16 * sizeof(float));
    for (int t = 0; t < 4; t++)
        cuda_gemm(be, t & 1, t >> 1, 2, 2, 2, 1.0f, warm, 2, warm + 4, 2, 0.0f, warm + 8, 2);
    CUDA_CHECK(cudaStreamSynchronize(cuda_ctx_of(be)->stream));
    cuda_buffer_free(be, warm);
}

static void cuda_destroy(vae_backend *be)
{
    if (!be)
        return;
    cuda_ctx *c = cuda_ctx_of(be);
    if (c) {
        if (c->capturing) {
            cudaGraph_t graph = NULL;
            (void)cudaStreamEndCapture(c->stream, &graph); /* abandon the capture */
            if (graph)
                (void)cudaGraphDestroy(graph);
            (void)cudaGetLastError();
        }
        CUDA_CHECK(cudaStreamSynchronize(c->stream));
        CUBLAS_CHECK(cublasDestroy(c->cublas));
        CUDA_CHECK(cudaFree(c->cublas_workspace));
        CUDA_CHECK(cudaFree(c->reduce_partials));
        CUDA_CHECK(cudaStreamDestroy(c->stream));
        vae_free(c);
    }
    vae_free(be);
}

extern "C" void vae_cuda_memory_info(vae_backend *be, size_t *free_bytes, size_t *total_bytes)
{
    CUDA_CHECK(cudaSetDevice(cuda_ctx_of(be)->device));
    CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
}

extern "C" int vae_cuda_is_emulated(void)
{
#ifdef CUVAE_CUDA_EMU
    return 1;
#else
    return 0;
#endif
}

extern "C" int vae_cuda_device_count(void)
{
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        (void)cudaGetLastError(); /* no driver or no device: not an error of later calls */
        return 0;
    }
    return n;
}

/* The driver's and the runtime's CUDA versions (0 where the call fails: for the
 * driver, cudaDriverGetVersion itself gives 0 when none is installed). */
static void cuda_versions(int *driver, int *runtime)
{
    if (cudaDriverGetVersion(driver) != cudaSuccess)
        *driver = 0;
    if (cudaRuntimeGetVersion(runtime) != cudaSuccess)
        *runtime = 0;
    (void)cudaGetLastError();
}

/* The number of GPUs, or 0 with "no CUDA device: <why>" in why (len bytes). */
static int cuda_count_or_reason(char *why, size_t len)
{
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        /* cudaErrorInsufficientDriver comes both from an old driver and from none at all: the
         * versions tell them apart (cudaDriverGetVersion gives 0 when no driver is installed). */
        int driver = 0, runtime = 0;
        cuda_versions(&driver, &runtime);
        vae_cuda_describe_unavailable(why, len, cudaGetErrorName(err), cudaGetErrorString(err), driver, runtime);
        return 0;
    }
    if (n <= 0) {
        snprintf(why, len, "no CUDA device: cudaGetDeviceCount found none");
        return 0;
    }
    return n;
}

static void cuda_version_text(char *buf, size_t len, int v)
{
    snprintf(buf, len, "%d.%d", v / 1000, v % 1000 / 10);
}

extern "C" void vae_cuda_describe_versions(char *buf, size_t len)
{
    int driver = 0, runtime = 0, major = 0, minor = 0, patch = 0;
    cuda_versions(&driver, &runtime);
    char rt[32], drv[64], blas[64];
    cuda_version_text(rt, sizeof rt, runtime);
    if (driver == 0)
        snprintf(drv, sizeof drv, "no NVIDIA driver");
    else
        cuda_version_text(drv, sizeof drv, driver);
    /* A library property: no handle, no device and no driver needed. */
    if (cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS &&
        cublasGetProperty(MINOR_VERSION, &minor) == CUBLAS_STATUS_SUCCESS &&
        cublasGetProperty(PATCH_LEVEL, &patch) == CUBLAS_STATUS_SUCCESS)
        snprintf(blas, sizeof blas, "%d.%d.%d", major, minor, patch);
    else
        snprintf(blas, sizeof blas, "unknown (cublasGetProperty failed)");
    /* The emulated device's runtime, driver and cuBLAS are the API versions it follows. */
    const char *emu = vae_cuda_is_emulated() ? " (emulated device, tests/cuda_emu)" : "";
    snprintf(buf, len,
             "CUDA runtime: %s%s\n"
             "CUDA driver: %s%s\n"
             "cuBLAS: %s%s\n",
             rt, emu, drv, emu, blas, emu);
}

extern "C" int vae_cuda_describe_devices(char *buf, size_t len)
{
    int n = cuda_count_or_reason(buf, len);
    if (n == 0)
        return 0;
    buf[0] = '\0';
    /* cudaMemGetInfo asks the current device: each is made current in turn, and the caller's
     * current device is restored after, so listing devices changes nothing for later calls. */
    int current = 0;
    CUDA_CHECK(cudaGetDevice(&current));
    for (int i = 0; i < n; i++) {
        cudaDeviceProp prop;
        size_t free_b = 0, total_b = 0;
        CUDA_CHECK(cudaGetDeviceProperties(&prop, i));
        CUDA_CHECK(cudaSetDevice(i));
        CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
        size_t used = strlen(buf);
        snprintf(buf + used, len - used,
                 "cuda:%d  %s  memory %zu MiB (%zu MiB free)  compute capability %d.%d  %d multiprocessors\n", i,
                 prop.name, total_b >> 20, free_b >> 20, prop.major, prop.minor, prop.multiProcessorCount);
    }
    CUDA_CHECK(cudaSetDevice(current));
    return n;
}

extern "C" vae_backend *vae_backend_cuda_init(int device)
{
    char why[512];
    int n = cuda_count_or_reason(why, sizeof why);
    if (n == 0) {
        vae_set_error("%s", why);
        return NULL;
    }
    if (device < 0 || device >= n) {
        vae_set_error("no CUDA device %d: %d device(s) present (0..%d)", device, n, n - 1);
        return NULL;
    }

    cuda_ctx *c = (cuda_ctx *)vae_calloc(1, sizeof *c);
    c->device = device;
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaGetDeviceProperties(&c->prop, device));
    CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));

    CUBLAS_CHECK(cublasCreate(&c->cublas));
    /* cublasSetStream resets the workspace to cuBLAS's own pool, so it goes first. */
    CUBLAS_CHECK(cublasSetStream(c->cublas, c->stream));
    CUDA_CHECK(cudaMalloc(&c->cublas_workspace, CUDA_CUBLAS_WORKSPACE_BYTES));
    CUBLAS_CHECK(cublasSetWorkspace(c->cublas, c->cublas_workspace, CUDA_CUBLAS_WORKSPACE_BYTES));
    /* Pure FP32: no TF32 or other reduced-precision shortcuts, so the CPU and the GPU agree
     * (vae_cuda_set_tf32 is the one way to TF32: --tf32). */
    CUBLAS_CHECK(cublasSetMathMode(c->cublas, CUBLAS_DEFAULT_MATH));
    CUBLAS_CHECK(cublasSetPointerMode(c->cublas, CUBLAS_POINTER_MODE_HOST));
    /* No atomics inside cuBLAS either (its default, made explicit): run-to-run identical results. */
    CUBLAS_CHECK(cublasSetAtomicsMode(c->cublas, CUBLAS_ATOMICS_NOT_ALLOWED));
    CUDA_CHECK(cudaMalloc(&c->reduce_partials, CUDA_REDUCE_MAX_BLOCKS * sizeof(double)));

    /* Every op of backend_ops.h is cuda_<op>: kernels/cuda_common.cuh declares them. */
#define CUDA_OP(op) .op = cuda_##op,
    static const vae_backend table = {
        .kind = VAE_BACKEND_CUDA,
        .name = "cuda",
        .device_name = {0},
        .ctx = NULL,
        VAE_BACKEND_OPS(CUDA_OP, CUDA_OP, CUDA_OP, CUDA_OP)
    };
#undef CUDA_OP
    vae_backend *be = (vae_backend *)vae_calloc(1, sizeof *be);
    *be = table;
    be->ctx = c;
    snprintf(be->device_name, sizeof be->device_name, "%s", c->prop.name);

    cuda_warm_gemms(be);
    return be;
}

cuda_ctx *cuda_backend_ctx(vae_backend *be, const char *caller)
{
    if (be->destroy != cuda_destroy)
        vae_fatal("%s: backend %s (%s) is not the CUDA backend itself", caller, be->name, be->device_name);
    return cuda_ctx_of(be);
}

extern "C" void vae_cuda_set_tf32(vae_backend *be, int on)
{
    cuda_ctx *c = cuda_backend_ctx(be, "vae_cuda_set_tf32");
    cuda_check_not_capturing(c, "vae_cuda_set_tf32");
    /* The math mode is the handle's: every later cublasSgemm, and every capture of one, follows it. */
    CUBLAS_CHECK(cublasSetMathMode(c->cublas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    cuda_warm_gemms(be); /* the new mode's kernels set up here too, not inside a capture */
}
