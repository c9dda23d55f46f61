/*
 * train.c: the training loop, the CPU-vs-CUDA step runner and evaluation; see
 * train.h. Written once against the backend table: the only difference the
 * CUDA backend makes here is that a training step is captured as a graph the
 * first time a batch size is seen and replayed after that.
 */
#include "train.h"

#include "hostrng.h"
#include "progress.h"
#include "vae_util.h"

#include <math.h>
#include <string.h>

/* Stream of seeds derived from the user's --seed, so the generators differ. */
#define SEED_TRAIN_NOISE 0x6e6f697365ull  /* "noise" */
#define SEED_ORDER 0x6f72646572ull        /* "order" */

void vae_device_data_init(vae_device_data *d, vae_backend *be, const vae_dataset *ds)
{
    d->n = ds->n;
    d->dim = ds->dim;
    d->pixels = be->buffer_alloc(be, (size_t)ds->n * ds->dim);
    be->upload(be, d->pixels, ds->pixels, (size_t)ds->n * ds->dim);
    int32_t *order = vae_calloc((size_t)ds->n, sizeof *order);
    for (int i = 0; i < ds->n; i++)
        order[i] = i;
    d->order = be->buffer_alloc(be, (size_t)ds->n * sizeof *order);
    be->upload(be, d->order, order, (size_t)ds->n * sizeof *order);
    vae_free(order);
}

void vae_device_data_free(vae_device_data *d, vae_backend *be)
{
    if (d->pixels)
        be->buffer_free(be, d->pixels);
    if (d->order)
        be->buffer_free(be, d->order);
    memset(d, 0, sizeof *d);
}

struct vae_trainer {
    vae_model *m;
    vae_train_options opt;
    vae_rng *noise;       /* per-step reparameterization noise */
    vae_hostrng order;    /* per-epoch shuffles */
    vae_hostrng order_before; /* `order` before the shuffle of the epoch in progress */
    int epochs_done;      /* finished epochs */
    int step;             /* steps finished in the epoch in progress */
    double seconds;       /* training seconds of those steps */
    int32_t *host_order;  /* (capacity) scratch for shuffles */
    int host_order_cap;
    double *acc;          /* (2) backend: summed [recon, kl] since the last reset */
    int epoch;             /* the epoch being trained, and Adam's t when it began */
    int epoch_first_step;
    int diverged;          /* the flag has been read set: `divergence` says where */
    vae_divergence divergence;
    vae_graph *graph_full; /* step captured for B = batch_size */
    vae_graph *graph_tail; /* step captured for the last, smaller batch */
    int tail_batch;
};

vae_trainer *vae_trainer_init(vae_model *m, const vae_train_options *opt)
{
    vae_backend *be = m->be;
    vae_trainer *t = vae_calloc(1, sizeof *t);
    t->m = m;
    t->opt = *opt;
    t->noise = be->rng_init(be, opt->seed ^ SEED_TRAIN_NOISE);
    vae_hostrng_seed(&t->order, opt->seed ^ SEED_ORDER);
    t->order_before = t->order;
    t->acc = be->buffer_alloc(be, 2 * sizeof(double));
    return t;
}

void vae_trainer_free(vae_trainer *t)
{
    if (!t)
        return;
    vae_backend *be = t->m->be;
    if (t->graph_full)
        be->graph_free(be, t->graph_full);
    if (t->graph_tail)
        be->graph_free(be, t->graph_tail);
    be->rng_free(be, t->noise);
    be->buffer_free(be, t->acc);
    vae_free(t->host_order);
    vae_free(t);
}

/* The part of a step that a graph can hold: everything after the batch is in place. The
 * noise is drawn in it: the generator's offset lives on the backend, so a replay draws anew. */
static void step_body(vae_trainer *t, int B)
{
    vae_model *m = t->m;
    m->be->rng_normal(m->be, t->noise, m->eps, vae_rng_normal_count((size_t)B * m->cfg.latent_dim));
    vae_model_train_step(m, B, &t->opt.adam, t->opt.clip_grad_norm);
    m->be->loss_accumulate(m->be, t->acc, m->row_loss, B);
}

/* One training step on rows [first, first + B) of data->order. */
static void train_step(vae_trainer *t, vae_device_data *data, int first, int B)
{
    vae_model *m = t->m;
    vae_backend *be = m->be;
    be->gather_batch(be, m->x, data->pixels, data->order + first, B, data->dim);
    if (!be->graph_capture_begin) {
        step_body(t, B);
        return;
    }
    vae_graph **g = B == t->opt.batch_size ? &t->graph_full : &t->graph_tail;
    if (g == &t->graph_tail && *g && t->tail_batch != B) {
        be->graph_free(be, *g);
        *g = NULL;
    }
    if (!*g) {
        be->graph_capture_begin(be);
        step_body(t, B);
        *g = be->graph_capture_end(be);
        if (g == &t->graph_tail)
            t->tail_batch = B;
    }
    be->graph_launch(be, *g);
}

static vae_losses read_losses(vae_backend *be, const double *acc, long images, float beta)
{
    double h[2];
    be->download(be, h, acc, sizeof h);
    vae_losses l;
    l.recon = images ? h[0] / images : 0;
    l.kl = images ? h[1] / images : 0;
    l.loss = l.recon + beta * l.kl;
    return l;
}

int vae_trainer_diverged(vae_trainer *t, vae_divergence *d)
{
    if (!t->diverged && vae_model_read_divergence(t->m, &t->divergence)) {
        t->diverged = 1;
        t->divergence.epoch = t->epoch;
        t->divergence.epoch_step = (int)(t->divergence.step - t->epoch_first_step);
    }
    if (t->diverged)
        *d = t->divergence;
    return t->diverged;
}

