/*
 * test_cuda_train.c: the whole model on the GPU against the CPU: the N-step
 * comparison of `cuvae compare` (losses, every gradient, every parameter) on
 * odd shapes, graph replay against eager steps, bit-identical reruns on the
 * GPU, and, when MNIST is fetched, two epochs on both backends reaching the
 * same test loss within 1%; the divergence guard, gradient clipping and dynamic
 * binarization inside the captured step, on both backends, and a NaN parameter
 * the guard cannot see (one a ReLU masks) refused at save. Every case reports as
 * skipped without a GPU (in the emulated build, -DCUVAE_CUDA_EMU=ON, each runs
 * on the emulated device).
 */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "compare.h"
#include "dataset.h"
#include "testutil.h"
#include "train.h"
#include "train_state.h"
#include "vae_util.h"
#include "variant.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compare_with(vae_compare_options *o, const char *label)
{
    vae_backend *cpu = vae_backend_cpu_init(), *gpu = vae_backend_cuda_init(0);
    cr_assert_not_null(gpu, "%s", vae_last_error());
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int fails = vae_compare_run(o, cpu, gpu, f);
    fclose(f);
    if (fails)
        fprintf(stderr, "%s:\n%s", label, buf);
    free(buf);
    vae_backend_free(cpu);
    vae_backend_free(gpu);
    return fails;
}

Test(cuda_train, ten_steps_default_model_odd_batch)
{
    tu_need_gpu();
    vae_compare_options o;
    vae_compare_options_default(&o); /* 784-400-20, batch 37, 10 steps */
    cr_assert_eq(compare_with(&o, "default model"), 0);
}

Test(cuda_train, ten_steps_odd_shapes_tanh_two_layers)
{
    tu_need_gpu();
    vae_compare_options o;
    vae_compare_options_default(&o);
    o.cfg.input_dim = 13 * 11;
    o.cfg.image_rows = 13;
    o.cfg.image_cols = 11;
    o.cfg.n_hidden = 2;
    o.cfg.hidden[0] = 257;
    o.cfg.hidden[1] = 33;
    o.cfg.latent_dim = 7;
    o.cfg.act = VAE_ACT_TANH;
    o.cfg.beta = 4.0f;
    o.batch_size = 129;
    cr_assert_eq(compare_with(&o, "odd shapes"), 0);
}

/* The conditional VAE: its one-hot labels gathered on each backend by gather_one_hot, [x | y]
 * and [z | y] blocks, odd shapes; losses, gradients and parameters as for the plain VAE. */
Test(cuda_train, ten_steps_cvae_odd_shapes)
{
    tu_need_gpu();
    vae_compare_options o;
    vae_compare_options_default(&o);
    o.cfg.variant = vae_variant_find("cvae");
    o.cfg.classes = 7;
    o.cfg.latent_dim = 5;
    o.cfg.hidden[0] = 129;
    o.batch_size = 37;
    cr_assert_eq(compare_with(&o, "cvae"), 0);
}

/* The deterministic autoencoder (--model ae): its code z is the encoder's output itself, read by
 * the decoder's GEMM with no op between and no noise drawn; the reconstruction its only term; odd
 * shapes; losses, gradients and parameters as for the plain VAE. */
Test(cuda_train, ten_steps_ae_odd_shapes)
{
    tu_need_gpu();
    vae_compare_options o;
    vae_compare_options_default(&o);
    o.cfg.variant = vae_variant_find("ae");
    o.cfg.beta = 1.0f;
    o.cfg.latent_dim = 5;
    o.cfg.n_hidden = 2;
    o.cfg.hidden[0] = 129;
    o.cfg.hidden[1] = 31;
    o.batch_size = 37;
    cr_assert_eq(compare_with(&o, "ae"), 0);
}

/* The conditional VAE with the decoder alone reading y (--condition decoder): the encoder reads x,
 * the decoder [z | y]; odd shapes, as for the cvae conditioned on both halves. */
Test(cuda_train, ten_steps_cvae_conditioned_on_the_decoder)
{
    tu_need_gpu();
    vae_compare_options o;
    vae_compare_options_default(&o);
    o.cfg.variant = vae_variant_find("cvae");
    o.cfg.condition = VAE_CONDITION_DECODER;
    o.cfg.classes = 7;
    o.cfg.latent_dim = 5;
    o.cfg.hidden[0] = 129;
    o.batch_size = 37;
    cr_assert_eq(compare_with(&o, "cvae, --condition decoder"), 0);
}

