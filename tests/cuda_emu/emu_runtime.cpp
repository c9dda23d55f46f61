/*
 * emu_runtime.cpp: the emulated CUDA device behind tests/cuda_emu/include/cuda_runtime.h.
 *
 * Execution model. Work is queued on its stream when it is issued and runs at the next
 * synchronizing call (cudaStreamSynchronize, cudaEventSynchronize, cudaDeviceSynchronize,
 * cudaFree), as on a GPU the host does not wait for: a result read before its
 * synchronization is stale here too. A launch runs its blocks one at a time, in a seeded
 * order that changes from launch to launch (CUVAE_EMU_SEED, default 1), and within a block
 * every CUDA thread is a fiber (emu_fiber.h), resumed round-robin in a seeded order:
 *  - __syncthreads() holds a thread until every thread of its block has arrived at the same
 *    barrier; a barrier that some threads never reach (they exited, or wait elsewhere) is
 *    reported, naming the kernel, the block, the call site and who is missing, never a hang;
 *  - a warp shuffle holds a lane until every lane of its mask has arrived with the same mask
 *    at the same call site; a mask naming lanes the block does not have (a block that is not
 *    a multiple of 32) or a lane left out of its own mask is an error;
 *  - __shared__ storage (one linker section) is filled with NaN bytes before every block.
 * A breach makes the launch fail: a message on stderr, then cudaErrorLaunchFailure from
 * every later call (sticky, as a GPU's context is after a kernel fault).
 *
 * Memory. Every cudaMalloc is its own mapping: the buffer (256-byte aligned, as cudaMalloc
 * aligns) ends at the end of its last page, with a page no access may touch after it, so a
 * write past the end faults at once; the bytes before the buffer and the rounding after it
 * are guard bytes checked after every launch, memcpy and memset (under AddressSanitizer
 * they are poisoned instead, and ASan reports the access itself). A new buffer holds NaN
 * bytes (0xff), not zeros. Kernel pointer arguments, memcpy and memset ranges must lie in
 * live device memory. The device has what the host has, at most 80 GiB.
 *
 * Graphs. Capture records every launch, memset, device-to-device copy and event record
 * issued on the capturing stream (the launch's arguments by value, as a real capture
 * does); a replay queues them again, so the kernels read device memory as it is at the
 * replay. What a real capture refuses is refused here, and invalidates the capture:
 * synchronizing, allocating or freeing, and copies to or from host memory.
 *
 * Device: an H100 (sm_90, 132 multiprocessors); with CUVAE_EMU_DEVICE=small, one
 * multiprocessor, so kernels that size their grid by the multiprocessor count loop over
 * their grid-stride and tile loops; CUVAE_EMU_DEVICE_COUNT=N makes N of them. Its name says
 * "(emulated)".
 *
 * Not modelled: the GPU's arithmetic (libm here, no FMA contraction), its memory model
 * and caches (blocks never run at once), timing (events read the host clock), the real
 * cuBLAS (emu_cublas.cpp), the driver. docs/emulated-device.md says what that leaves
 * to a real GPU.
 */
#include "cuda_runtime.h"

#include "emu_fiber.h"
#include "emu_internal.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

uint3 threadIdx;
uint3 blockIdx;
dim3 blockDim;
dim3 gridDim;

/* Every __shared__ variable of the program lies between these (GNU ld makes them). */
extern char __start_cuda_emu_shared[] __attribute__((weak));
extern char __stop_cuda_emu_shared[] __attribute__((weak));

