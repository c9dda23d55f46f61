/*
 * compare.c: the CPU-vs-CUDA comparison of `cuvae compare`; see compare.h.
 */
#include "compare.h"

#include "dataset.h"
#include "hostrng.h"
#include "train_settings.h"
#include "train.h"
#include "vae_util.h"
#include "variant.h"

#include <math.h>
#include <string.h>

void vae_compare_options_default(vae_compare_options *o)
{
    memset(o, 0, sizeof *o);
    vae_config_default(&o->cfg);
    o->steps = 10;
    o->batch_size = 37;
    o->lr = 1e-3f;
    o->seed = 1;
    vae_toy_default(&o->toy);
    vae_schedule_default(&o->schedule);
    o->tol_loss = 1e-5;
    o->tol_grad = 1e-4;
    o->tol_param = 1e-4;
}

/* The tolerances of TF32 GEMMs (--tf32), derived. TF32 keeps 10 of FP32's 23 mantissa bits:
 * rounding a GEMM input to it errs by at most u = 2^-11 (4.9e-4) relative, 2^13 times FP32's
 * unit roundoff, while the products are summed in FP32. A product of two rounded inputs is then
 * off by at most (1 + u)^2 - 1 = 2u + u^2, about 2u, and so is a GEMM output, a sum of such
 * products, where its terms do not cancel. The terms' errors are independent and of either sign,
 * so over a whole output tensor the relative L2 error is nearer sqrt(2/3) u: 2u per GEMM leaves
 * room for moderate cancellation. Summation order (the FP32 differences, about 1e-5) is small
 * beside it. Through a chain of GEMMs the relative errors add, to first order, since the ops
 * between them (bias, ReLU or tanh, the reparameterization) change a relative error by a factor
 * near 1. The step's loss comes out of the L = 2 (n_hidden + 1) GEMM layers of the forward pass:
 * tol_loss = 2u * L. A gradient then passes back through at most L more GEMMs (input gradients,
 * then its weight gradient): tol_grad = 2u * 2L. A parameter after one Adam step from the shared
 * state moves by lr * m / (sqrt(v) + eps), whose relative error is at most its gradient's:
 * tol_param = tol_grad (and 2 * lr per element still bounds a flipped sign).
 * Cancellation: a weight gradient sums over the batch's rows, whose terms have both signs, and
 * an input gradient over the next layer's units; there the error relative to the sum exceeds 2u
 * by the ratio sum |a_i b_i| / |sum a_i b_i|. Measured on the emulated device (tests/cuda_emu,
 * inputs rounded to TF32 to nearest): the first layers' gradients of the default model on the
 * synthetic set reach relative L2 errors of 1.1e-2 after one step and 3.4e-2 after ten, 1.4 and
 * 4.4 times the cancellation-free bound; so the gradients and parameters get TF32_CANCELLATION
 * = 8 times it. Default model, L = 4: loss 3.9e-3, gradients and parameters 6.25e-2, against
 * FP32's 1e-5 and 1e-4; a TF32 run checked with FP32's tolerances still fails by two orders. */
#define TF32_CANCELLATION 8.0
void vae_compare_options_tf32(vae_compare_options *o)
{
    const double u = VAE_COMPARE_TF32_UNIT_ROUNDOFF, L = 2.0 * (o->cfg.n_hidden + 1);
    o->tf32 = 1;
    o->tol_loss = 2.0 * u * L;
    o->tol_grad = 2.0 * u * 2.0 * L * TF32_CANCELLATION;
    o->tol_param = o->tol_grad;
}

double vae_compare_param_bound(float lr, int steps)
{
    return 2.0 * (double)lr * steps;
}

typedef struct {
    double max_abs, max_rel, rel_l2;
} diff_stats;

/* max |a - r|, max |a - r| / max |r|, ||a - r|| / ||r||. */
static diff_stats diff(const float *a, const float *r, size_t n)
{
    double max_abs = 0, max_ref = 0, num = 0, den = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(r[i]))
            bad = 1;
        double d = fabs((double)a[i] - r[i]);
        max_abs = fmax(max_abs, d);
        max_ref = fmax(max_ref, fabs(r[i]));
        num += d * d;
        den += (double)r[i] * r[i];
    }
    diff_stats s = {max_abs, max_ref > 0 ? max_abs / max_ref : max_abs, den > 0 ? sqrt(num / den) : sqrt(num)};
    if (bad)
        s.max_abs = s.max_rel = s.rel_l2 = INFINITY;
    return s;
}

