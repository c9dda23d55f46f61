/*
 * rng.cu: random numbers for the CUDA backend from cuRAND's device generator,
 * Philox4x32-10 with the default ordering, on the backend's stream.
 *
 * The CPU backend makes the same generator with curandCreateGeneratorHost
 * (same type, seed and ordering), so the same seed and the same sequence of
 * calls give the same numbers on both backends: uniforms bit for bit, and
 * normals within about 4e-6. Not bit for bit: cuRAND's device Box-Muller
 * computes its angle with an FMA and takes sin/cos from the approximate
 * __sincosf (absolute error up to 3.6e-7), scaled by a radius of up to 6.8;
 * the host generator uses libm.
 *
 * Not graph-safe, deliberately fatal under capture: a captured cuRAND call
 * records the generator's offset at capture time, so every replay would draw
 * the same numbers while the host-side offset moved on. Draw noise outside
 * the graph (into a fixed buffer) and let the graph read it.
 */
#include "cuda_common.cuh"

/* The backend's vae_rng: a device generator. */
typedef struct {
    curandGenerator_t gen;
    uint64_t offset; /* 32-bit values drawn since the seed's first one: cuRAND's offset */
} cuda_rng;

static cuda_rng *cuda_rng_of(vae_rng *r)
{
    return (cuda_rng *)r;
}

extern "C" vae_rng *cuda_rng_init(vae_backend *be, uint64_t seed)
{
    cuda_ctx *c = cuda_ctx_of(be);
    cuda_check_not_capturing(c, "rng_init");
    cuda_rng *r = (cuda_rng *)vae_calloc(1, sizeof *r);
    CURAND_CHECK(curandCreateGenerator(&r->gen, CURAND_RNG_PSEUDO_PHILOX4_32_10));
    CURAND_CHECK(curandSetPseudoRandomGeneratorSeed(r->gen, (unsigned long long)seed));
    CURAND_CHECK(curandSetGeneratorOrdering(r->gen, CURAND_ORDERING_PSEUDO_DEFAULT));
    CURAND_CHECK(curandSetGeneratorOffset(r->gen, 0ULL));
    CURAND_CHECK(curandSetStream(r->gen, c->stream));
    return (vae_rng *)r;
}

extern "C" void cuda_rng_free(vae_backend *be, vae_rng *rng)
{
    if (!rng)
        return;
    cuda_rng *r = cuda_rng_of(rng);
    cuda_check_not_capturing(cuda_ctx_of(be), "rng_free");
    /* Work already enqueued may still write through this generator's kernels. */
    CUDA_CHECK(cudaStreamSynchronize(cuda_ctx_of(be)->stream));
    CURAND_CHECK(curandDestroyGenerator(r->gen));
    vae_free(r);
}

extern "C" void cuda_rng_reset(vae_backend *be, vae_rng *rng)
{
    cuda_check_not_capturing(cuda_ctx_of(be), "rng_reset");
    /* Back to the first number of the seed's sequence: the next call
     * regenerates from (seed, offset 0). */
    CURAND_CHECK(curandSetGeneratorOffset(cuda_rng_of(rng)->gen, 0ULL));
    cuda_rng_of(rng)->offset = 0;
}

/* cuRAND has no getter for a generator's position: count it as the CPU backend does
 * (every generate call of n values advances Philox's offset by n). */
extern "C" uint64_t cuda_rng_get_offset(vae_backend *be, vae_rng *rng)
{
    (void)be;
    return cuda_rng_of(rng)->offset;
}

extern "C" void cuda_rng_set_offset(vae_backend *be, vae_rng *rng, uint64_t offset)
{
    cuda_check_not_capturing(cuda_ctx_of(be), "rng_set_offset");
    CURAND_CHECK(curandSetGeneratorOffset(cuda_rng_of(rng)->gen, (unsigned long long)offset));
    cuda_rng_of(rng)->offset = offset;
}

extern "C" void cuda_rng_normal(vae_backend *be, vae_rng *rng, float *out, size_t n)
{
    if (n % 2 != 0)
        vae_fatal("rng_normal: n = %zu is odd; cuRAND draws normals in pairs (round the buffer up)", n);
    if (n == 0)
        return;
    cuda_check_not_capturing(cuda_ctx_of(be), "rng_normal (cuRAND replays the captured offset)");
    CURAND_CHECK(curandGenerateNormal(cuda_rng_of(rng)->gen, out, n, 0.0f, 1.0f));
    cuda_rng_of(rng)->offset += n;
}

extern "C" void cuda_rng_uniform(vae_backend *be, vae_rng *rng, float *out, size_t n)
{
    if (n == 0)
        return;
    cuda_check_not_capturing(cuda_ctx_of(be), "rng_uniform (cuRAND replays the captured offset)");
    CURAND_CHECK(curandGenerateUniform(cuda_rng_of(rng)->gen, out, n));
    cuda_rng_of(rng)->offset += n;
}