Test(cuda_train, batch_of_one)
{
    tu_need_gpu();
    vae_compare_options o;
    vae_compare_options_default(&o);
    o.batch_size = 1;
    o.cfg.latent_dim = 5; /* odd B * Z: the noise buffer is rounded up to even on both sides */
    cr_assert_eq(compare_with(&o, "batch of one"), 0);
}

/* The joint model (--model joint): the Gumbel-softmax sample from the same uniforms, kl_categorical,
 * the capacity weights computed on the device inside the captured step, and a temperature and
 * capacities that change between graph replays (they ramp over the 10 steps), against the CPU's
 * eager steps. Plain objective and controlled capacity. */
Test(cuda_train, joint_model_ten_steps_with_and_without_capacity)
{
    tu_need_gpu();
    for (int cap = 0; cap < 2; cap++) {
        vae_compare_options o;
        vae_compare_options_default(&o);
        o.cfg.variant = vae_variant_find("joint");
        o.cfg.disc = 10;
        o.cfg.n_hidden = 2;
        o.cfg.hidden[0] = 129;
        o.cfg.hidden[1] = 33;
        o.cfg.latent_dim = 5;
        if (cap) {
            o.cfg.cap_z = (vae_capacity){.max = 5, .iters = 8, .gamma = 30};
            o.cfg.cap_c = (vae_capacity){.max = 5, .iters = 8, .gamma = 30};
        }
        o.batch_size = 37;
        cr_assert_eq(compare_with(&o, cap ? "joint, controlled capacity" : "joint, plain"), 0);
    }
}

/* Train `steps` steps on `be` and return the parameters (host copy). */
static float *train_params(vae_backend *be, const vae_dataset *d, int steps, size_t *n)
{
    vae_config c;
    vae_config_default(&c);
    c.input_dim = d->dim;
    c.image_rows = d->rows;
    c.image_cols = d->cols;
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 64), 0);
    vae_model_init_params(&m, 5);
    vae_device_data dd;
    vae_device_data_init(&dd, be, d);
    vae_train_options o = {.epochs = 1, .batch_size = 64,
                           .adam = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
                           .seed = 5, .progress = -1, .log = stderr};
    vae_trainer *t = vae_trainer_init(&m, &o);
    vae_trainer_steps(t, &dd, 0, steps);
    *n = m.n_params;
    float *p = malloc(m.n_params * 4);
    be->download(be, p, m.params, m.n_params * 4);
    vae_trainer_free(t);
    vae_device_data_free(&dd, be);
    vae_model_free(&m);
    return p;
}

Test(cuda_train, reruns_are_bit_identical)
{
    tu_need_gpu();
    vae_dataset d = {.n = 300, .rows = 28, .cols = 28, .dim = 784};
    d.pixels = vae_calloc(300 * 784, 1);
    d.labels = vae_calloc(300, 1);
    float tmp[784];
    for (int i = 0; i < 300; i++) {
        tu_fill_uniform(tmp, 784, 1000 + (uint64_t)i, 0, 255);
        for (int k = 0; k < 784; k++)
            d.pixels[i * 784 + k] = (uint8_t)tmp[k];
    }
    vae_backend *gpu = vae_backend_cuda_init(0);
    size_t n;
    float *a = train_params(gpu, &d, 12, &n), *b = train_params(gpu, &d, 12, &n);
    cr_assert(memcmp(a, b, n * 4) == 0, "two GPU runs with the same seed differ");
    free(a);
    free(b);
    vae_backend_free(gpu);
    vae_dataset_free(&d);
}

