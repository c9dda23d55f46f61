/*
 * cuda_none.c: the CUDA side of backend.h in a build without CUDA (-DCUVAE_CUDA=OFF, or
 * no CUDA toolkit at configure time): no device, and every question about one answered
 * with the build's reason, so `--device cuda`, `devices` and `--version` say in words
 * that this build has no CUDA. Nothing here links a CUDA library.
 *
 * The functions that need a CUDA backend to call them (memory info, TF32, graph nodes,
 * the event timer) can never be reached: no CUDA backend exists in this build. They are
 * fatal, naming themselves, rather than absent, so the one host code links in all three
 * builds (CMakeLists.txt).
 */
#include "backend.h"
#include "cuda_timer.h"
#include "vae_util.h"

#include <stdio.h>

#define CUDA_NONE_WHY                                                                                 \
    "no CUDA device: this build of cuvae has no CUDA backend (configured with -DCUVAE_CUDA=OFF or " \
    "without the CUDA toolkit; rebuild with the toolkit to use a GPU)"

int vae_cuda_device_count(void)
{
    return 0;
}

int vae_cuda_is_emulated(void)
{
    return 0;
}

vae_backend *vae_backend_cuda_init(int device)
{
    vae_set_error("%s", CUDA_NONE_WHY);
    return NULL;
}

void vae_cuda_describe_versions(char *buf, size_t len)
{
    snprintf(buf, len,
             "CUDA runtime: none (this build has no CUDA backend: -DCUVAE_CUDA=OFF or no toolkit at configure time)\n"
             "CUDA driver: not asked (no CUDA runtime in this build)\n"
             "cuBLAS: none\n");
}

int vae_cuda_describe_devices(char *buf, size_t len)
{
    snprintf(buf, len, "%s", CUDA_NONE_WHY);
    return 0;
}

static void cuda_none_unreachable(const char *fn)
{
    vae_fatal("%s: this build has no CUDA backend, so no CUDA backend can reach it", fn);
}

void vae_cuda_set_tf32(vae_backend *be, int on)
{
    cuda_none_unreachable(__func__);
}

void vae_graph_count_nodes(const vae_graph *g, vae_graph_nodes *out)
{
    cuda_none_unreachable(__func__);
}

void vae_cuda_memory_info(vae_backend *be, size_t *free_bytes, size_t *total_bytes)
{
    cuda_none_unreachable(__func__);
}

vae_cuda_timer *vae_cuda_timer_create(vae_backend *be, int n_ops)
{
    cuda_none_unreachable(__func__);
    return NULL;
}

void vae_cuda_timer_free(vae_cuda_timer *t)
{
    if (t)
        cuda_none_unreachable(__func__);
}

void vae_cuda_timer_begin(vae_cuda_timer *t)
{
    cuda_none_unreachable(__func__);
}

void vae_cuda_timer_end(vae_cuda_timer *t, int op)
{
    cuda_none_unreachable(__func__);
}

void vae_cuda_timer_collect(vae_cuda_timer *t)
{
    cuda_none_unreachable(__func__);
}

double vae_cuda_timer_seconds(const vae_cuda_timer *t, int op)
{
    cuda_none_unreachable(__func__);
    return 0.0;
}

void vae_cuda_timer_reset(vae_cuda_timer *t)
{
    cuda_none_unreachable(__func__);
}
