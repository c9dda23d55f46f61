/*
 * backend.c: choosing a backend from --device (auto | cpu | cuda | cuda:N). "auto" takes
 * the GPU when one is usable and says which device it used; "cuda" on a machine
 * without one is an error, never a silent fall-back to the CPU. The start of a
 * wrapper around a backend (vae_backend_wrap). And the compile-time check that the op
 * list of backend_ops.h and struct vae_backend agree.
 */
#include "backend.h"
#include "backend_ops.h"
#include "vae_util.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Each op of the list is the member of struct vae_backend at its rank in the list (the ops
 * follow ctx, one function pointer each), and no member follows the last: a table generated
 * from the list sets every op, in the struct's order. */
enum {
#define OP_RANK(op) OP_RANK_##op,
    VAE_BACKEND_OPS(OP_RANK, OP_RANK, OP_RANK, OP_RANK)
#undef OP_RANK
    OP_RANKS
};
#define OPS_START (offsetof(vae_backend, ctx) + sizeof(void *))
#define OP_PLACE(op)                                                                                      \
    _Static_assert(offsetof(vae_backend, op) == OPS_START + OP_RANK_##op * sizeof(void (*)(void)),     \
                   "struct vae_backend's " #op " is not where backend_ops.h lists it");
VAE_BACKEND_OPS(OP_PLACE, OP_PLACE, OP_PLACE, OP_PLACE)
#undef OP_PLACE
_Static_assert(sizeof(vae_backend) == OPS_START + OP_RANKS * sizeof(void (*)(void)),
               "struct vae_backend has an op after the last that backend_ops.h lists");

/* The names of backend.h's VAE_DEVICE_CHOICES, indexed by value. */
static const char *const device_names[] = {
#define DEVICE_NAME(id, value, name) [VAE_DEVICE_##id] = name,
    VAE_DEVICE_CHOICES(DEVICE_NAME)
#undef DEVICE_NAME
};
_Static_assert(VAE_NAMES_N(device_names) == VAE_DEVICE_CUDA + 1, "VAE_DEVICE_CUDA must be the last choice");

int vae_device_parse(const char *s, vae_device_choice *out)
{
    const int c = vae_name_find(device_names, VAE_NAMES_N(device_names), s);
    if (c >= 0) {
        *out = (vae_device_choice)c;
        return 0;
    }
    const size_t cuda_len = strlen(device_names[VAE_DEVICE_CUDA]);
    if (strncmp(s, device_names[VAE_DEVICE_CUDA], cuda_len) == 0 && s[cuda_len] == ':') {
        const char *n = s + cuda_len + 1;
        size_t digits = strspn(n, "0123456789");
        if (digits == 0 || n[digits] != '\0')
            return vae_set_error("invalid --device '%s' (cuda:N needs N, a GPU number 0, 1, ...)", s);
        long v = 0;
        for (size_t i = 0; i < digits && v <= VAE_DEVICE_MAX_ORDINAL; i++)
            v = v * 10 + (n[i] - '0');
        if (v > VAE_DEVICE_MAX_ORDINAL)
            return vae_set_error("invalid --device '%s' (GPU number above %d)", s, VAE_DEVICE_MAX_ORDINAL);
        *out = vae_device_cuda((int)v);
        return 0;
    }
    return vae_set_error("invalid --device '%s' (expected auto, cpu, cuda or cuda:N)", s);
}

const char *vae_device_text(vae_device_choice c, char buf[16])
{
    const int cuda = vae_device_is_cuda(c);
    const char *name = vae_name_of(device_names, VAE_NAMES_N(device_names), cuda ? VAE_DEVICE_CUDA : c);
    if (cuda && vae_device_ordinal(c) > 0)
        snprintf(buf, 16, "%s:%d", name, vae_device_ordinal(c));
    else
        snprintf(buf, 16, "%s", name);
    return buf;
}

vae_backend *vae_backend_create(vae_device_choice choice)
{
    if (vae_device_is_cuda(choice))
        return vae_backend_cuda_init(vae_device_ordinal(choice));
    if (choice == VAE_DEVICE_CPU)
        return vae_backend_cpu_init();
    /* The emulated device (a test build's) is never chosen for the user: it is the CPU
     * pretending, thousands of times slower than the CPU backend. */
    if (vae_cuda_device_count() > 0 && !vae_cuda_is_emulated())
        return vae_backend_cuda_init(0);
    return vae_backend_cpu_init();
}

int vae_cuda_describe_unavailable(char *buf, size_t len, const char *err_name, const char *err_text,
                                  int driver_version, int runtime_version)
{
    if (driver_version == 0)
        return snprintf(buf, len, "no CUDA device: no NVIDIA driver is installed on this machine (the CUDA runtime "
                                  "found no libcuda.so.1; %s)", err_name);
    if (driver_version < runtime_version)
        return snprintf(buf, len, "no CUDA device: the NVIDIA driver supports CUDA up to %d.%d, older than the "
                                  "CUDA %d.%d runtime cuvae was built with; install a newer driver (%s)",
                        driver_version / 1000, driver_version % 1000 / 10, runtime_version / 1000,
                        runtime_version % 1000 / 10, err_name);
    return snprintf(buf, len, "no CUDA device: %s (%s)", err_text, err_name);
}

int vae_backend_memory_info(vae_backend *be, size_t *free_bytes, size_t *total_bytes)
{
    if (be->kind != VAE_BACKEND_CUDA)
        return vae_set_error("backend %s: device memory is the host's, not queried", be->name);
    vae_cuda_memory_info(be, free_bytes, total_bytes);
    return 0;
}

void vae_backend_wrap(vae_backend *w, const vae_backend *inner, const char *suffix, void (*destroy)(vae_backend *))
{
    *w = *inner;
    if (suffix)
        snprintf(w->device_name, sizeof w->device_name, "%.200s, %s", inner->device_name, suffix);
#define WRAP_EAGER(op) w->op = NULL;
    VAE_BACKEND_OPS(VAE_BACKEND_OP_SKIP, VAE_BACKEND_OP_SKIP, VAE_BACKEND_OP_SKIP, WRAP_EAGER)
#undef WRAP_EAGER
    w->destroy = destroy;
}
