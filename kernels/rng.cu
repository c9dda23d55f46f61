/*
 * rng.cu: random numbers for the CUDA backend: Philox4x32-10 and the
 * conversions of include/philox.h, the very formula the CPU backend runs, so
 * both backends give bit-identical uniforms and normals (the draw layout is in
 * backend.h).
 *
 * The generator's position (a uint64 count of 32-bit values drawn) lives in
 * device memory: the generator kernel reads it there and a one-thread kernel
 * after it advances it by n. A captured graph therefore draws new numbers at
 * every replay, and rng_normal / rng_uniform may be captured. Resetting or
 * setting the position is an upload from the host and stays outside captures.
 *
 * Built with --fmad=false (CMakeLists.txt) on top of philox.h's explicit fmaf:
 * no multiply-add here may be contracted differently from the host's.
 *
 * Not here: cuRAND (no longer used by the backends; bench/ times it).
 */
#include "cuda_common.cuh"
#include "philox.h"

#define RNG_THREADS 256

/* The backend's vae_rng. */
typedef struct {
    uint64_t seed;    /* Philox's key */
    uint64_t *offset; /* (1) device: 32-bit values drawn since the seed's first one */
} cuda_rng;

static cuda_rng *cuda_rng_of(vae_rng *r)
{
    return (cuda_rng *)r;
}

/* out[i] = uniform(word(o + i)), i < n, o = *offset. A thread takes one Philox block
 * (stream words 4b .. 4b + 3) and writes the elements among them. */
static __global__ void rng_uniform_kernel(float *out, size_t n, uint64_t seed, const uint64_t *offset)
{
    const uint64_t o = *offset;
    const uint64_t first_block = o >> 2, blocks = ((o + n - 1) >> 2) - first_block + 1;
    for (uint64_t t = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; t < blocks;
         t += (uint64_t)gridDim.x * blockDim.x) {
        const uint64_t b = first_block + t;
        uint32_t w[4];
        vae_philox_block(seed, b << 2, w);
        for (int k = 0; k < 4; k++) {
            const uint64_t j = (b << 2) + (uint64_t)k;
            if (j >= o && j - o < n)
                out[j - o] = vae_philox_uniform(w[k]);
        }
    }
}

/* (out[2p], out[2p + 1]) = normal pair of (word(o + 2p), word(o + 2p + 1)), p < n/2. */
static __global__ void rng_normal_kernel(float *out, size_t pairs, uint64_t seed, const uint64_t *offset)
{
    const uint64_t o = *offset;
    for (uint64_t p = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; p < pairs;
         p += (uint64_t)gridDim.x * blockDim.x) {
        const uint64_t j = o + 2 * p;
        uint32_t w[4];
        vae_philox_block(seed, j, w);
        const uint32_t a = w[j & 3];
        uint32_t b;
        if ((j & 3) == 3) { /* the pair straddles two blocks */
            vae_philox_block(seed, j + 1, w);
            b = w[0];
        } else {
            b = w[(j & 3) + 1];
        }
        vae_philox_normal_pair(a, b, &out[2 * p], &out[2 * p + 1]);
    }
}

static __global__ void rng_advance_kernel(uint64_t *offset, uint64_t n)
{
    *offset += n;
}

extern "C" vae_rng *cuda_rng_init(vae_backend *be, uint64_t seed)
{
    cuda_check_not_capturing(cuda_ctx_of(be), "rng_init");
    cuda_rng *r = (cuda_rng *)vae_calloc(1, sizeof *r);
    r->seed = seed;
    r->offset = (uint64_t *)be->buffer_alloc(be, sizeof *r->offset); /* zero-filled */
    return (vae_rng *)r;
}

extern "C" void cuda_rng_free(vae_backend *be, vae_rng *rng)
{
    if (!rng)
        return;
    cuda_rng *r = cuda_rng_of(rng);
    cuda_check_not_capturing(cuda_ctx_of(be), "rng_free");
    /* Work already enqueued may still read and advance this offset. */
    CUDA_CHECK(cudaStreamSynchronize(cuda_ctx_of(be)->stream));
    be->buffer_free(be, r->offset);
    vae_free(r);
}

extern "C" void cuda_rng_reset(vae_backend *be, vae_rng *rng)
{
    cuda_check_not_capturing(cuda_ctx_of(be), "rng_reset (an upload)");
    const uint64_t zero = 0;
    be->upload(be, cuda_rng_of(rng)->offset, &zero, sizeof zero);
}

extern "C" uint64_t cuda_rng_get_offset(vae_backend *be, vae_rng *rng)
{
    uint64_t offset = 0;
    be->download(be, &offset, cuda_rng_of(rng)->offset, sizeof offset); /* waits for the draws before it */
    return offset;
}

extern "C" void cuda_rng_set_offset(vae_backend *be, vae_rng *rng, uint64_t offset)
{
    cuda_check_not_capturing(cuda_ctx_of(be), "rng_set_offset (an upload)");
    be->upload(be, cuda_rng_of(rng)->offset, &offset, sizeof offset);
}

static void rng_advance(cuda_ctx *c, cuda_rng *r, size_t n)
{
    CUDA_LAUNCH(rng_advance_kernel, 1, 1, 0, c->stream)(r->offset, (uint64_t)n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_rng_normal(vae_backend *be, vae_rng *rng, float *out, size_t n)
{
    if (n % 2 != 0)
        vae_fatal("rng_normal: n = %zu is odd; normals come in Box-Muller pairs (round the buffer up)", n);
    if (n == 0)
        return;
    cuda_ctx *c = cuda_ctx_of(be);
    cuda_rng *r = cuda_rng_of(rng);
    CUDA_LAUNCH(rng_normal_kernel, cuda_grid_size(c, n / 2, RNG_THREADS), RNG_THREADS, 0, c->stream)(
        out, n / 2, r->seed, r->offset);
    CUDA_CHECK_LAUNCH();
    rng_advance(c, r, n);
}

extern "C" void cuda_rng_uniform(vae_backend *be, vae_rng *rng, float *out, size_t n)
{
    if (n == 0)
        return;
    cuda_ctx *c = cuda_ctx_of(be);
    cuda_rng *r = cuda_rng_of(rng);
    /* At most n / 4 + 2 Philox blocks hold the n words, wherever the offset stands. */
    CUDA_LAUNCH(rng_uniform_kernel, cuda_grid_size(c, n / 4 + 2, RNG_THREADS), RNG_THREADS, 0, c->stream)(
        out, n, r->seed, r->offset);
    CUDA_CHECK_LAUNCH();
    rng_advance(c, r, n);
}