Test(cuda_train, mnist_test_loss_matches_cpu_within_one_percent)
{
    tu_need_gpu();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/data/mnist", CUVAE_SOURCE_DIR);
    vae_dataset train, test;
    if (vae_dataset_load(dir, VAE_SPLIT_TRAIN, &train))
        cr_skip_test("MNIST not fetched (%s)", vae_last_error());
    cr_assert_eq(vae_dataset_load(dir, VAE_SPLIT_TEST, &test), 0);
    double loss[2];
    for (int k = 0; k < 2; k++) {
        vae_backend *be = k ? vae_backend_cuda_init(0) : vae_backend_cpu_init();
        vae_config c;
        vae_config_default(&c);
        vae_model m;
        cr_assert_eq(vae_model_init(&m, &c, be, 128), 0);
        vae_model_init_params(&m, 1);
        vae_device_data dtr, dte;
        vae_device_data_init(&dtr, be, &train);
        vae_device_data_init(&dte, be, &test);
        vae_train_options o = {.epochs = 2, .batch_size = 128,
                               .adam = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
                               .seed = 1, .progress = -1, .log = stderr};
        vae_trainer *t = vae_trainer_init(&m, &o);
        vae_epoch_metrics e;
        for (int ep = 1; ep <= 2; ep++)
            vae_trainer_epoch(t, &dtr, &dte, ep, &e);
        loss[k] = e.test.loss;
        vae_trainer_free(t);
        vae_device_data_free(&dtr, be);
        vae_device_data_free(&dte, be);
        vae_model_free(&m);
        vae_backend_free(be);
    }
    cr_assert(fabs(loss[1] - loss[0]) <= 0.01 * loss[0], "test loss cpu %.4f, cuda %.4f", loss[0], loss[1]);
    vae_dataset_free(&train);
    vae_dataset_free(&test);
}

/* ---- divergence guard and clipping inside the captured training step ------------------- */

static vae_dataset random_images(int n, uint64_t seed)
{
    vae_dataset d = {.n = n, .rows = 28, .cols = 28, .dim = 784};
    d.pixels = vae_calloc((size_t)n * 784, 1);
    d.labels = vae_calloc((size_t)n, 1);
    float tmp[784];
    for (int i = 0; i < n; i++) {
        tu_fill_uniform(tmp, 784, seed + (uint64_t)i, 0, 255);
        for (int k = 0; k < 784; k++)
            d.pixels[(size_t)i * 784 + k] = (uint8_t)tmp[k];
    }
    return d;
}

/* Which parameter of the default model (784-400-20-400-784, ReLU) a run sets to NaN first. */
typedef enum {
    POISON_NONE,
    /* Element 7 of the output layer's bias: every row's logit of pixel 7 is NaN, so is the loss,
     * and the divergence guard must see it at the first step. */
    POISON_OUTPUT_BIAS,
    /* Element 1234 of the first layer's weight (unit 1, pixel 450), a ReLU layer: unit 1's
     * pre-activation is NaN in every row, ReLU makes it 0 (NaN > 0 is false), its gradient is 0,
     * and the first layer computes no input gradient, so the loss and every gradient stay finite
     * and the guard cannot see it; Adam leaves the NaN in place. Training cannot make such a
     * parameter (the loader refuses non-finite values and Adam is gated by the guard): it is
     * caught where a model leaves the process, at save (checkpoint.c, train_state.c). */
    POISON_RELU_WEIGHT,
} poison_kind;

/* The index that `poison` sets to NaN in m's flat parameters, or -1. */
static long poison_index(const vae_model *m, poison_kind poison)
{
    if (poison == POISON_OUTPUT_BIAS)
        return (long)m->lin[m->n_linear - 1].b_off + 7;
    if (poison == POISON_RELU_WEIGHT) {
        cr_assert_eq(m->lin[0].act, VAE_ACT_RELU, "layer 0 is not a ReLU layer");
        return (long)m->lin[0].w_off + 1234;
    }
    return -1;
}

typedef struct {
    float *params0, *params; /* (n) before and after */
    size_t n;
    float lr;
    int steps, diverged, adam_step;
    long poisoned; /* the parameter set to NaN, or -1 */
    vae_divergence d;
    /* with a save directory: vae_checkpoint_save's and vae_train_state_save's results */
    int model_saved, state_saved;
    char model_error[1024], state_error[1024];
} guarded_run;

/* `steps` training steps (graphs on the GPU) with lr and clipping, and dynamic binarization when
 * `binarize`; `poison` sets a parameter to NaN first. With save_dir, the model is then saved as
 * save_dir/model.safetensors and its training state as save_dir/checkpoint.safetensors. */