namespace {

const size_t DEVICE_MAX_BYTES = (size_t)80 << 30;
const size_t ALLOC_ALIGN = 256;
const size_t SHARED_LIMIT = 48 * 1024;

std::recursive_mutex api_mutex; /* the runtime serves one host thread at a time */
#define API_LOCK() std::lock_guard<std::recursive_mutex> api_lock_(api_mutex)

/* ---- errors ---------------------------------------------------------------------- */

cudaError_t last_error = cudaSuccess;   /* cudaGetLastError's, cleared by it */
cudaError_t sticky_error = cudaSuccess; /* a failed kernel: every later call returns it */

cudaError_t fail(cudaError_t err)
{
    if (last_error == cudaSuccess)
        last_error = err;
    return err;
}

/* A fault of device code: reported once, on stderr, then sticky. */
void device_fault(cudaError_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuda emulator: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    if (sticky_error == cudaSuccess)
        sticky_error = err;
    if (last_error == cudaSuccess)
        last_error = err;
}

/* ---- the device -------------------------------------------------------------------- */

struct device_t {
    cudaDeviceProp prop;
    int ready;
} device;

/* CUVAE_EMU_DEVICE_COUNT=N (1 to 8, default 1): N alike devices, so that code which makes
 * another device current (and must make its own current again) is tested. They share one
 * memory and one timeline; only the current device is tracked, and a stream is used only while
 * the device it was made on is current, as the real runtime requires. */
int current_device = 0;

int device_count(void)
{
    const char *s = getenv("CUVAE_EMU_DEVICE_COUNT");
    if (s == nullptr)
        return 1;
    const int n = atoi(s);
    if (n < 1 || n > 8) {
        fprintf(stderr, "cuda emulator: CUVAE_EMU_DEVICE_COUNT=%s: expected 1 to 8\n", s);
        exit(2);
    }
    return n;
}

size_t host_memory_bytes(void)
{
    return (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
}

const cudaDeviceProp &device_prop(void)
{
    if (!device.ready) {
        cudaDeviceProp &p = device.prop;
        memset(&p, 0, sizeof p);
        const char *kind = getenv("CUVAE_EMU_DEVICE");
        const int small = kind != nullptr && strcmp(kind, "small") == 0;
        if (kind != nullptr && !small && strcmp(kind, "h100") != 0) {
            fprintf(stderr, "cuda emulator: CUVAE_EMU_DEVICE=%s: expected h100 or small\n", kind);
            exit(2);
        }
        snprintf(p.name, sizeof p.name, "%s",
                 small ? "small device, 1 multiprocessor (emulated)" : "NVIDIA H100 80GB HBM3 (emulated)");
        p.totalGlobalMem = std::min(DEVICE_MAX_BYTES, host_memory_bytes());
        p.sharedMemPerBlock = SHARED_LIMIT;
        p.warpSize = 32;
        p.maxThreadsPerBlock = 1024;
        p.maxThreadsDim[0] = 1024;
        p.maxThreadsDim[1] = 1024;
        p.maxThreadsDim[2] = 64;
        p.maxGridSize[0] = 2147483647;
        p.maxGridSize[1] = 65535;
        p.maxGridSize[2] = 65535;
        p.major = 9;
        p.minor = 0;
        p.multiProcessorCount = small ? 1 : 132;
        device.ready = 1;
    }
    return device.prop;
}

/* ---- memory ------------------------------------------------------------------------ */

struct allocation {
    char *map;     /* the mapping: guard bytes, the buffer, rounding, a no-access page */
    size_t map_bytes;
    char *base;    /* the buffer */
    size_t bytes;  /* as asked */
    size_t span;   /* bytes rounded up to ALLOC_ALIGN */
};

std::map<uintptr_t, allocation> allocations; /* by base address */
size_t allocated_bytes = 0;
const unsigned char GUARD_BYTE = 0xa5;

size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* The allocation holding [p, p + bytes), or nullptr. A range of 0 bytes may sit at the end. */
const allocation *find_allocation(const void *p, size_t bytes)
{
    const uintptr_t a = (uintptr_t)p;
    auto it = allocations.upper_bound(a);
    if (it == allocations.begin())
        return nullptr;
    --it;
    const allocation &al = it->second;
    const uintptr_t base = (uintptr_t)al.base;
    if (a < base || a > base + al.bytes || bytes > base + al.bytes - a)
        return nullptr;
    return &al;
}

#if !EMU_ASAN
/* The guard bytes of one allocation: before the buffer, and the rounding after it. */
void guard_regions(const allocation &al, char **front, size_t *front_bytes, char **back, size_t *back_bytes)
{
    *front = al.map;
    *front_bytes = (size_t)(al.base - al.map);
    *back = al.base + al.bytes;
    *back_bytes = al.span - al.bytes;
}
#endif

/* Every allocation's guard bytes intact, or a fault naming what broke them. */
void check_guards(const char *after)
{
#if EMU_ASAN
    (void)after; /* ASan reports the access itself: the guard bytes are poisoned */
#else
    for (const auto &kv : allocations) {
        const allocation &al = kv.second;
        char *front, *back;
        size_t nf, nb;
        guard_regions(al, &front, &nf, &back, &nb);
        for (int side = 0; side < 2; side++) {
            const unsigned char *g = (const unsigned char *)(side ? back : front);
            const size_t n = side ? nb : nf;
            for (size_t i = 0; i < n; i++) {
                if (g[i] != GUARD_BYTE) {
                    const long long off = side ? (long long)(al.bytes + i) : -(long long)(nf - i);
                    device_fault(cudaErrorIllegalAddress,
                                 "%s wrote outside a device buffer: byte %lld of the %zu-byte buffer at %p "
                                 "(guard bytes %s it)",
                                 after, off, al.bytes, (void *)al.base, side ? "after" : "before");
                    memset((void *)g, GUARD_BYTE, n); /* report each breach once */
                    break;
                }
            }
        }
    }
#endif
}

/* ---- streams, events, graphs ----------------------------------------------------------- */

struct op_t {
    cudaGraphNodeType type;
    std::string name;            /* a kernel's name, or what the copy or memset was */
    std::function<void()> run;
};

} // namespace

struct cuda_emu_graph_node {
    op_t op;
};

struct cuda_emu_graph {
    std::vector<std::unique_ptr<cuda_emu_graph_node>> nodes;
};

struct cuda_emu_graph_exec {
    std::vector<op_t> ops;
};

struct cuda_emu_stream {
    std::deque<op_t> queue;
    int device; /* current when the stream was made */
    unsigned int flags;
    cudaStreamCaptureStatus capture;
    cuda_emu_graph *graph; /* the graph being captured */
};

struct cuda_emu_event {
    int recorded;   /* cudaEventRecord issued */
    int complete;   /* ... and reached by its stream */
    double seconds; /* host clock when reached */
    unsigned int flags;
};

namespace {

cuda_emu_stream legacy_stream = {{}, -1, cudaStreamDefault, cudaStreamCaptureStatusNone, nullptr}; /* any device */
std::vector<cuda_emu_stream *> streams = {&legacy_stream};

cuda_emu_stream *stream_of(cudaStream_t s)
{
    return s == nullptr ? &legacy_stream : s;
}

cuda_emu_stream *capturing_stream(void)
{
    for (cuda_emu_stream *s : streams)
        if (s->capture != cudaStreamCaptureStatusNone)
            return s;
    return nullptr;
}

/* A call a capture forbids (allocating, synchronizing): invalidates the capture. */
cudaError_t refuse_during_capture(void)
{
    cuda_emu_stream *s = capturing_stream();
    if (s == nullptr)
        return cudaSuccess;
    s->capture = cudaStreamCaptureStatusInvalidated;
    return fail(cudaErrorStreamCaptureUnsupported);
}

void run_queue(cuda_emu_stream *s)
{
    while (!s->queue.empty() && sticky_error == cudaSuccess) {
        op_t op = std::move(s->queue.front());
        s->queue.pop_front();
        op.run();
    }
    if (sticky_error != cudaSuccess)
        s->queue.clear(); /* a faulted context runs nothing more */
}

void run_all_queues(void)
{
    for (cuda_emu_stream *s : streams)
        run_queue(s);
}

/* Queue op on s, or record it into s's capture. */
cudaError_t issue(cudaStream_t stream, op_t op)
{
    cuda_emu_stream *s = stream_of(stream);
    if (s->device >= 0 && s->device != current_device) {
        fprintf(stderr, "cuda emulator: %s issued on a stream of device %d while device %d is current\n",
                op.name.c_str(), s->device, current_device);
        return fail(cudaErrorInvalidResourceHandle);
    }
    if (s->capture == cudaStreamCaptureStatusActive) {
        s->graph->nodes.emplace_back(new cuda_emu_graph_node{std::move(op)});
        return cudaSuccess;
    }
    if (s->capture == cudaStreamCaptureStatusInvalidated)
        return fail(cudaErrorStreamCaptureInvalidated);
    s->queue.push_back(std::move(op));
    return cudaSuccess;
}

double host_seconds(void)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/* ---- the block scheduler ------------------------------------------------------------------ */

enum thread_state { T_NEW, T_LIVE, T_DONE };

struct cuda_thread {
    emu_fiber fiber;
    uint3 idx;
    int linear;
    thread_state state;
    const char *wait_what; /* while waiting: "__syncthreads()" or "a warp shuffle" */
    const char *wait_file;
    int wait_line;
};

struct warp_t {
    unsigned int arrived, departed, mask;
    int busy;                  /* lanes are still reading the finished exchange */
    unsigned int gen;          /* exchanges completed */
    int lanes;                 /* threads this warp has (the block's last warp may have fewer than 32) */
    const char *file;
    int line;
    uint64_t value[32];
    char sync[2];              /* TSan sync objects, by the parity of gen */
};

struct block_t {
    int nthreads;
    int barrier_arrived;
    unsigned int barrier_gen;
    const char *barrier_file;
    int barrier_line;
    char barrier_sync[2];
    std::vector<warp_t> warps;
    std::vector<cuda_thread> threads;
};

struct launch_t {
    const char *name;
    dim3 grid, block;
    void (*run_thread)(void *);
    std::shared_ptr<void> args;
};

emu_fiber host_fiber;
block_t blk;
const launch_t *cur_launch;
cuda_thread *cur_thread;
uint64_t progress;     /* bumped by every change a waiting thread could be waiting for */
int block_failed;      /* a thread of the running block broke a rule: abandon the block */
char block_sync_start, block_sync_end; /* TSan: host -> threads, threads -> host */
uint64_t launch_count;

uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* A seeded walk over 0 .. n-1: start + k * stride (mod n), stride coprime with n. */
struct walk_t {
    uint64_t n, start, stride;
    uint64_t at(uint64_t k) const
    {
        return (start + (k % n) * stride) % n; /* n < 2^32 blocks or threads: no overflow */
    }
};

walk_t make_walk(uint64_t n, uint64_t *rng)
{
    walk_t w{n, 0, 1};
    if (n > 1) {
        w.start = splitmix64(rng) % n;
        w.stride = 1 + splitmix64(rng) % (n - 1);
        while (gcd64(w.stride, n) != 1)
            w.stride = w.stride % (n - 1) + 1;
    }
    return w;
}

uint64_t seed_base(void)
{
    const char *s = getenv("CUVAE_EMU_SEED");
    return s != nullptr ? strtoull(s, nullptr, 10) : 1;
}

/* The running thread stops for a rule broken: report, then leave the block for good. */
[[noreturn]] void thread_breach(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const cuda_thread *t = cur_thread;
    device_fault(cudaErrorLaunchFailure, "kernel %s, block (%u,%u,%u), thread (%u,%u,%u): %s", cur_launch->name,
                 blockIdx.x, blockIdx.y, blockIdx.z, t->idx.x, t->idx.y, t->idx.z, msg);
    block_failed = 1;
    emu_fiber_exit(&cur_thread->fiber, &host_fiber);
}

/* Suspend the running thread until the scheduler resumes it (it then re-checks what it waits for). */
void thread_wait(const char *what, const char *file, int line)
{
    cuda_thread *t = cur_thread;
    t->wait_what = what;
    t->wait_file = file;
    t->wait_line = line;
    emu_fiber_switch(&t->fiber, &host_fiber);
    t->wait_what = nullptr;
}

void thread_entry(void *arg)
{
    cuda_thread *t = (cuda_thread *)arg;
    emu_fiber_sync_acquire(&block_sync_start);
    cur_launch->run_thread(cur_launch->args.get());
    emu_fiber_sync_release(&block_sync_end);
    t->state = T_DONE;
    progress++;
    emu_fiber_exit(&t->fiber, &host_fiber);
}

/* Fill every __shared__ byte with 0xff (NaN), as a block's shared memory starts undefined.
 * Not instrumented: under ASan the section is ours to write whole. */
__attribute__((no_sanitize("address"))) void poison_shared(void)
{
    if (__start_cuda_emu_shared == nullptr)
        return;
    for (volatile char *p = __start_cuda_emu_shared; p < (volatile char *)__stop_cuda_emu_shared; p++)
        *p = (char)0xff;
}

/* Why no thread of the block can move: who waits where, who has exited. */
void report_deadlock(void)
{
    int done = 0;
    std::map<std::string, int> waits;
    for (const cuda_thread &t : blk.threads) {
        if (t.state == T_DONE) {
            done++;
        } else if (t.wait_what != nullptr) {
            char where[512];
            snprintf(where, sizeof where, "%s at %s:%d", t.wait_what, t.wait_file, t.wait_line);
            waits[where]++;
        }
    }
    std::string msg;
    for (const auto &kv : waits) {
        char part[600];
        snprintf(part, sizeof part, "%s%d of %d threads wait at %s", msg.empty() ? "" : "; ", kv.second,
                 blk.nthreads, kv.first.c_str());
        msg += part;
    }
    device_fault(cudaErrorLaunchFailure,
                 "kernel %s, block (%u,%u,%u): no thread can go on (a barrier or shuffle that not every thread "
                 "reaches): %s; %d threads have exited",
                 cur_launch->name, blockIdx.x, blockIdx.y, blockIdx.z, msg.c_str(), done);
    block_failed = 1;
}

void run_block(const launch_t &L, uint64_t *rng)
{
    const int n = (int)(L.block.x * L.block.y * L.block.z);
    blk.nthreads = n;
    blk.barrier_arrived = 0;
    blk.barrier_gen = 0;
    blk.barrier_file = nullptr;
    const int nwarps = (n + 31) / 32;
    blk.warps.assign((size_t)nwarps, warp_t{});
    for (int w = 0; w < nwarps; w++)
        blk.warps[(size_t)w].lanes = std::min(32, n - 32 * w);
    blk.threads.resize((size_t)n);
    for (int i = 0; i < n; i++) {
        cuda_thread &t = blk.threads[(size_t)i];
        t = cuda_thread{};
        t.linear = i;
        t.idx.x = (unsigned int)i % L.block.x;
        t.idx.y = (unsigned int)i / L.block.x % L.block.y;
        t.idx.z = (unsigned int)i / (L.block.x * L.block.y);
        t.state = T_NEW;
    }
    poison_shared();
    emu_fiber_sync_release(&block_sync_start);
    block_failed = 0;

    const walk_t order = make_walk((uint64_t)n, rng);
    int live = n;
    while (live > 0 && !block_failed) {
        const uint64_t before = progress;
        for (int k = 0; k < n && !block_failed; k++) {
            cuda_thread &t = blk.threads[(size_t)order.at((uint64_t)k)];
            if (t.state == T_DONE)
                continue;
            if (t.state == T_NEW) {
                emu_fiber_create(&t.fiber, thread_entry, &t, t.linear);
                t.state = T_LIVE;
                progress++;
            }
            cur_thread = &t;
            threadIdx = t.idx;
            emu_fiber_switch(&host_fiber, &t.fiber);
            if (t.state == T_DONE) {
                emu_fiber_release(&t.fiber, 1);
                live--;
            }
        }
        if (!block_failed && live > 0 && progress == before)
            report_deadlock();
    }
    for (cuda_thread &t : blk.threads) /* after a failure: the abandoned fibers' stacks */
        if (t.state == T_LIVE)
            emu_fiber_release(&t.fiber, 0);
    emu_fiber_sync_acquire(&block_sync_end);
    cur_thread = nullptr;
}

#if !EMU_ASAN
/* A fault inside a kernel (a write into the no-access page after a buffer, a fiber's stack
 * overflowing into its guard page) names the kernel, the block and the thread, then takes the
 * default action. Not under AddressSanitizer, whose own handler reports more. */
void on_fault(int sig, siginfo_t *info, void *ctx)
{
    (void)ctx;
    if (cur_launch != nullptr && cur_thread != nullptr) {
        char msg[512];
        const int n = snprintf(msg, sizeof msg,
                               "cuda emulator: kernel %s, block (%u,%u,%u), thread (%u,%u,%u): a %s at address %p, "
                               "outside device memory\n",
                               cur_launch->name, blockIdx.x, blockIdx.y, blockIdx.z, cur_thread->idx.x,
                               cur_thread->idx.y, cur_thread->idx.z, sig == SIGSEGV ? "segmentation fault" : "bus error",
                               info->si_addr);
        if (n > 0 && write(2, msg, (size_t)n) < 0) {
            /* nothing more to say */
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}
#endif

void install_fault_report(void)
{
#if !EMU_ASAN /* ASan's own handler reports more */
    static int done = 0;
    if (done)
        return;
    done = 1;
    static char alt_stack[64 * 1024];
    stack_t ss = {};
    ss.ss_sp = alt_stack;
    ss.ss_size = sizeof alt_stack;
    sigaltstack(&ss, nullptr);
    struct sigaction sa = {};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
#endif
}

void run_launch(const launch_t &L)
{
    install_fault_report();
    uint64_t rng = seed_base() * 0x100000001b3ull + ++launch_count;
    const uint64_t nblocks = (uint64_t)L.grid.x * L.grid.y * L.grid.z;
    const walk_t order = make_walk(nblocks, &rng);
    static int host_ready = 0;
    if (!host_ready) {
        emu_fiber_init_host(&host_fiber);
        host_ready = 1;
    }
    cur_launch = &L;
    gridDim = L.grid;
    blockDim = L.block;
    for (uint64_t k = 0; k < nblocks && sticky_error == cudaSuccess; k++) {
        const uint64_t b = order.at(k);
        blockIdx.x = (unsigned int)(b % L.grid.x);
        blockIdx.y = (unsigned int)(b / L.grid.x % L.grid.y);
        blockIdx.z = (unsigned int)(b / ((uint64_t)L.grid.x * L.grid.y));
        run_block(L, &rng);
    }
    cur_launch = nullptr;
    if (sticky_error == cudaSuccess) {
        char what[300];
        snprintf(what, sizeof what, "kernel %s", L.name);
        check_guards(what);
    }
}

} // namespace

/* ---- device built-ins ------------------------------------------------------------------------ */

int cuda_emu_lane(void)
{
    return cur_thread->linear & 31;
}

void cuda_emu_syncthreads(const char *file, int line)
{
    if (cur_thread == nullptr) {
        fprintf(stderr, "cuda emulator: __syncthreads() outside a kernel (%s:%d)\n", file, line);
        abort();
    }
    if (blk.barrier_arrived == 0) {
        blk.barrier_file = file;
        blk.barrier_line = line;
    } else if (line != blk.barrier_line || strcmp(file, blk.barrier_file) != 0) {
        thread_breach("__syncthreads() at %s:%d while other threads of the block wait at the one at %s:%d "
                      "(a barrier in divergent code)",
                      file, line, blk.barrier_file, blk.barrier_line);
    }
    const unsigned int gen = blk.barrier_gen;
    emu_fiber_sync_release(&blk.barrier_sync[gen & 1]);
    blk.barrier_arrived++;
    progress++;
    if (blk.barrier_arrived == blk.nthreads) {
        blk.barrier_arrived = 0;
        blk.barrier_gen++;
        progress++;
    } else {
        while (blk.barrier_gen == gen)
            thread_wait("__syncthreads()", file, line);
    }
    emu_fiber_sync_acquire(&blk.barrier_sync[gen & 1]);
}

uint64_t cuda_emu_shfl(unsigned int mask, uint64_t value, int src, const char *file, int line)
{
    if (cur_thread == nullptr) {
        fprintf(stderr, "cuda emulator: a warp shuffle outside a kernel (%s:%d)\n", file, line);
        abort();
    }
    if (src < 0)
        thread_breach("a shuffle with a width other than 32 at %s:%d (not emulated)", file, line);
    const int lane = cur_thread->linear & 31;
    warp_t &w = blk.warps[(size_t)(cur_thread->linear >> 5)];
    const unsigned int present = w.lanes == 32 ? 0xffffffffu : (1u << w.lanes) - 1u;
    const unsigned int bit = 1u << lane;
    if ((mask & bit) == 0)
        thread_breach("the shuffle at %s:%d has mask 0x%08x, which leaves out its own lane %d", file, line, mask,
                      lane);
    if ((mask & ~present) != 0)
        thread_breach("the shuffle at %s:%d has mask 0x%08x, but this warp has only %d threads (the block's %d "
                      "threads are not a multiple of 32)",
                      file, line, mask, w.lanes, blk.nthreads);
    if ((mask & (1u << src)) == 0)
        thread_breach("the shuffle at %s:%d reads lane %d, outside its mask 0x%08x", file, line, src, mask);
    while (w.busy)
        thread_wait("a warp shuffle (lanes still leaving the previous one)", file, line);
    if (w.arrived == 0) {
        w.mask = mask;
        w.file = file;
        w.line = line;
    } else if (w.mask != mask || w.line != line || strcmp(w.file, file) != 0) {
        thread_breach("lane %d calls the shuffle at %s:%d with mask 0x%08x while lanes 0x%08x of its warp wait "
                      "in the one at %s:%d with mask 0x%08x (the warp diverged)",
                      lane, file, line, mask, w.arrived, w.file, w.line, w.mask);
    }
    const unsigned int gen = w.gen;
    w.value[lane] = value;
    w.arrived |= bit;
    emu_fiber_sync_release(&w.sync[gen & 1]);
    progress++;
    if (w.arrived == w.mask) {
        w.gen++;
        w.busy = 1;
        w.departed = 0;
        progress++;
    } else {
        while (w.gen == gen)
            thread_wait("a warp shuffle", file, line);
    }
    emu_fiber_sync_acquire(&w.sync[gen & 1]);
    const uint64_t got = w.value[src];
    w.departed |= bit;
    progress++;
    if (w.departed == w.mask) {
        w.busy = 0;
        w.arrived = 0;
    }
    return got;
}

int cuda_emu_atomic_cas(int *address, int compare, int value)
{
    int expected = compare;
    __atomic_compare_exchange_n(address, &expected, value, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return expected; /* the old value, as atomicCAS returns it */
}

/* ---- launches --------------------------------------------------------------------------------- */

void cuda_emu_check_kernel_pointer(const char *kernel, int arg, const void *p)
{
    API_LOCK();
    if (p != nullptr && find_allocation(p, 0) == nullptr)
        device_fault(cudaErrorIllegalAddress,
                     "kernel %s: argument %d is %p, which is not in device memory (a host pointer, or a freed "
                     "buffer)",
                     kernel, arg, p);
}

void cuda_emu_enqueue_launch(cudaStream_t stream, cuda_emu_launch_spec *spec)
{
    API_LOCK();
    std::shared_ptr<void> args(spec->args, spec->free_args);
    if (sticky_error != cudaSuccess) {
        fail(sticky_error);
        return;
    }
    const cudaDeviceProp &p = device_prop();
    const dim3 g = spec->grid, b = spec->block;
    const unsigned long long threads = (unsigned long long)b.x * b.y * b.z;
    const char *why = nullptr;
    if (b.x == 0 || b.y == 0 || b.z == 0 || g.x == 0 || g.y == 0 || g.z == 0)
        why = "a zero grid or block dimension";
    else if (b.x > (unsigned)p.maxThreadsDim[0] || b.y > (unsigned)p.maxThreadsDim[1] ||
             b.z > (unsigned)p.maxThreadsDim[2] || threads > (unsigned long long)p.maxThreadsPerBlock)
        why = "more threads per block than the device allows (1024; 1024 x 1024 x 64)";
    else if (g.x > (unsigned)p.maxGridSize[0] || g.y > (unsigned)p.maxGridSize[1] ||
             g.z > (unsigned)p.maxGridSize[2])
        why = "a grid dimension above the device's limit";
    if (why != nullptr) {
        fprintf(stderr, "cuda emulator: kernel %s refused: grid (%u,%u,%u), block (%u,%u,%u): %s\n", spec->name, g.x,
                g.y, g.z, b.x, b.y, b.z, why);
        fail(cudaErrorInvalidConfiguration);
        return;
    }
    if (spec->smem > SHARED_LIMIT) {
        fprintf(stderr, "cuda emulator: kernel %s refused: %zu bytes of dynamic shared memory (limit %zu)\n",
                spec->name, spec->smem, SHARED_LIMIT);
        fail(cudaErrorInvalidValue);
        return;
    }
    launch_t L{spec->name, g, b, spec->run_thread, args};
    cudaError_t err = issue(stream, op_t{cudaGraphNodeTypeKernel, spec->name, [L]() { run_launch(L); }});
    (void)err;
}

/* ---- emu_internal.h ------------------------------------------------------------------------------ */

int cuda_emu_is_device_range(const void *p, size_t bytes)
{
    API_LOCK();
    return find_allocation(p, bytes) != nullptr;
}

cudaError_t cuda_emu_issue_kernel(cudaStream_t stream, const char *name, std::function<void()> run)
{
    API_LOCK();
    if (sticky_error != cudaSuccess)
        return fail(sticky_error);
    return issue(stream, op_t{cudaGraphNodeTypeKernel, name, [name, run]() {
                                  run();
                                  check_guards(name);
                              }});
}

/* ---- the runtime API ----------------------------------------------------------------------------- */

#define STICKY_CHECK()                                                                                  \
    do {                                                                                                \
        if (sticky_error != cudaSuccess)                                                                \
            return fail(sticky_error);                                                                  \
    } while (0)

extern "C" {

cudaError_t cudaGetDeviceCount(int *count)
{
    API_LOCK();
    *count = device_count();
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int d)
{
    API_LOCK();
    STICKY_CHECK();
    if (d < 0 || d >= device_count())
        return fail(cudaErrorInvalidDevice);
    current_device = d;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *d)
{
    API_LOCK();
    *d = current_device;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int d)
{
    API_LOCK();
    if (d < 0 || d >= device_count())
        return fail(cudaErrorInvalidDevice);
    *prop = device_prop();
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v)
{
    *v = 13000;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v)
{
    *v = 13000;
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void)
{
    API_LOCK();
    cudaError_t e = last_error;
    last_error = sticky_error;
    return e;
}

cudaError_t cudaPeekAtLastError(void)
{
    API_LOCK();
    return last_error;
}

const char *cudaGetErrorName(cudaError_t err)
{
    switch (err) {
#define ERROR_NAME(name, value, message) case name: return #name;
        CUDA_EMU_ERRORS(ERROR_NAME)
#undef ERROR_NAME
    }
    return "cudaErrorUnknown";
}

/* The message of an error whose list row has one, else its name. */
static const char *message_or_name(const char *message, const char *name) { return message ? message : name; }

const char *cudaGetErrorString(cudaError_t err)
{
    switch (err) {
#define ERROR_STRING(name, value, message) case name: return message_or_name(message, #name);
        CUDA_EMU_ERRORS(ERROR_STRING)
#undef ERROR_STRING
    }
    return cudaGetErrorName(err);
}

/* Run every stream's work: what cudaDeviceSynchronize and cudaEventSynchronize do (one
 * timeline: an event is reached when its stream's earlier work has run). */
static cudaError_t synchronize_all(void)
{
    API_LOCK();
    STICKY_CHECK();
    cudaError_t e = refuse_during_capture();
    if (e != cudaSuccess)
        return e;
    run_all_queues();
    return sticky_error != cudaSuccess ? fail(sticky_error) : cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    return synchronize_all();
}

cudaError_t cudaMalloc(void **ptr, size_t bytes)
{
    API_LOCK();
    *ptr = nullptr;
    STICKY_CHECK();
    cudaError_t e = refuse_during_capture();
    if (e != cudaSuccess)
        return e;
    const size_t total = device_prop().totalGlobalMem;
    if (bytes > total - std::min(total, allocated_bytes))
        return fail(cudaErrorMemoryAllocation);
    const size_t page = page_size();
    const size_t span = (bytes + ALLOC_ALIGN - 1) / ALLOC_ALIGN * ALLOC_ALIGN;
    /* [front guard: ALLOC_ALIGN bytes and up to the buffer][buffer + rounding, ending on a page][no-access page] */
    const size_t body = (span + ALLOC_ALIGN + page - 1) / page * page;
    const size_t map_bytes = body + page;
    char *m = (char *)mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return fail(cudaErrorMemoryAllocation);
    if (mprotect(m + body, page, PROT_NONE) != 0) {
        munmap(m, map_bytes);
        return fail(cudaErrorMemoryAllocation);
    }
    allocation al{m, map_bytes, m + body - span, bytes, span};
    memset(al.map, GUARD_BYTE, (size_t)(al.base - al.map));
    memset(al.base, 0xff, bytes); /* NaN: a read of a byte nobody wrote shows */
    memset(al.base + bytes, GUARD_BYTE, span - bytes);
#if EMU_ASAN
    ASAN_POISON_MEMORY_REGION(al.map, (size_t)(al.base - al.map));
    ASAN_POISON_MEMORY_REGION(al.base + bytes, span - bytes);
#endif
    allocations[(uintptr_t)al.base] = al;
    allocated_bytes += span;
    *ptr = al.base;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr)
{
    API_LOCK();
    if (ptr == nullptr)
        return cudaSuccess;
    cudaError_t e = refuse_during_capture();
    if (e != cudaSuccess)
        return e;
    run_all_queues(); /* cudaFree waits for the device, as the real one does */
    auto it = allocations.find((uintptr_t)ptr);
    if (it == allocations.end()) {
        fprintf(stderr, "cuda emulator: cudaFree(%p): not the start of a device buffer\n", ptr);
        return fail(cudaErrorInvalidDevicePointer);
    }
    check_guards("a kernel or copy before cudaFree");
    const allocation al = it->second;
    allocations.erase(it);
    allocated_bytes -= al.span;
#if EMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(al.map, al.map_bytes - page_size());
#endif
    munmap(al.map, al.map_bytes); /* a later use faults */
    return sticky_error != cudaSuccess ? fail(sticky_error) : cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    API_LOCK();
    STICKY_CHECK();
    const size_t total = device_prop().totalGlobalMem;
    *total_bytes = total;
    *free_bytes = total - std::min(total, allocated_bytes);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream)
{
    API_LOCK();
    STICKY_CHECK();
    if (bytes == 0)
        return cudaSuccess;
    const int dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const int src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind != cudaMemcpyHostToDevice && kind != cudaMemcpyDeviceToHost && kind != cudaMemcpyDeviceToDevice)
        return fail(cudaErrorInvalidMemcpyDirection);
    if ((dst_dev && find_allocation(dst, bytes) == nullptr) || (src_dev && find_allocation(src, bytes) == nullptr) ||
        (!dst_dev && find_allocation(dst, 0) != nullptr) || (!src_dev && find_allocation(src, 0) != nullptr)) {
        fprintf(stderr, "cuda emulator: cudaMemcpyAsync(%p, %p, %zu bytes, kind %d): a range outside device memory "
                        "or the wrong direction\n", dst, src, bytes, (int)kind);
        return fail(cudaErrorInvalidValue);
    }
    cuda_emu_stream *s = stream_of(stream);
    if (s->capture != cudaStreamCaptureStatusNone && kind != cudaMemcpyDeviceToDevice) {
        s->capture = cudaStreamCaptureStatusInvalidated; /* pageable host memory cannot be captured */
        return fail(cudaErrorStreamCaptureUnsupported);
    }
    return issue(stream, op_t{cudaGraphNodeTypeMemcpy, "cudaMemcpyAsync", [dst, src, bytes]() {
                                  memcpy(dst, src, bytes);
                                  check_guards("cudaMemcpyAsync");
                              }});
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream)
{
    API_LOCK();
    STICKY_CHECK();
    if (bytes == 0)
        return cudaSuccess;
    if (find_allocation(ptr, bytes) == nullptr) {
        fprintf(stderr, "cuda emulator: cudaMemsetAsync(%p, %zu bytes): outside device memory\n", ptr, bytes);
        return fail(cudaErrorInvalidValue);
    }
    return issue(stream, op_t{cudaGraphNodeTypeMemset, "cudaMemsetAsync", [ptr, value, bytes]() {
                                  memset(ptr, value, bytes);
                              }});
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags)
{
    API_LOCK();
    STICKY_CHECK();
    cuda_emu_stream *s = new cuda_emu_stream{{}, current_device, flags, cudaStreamCaptureStatusNone, nullptr};
    streams.push_back(s);
    *stream = s;
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    API_LOCK();
    auto it = std::find(streams.begin(), streams.end(), stream);
    if (stream == nullptr || it == streams.end())
        return fail(cudaErrorInvalidResourceHandle);
    run_queue(stream); /* work already issued still completes */
    streams.erase(it);
    delete stream->graph;
    delete stream;
    return sticky_error != cudaSuccess ? fail(sticky_error) : cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    API_LOCK();
    STICKY_CHECK();
    cuda_emu_stream *s = stream_of(stream);
    if (s->capture != cudaStreamCaptureStatusNone) {
        s->capture = cudaStreamCaptureStatusInvalidated;
        return fail(cudaErrorStreamCaptureUnsupported);
    }
    if (s == &legacy_stream)
        run_all_queues(); /* the legacy stream waits for the blocking streams; ours all, simply */
    else
        run_queue(s);
    return sticky_error != cudaSuccess ? fail(sticky_error) : cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode)
{
    API_LOCK();
    STICKY_CHECK();
    cuda_emu_stream *s = stream_of(stream);
    if (s == &legacy_stream || s->capture != cudaStreamCaptureStatusNone || capturing_stream() != nullptr)
        return fail(cudaErrorStreamCaptureUnsupported);
    (void)mode;
    s->capture = cudaStreamCaptureStatusActive;
    s->graph = new cuda_emu_graph;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph)
{
    API_LOCK();
    cuda_emu_stream *s = stream_of(stream);
    *graph = nullptr;
    if (s->capture == cudaStreamCaptureStatusNone)
        return fail(cudaErrorStreamCaptureUnsupported);
    const int invalid = s->capture == cudaStreamCaptureStatusInvalidated;
    s->capture = cudaStreamCaptureStatusNone;
    if (invalid) {
        delete s->graph;
        s->graph = nullptr;
        return fail(cudaErrorStreamCaptureInvalidated);
    }
    *graph = s->graph;
    s->graph = nullptr;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status)
{
    API_LOCK();
    *status = stream_of(stream)->capture;
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
    API_LOCK();
    STICKY_CHECK();
    *event = new cuda_emu_event{0, 0, 0.0, flags};
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    API_LOCK();
    if (event == nullptr)
        return fail(cudaErrorInvalidResourceHandle);
    delete event;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    API_LOCK();
    STICKY_CHECK();
    if (event == nullptr)
        return fail(cudaErrorInvalidResourceHandle);
    event->recorded = 1;
    event->complete = 0;
    return issue(stream, op_t{cudaGraphNodeTypeEventRecord, "cudaEventRecord", [event]() {
                                  event->seconds = host_seconds();
                                  event->complete = 1;
                              }});
}

cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
    if (event == nullptr)
        return fail(cudaErrorInvalidResourceHandle);
    return synchronize_all();
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    API_LOCK();
    STICKY_CHECK();
    if ((start->flags & cudaEventDisableTiming) || (end->flags & cudaEventDisableTiming))
        return fail(cudaErrorInvalidResourceHandle);
    if (!start->complete || !end->complete)
        return fail(cudaErrorNotReady);
    *ms = (float)((end->seconds - start->seconds) * 1e3);
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags)
{
    API_LOCK();
    STICKY_CHECK();
    (void)flags;
    cuda_emu_graph_exec *x = new cuda_emu_graph_exec;
    for (const auto &node : graph->nodes)
        x->ops.push_back(node->op);
    *exec = x;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream)
{
    API_LOCK();
    STICKY_CHECK();
    if (stream_of(stream)->capture != cudaStreamCaptureStatusNone)
        return fail(cudaErrorStreamCaptureUnsupported); /* child graphs: not used by cuvae */
    for (const op_t &op : exec->ops) {
        cudaError_t e = issue(stream, op);
        if (e != cudaSuccess)
            return e;
    }
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    API_LOCK();
    delete exec;
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    API_LOCK();
    delete graph;
    return cudaSuccess;
}

cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *count)
{
    API_LOCK();
    if (nodes == nullptr) {
        *count = graph->nodes.size();
        return cudaSuccess;
    }
    const size_t n = std::min(*count, graph->nodes.size());
    for (size_t i = 0; i < n; i++)
        nodes[i] = graph->nodes[i].get();
    *count = n;
    return cudaSuccess;
}

cudaError_t cudaGraphNodeGetType(cudaGraphNode_t node, enum cudaGraphNodeType *type)
{
    *type = node->op.type;
    return cudaSuccess;
}

cudaError_t cudaGraphChildGraphNodeGetGraph(cudaGraphNode_t node, cudaGraph_t *graph)
{
    (void)node;
    *graph = nullptr;
    return fail(cudaErrorInvalidValue); /* the emulator records no child graphs */
}

} /* extern "C" */
