/*
 * cuda_runtime.h (emulated device): the subset of the CUDA runtime and of CUDA C++
 * that the kernels (kernels/, the .cu files) use, for compiling those same files as host C++ (g++) in the
 * -DCUVAE_CUDA_EMU=ON build. It stands in for the toolkit's header of the same name,
 * which that build never sees; tests/cuda_emu/emu_runtime.cpp implements it.
 *
 * What it gives the kernels:
 *  - the qualifiers (__global__, __device__, __host__, __forceinline__) as plain C++;
 *  - threadIdx, blockIdx, blockDim, gridDim: set by the emulator for the CUDA thread
 *    that runs at that moment (every CUDA thread is a fiber: emu_fiber.h);
 *  - __syncthreads(), the warp shuffles, atomicCAS, each implemented out of line in the
 *    runtime, which checks CUDA's rules (every thread of the block reaches a barrier,
 *    every lane of a shuffle's mask arrives) and reports a breach as a kernel failure;
 *  - __shared__: static storage in one linker section (cuda_emu_shared). Blocks run one
 *    at a time, so static storage is per block; the runtime fills the whole section with
 *    NaN bytes before each block, as uninitialized shared memory may hold anything;
 *  - cuda_emu_launch(): the emulated form of kernel<<<grid, block, smem, stream>>>
 *    (kernels/cuda_common.cuh's CUDA_LAUNCH), which checks the configuration as the
 *    hardware would and queues the launch on its stream.
 *
 * Not here: any GPU arithmetic. The kernels' float operations are the host's (libm's
 * expf, no FMA contraction): the emulator proves the kernels' logic, not the GPU's
 * rounding, and `__CUDA_ARCH__` is never defined, so code under it never runs here.
 */
#ifndef CUVAE_EMU_CUDA_RUNTIME_H
#define CUVAE_EMU_CUDA_RUNTIME_H

#ifndef __cplusplus
#error "the emulated CUDA runtime is C++: kernels/*.cu are compiled as host C++ in the emulated build"
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <math.h>
#include <tuple>
#include <type_traits>
#include <utility>

/* ---- CUDA C++ qualifiers ------------------------------------------------------ */

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
/* One section for every __shared__ variable of the program, so the runtime can poison it. */
#define __shared__ static __attribute__((section("cuda_emu_shared")))

struct uint3 {
    unsigned int x, y, z;
};

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
};

/* The running CUDA thread's coordinates (the emulator sets them before it resumes a fiber). */
extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;

/* ---- runtime types and constants ------------------------------------------------ */

/* The errors the emulator returns, listed once: X(name, value, message). The values are the
 * toolkit's; a message of NULL is the name (cudaGetErrorString). The enum and both of
 * emu_runtime.cpp's name functions come from it. */
#define CUDA_EMU_ERRORS(X)                                                                                     \
    X(cudaSuccess, 0, "no error")                                                                              \
    X(cudaErrorInvalidValue, 1, "invalid argument")                                                            \
    X(cudaErrorMemoryAllocation, 2, "out of memory")                                                           \
    X(cudaErrorInitializationError, 3, NULL)                                                                   \
    X(cudaErrorLaunchFailure, 4, "unspecified launch failure (the emulator printed why above)")                \
    X(cudaErrorInvalidConfiguration, 9, "invalid configuration argument")                                      \
    X(cudaErrorInvalidDevicePointer, 17, NULL)                                                                 \
    X(cudaErrorInvalidMemcpyDirection, 21, NULL)                                                               \
    X(cudaErrorInsufficientDriver, 35, NULL)                                                                   \
    X(cudaErrorNoDevice, 100, NULL)                                                                            \
    X(cudaErrorInvalidDevice, 101, "invalid device ordinal")                                                   \
    X(cudaErrorInvalidResourceHandle, 400, "invalid resource handle")                                          \
    X(cudaErrorNotReady, 600, "device not ready")                                                              \
    X(cudaErrorIllegalAddress, 700,                                                                            \
      "an illegal memory access was encountered (the emulator printed where above)")                           \
    X(cudaErrorLaunchOutOfResources, 701, NULL)                                                                \
    X(cudaErrorStreamCaptureUnsupported, 900, "operation not permitted when stream is capturing")              \
    X(cudaErrorStreamCaptureInvalidated, 901, "operation failed due to a previous error during capture")       \
    X(cudaErrorStreamCaptureWrongThread, 908, NULL)