static guarded_run run_guarded(vae_backend *be, const vae_dataset *data, int steps, float lr, float clip,
                               poison_kind poison, int binarize, const char *save_dir)
{
    vae_config c;
    vae_config_default(&c);
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 64), 0);
    vae_model_init_params(&m, 9);
    guarded_run r = {.n = m.n_params, .lr = lr, .steps = steps, .poisoned = poison_index(&m, poison)};
    r.params0 = malloc(m.n_params * 4);
    r.params = malloc(m.n_params * 4);
    be->download(be, r.params0, m.params, m.n_params * 4);
    if (r.poisoned >= 0) {
        r.params0[r.poisoned] = NAN;
        be->upload(be, m.params, r.params0, m.n_params * 4);
    }
    vae_device_data dd;
    vae_device_data_init(&dd, be, data);
    vae_train_options o = {.epochs = 1, .batch_size = 64,
                           .adam = {.lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
                           .seed = 9, .clip_grad_norm = clip, .binarize_dynamic = binarize, .progress = -1,
                           .log = stderr};
    vae_trainer *t = vae_trainer_init(&m, &o);
    vae_trainer_steps(t, &dd, 0, steps);
    r.diverged = vae_trainer_diverged(t, &r.d);
    be->download(be, r.params, m.params, m.n_params * 4);
    be->download(be, &r.adam_step, m.adam_step, sizeof(int));
    if (save_dir) {
        char path[4200];
        tu_join(path, sizeof path, save_dir, "model.safetensors");
        r.model_saved = vae_checkpoint_save(&m, path, NULL, 0) == 0;
        snprintf(r.model_error, sizeof r.model_error, "%s", r.model_saved ? "" : vae_last_error());
        vae_train_progress pr = {.best_val = NAN, .metrics = "epoch\n"};
        vae_trainer_get_state(t, &pr.trainer);
        tu_join(path, sizeof path, save_dir, "checkpoint.safetensors");
        r.state_saved = vae_train_state_save(path, &m, &pr, NULL, 0) == 0;
        snprintf(r.state_error, sizeof r.state_error, "%s", r.state_saved ? "" : vae_last_error());
    }
    vae_trainer_free(t);
    vae_device_data_free(&dd, be);
    vae_model_free(&m);
    return r;
}

static void guarded_run_free(guarded_run *r)
{
    free(r->params0);
    free(r->params);
}

Test(cuda_train, a_nan_parameter_the_guard_sees_stops_both_backends_at_the_first_step)
{
    tu_need_gpu();
    vae_dataset d = random_images(200, 3000);
    vae_backend *be[2] = {vae_backend_cpu_init(), vae_backend_cuda_init(0)};
    for (int k = 0; k < 2; k++) {
        guarded_run r = run_guarded(be[k], &d, 5, 1e-3f, 0.0f, POISON_OUTPUT_BIAS, 0, NULL);
        cr_expect(r.diverged, "%s: a NaN parameter was not noticed", be[k]->name);
        cr_expect_eq(r.d.quantity, VAE_DIVERGED_LOSS, "%s: quantity %d", be[k]->name, r.d.quantity);
        cr_expect_eq(r.d.step, 1, "%s: first bad step read as %ld", be[k]->name, r.d.step);
        cr_expect_eq(r.adam_step, 0, "%s: Adam counted %d steps", be[k]->name, r.adam_step);
        cr_expect(memcmp(r.params, r.params0, r.n * 4) == 0, "%s: a skipped step changed the parameters",
                  be[k]->name);
        guarded_run_free(&r);
    }
    vae_backend_free(be[0]);
    vae_backend_free(be[1]);
    vae_dataset_free(&d);
}

/* A NaN that a ReLU masks (POISON_RELU_WEIGHT) is not the guard's to see: both backends train on,
 * the NaN stays where it is, and the model is caught where it would leave the process: neither
 * the model file nor the checkpoint is written, and each refusal names the tensor and element. */
Test(cuda_train, a_nan_parameter_a_relu_masks_trains_on_and_is_refused_at_save)
{
    tu_need_gpu();
    vae_dataset d = random_images(200, 3000);
    vae_backend *be[2] = {vae_backend_cpu_init(), vae_backend_cuda_init(0)};
    for (int k = 0; k < 2; k++) {
        const char *dir = tu_tmpdir();
        guarded_run r = run_guarded(be[k], &d, 5, 1e-3f, 0.0f, POISON_RELU_WEIGHT, 0, dir);
        const char *name = be[k]->name;
        cr_expect(!r.diverged, "%s: the guard saw a NaN that a ReLU masks (step %ld, quantity %d)", name, r.d.step,
                  r.d.quantity);
        cr_expect_eq(r.adam_step, 5, "%s: Adam counted %d steps", name, r.adam_step);
        cr_expect(isnan(r.params[r.poisoned]), "%s: parameter %ld is %g, no longer NaN", name, r.poisoned,
                  (double)r.params[r.poisoned]);
        size_t finite_changed = 0;
        for (size_t i = 0; i < r.n; i++)
            finite_changed += (long)i != r.poisoned && r.params[i] != r.params0[i];
        cr_expect_gt(finite_changed, r.n / 2, "%s: training did not go on (%zu of %zu parameters changed)", name,
                     finite_changed, r.n);
        char want[128];
        snprintf(want, sizeof want, "holds NaN at element %ld", r.poisoned);
        cr_expect(!r.model_saved && strstr(r.model_error, "tensor 'encoder.fc1.weight' holds NaN at element 1234"),
                  "%s: model save: %s", name, r.model_saved ? "written" : r.model_error);
        cr_expect(!r.state_saved && strstr(r.state_error, "'params'") && strstr(r.state_error, want),
                  "%s: checkpoint save: %s", name, r.state_saved ? "written" : r.state_error);
        cr_expect(!tu_exists_in(dir, "model.safetensors") && !tu_exists_in(dir, "checkpoint.safetensors"),
                  "%s: a file with a NaN parameter was written in %s", name, dir);
        guarded_run_free(&r);
    }
    vae_backend_free(be[0]);
    vae_backend_free(be[1]);
    vae_dataset_free(&d);
}

