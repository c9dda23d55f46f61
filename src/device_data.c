/*
 * device_data.c: a data set on the backend and its batches; see device_data.h.
 */
#include "device_data.h"

#include "vae_util.h"

#include <string.h>

void vae_device_data_init(vae_device_data *d, vae_backend *be, const vae_dataset *ds)
{
    const size_t bytes = (size_t)ds->n * (size_t)ds->dim * vae_data_value_size(ds->kind);
    const void *src = ds->kind == VAE_DATA_FLOATS ? (const void *)ds->values : (const void *)ds->pixels;
    d->n = ds->n;
    d->dim = ds->dim;
    d->kind = ds->kind;
    d->values = be->buffer_alloc(be, bytes);
    be->upload(be, d->values, src, bytes);
    int32_t *order = vae_calloc((size_t)ds->n, sizeof *order);
    for (int i = 0; i < ds->n; i++)
        order[i] = i;
    d->order = be->buffer_alloc(be, (size_t)ds->n * sizeof *order);
    be->upload(be, d->order, order, (size_t)ds->n * sizeof *order);
    vae_free(order);
    d->labels = NULL;
    d->classes = 0;
    if (ds->labels) {
        d->labels = be->buffer_alloc(be, (size_t)ds->n);
        be->upload(be, d->labels, ds->labels, (size_t)ds->n);
        d->classes = ds->classes;
    }
}

void vae_device_data_upload_values(vae_device_data *d, vae_backend *be, const vae_dataset *ds)
{
    if (ds->n != d->n || ds->dim != d->dim || ds->kind != d->kind)
        vae_fatal("vae_device_data_upload_values: %d x %d values for a %d x %d data set", ds->n, ds->dim, d->n,
                  d->dim);
    const void *src = ds->kind == VAE_DATA_FLOATS ? (const void *)ds->values : (const void *)ds->pixels;
    be->upload(be, d->values, src, (size_t)ds->n * (size_t)ds->dim * vae_data_value_size(ds->kind));
}

void vae_device_data_free(vae_device_data *d, vae_backend *be)
{
    if (d->values)
        be->buffer_free(be, d->values);
    if (d->order)
        be->buffer_free(be, d->order);
    if (d->labels)
        be->buffer_free(be, d->labels);
    memset(d, 0, sizeof *d);
}

void vae_device_data_gather(vae_backend *be, const vae_device_data *d, float *x, const int32_t *idx, int B)
{
    if (d->kind == VAE_DATA_FLOATS)
        be->gather_rows(be, x, (const float *)d->values, idx, B, d->dim);
    else
        be->gather_batch(be, x, (const uint8_t *)d->values, idx, B, d->dim);
}

void vae_device_data_gather_model(vae_model *m, const vae_device_data *d, const int32_t *idx, int B)
{
    vae_device_data_gather(m->be, d, m->x, idx, B);
    if (!m->y)
        return;
    if (!d->labels || d->classes > m->cfg.classes)
        vae_fatal("a model of %d classes given data with %s (labels are checked when loaded)", m->cfg.classes,
                  d->labels ? "labels beyond them" : "no labels");
    m->be->gather_one_hot(m->be, m->y, d->labels, idx, B, m->cfg.classes);
}