enum cudaError {
#define CUDA_EMU_ERROR_ENUM(name, value, message) name = value,
    CUDA_EMU_ERRORS(CUDA_EMU_ERROR_ENUM)
#undef CUDA_EMU_ERROR_ENUM
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};

enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2,
};

enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2,
};

enum cudaGraphNodeType {
    cudaGraphNodeTypeKernel = 0,
    cudaGraphNodeTypeMemcpy = 1,
    cudaGraphNodeTypeMemset = 2,
    cudaGraphNodeTypeHost = 3,
    cudaGraphNodeTypeGraph = 4,
    cudaGraphNodeTypeEmpty = 5,
    cudaGraphNodeTypeEventRecord = 7,
};

#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventDisableTiming 0x02

typedef struct cuda_emu_stream *cudaStream_t;
typedef struct cuda_emu_event *cudaEvent_t;
typedef struct cuda_emu_graph *cudaGraph_t;
typedef struct cuda_emu_graph_exec *cudaGraphExec_t;
typedef struct cuda_emu_graph_node *cudaGraphNode_t;

/* The fields of the real cudaDeviceProp that cuvae reads, with the emulated device's values
 * (an H100 SXM: sm_90, 132 multiprocessors; CUVAE_EMU_DEVICE=small: 1 multiprocessor). */
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    int warpSize;
    int maxThreadsPerBlock;
    int maxThreadsDim[3];
    int maxGridSize[3];
    int major;
    int minor;
    int multiProcessorCount;
};

/* ---- the runtime API (the subset kernels/ uses) ------------------------------------ */

extern "C" {
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
cudaError_t cudaDriverGetVersion(int *version);
cudaError_t cudaRuntimeGetVersion(int *version);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorName(cudaError_t err);
const char *cudaGetErrorString(cudaError_t err);
cudaError_t cudaDeviceSynchronize(void);

cudaError_t cudaMalloc(void **ptr, size_t bytes);
cudaError_t cudaFree(void *ptr);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream);

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status);

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *count);
cudaError_t cudaGraphNodeGetType(cudaGraphNode_t node, enum cudaGraphNodeType *type);
cudaError_t cudaGraphChildGraphNodeGetGraph(cudaGraphNode_t node, cudaGraph_t *graph);
}

/* The C++ overload the real header has too: cudaMalloc(&typed_pointer, bytes). */
template <typename T>
static inline cudaError_t cudaMalloc(T **ptr, size_t bytes)
{
    return cudaMalloc((void **)ptr, bytes);
}

/* ---- device built-ins (out of line: emu_runtime.cpp, which checks CUDA's rules) ------ */

/* The call site travels with each built-in, so a breach names the kernel's own line. */
void cuda_emu_syncthreads(const char *file, int line);
/* One lane's part of a warp exchange: every lane named in `mask` must arrive with the same
 * mask; each gets the 8 bytes `value` of lane `src` (a lane of the mask). */
uint64_t cuda_emu_shfl(unsigned int mask, uint64_t value, int src, const char *file, int line);
int cuda_emu_atomic_cas(int *address, int compare, int value);
/* The linear index of the running thread in its block, and its lane (index mod 32). */
int cuda_emu_lane(void);

static inline void __syncthreads(const char *file = __builtin_FILE(), int line = __builtin_LINE())
{
    cuda_emu_syncthreads(file, line);
}

template <typename T>
static inline uint64_t cuda_emu_to_bits(T v)
{
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffles move at most 8 bytes");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof v);
    return bits;
}

