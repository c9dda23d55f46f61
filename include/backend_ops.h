/*
 * backend_ops.h: the ops of struct vae_backend (backend.h), listed once, in the struct's
 * order, as an X-macro. Every list that must name each op is generated from it: the CPU's
 * table (cpu_<op>, src/cpu_backend.c), the CUDA backend's (cuda_<op>, kernels/cuda_backend.cu),
 * the profiler's wrappers (prof_<op>) and the names of its rows (src/profile_backend.c), the
 * wrappers' graph ops (vae_backend_wrap) and the tests' completeness checks. An op listed here
 * without its cpu_, cuda_ or prof_ function is an undeclared identifier at compile time, not a
 * NULL found at run time; src/backend.c asserts at compile time that the list and the struct
 * agree, member for member and in order.
 *
 * Not here: the signatures. Each op's type and its documented contract (shapes, formulas) stay
 * in backend.h, written by hand; the list holds names only.
 */
#ifndef VAE_BACKEND_OPS_H
#define VAE_BACKEND_OPS_H

/* VAE_BACKEND_OPS(SETUP, STREAM, COMPUTE, GRAPH) applies one of its four macros to each op's
 * name, the one of the op's kind:
 *   SETUP    the backend's own state: allocation, generators, destroy; not timed by the profiler
 *   STREAM   copies, clears and the wait for the stream; timed
 *   COMPUTE  the kernels; timed, and each run by a descriptor of tests/op_table.c
 *   GRAPH    capture and replay: the CUDA backend's; NULL on the CPU and in every wrapper
 * A use that leaves a kind out passes VAE_BACKEND_OP_SKIP for it. */
#define VAE_BACKEND_OPS(SETUP, STREAM, COMPUTE, GRAPH) \
    SETUP(buffer_alloc)                                 \
    SETUP(buffer_free)                                  \
    STREAM(upload)                                      \
    STREAM(download)                                    \
    STREAM(memset_zero)                                 \
    STREAM(synchronize)                                 \
    SETUP(rng_init)                                     \
    SETUP(rng_free)                                     \
    SETUP(rng_reset)                                    \
    SETUP(rng_get_offset)                               \
    SETUP(rng_set_offset)                               \
    COMPUTE(rng_normal)                                 \
    COMPUTE(rng_uniform)                                \
    COMPUTE(gemm)                                       \
    COMPUTE(bias_act_forward)                           \
    COMPUTE(bias_act_backward)                          \
    COMPUTE(reparam_forward)                            \
    COMPUTE(reparam_backward)                           \
    COMPUTE(lik_bernoulli)                              \
    COMPUTE(lik_gaussian)                               \
    COMPUTE(kl_gaussian)                                \
    COMPUTE(loss_accumulate)                            \
    COMPUTE(adam_step)                                  \
    COMPUTE(gather_batch)                               \
    COMPUTE(gather_rows)                                \
    COMPUTE(gather_one_hot)                             \
    COMPUTE(binarize)                                   \
    COMPUTE(gumbel_softmax_forward)                     \
    COMPUTE(gumbel_softmax_backward)                    \
    COMPUTE(onehot_argmax)                              \
    COMPUTE(kl_categorical)                             \
    COMPUTE(capacity_weight)                            \
    COMPUTE(gauss_log_ratio)                            \
    COMPUTE(check_finite)                               \
    COMPUTE(grad_clip_scale)                            \
    GRAPH(graph_capture_begin)                          \
    GRAPH(graph_capture_end)                            \
    GRAPH(graph_launch)                                 \
    GRAPH(graph_free)                                   \
    SETUP(destroy)

#define VAE_BACKEND_OP_SKIP(op)

#endif /* VAE_BACKEND_OPS_H */