vae_losses vae_trainer_steps(vae_trainer *t, vae_device_data *train, int first_step, int steps)
{
    vae_backend *be = t->m->be;
    int bs = t->opt.batch_size;
    be->memset_zero(be, t->acc, 2 * sizeof(double));
    long images = 0;
    for (int s = first_step; s < first_step + steps; s++) {
        int first = (int)((long)s * bs % train->n);
        int B = train->n - first < bs ? train->n - first : bs;
        train_step(t, train, first, B);
        images += B;
    }
    return read_losses(be, t->acc, images, t->m->cfg.beta);
}

int vae_trainer_epoch(vae_trainer *t, vae_device_data *train, vae_device_data *test, int epoch,
                      vae_epoch_metrics *out)
{
    vae_model *m = t->m;
    vae_backend *be = m->be;
    const int n = train->n, bs = t->opt.batch_size;

    if (t->host_order_cap < n) {
        vae_free(t->host_order);
        t->host_order = vae_calloc((size_t)n, sizeof *t->host_order);
        t->host_order_cap = n;
    }
    /* A fresh epoch shuffles from where the generator stands; one in progress reshuffles from
     * the state before its shuffle, which gives the same order again. */
    if (t->step == 0)
        t->order_before = t->order;
    else
        t->order = t->order_before;
    for (int i = 0; i < n; i++)
        t->host_order[i] = i;
    vae_hostrng_shuffle(&t->order, t->host_order, (size_t)n);

    double t0 = vae_now_seconds();
    be->upload(be, train->order, t->host_order, (size_t)n * sizeof(int32_t));
    t->epoch = epoch;
    /* Adam's counter at the epoch's first step, also when the epoch resumes after t->step steps
     * (the upload waited already, so this download costs no extra synchronization). */
    be->download(be, &t->epoch_first_step, m->adam_step, sizeof(int));
    t->epoch_first_step -= t->step;
    vae_divergence d;
    if (t->step == 0) {
        be->memset_zero(be, t->acc, 2 * sizeof(double));
        t->seconds = 0;
    }

    vae_progress p;
    vae_progress_begin(&p, t->opt.log, t->opt.progress, epoch, t->opt.epochs, n);
    for (int first = t->step * bs; first < n; first += bs) {
        int B = n - first < bs ? n - first : bs;
        train_step(t, train, first, B);
        t->step++;
        if (vae_progress_due(&p)) {
            vae_losses run = read_losses(be, t->acc, first + B, m->cfg.beta);
            if (vae_trainer_diverged(t, &d))
                break; /* the steps left would all be skipped */
            vae_progress_update(&p, first + B, run.loss);
        }
        if (t->opt.stop && *t->opt.stop && first + B < n) {
            be->synchronize(be);
            t->seconds += vae_now_seconds() - t0;
            vae_progress_end(&p);
            return 1;
        }
    }
    out->train = read_losses(be, t->acc, n, m->cfg.beta); /* waits for the epoch's last step */
    t->seconds += vae_now_seconds() - t0;
    out->seconds = t->seconds;
    vae_progress_end(&p);
    out->epoch = epoch;
    out->images_per_second = out->seconds > 0 ? n / out->seconds : 0;
    t->epochs_done++;
    t->step = 0;
    if (test && !vae_trainer_diverged(t, &d))
        out->test = vae_evaluate(m, test, t->opt.seed);
    else
        out->test = (vae_losses){NAN, NAN, NAN};
    return 0;
}

void vae_trainer_get_state(vae_trainer *t, vae_trainer_state *s)
{
    vae_backend *be = t->m->be;
    memset(s, 0, sizeof *s);
    s->epochs_done = t->epochs_done;
    s->step = t->step;
    s->noise_offset = be->rng_get_offset(be, t->noise);
    s->order_rng = t->step ? t->order_before : t->order;
    if (t->step)
        be->download(be, s->acc, t->acc, sizeof s->acc);
    s->seconds = t->step ? t->seconds : 0;
}

void vae_trainer_set_state(vae_trainer *t, const vae_trainer_state *s)
{
    vae_backend *be = t->m->be;
    t->epochs_done = s->epochs_done;
    t->step = s->step;
    be->rng_set_offset(be, t->noise, s->noise_offset);
    t->order = s->order_rng;
    t->order_before = s->order_rng;
    be->upload(be, t->acc, s->acc, sizeof s->acc);
    t->seconds = s->seconds;
}

vae_losses vae_evaluate(vae_model *m, vae_device_data *data, uint64_t seed)
{
    vae_backend *be = m->be;
    const int bs = m->batch_cap, Z = m->cfg.latent_dim;
    vae_rng *rng = be->rng_init(be, seed);
    double *acc = be->buffer_alloc(be, 2 * sizeof(double));
    for (int first = 0; first < data->n; first += bs) {
        int B = data->n - first < bs ? data->n - first : bs;
        be->gather_batch(be, m->x, data->pixels, data->order + first, B, data->dim);
        be->rng_normal(be, rng, m->eps, vae_rng_normal_count((size_t)B * Z));
        vae_model_forward(m, B, 0);
        be->loss_accumulate(be, acc, m->row_loss, B);
    }
    vae_losses l = read_losses(be, acc, data->n, m->cfg.beta);
    be->buffer_free(be, acc);
    be->rng_free(be, rng);
    return l;
}
