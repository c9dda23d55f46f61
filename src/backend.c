/*
 * backend.c: choosing a backend from --device (auto | cpu | cuda). "auto" takes
 * the GPU when one is usable and says which device it used; "cuda" on a machine
 * without one is an error, never a silent fall-back to the CPU.
 */
#include "backend.h"
#include "vae_util.h"

#include <stdio.h>
#include <string.h>

int vae_device_parse(const char *s, vae_device_choice *out)
{
    if (strcmp(s, "auto") == 0)
        *out = VAE_DEVICE_AUTO;
    else if (strcmp(s, "cpu") == 0)
        *out = VAE_DEVICE_CPU;
    else if (strcmp(s, "cuda") == 0)
        *out = VAE_DEVICE_CUDA;
    else
        return vae_set_error("invalid --device '%s' (expected auto, cpu or cuda)", s);
    return 0;
}

vae_backend *vae_backend_create(vae_device_choice choice)
{
    switch (choice) {
    case VAE_DEVICE_CPU:
        return vae_backend_cpu_init();
    case VAE_DEVICE_CUDA:
        return vae_backend_cuda_init(0);
    case VAE_DEVICE_AUTO:
    default:
        if (vae_cuda_device_count() > 0)
            return vae_backend_cuda_init(0);
        return vae_backend_cpu_init();
    }
}

int vae_backend_memory_info(vae_backend *be, size_t *free_bytes, size_t *total_bytes)
{
    if (be->kind != VAE_BACKEND_CUDA)
        return vae_set_error("backend %s: device memory is the host's, not queried", be->name);
    vae_cuda_memory_info(be, free_bytes, total_bytes);
    return 0;
}
