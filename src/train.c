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
    double *acc;          /* (T) backend: summed loss terms since the last reset */
    float *uniform;       /* (batch_size, D) backend: dynamic binarization's uniforms; NULL without */
    int epoch;             /* the epoch being trained, and Adam's t when it began */
    int epoch_first_step;
    int diverged;          /* the flag has been read set: `divergence` says where */
    vae_divergence divergence;
    vae_graph *graph_full; /* step captured for B = batch_size */
    vae_graph *graph_tail; /* step captured for the last, smaller batch */
    int tail_batch;
    int scalars_set;       /* `now` is in the model's backend scalars */
    float now[VAE_SCALAR_SCHEDULED]; /* the scheduled scalars of the last step */
    /* The step log (opt.log_every > 0): row j of the run sums its steps' terms into slot j % win_cap of
     * `win`, outside the captured step; finished rows wait in `rows` (their sums still on the backend
     * until flush_rows reads the whole ring back, at an epoch's end or a stop). */
    double *win;           /* (win_cap, T) backend: the rows' sums */
    int win_cap;           /* slots: more than the rows one epoch can finish */
    long win_images;       /* rows of data in the row in progress */
    long log_next;         /* the run's step after the last one logged */
    int win_restore;       /* set_state gave the row in progress a sum: upload it, not zero, at its next step */
    double win_init[VAE_MAX_TERMS];
    vae_step_row *rows;    /* (win_cap) finished rows */
    long *row_images;      /* (win_cap) their rows of data */
    int n_rows, n_flushed; /* finished rows; of those, read back */
};