/* A tensor passes when it is finite, its relative L2 error is within `tol`, and, where `atol` > 0, no
 * element is further than `atol` from the reference. */
static int report(FILE *out, const char *what, diff_stats d, double tol, double atol)
{
    int ok = isfinite(d.max_abs) && d.rel_l2 <= tol && (atol <= 0 || d.max_abs <= atol);
    char bound[16] = "-";
    if (atol > 0)
        snprintf(bound, sizeof bound, "%.1e", atol);
    fprintf(out, "  %-32s %12.3e %12.3e %12.3e %10.1e %10s  %s\n", what, d.max_abs, d.max_rel, d.rel_l2, tol, bound,
            ok ? "ok" : "FAIL");
    return ok ? 0 : 1;
}

/* Compare one flat buffer (gradients or parameters) tensor by tensor. */
static int compare_buffer(FILE *out, const vae_model *mr, const vae_model *mc, const float *ref_buf,
                          const float *cand_buf, const char *kind, double tol, double atol)
{
    size_t n = mr->n_params;
    float *r = vae_calloc(n, sizeof(float)), *c = vae_calloc(n, sizeof(float));
    mr->be->download(mr->be, r, ref_buf, n * sizeof(float));
    mc->be->download(mc->be, c, cand_buf, n * sizeof(float));
    int fails = 0;
    char name[64];
    for (int l = 0; l < mr->n_linear; l++) {
        const vae_linear *L = &mr->lin[l];
        snprintf(name, sizeof name, "%s %s.weight", kind, L->name);
        fails += report(out, name, diff(c + L->w_off, r + L->w_off, (size_t)L->in * L->out), tol, atol);
        snprintf(name, sizeof name, "%s %s.bias", kind, L->name);
        fails += report(out, name, diff(c + L->b_off, r + L->b_off, (size_t)L->out), tol, atol);
    }
    vae_free(r);
    vae_free(c);
    return fails;
}

/* dst's parameters, Adam moments and step counter := src's (the two may be on different backends). */
static void copy_state(vae_model *dst, const vae_model *src)
{
    size_t bytes = src->n_params * sizeof(float);
    float *host = vae_calloc(src->n_params, sizeof(float));
    float *from[3] = {src->params, src->adam_m, src->adam_v};
    float *to[3] = {dst->params, dst->adam_m, dst->adam_v};
    for (int k = 0; k < 3; k++) {
        src->be->download(src->be, host, from[k], bytes);
        dst->be->upload(dst->be, to[k], host, bytes);
    }
    int step = 0;
    src->be->download(src->be, &step, src->adam_step, sizeof step);
    dst->be->upload(dst->be, dst->adam_step, &step, sizeof step);
    vae_free(host);
}

static void synthetic_data(vae_dataset *d, const vae_config *cfg, uint64_t seed)
{
    *d = (vae_dataset){.n = VAE_COMPARE_SYNTHETIC_IMAGES, .rows = cfg->image_rows, .cols = cfg->image_cols, .dim = cfg->input_dim,
                       .kind = VAE_DATA_BYTES, .classes = 1};
    d->pixels = vae_calloc((size_t)d->n * d->dim, 1);
    d->labels = vae_calloc((size_t)d->n, 1);
    vae_hostrng r;
    vae_hostrng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)d->n * d->dim; i++)
        d->pixels[i] = (uint8_t)vae_hostrng_below(&r, 256);
    if (cfg->classes > 0) { /* a model that reads the label: every class, drawn after the pixels */
        d->classes = cfg->classes;
        for (int i = 0; i < d->n; i++)
            d->labels[i] = (uint8_t)vae_hostrng_below(&r, (uint64_t)cfg->classes);
    }
}

static void print_header(FILE *out)
{
    fprintf(out, "  %-32s %12s %12s %12s %10s %10s\n", "tensor", "max abs", "max rel", "rel L2", "tol rel L2",
            "max abs");
}

