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