void vae_train_options_default(vae_train_options *o, int epochs, int batch_size, float lr, uint64_t seed)
{
    memset(o, 0, sizeof *o);
    o->epochs = epochs;
    o->batch_size = batch_size;
    o->adam = (vae_adam_config){.lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    vae_schedule_default(&o->schedule);
    o->seed = seed;
    o->progress = -1;
    o->log = stderr;
    o->row = "image";
    o->rate = "img/s";
}

vae_trainer *vae_trainer_init(vae_model *m, const vae_train_options *opt)
{
    vae_backend *be = m->be;
    vae_trainer *t = vae_calloc(1, sizeof *t);
    t->m = m;
    t->opt = *opt;
    t->noise = be->rng_init(be, opt->seed ^ SEED_TRAIN_NOISE);
    vae_hostrng_seed(&t->order, opt->seed ^ SEED_ORDER);
    t->order_before = t->order;
    t->acc = be->buffer_alloc(be, (size_t)m->n_terms * sizeof(double));
    if (opt->binarize_dynamic)
        t->uniform = be->buffer_alloc(be, (size_t)opt->batch_size * m->cfg.input_dim * sizeof(float));
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
    if (t->uniform)
        be->buffer_free(be, t->uniform);
    if (t->win)
        be->buffer_free(be, t->win);
    vae_free(t->rows);
    vae_free(t->row_images);
    vae_free(t->host_order);
    vae_free(t);
}

/* The part of a step that a graph can hold: everything after the batch is in place. The
 * noise is drawn in it: the generator's offset lives on the backend, so a replay draws anew. */
static void step_body(vae_trainer *t, int B)
{
    vae_model *m = t->m;
    vae_backend *be = m->be;
    vae_model_draw_noise(m, t->noise, B, 1);
    if (t->uniform) { /* dynamic binarization: a fresh draw of the batch, after the step's other noise */
        const size_t n = (size_t)B * m->cfg.input_dim;
        be->rng_uniform(be, t->noise, t->uniform, n);
        be->binarize(be, m->x, t->uniform, n);
    }
    vae_model_train_step(m, B, &t->opt.adam, t->opt.clip_grad_norm);
    m->be->loss_accumulate(m->be, t->acc, m->row_loss, B, m->n_terms);
}

/* The schedules' values for step s of the run (0-based over all epochs of opt.epochs): the
 * scalars [0, VAE_SCALAR_SCHEDULED) of the model, written in one upload when any changed. */
static void set_step_scalars(vae_trainer *t, long s, int n_images)
{
    const vae_config *cfg = &t->m->cfg;
    const long spe = ((long)n_images + t->opt.batch_size - 1) / t->opt.batch_size;
    const long total = t->opt.total_steps > 0 ? t->opt.total_steps : spe * t->opt.epochs;
    const int c = vae_model_categorical(t->m);
    const float log_k = c >= 0 ? logf((float)t->m->latent[c].dim) : INFINITY; /* C_c is at most log K */
    float v[VAE_SCALAR_SCHEDULED];
    v[VAE_SCALAR_LR] = vae_schedule_lr(&t->opt.schedule, t->opt.adam.lr, s, total, spe);
    v[VAE_SCALAR_KL_WEIGHT] = vae_schedule_kl_weight(&t->opt.schedule, cfg->beta, s, spe);
    v[VAE_SCALAR_TEMPERATURE] = vae_schedule_temperature(&t->opt.schedule, s, total);
    v[VAE_SCALAR_CAPACITY_Z] = vae_schedule_capacity(cfg->cap_z.max, cfg->cap_z.iters, INFINITY, s);
    v[VAE_SCALAR_CAPACITY_C] = vae_schedule_capacity(cfg->cap_c.max, cfg->cap_c.iters, log_k, s);
    if (t->scalars_set && memcmp(v, t->now, sizeof v) == 0)
        return;
    vae_model_set_scalars(t->m, 0, VAE_SCALAR_SCHEDULED, v);
    memcpy(t->now, v, sizeof v);
    t->scalars_set = 1;
}

float vae_trainer_scalar_now(const vae_trainer *t, vae_scalar which)
{
    return which < VAE_SCALAR_SCHEDULED ? t->now[which] : NAN;
}

/* One training step on rows [first, first + B) of data->order; s is its index in the run. */
static void train_step(vae_trainer *t, vae_device_data *data, long s, int first, int B)
{
    vae_model *m = t->m;
    vae_backend *be = m->be;
    set_step_scalars(t, s, data->n);
    vae_device_data_gather_model(m, data, data->order + first, B);
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

/* The step log's part of step s (0-based in the run) of B rows, queued after the step on the backend:
 * the step's row losses summed into its row's slot (zeroed, or restored, at the row's first step). */
static void log_step(vae_trainer *t, long s, int B, long steps_per_epoch)
{
    vae_model *m = t->m;
    vae_backend *be = m->be;
    const int N = t->opt.log_every, T = m->n_terms;
    double *slot = t->win + (size_t)((s / N) % t->win_cap) * T;
    if (t->win_restore) {
        be->upload(be, slot, t->win_init, (size_t)T * sizeof(double));
        t->win_restore = 0;
    } else if (s % N == 0) {
        be->memset_zero(be, slot, (size_t)T * sizeof(double));
        t->win_images = 0;
    }
    be->loss_accumulate(be, slot, m->row_loss, B, T);
    t->win_images += B;
    t->log_next = s + 1;
    if ((s + 1) % N)
        return;
    if (t->n_rows == t->win_cap)
        vae_fatal("train: %d step rows were not read back", t->n_rows); /* flush_rows runs every epoch */
    vae_step_row *r = &t->rows[t->n_rows];
    r->step = s + 1;
    r->epoch = (double)(s + 1) / (double)steps_per_epoch;
    memcpy(r->scalar, t->now, sizeof r->scalar);
    t->row_images[t->n_rows++] = t->win_images;
    t->win_images = 0;
}

/* The slots of the step log for an epoch of `steps` steps: allocated once, zeroed. */
static void log_alloc(vae_trainer *t, long steps)
{
    if (t->opt.log_every <= 0 || t->win)
        return;
    vae_backend *be = t->m->be;
    t->win_cap = (int)(steps / t->opt.log_every) + 2;
    t->win = be->buffer_alloc(be, (size_t)t->win_cap * t->m->n_terms * sizeof(double));
    be->memset_zero(be, t->win, (size_t)t->win_cap * t->m->n_terms * sizeof(double));
    t->rows = vae_calloc((size_t)t->win_cap, sizeof *t->rows);
    t->row_images = vae_calloc((size_t)t->win_cap, sizeof *t->row_images);
}

/* The finished rows' sums read back (one download of the ring; called where the trainer waits for
 * the backend anyway) and made means. */
static void flush_rows(vae_trainer *t)
{
    if (!t->win || t->n_flushed == t->n_rows)
        return;
    vae_model *m = t->m;
    const int T = m->n_terms;
    double *h = vae_calloc((size_t)t->win_cap * T, sizeof(double));
    m->be->download(m->be, h, t->win, (size_t)t->win_cap * T * sizeof(double));
    for (int i = t->n_flushed; i < t->n_rows; i++) {
        vae_step_row *r = &t->rows[i];
        const double *sum = h + (size_t)(((r->step - 1) / t->opt.log_every) % t->win_cap) * T;
        r->train = (vae_losses){.n_terms = T};
        for (int k = 0; k < T; k++) {
            r->train.term[k] = t->row_images[i] ? sum[k] / t->row_images[i] : 0;
            r->train.loss += m->term[k].weight * r->train.term[k];
        }
    }
    t->n_flushed = t->n_rows;
    vae_free(h);
}

int vae_trainer_step_rows(vae_trainer *t, const vae_step_row **rows)
{
    flush_rows(t);
    const int n = t->n_rows;
    *rows = t->rows;
    t->n_rows = t->n_flushed = 0; /* handed over: the next epoch's rows start again at the front */
    return n;
}

const vae_graph *vae_trainer_step_graph(const vae_trainer *t)
{
    return t->graph_full;
}

static vae_losses read_losses(const vae_model *m, const double *acc, long images)
{
    double h[VAE_MAX_TERMS];
    m->be->download(m->be, h, acc, (size_t)m->n_terms * sizeof(double));
    vae_losses l = {.n_terms = m->n_terms};
    for (int k = 0; k < m->n_terms; k++) {
        l.term[k] = images ? h[k] / images : 0;
        l.loss += m->term[k].weight * l.term[k];
    }
    return l;
}

vae_losses vae_losses_nan(const vae_model *m)
{
    vae_losses l = {.n_terms = m->n_terms, .loss = NAN};
    for (int k = 0; k < m->n_terms; k++)
        l.term[k] = NAN;
    return l;
}

void vae_losses_describe(const vae_losses *l, const vae_model *m, char *buf, size_t len)
{
    size_t w = 0;
    buf[0] = '\0';
    for (int k = 0; k < l->n_terms && w < len; k++)
        w += (size_t)snprintf(buf + w, len - w, "%s%s %.4f%s", k ? ", " : " (", m->term[k].name, l->term[k],
                              k + 1 == l->n_terms ? ")" : "");
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
    be->memset_zero(be, t->acc, (size_t)t->m->n_terms * sizeof(double));
    long images = 0;
    for (int s = first_step; s < first_step + steps; s++) {
        int first = (int)((long)s * bs % train->n);
        int B = train->n - first < bs ? train->n - first : bs;
        train_step(t, train, s, first, B);
        images += B;
    }
    return read_losses(t->m, t->acc, images);
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
        be->memset_zero(be, t->acc, (size_t)m->n_terms * sizeof(double));
        t->seconds = 0;
    }
    const long steps_per_epoch = ((long)n + bs - 1) / bs, first_of_epoch = (long)(epoch - 1) * steps_per_epoch;
    const long total = t->opt.total_steps;
    log_alloc(t, steps_per_epoch);

    vae_progress p;
    char label[64];
    snprintf(label, sizeof label, "epoch %d/%d", epoch, t->opt.epochs);
    vae_progress_begin(&p, t->opt.log, t->opt.progress, label, n);
    vae_progress_units(&p, t->opt.row, t->opt.rate);
    int cut = 0; /* the run's last step came before the epoch's end (opt.total_steps) */
    for (int first = t->step * bs; first < n; first += bs) {
        if (total > 0 && first_of_epoch + t->step >= total) {
            cut = 1;
            break;
        }
        int B = n - first < bs ? n - first : bs;
        train_step(t, train, first_of_epoch + t->step, first, B);
        if (t->win)
            log_step(t, first_of_epoch + t->step, B, steps_per_epoch);
        t->step++;
        if (t->opt.at_step)
            t->opt.at_step(t->opt.at_step_ctx, first_of_epoch + t->step,
                           (double)(first_of_epoch + t->step) / (double)steps_per_epoch);
        if (vae_progress_due(&p)) {
            vae_losses run = read_losses(m, t->acc, first + B);
            if (vae_trainer_diverged(t, &d))
                break; /* the steps left would all be skipped */
            vae_progress_update(&p, first + B, run.loss);
        }
        if (t->opt.stop && *t->opt.stop && first + B < n) {
            be->synchronize(be);
            flush_rows(t);
            t->seconds += vae_now_seconds() - t0;
            vae_progress_end(&p);
            return 1;
        }
    }
    const long images = cut ? (long)t->step * bs : n;
    out->train = read_losses(m, t->acc, images); /* waits for the epoch's last step */
    flush_rows(t);
    t->seconds += vae_now_seconds() - t0;
    out->seconds = t->seconds;
    vae_progress_end(&p);
    out->epoch = epoch;
    out->images_per_second = out->seconds > 0 ? images / out->seconds : 0;
    if (!cut) {
        t->epochs_done++;
        t->step = 0;
    }
    if (test && !vae_trainer_diverged(t, &d))
        out->test = vae_eval_loss(m, test, t->opt.seed);
    else
        out->test = vae_losses_nan(m);
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
    s->n_terms = t->m->n_terms;
    if (t->step)
        be->download(be, s->acc, t->acc, (size_t)s->n_terms * sizeof(double));
    s->seconds = t->step ? t->seconds : 0;
    s->win_images = t->win_images;
    if (t->win_restore) /* restored, no step since */
        memcpy(s->win_acc, t->win_init, sizeof s->win_acc);
    else if (t->win && t->win_images) /* the row in progress: row log_next / N, the one the last step added to */
        be->download(be, s->win_acc, t->win + (size_t)((t->log_next / t->opt.log_every) % t->win_cap) * s->n_terms,
                     (size_t)s->n_terms * sizeof(double));
}

void vae_trainer_set_state(vae_trainer *t, const vae_trainer_state *s)
{
    vae_backend *be = t->m->be;
    t->epochs_done = s->epochs_done;
    t->step = s->step;
    be->rng_set_offset(be, t->noise, s->noise_offset);
    t->order = s->order_rng;
    t->order_before = s->order_rng;
    be->upload(be, t->acc, s->acc, (size_t)t->m->n_terms * sizeof(double));
    t->seconds = s->seconds;
    t->win_images = s->win_images;
    t->win_restore = s->win_images > 0;
    memcpy(t->win_init, s->win_acc, sizeof t->win_init);
}

vae_losses vae_eval_loss(vae_model *m, vae_device_data *data, uint64_t seed)
{
    vae_backend *be = m->be;
    const int bs = m->batch_cap;
    vae_rng *rng = be->rng_init(be, seed);
    double *acc = be->buffer_alloc(be, (size_t)m->n_terms * sizeof(double));
    for (int first = 0; first < data->n; first += bs) {
        int B = data->n - first < bs ? data->n - first : bs;
        vae_device_data_gather_model(m, data, data->order + first, B);
        vae_model_draw_noise(m, rng, B, 0);
        vae_model_forward_eval(m, B); /* a categorical latent summed out exactly: a true bound */
        be->loss_accumulate(be, acc, m->row_loss, B, m->n_terms);
    }
    vae_losses l = read_losses(m, acc, data->n);
    be->buffer_free(be, acc);
    be->rng_free(be, rng);
    return l;
}