Test(cuda_train, lr_10_diverges_and_the_parameters_stay_finite)
{
    tu_need_gpu();
    vae_dataset d = random_images(300, 4000);
    vae_backend *gpu = vae_backend_cuda_init(0);
    guarded_run r = run_guarded(gpu, &d, 40, 10.0f, 0.0f, POISON_NONE, 0, NULL);
    cr_assert(r.diverged, "lr 10 did not diverge in 40 steps on the GPU");
    cr_expect(r.d.quantity == VAE_DIVERGED_LOSS || r.d.quantity == VAE_DIVERGED_GRADIENT);
    cr_expect_eq(r.adam_step, r.d.step - 1, "Adam's step %d, first bad step %ld", r.adam_step, r.d.step);
    for (size_t i = 0; i < r.n; i++)
        cr_assert(isfinite(r.params[i]), "parameter %zu is %g after the divergence", i, (double)r.params[i]);
    guarded_run_free(&r);
    vae_backend_free(gpu);
    vae_dataset_free(&d);
}

/* The CUDA run's parameters against the CPU's, with the tolerances of `cuvae compare` for
 * parameters: a relative L2 error of at most 1e-4, and no element further apart than compare's
 * bound, 2 lr per Adam step (vae_compare_param_bound): where the last bits decide the sign of a
 * gradient element that is cancellation noise, Adam's lr/eps slope sends the two sides up to lr
 * apart per step, in either direction, so a bound on single elements tied to the parameters'
 * scale (1e-3 of the largest, as before) can fail on a real GPU with nothing wrong. 2 lr steps
 * alone (0.024 after 12 steps at 1e-3) is near the weights' own scale: the relative L2 error
 * carries the check. Every CUDA parameter finite. */
static void expect_params_close(const char *what, const guarded_run *cpu, const guarded_run *cuda)
{
    cr_assert(cpu->lr == cuda->lr && cpu->steps == cuda->steps, "%s: runs of different lr or steps", what);
    const double bound = vae_compare_param_bound(cpu->lr, cpu->steps);
    double num = 0, den = 0, max_abs = 0;
    size_t worst = 0;
    for (size_t i = 0; i < cpu->n; i++) {
        cr_assert(isfinite(cuda->params[i]), "%s: cuda parameter %zu is %g", what, i, (double)cuda->params[i]);
        double dd = fabs((double)cuda->params[i] - cpu->params[i]);
        num += dd * dd;
        den += (double)cpu->params[i] * cpu->params[i];
        if (dd > max_abs) {
            max_abs = dd;
            worst = i;
        }
    }
    cr_expect(sqrt(num / den) <= 1e-4 && max_abs <= bound,
              "%s: cuda vs cpu parameters: relative L2 %.3e (at most 1e-4), largest difference %.3e (at most "
              "%.3e, 2 lr per step) at %zu: cuda %.9g, cpu %.9g",
              what, sqrt(num / den), max_abs, bound, worst, (double)cuda->params[worst], (double)cpu->params[worst]);
}

