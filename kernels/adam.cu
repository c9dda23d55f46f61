/*
 * adam.cu: one Adam step over a flat buffer (backend.h), PyTorch's form:
 *   t = ++(*step)
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * params, grads, m, v (n); lr (one float) and step (one int) in device memory,
 * so a replayed graph follows a learning-rate schedule.
 *
 * Two launches in stream order: a one-thread kernel increments *step, then
 * the update kernel, in which every thread reads t from device memory. The
 * step count therefore lives on the GPU, and a captured graph advances it on
 * every replay. Plain powf/sqrtf in float, no fast-math intrinsics.
 *
 * Both kernels read the divergence flag `skip` (set by check_finite, guard.cu)
 * from device memory and do nothing when it is set, and multiply the gradient
 * by *grad_scale (grad_clip_scale, guard.cu) when it is given: a step gates and
 * clips itself on the GPU, inside a graph, without a synchronization.
 *
 * Not here: weight decay, computing the clipping factor, or zeroing the gradients.
 */
#include "cuda_common.cuh"

static __global__ void adam_step_increment_kernel(int *step, const int *skip)
{
    if (skip == nullptr || *skip == 0)
        *step += 1;
}

static __global__ void adam_step_kernel(float *params, const float *grads, float *m, float *v, size_t n,
                                        const float *lr_ptr, float beta1, float beta2, float eps, const int *step,
                                        const int *skip, const float *grad_scale)
{
    if (skip != nullptr && *skip != 0)
        return; /* a non-finite loss or gradient: the whole update is skipped */
    const float gs = grad_scale != nullptr ? *grad_scale : 1.0f; /* g * 1.0f is g exactly */
    const float t = (float)*step, lr = *lr_ptr;
    const float bias_correction1 = 1.0f - powf(beta1, t);
    const float bias_correction2 = 1.0f - powf(beta2, t);
    const float sqrt_bc2 = sqrtf(bias_correction2);
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float g = grads[i] * gs;
        const float mi = beta1 * m[i] + (1.0f - beta1) * g;
        const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] -= lr / bias_correction1 * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    }
}

static void adam_step_cuda(const cuda_ctx *c, float *params, const float *grads, float *m, float *v, size_t n,
                           const vae_adam_config *cfg, const float *lr, int *step, const int *skip,
                           const float *grad_scale, cudaStream_t stream)
{
    CUDA_LAUNCH(adam_step_increment_kernel, 1, 1, 0, stream)(step, skip);
    CUDA_CHECK_LAUNCH();
    if (n == 0)
        return;
    const int threads = 256;
    CUDA_LAUNCH(adam_step_kernel, cuda_grid_size(c, n, threads), threads, 0, stream)(
        params, grads, m, v, n, lr, cfg->beta1, cfg->beta2, cfg->eps, step, skip, grad_scale);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_adam_step(vae_backend *be, float *params, const float *grads, float *m, float *v, size_t n,
                               const vae_adam_config *cfg, const float *lr, int *step, const int *skip,
                               const float *grad_scale)
{
    cuda_ctx *c = cuda_ctx_of(be);
    adam_step_cuda(c, params, grads, m, v, n, cfg, lr, step, skip, grad_scale, c->stream);
}