int vae_compare_load(const vae_compare_options *o, vae_dataset *data, vae_config *cfg)
{
    *cfg = o->cfg;
    const vae_variant *v = vae_variant_of(cfg);
    const vae_data_source *src = o->data_dir ? vae_data_source_of(o->data_dir) : NULL;
    const char *what = src ? src->what(o->data_dir) : "the synthetic data";
    if (src) {
        vae_train_settings ts;
        memset(&ts, 0, sizeof ts);
        ts.s.data_dir = o->data_dir;
        ts.s.seed = o->seed;
        ts.toy = o->toy;
        if (src->load(&ts, data, NULL)) /* the training set alone */
            return -1;
    } else {
        if (v->reads_labels && cfg->classes == 0)
            cfg->classes = VAE_COMPARE_SYNTHETIC_CLASSES;
        synthetic_data(data, cfg, o->seed);
    }
    if (src) {
        cfg->input_dim = data->dim;
        cfg->image_rows = data->rows;
        cfg->image_cols = data->cols;
        if (v->reads_labels) { /* its classes are the data's, as in train */
            if (!data->labels || data->classes < 2) {
                vae_set_error("%s: --model %s needs a label of at least 2 classes per row; the data %s", what,
                              v->name, data->labels ? "holds one class" : "has no labels");
                vae_dataset_free(data);
                return -1;
            }
            cfg->classes = data->classes;
        }
    }
    int rc = 0;
    if (o->binarize != VAE_BINARIZE_NONE && vae_binarize_check(data, what))
        rc = VAE_COMPARE_UNSUITED;
    else if (vae_config_validate(cfg))
        rc = VAE_COMPARE_UNSUITED;
    if (rc) {
        vae_dataset_free(data);
        return rc;
    }
    if (o->binarize == VAE_BINARIZE_STATIC)
        vae_binarize_static(data, o->seed ^ VAE_SEED_BINARIZE_TRAIN);
    return 0;
}

/* What is compared: the model and the settings of its training, two lines. */
static void print_setup(FILE *out, const vae_compare_options *o, const vae_dataset *data, const vae_config *cfg,
                        int epochs, long steps_per_epoch)
{
    fprintf(out, "model %s %d-", vae_variant_of(cfg)->name, cfg->input_dim);
    for (int i = 0; i < cfg->n_hidden; i++)
        fprintf(out, "%d-", cfg->hidden[i]);
    fprintf(out, "%d, %s, %s likelihood", cfg->latent_dim, vae_act_name(cfg->act), vae_likelihood_name(cfg->likelihood));
    if (cfg->likelihood == VAE_LIKELIHOOD_GAUSSIAN)
        fprintf(out, " (sigma %g)", (double)cfg->sigma);
    fprintf(out, ", beta %g", (double)cfg->beta);
    if (vae_variant_of(cfg)->reads_labels)
        fprintf(out, ", %d label classes", cfg->classes);
    vae_variant_describe(cfg, &o->schedule, out);
    fprintf(out, "\n");
    char lr_text[64];
    vae_schedule_lr_text(&o->schedule, lr_text, sizeof lr_text);
    fprintf(out, "batch %d, %d steps of Adam (lr %g, %s", o->batch_size, o->steps, (double)o->lr, lr_text);
    if (o->schedule.kl_warmup_epochs > 0.0f)
        fprintf(out, ", KL warm-up over %g epochs", (double)o->schedule.kl_warmup_epochs);
    fprintf(out, ")");
    if (o->clip_grad_norm > 0.0f)
        fprintf(out, ", gradients clipped to norm %g", (double)o->clip_grad_norm);
    if (o->binarize != VAE_BINARIZE_NONE)
        fprintf(out, ", %s binarization", vae_binarize_name(o->binarize));
    fprintf(out, ", seed %llu, ", (unsigned long long)o->seed);
    if (o->data_dir)
        fprintf(out, "%s data (%d %ss)", o->data_dir, data->n, vae_data_source_of(o->data_dir)->row);
    else
        fprintf(out, "synthetic data (%d images)", data->n);
    fprintf(out, "; the schedules run over %d epoch%s of %ld steps\n", epochs, epochs == 1 ? "" : "s",
            steps_per_epoch);
}