Test(cuda_train, clipped_training_matches_the_cpu)
{
    tu_need_gpu();
    vae_dataset d = random_images(300, 5000);
    vae_backend *cpu = vae_backend_cpu_init(), *gpu = vae_backend_cuda_init(0);
    guarded_run a = run_guarded(cpu, &d, 12, 1e-3f, 5.0f, POISON_NONE, 0, NULL),
                b = run_guarded(gpu, &d, 12, 1e-3f, 5.0f, POISON_NONE, 0, NULL);
    guarded_run u = run_guarded(cpu, &d, 12, 1e-3f, 0.0f, POISON_NONE, 0, NULL);
    cr_expect(!a.diverged && !b.diverged);
    cr_expect(memcmp(a.params, u.params, a.n * 4) != 0, "clipping at 5 changed nothing: the test is void");
    expect_params_close("clipped training", &a, &b);
    guarded_run_free(&a);
    guarded_run_free(&b);
    guarded_run_free(&u);
    vae_backend_free(cpu);
    vae_backend_free(gpu);
    vae_dataset_free(&d);
}

/* The learning rate and the KL weight change between replays of one captured step: the CUDA
 * graph reads them from device memory at every replay. Each step is compared with the CPU backend
 * running the same steps eagerly; a step at learning rate 0 leaves the parameters bit for bit. */
Test(cuda_train, scalars_change_between_graph_replays)
{
    tu_need_gpu();
    vae_backend *cpu = vae_backend_cpu_init(), *gpu = vae_backend_cuda_init(0);
    const float lr[5] = {1e-2f, 0.0f, 2e-2f, 1e-2f, 5e-3f}, kl[5] = {1.0f, 1.0f, 0.0f, 0.5f, 1.0f};
    float *pc, *pg;
    size_t n = tu_scalar_steps(cpu, lr, kl, 5, &pc);
    tu_scalar_steps(gpu, lr, kl, 5, &pg);
    cr_expect(memcmp(pg + n, pg + 2 * n, n * 4) == 0, "a replay at lr 0 changed the parameters");
    for (int s = 1; s <= 5; s++) {
        char what[64];
        snprintf(what, sizeof what, "parameters after replay %d", s);
        /* one step of Adam moves each parameter by at most lr; the sides differ by rounding only */
        cr_expect(tu_allclose(what, pg + (size_t)s * n, pc + (size_t)s * n, n, 1e-5, 1e-4));
    }
    free(pc);
    free(pg);
    vae_backend_free(gpu);
    vae_backend_free(cpu);
}

/* Dynamic binarization inside the captured step: the uniforms come from the noise generator
 * (identical on both backends) and the binarize op compares them with the gathered pixels, so
 * both backends train on the same binary batches. Checked as `cuvae compare` checks a model, each
 * step from the CPU's state (every step's loss, the first and the last step's gradients and
 * parameters), 12 steps of 64 of the 300 images, so steps 5 and 10 are tails with graphs of their
 * own. Not free-running as clipped training is checked: there the two sides part ways, as
 * compare.h explains. Measured on the emulated device: a few parameters 3e-5 apart after 8 steps,
 * then 1,544 elements after 10 and 13,576 after 12, a relative L2 error of 1.2e-4, while each
 * step from a shared state agrees to about 1e-6. On the CPU the binarized run must differ from
 * the run on the grey pixels. */
Test(cuda_train, dynamic_binarization_matches_the_cpu)
{
    tu_need_gpu();
    vae_dataset d = random_images(300, 6000);
    vae_backend *cpu = vae_backend_cpu_init(), *gpu = vae_backend_cuda_init(0);
    guarded_run a = run_guarded(cpu, &d, 12, 1e-3f, 0.0f, POISON_NONE, 1, NULL),
                u = run_guarded(cpu, &d, 12, 1e-3f, 0.0f, POISON_NONE, 0, NULL);
    cr_expect(!a.diverged);
    cr_expect(memcmp(a.params, u.params, a.n * 4) != 0, "binarization changed nothing: the test is void");
    vae_compare_options o;
    vae_compare_options_default(&o);
    o.binarize = VAE_BINARIZE_DYNAMIC;
    o.batch_size = 64;
    o.steps = 12;
    o.seed = 9;
    vae_config cfg;
    vae_config_default(&cfg);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int fails = vae_compare_run_data(&o, &d, &cfg, cpu, gpu, f);
    fclose(f);
    cr_expect_eq(fails, 0, "dynamic binarization, each step from the CPU's state:\n%s", buf);
    cr_expect(strstr(buf, "dynamic binarization") != NULL, "%s", buf);
    free(buf);
    guarded_run_free(&a);
    guarded_run_free(&u);
    vae_backend_free(cpu);
    vae_backend_free(gpu);
    vae_dataset_free(&d);
}
