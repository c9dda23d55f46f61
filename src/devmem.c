/*
 * devmem.c: the device memory a training run needs and the check against the
 * free memory of the GPU; see devmem.h.
 */
#include "devmem.h"

#include "vae_util.h"

#include <stdio.h>

int vae_device_plan_train(vae_device_plan *p, const vae_config *cfg, int batch_size, int n_train, int n_test,
                          vae_data_kind kind)
{
    vae_buffer_total model;
    if (vae_model_buffer_total(cfg, batch_size, &model))
        return -1;
    const size_t dim = (size_t)cfg->input_dim;
    const size_t label_bytes = cfg->classes > 0 ? 1 : 0;
    const int data_buffers = label_bytes ? 6 : 4, trainer_buffers = 2;
    p->model = model.bytes;
    /* vae_device_data_init: values (n, dim) of the kind and order (n) int32, for each split, and the
     * labels (n) uint8 that a model reading them gathers (a plain VAE's data carries them too when
     * labelled, one byte per row, within the headroom) */
    p->data = ((size_t)n_train + (size_t)n_test) * (dim * vae_data_value_size(kind) + sizeof(int32_t) + label_bytes);
    /* vae_trainer_init's and vae_eval_loss's (2) double accumulators */
    p->trainer = (size_t)trainer_buffers * 2 * sizeof(double);
    p->headroom = (size_t)(model.count + data_buffers + trainer_buffers) * VAE_DEVICE_ALLOC_GRANULARITY +
                  VAE_DEVICE_HEADROOM_BYTES;
    p->total = p->model + p->data + p->trainer + p->headroom;
    return 0;
}

int vae_device_plan_fits(const vae_device_plan *p, size_t free_bytes, const char *device)
{
    if (p->total <= free_bytes)
        return 0;
    char shortfall[512];
    const double mib = 1024.0 * 1024.0;
    return vae_set_error("not enough GPU memory: this run %s (model and batch activations %.1f MiB, data %.1f MiB, "
                         "allowance %.1f MiB); use a smaller --batch-size or model, free the GPU, or use --device cpu",
                         vae_format_memory_shortfall(shortfall, sizeof shortfall, p->total, free_bytes, device),
                         p->model / mib, p->data / mib, p->headroom / mib);
}

int vae_device_plan_check(const vae_device_plan *p, vae_backend *be)
{
    if (be->kind != VAE_BACKEND_CUDA)
        return 0;
    size_t free_bytes = 0, total_bytes = 0;
    if (vae_backend_memory_info(be, &free_bytes, &total_bytes))
        return -1;
    return vae_device_plan_fits(p, free_bytes, be->device_name);
}