int vae_compare_run_data(const vae_compare_options *o, const vae_dataset *data, const vae_config *cfg,
                         vae_backend *ref, vae_backend *cand, FILE *out)
{
    if (o->tf32) {
        if (cand->kind != VAE_BACKEND_CUDA)
            return vae_set_error("compare --tf32: the candidate is %s; TF32 is a mode of the CUDA backend's GEMMs",
                                 cand->name);
        vae_cuda_set_tf32(cand, 1);
    }
    vae_model mr, mc;
    if (vae_model_init(&mr, cfg, ref, o->batch_size))
        return -1;
    vae_model_init(&mc, cfg, cand, o->batch_size);
    vae_model_init_params(&mr, o->seed);
    vae_model_init_params(&mc, o->seed);
    vae_device_data dr, dc;
    vae_device_data_init(&dr, ref, data);
    vae_device_data_init(&dc, cand, data);
    /* The run the schedules see: the N steps rounded up to whole epochs of the data. */
    const long spe = ((long)data->n + o->batch_size - 1) / o->batch_size;
    const int epochs = (int)((o->steps + spe - 1) / spe);
    vae_train_options topt;
    vae_train_options_default(&topt, epochs, o->batch_size, o->lr, o->seed);
    topt.log = out;
    topt.schedule = o->schedule;
    topt.clip_grad_norm = o->clip_grad_norm;
    topt.binarize_dynamic = o->binarize == VAE_BINARIZE_DYNAMIC;
    vae_trainer *tr = vae_trainer_init(&mr, &topt), *tc = vae_trainer_init(&mc, &topt);

    fprintf(out, "compare: %s (%s) against %s (%s)\n", cand->name, cand->device_name, ref->name, ref->device_name);
    print_setup(out, o, data, cfg, epochs, spe);
    if (o->tf32)
        fprintf(out, "GEMMs: TF32 on %s (--tf32), FP32 on %s; TF32's tolerances (relative L2, derived in compare.c "
                     "from its unit roundoff 2^-11): loss %.1e, gradients %.1e, parameters %.1e\n",
                cand->name, ref->name, o->tol_loss, o->tol_grad, o->tol_param);
    int fails = 0;
    print_header(out);
    for (int s = 0; s < o->steps; s++) {
        const int last = s == o->steps - 1 && s > 0;
        /* Every step starts both sides from the reference's state (see compare.h). */
        if (s > 0)
            copy_state(&mc, &mr);
        vae_losses lr_ = vae_trainer_steps(tr, &dr, s, 1);
        vae_losses lc_ = vae_trainer_steps(tc, &dc, s, 1);
        /* the loss and each term, as one vector */
        float a[1 + VAE_MAX_TERMS] = {(float)lc_.loss}, r[1 + VAE_MAX_TERMS] = {(float)lr_.loss};
        char name[64 + VAE_MAX_TERMS * VAE_TERM_NAME_MAX];
        int w = snprintf(name, sizeof name, "step %d loss [total", s + 1);
        for (int k = 0; k < mr.n_terms; k++) {
            a[1 + k] = (float)lc_.term[k];
            r[1 + k] = (float)lr_.term[k];
            w += snprintf(name + w, sizeof name - (size_t)w, ",%s", mr.term[k].name);
        }
        snprintf(name + w, sizeof name - (size_t)w, "]");
        fails += report(out, name, diff(a, r, 1 + mr.n_terms), o->tol_loss, 0);
        if (s == 0 || last) {
            char kind[32];
            snprintf(kind, sizeof kind, "grad@%d", s + 1);
            fails += compare_buffer(out, &mr, &mc, mr.grads, mc.grads, kind, o->tol_grad, 0);
            snprintf(kind, sizeof kind, "param@%d", s + 1);
            fails += compare_buffer(out, &mr, &mc, mr.params, mc.params, kind, o->tol_param,
                                    vae_compare_param_bound(o->lr, 1));
        }
    }
    fprintf(out, "%s: %d tensor%s beyond tolerance\n", fails ? "FAIL" : "PASS", fails, fails == 1 ? "" : "s");

    vae_trainer_free(tr);
    vae_trainer_free(tc);
    vae_device_data_free(&dr, ref);
    vae_device_data_free(&dc, cand);
    vae_model_free(&mr);
    vae_model_free(&mc);
    return fails;
}

int vae_compare_run(const vae_compare_options *o, vae_backend *ref, vae_backend *cand, FILE *out)
{
    vae_dataset data;
    vae_config cfg;
    int rc = vae_compare_load(o, &data, &cfg);
    if (rc)
        return rc;
    rc = vae_compare_run_data(o, &data, &cfg, ref, cand, out);
    vae_dataset_free(&data);
    return rc;
}