template <typename T>
static inline T cuda_emu_from_bits(uint64_t bits)
{
    T v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* width: the hardware's sub-warp width; only 32 (the whole warp) is emulated. */
template <typename T>
static inline T __shfl_xor_sync(unsigned int mask, T v, int lane_mask, int width = 32,
                                const char *file = __builtin_FILE(), int line = __builtin_LINE())
{
    if (width != 32)
        cuda_emu_shfl(0u, 0u, -1, file, line); /* reported as unsupported */
    const int src = cuda_emu_lane() ^ (lane_mask & 31);
    return cuda_emu_from_bits<T>(cuda_emu_shfl(mask, cuda_emu_to_bits(v), src, file, line));
}

template <typename T>
static inline T __shfl_sync(unsigned int mask, T v, int src_lane, int width = 32,
                            const char *file = __builtin_FILE(), int line = __builtin_LINE())
{
    if (width != 32)
        cuda_emu_shfl(0u, 0u, -1, file, line);
    return cuda_emu_from_bits<T>(cuda_emu_shfl(mask, cuda_emu_to_bits(v), src_lane & 31, file, line));
}

static inline int atomicCAS(int *address, int compare, int value)
{
    return cuda_emu_atomic_cas(address, compare, value);
}

/* ---- launches --------------------------------------------------------------------- */

/* A queued launch: the kernel, its configuration, and its arguments by value (as the
 * hardware copies them at launch), run later by the stream, and again by each replay of a
 * graph that captured it (the arguments are shared, never changed). */
struct cuda_emu_launch_spec {
    const char *name;                 /* the kernel's name, for messages */
    dim3 grid, block;
    size_t smem;
    void (*run_thread)(void *args);   /* calls the kernel with *args, for the current thread */
    void (*free_args)(void *);        /* frees args once no queue or graph holds the launch */
    void *args;
};

/* Check the configuration (as the hardware would refuse it: cudaGetLastError reports it),
 * each pointer argument (NULL or inside a device allocation), and queue the launch. */
void cuda_emu_enqueue_launch(cudaStream_t stream, cuda_emu_launch_spec *spec);
/* A pointer argument that is neither NULL nor device memory is a launch error. */
void cuda_emu_check_kernel_pointer(const char *kernel, int arg, const void *p);

template <typename... P>
struct cuda_emu_launcher {
    const char *name;
    void (*kernel)(P...);
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;

    typedef std::tuple<typename std::decay<P>::type...> args_t;
    /* What a queued launch owns: the arguments by value and the kernel. */
    struct block_t {
        args_t args;
        void (*kernel)(P...);
    };

    static void run_thread(void *b)
    {
        std::apply(((block_t *)b)->kernel, ((block_t *)b)->args);
    }
    static void free_args(void *b)
    {
        delete (block_t *)b;
    }

    template <typename T>
    static void check_pointer(const char *kname, int i, const T &v)
    {
        if constexpr (std::is_pointer<T>::value)
            cuda_emu_check_kernel_pointer(kname, i, (const void *)v);
    }
    template <size_t... I>
    static void check_pointers(const char *kname, const args_t &a, std::index_sequence<I...>)
    {
        (check_pointer(kname, (int)I, std::get<I>(a)), ...);
    }

    template <typename... A>
    void operator()(A &&...a) const
    {
        static_assert(sizeof...(A) == sizeof...(P), "a kernel launch with the wrong number of arguments");
        block_t *b = new block_t{args_t(std::forward<A>(a)...), kernel};
        check_pointers(name, b->args, std::index_sequence_for<P...>{});
        cuda_emu_launch_spec spec;
        spec.name = name;
        spec.grid = grid;
        spec.block = block;
        spec.smem = smem;
        spec.run_thread = run_thread;
        spec.free_args = free_args;
        spec.args = b;
        cuda_emu_enqueue_launch(stream, &spec);
    }
};

/* CUDA_LAUNCH(kernel, grid, block, smem, stream)(args...) in the emulated build. */
template <typename... P>
static inline cuda_emu_launcher<P...> cuda_emu_launch(const char *name, void (*kernel)(P...), dim3 grid, dim3 block,
                                                      size_t smem, cudaStream_t stream)
{
    return cuda_emu_launcher<P...>{name, kernel, grid, block, smem, stream};
}

#endif /* CUVAE_EMU_CUDA_RUNTIME_H */
