/*
 * test_schedule.c: the per-step scalars (model.h, schedule.h) on the CPU backend:
 * the schedules' values and flags, the ops reading the learning rate and the KL
 * weight from backend memory at every step, and the trainer writing the
 * schedules' values before each step. The same scalar sequence under CUDA graph
 * replay is checked against this backend in test_cuda_train.c.
 */
#define _GNU_SOURCE
#include "schedule.h"
#include "testutil.h"
#include "train.h"
#include "vae_util.h"
#include "variant.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

Test(schedule, learning_rates_follow_their_formulas)
{
    vae_schedule s;
    vae_schedule_default(&s);
    cr_expect_eq(vae_schedule_lr(&s, 1e-3f, 57, 100, 10), 1e-3f, "constant");
    cr_assert_eq(vae_schedule_parse_lr("cosine", &s), 0);
    cr_expect_eq(vae_schedule_lr(&s, 1e-3f, 0, 100, 10), 1e-3f, "cosine starts at the base rate");
    cr_expect_float_eq(vae_schedule_lr(&s, 1e-3f, 50, 100, 10), 5e-4f, 1e-9, "half way: half");
    cr_expect_float_eq(vae_schedule_lr(&s, 1e-3f, 99, 100, 10), 1e-3f * 0.5f * (1.0f + cosf(M_PI * 0.99f)), 1e-10);
    cr_assert_eq(vae_schedule_parse_lr("step:2:0.5", &s), 0);
    const float want[6] = {1e-3f, 1e-3f, 5e-4f, 5e-4f, 2.5e-4f, 2.5e-4f};
    for (int epoch = 0; epoch < 6; epoch++)
        cr_expect_float_eq(vae_schedule_lr(&s, 1e-3f, epoch * 10 + 3, 60, 10), want[epoch], 1e-10, "epoch %d",
                           epoch);
    cr_assert_eq(vae_schedule_parse_lr("step:3", &s), 0);
    cr_expect_float_eq(s.lr_step_gamma, 0.1f, 0, "PyTorch's StepLR default");
    char text[64];
    vae_schedule_lr_text(&s, text, sizeof text);
    cr_expect_str_eq(text, "step:3:0.100000001");
    vae_schedule back;
    vae_schedule_default(&back);
    cr_assert_eq(vae_schedule_parse_lr(text, &back), 0, "the recorded text reads back");
    cr_expect(back.lr_kind == s.lr_kind && back.lr_step_epochs == 3 && back.lr_step_gamma == s.lr_step_gamma);
}

Test(schedule, bad_learning_rate_schedules_are_refused_by_name)
{
    const char *bad[] = {"", "Cosine", "step", "step:", "step:0", "step:-1", "step:2:0", "step:2:1.5", "step:2:x",
                         "step:2:0.5:1", "step: 2", "linear"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vae_schedule s;
        vae_schedule_default(&s);
        cr_expect_eq(vae_schedule_parse_lr(bad[i], &s), -1, "'%s' was accepted", bad[i]);
        cr_expect(strstr(vae_last_error(), "--lr-schedule"), "message for '%s': %s", bad[i], vae_last_error());
        cr_expect_eq(s.lr_kind, VAE_LR_CONSTANT, "'%s' changed the schedule", bad[i]);
    }
}

Test(schedule, kl_warmup_rises_linearly_from_zero_to_beta)
{
    vae_schedule s;
    vae_schedule_default(&s);
    cr_expect_eq(vae_schedule_kl_weight(&s, 0.5f, 0, 10), 0.5f, "no warm-up: beta from the first step");
    s.kl_warmup_epochs = 2.0f;
    cr_expect_eq(vae_schedule_kl_weight(&s, 0.5f, 0, 10), 0.0f);
    cr_expect_float_eq(vae_schedule_kl_weight(&s, 0.5f, 5, 10), 0.125f, 1e-9);
    cr_expect_float_eq(vae_schedule_kl_weight(&s, 0.5f, 15, 10), 0.375f, 1e-9);
    cr_expect_eq(vae_schedule_kl_weight(&s, 0.5f, 20, 10), 0.5f);
    cr_expect_eq(vae_schedule_kl_weight(&s, 0.5f, 1000, 10), 0.5f);
}

/* The ops read the scalars at every step: a step at learning rate 0 leaves the parameters as they
 * are, bit for bit; a KL weight changed for one step changes that step and no earlier one. */
Test(schedule, ops_read_the_scalars_at_every_step)
{
    vae_backend *be = vae_backend_cpu_init();
    const float lr[4] = {1e-2f, 0.0f, 2e-2f, 1e-2f}, kl_a[4] = {1, 1, 1, 1}, kl_b[4] = {1, 1, 0, 1};
    float *a, *b;
    size_t n = tu_scalar_steps(be, lr, kl_a, 4, &a);
    tu_scalar_steps(be, lr, kl_b, 4, &b);
    cr_expect(memcmp(a, a + n, n * 4) != 0, "a step at lr 1e-2 left the parameters unchanged");
    cr_expect(memcmp(a + n, a + 2 * n, n * 4) == 0, "a step at lr 0 changed the parameters");
    cr_expect(memcmp(a + 2 * n, a + 3 * n, n * 4) != 0, "the lr of step 3 was not read");
    cr_expect(memcmp(a, b, 3 * n * 4) == 0, "runs that differ from step 3 on differ before it");
    cr_expect(memcmp(a + 3 * n, b + 3 * n, n * 4) != 0, "the KL weight of step 3 was not read");
    free(a);
    free(b);
    vae_backend_free(be);
}

/* The trainer writes each schedule's value of a step before the step runs. */
Test(schedule, the_trainer_writes_each_steps_values)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_dataset d;
    tu_make_patterns(&d, 100, 3);
    vae_config c;
    vae_config_default(&c);
    c.input_dim = 64;
    c.image_rows = c.image_cols = 8;
    c.hidden[0] = 16;
    c.latent_dim = 2;
    c.beta = 0.5f;
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 16), 0);
    vae_model_init_params(&m, 4);
    vae_device_data dd;
    vae_device_data_init(&dd, be, &d);
    vae_train_options o = {.epochs = 3, .batch_size = 16,
                           .adam = {.lr = 4e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
                           .seed = 2, .progress = -1, .log = stderr};
    cr_assert_eq(vae_schedule_parse_lr("cosine", &o.schedule), 0);
    o.schedule.kl_warmup_epochs = 1.5f;
    vae_trainer *t = vae_trainer_init(&m, &o);
    const long spe = 7, total = 21; /* ceil(100 / 16) steps per epoch, 3 epochs */
    for (int s = 0; s < (int)total; s++) {
        vae_trainer_steps(t, &dd, s, 1);
        cr_expect_eq(m.scalars[VAE_SCALAR_LR], vae_schedule_lr(&o.schedule, 4e-3f, s, total, spe), "lr at step %d",
                     s);
        cr_expect_eq(m.scalars[VAE_SCALAR_KL_WEIGHT], vae_schedule_kl_weight(&o.schedule, 0.5f, s, spe),
                     "KL weight at step %d", s);
    }
    cr_expect_eq(m.scalars[VAE_SCALAR_KL_WEIGHT], 0.5f, "warmed up to beta");
    cr_expect(m.scalars[VAE_SCALAR_LR] < 4e-3f * 0.01f, "cosine ends near 0: %g", m.scalars[VAE_SCALAR_LR]);
    vae_trainer_free(t);
    vae_device_data_free(&dd, be);
    vae_model_free(&m);
    vae_dataset_free(&d);
    vae_backend_free(be);
}

Test(schedule, temperature_anneals_and_capacities_rise_linearly)
{
    vae_schedule s;
    vae_schedule_default(&s);
    cr_expect_eq(vae_schedule_temperature(&s, 0, 100), 0.67f, "the paper's default, constant");
    cr_expect_eq(vae_schedule_temperature(&s, 99, 100), 0.67f);
    s.temperature = 1.0f;
    s.temperature_end = 0.5f;
    cr_expect_eq(vae_schedule_temperature(&s, 0, 100), 1.0f);
    cr_expect_float_eq(vae_schedule_temperature(&s, 50, 100), 0.75f, 1e-7);
    cr_expect_eq(vae_schedule_temperature(&s, 100, 100), 0.5f);
    vae_schedule zeroed = {0}; /* how callers that set no schedule build one */
    cr_expect_eq(vae_schedule_temperature(&zeroed, 7, 100), 0.67f, "a zeroed schedule: the default, constant");
    cr_expect_eq(vae_schedule_capacity(5.0f, 100, INFINITY, 0), 0.0f, "C starts at 0");
    cr_expect_float_eq(vae_schedule_capacity(5.0f, 100, INFINITY, 30), 1.5f, 1e-7);
    cr_expect_eq(vae_schedule_capacity(5.0f, 100, INFINITY, 100), 5.0f);
    cr_expect_eq(vae_schedule_capacity(5.0f, 100, INFINITY, 5000), 5.0f, "and stays at its maximum");
    cr_expect_eq(vae_schedule_capacity(5.0f, 100, logf(10.0f), 90), logf(10.0f), "C_c at most log K");
}

/* A joint model's trainer writes the temperature and both capacities of each step, and the
 * capacity_weight op then holds +-gamma in the weight scalars. */
Test(schedule, the_trainer_writes_the_joint_models_temperature_and_capacities)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_dataset d;
    tu_make_patterns(&d, 100, 3);
    vae_config c;
    vae_config_default(&c);
    c.variant = vae_variant_find("joint");
    c.disc = 4;
    c.input_dim = 64;
    c.image_rows = c.image_cols = 8;
    c.hidden[0] = 16;
    c.latent_dim = 2;
    c.cap_z = (vae_capacity){.max = 3, .iters = 10, .gamma = 30};
    c.cap_c = (vae_capacity){.max = 5, .iters = 10, .gamma = 20};
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 16), 0, "%s", vae_last_error());
    vae_model_init_params(&m, 4);
    vae_device_data dd;
    vae_device_data_init(&dd, be, &d);
    vae_train_options o = {.epochs = 2, .batch_size = 16,
                           .adam = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
                           .seed = 2, .progress = -1, .log = stderr};
    vae_schedule_default(&o.schedule);
    o.schedule.temperature = 2.0f;
    o.schedule.temperature_end = 0.5f;
    vae_trainer *t = vae_trainer_init(&m, &o);
    const long total = 14; /* 7 steps per epoch */
    float prev_u[16 * 4];
    for (int s = 0; s < (int)total; s++) {
        vae_trainer_steps(t, &dd, s, 1);
        /* fresh uniforms for the Gumbel draws at every step, in (0, 1] */
        cr_expect(s == 0 || memcmp(prev_u, m.noise[1], sizeof prev_u) != 0, "step %d reused the uniforms", s);
        memcpy(prev_u, m.noise[1], sizeof prev_u);
        for (int i = 0; i < 16 * 4; i++)
            cr_expect(prev_u[i] > 0.0f && prev_u[i] <= 1.0f, "u[%d] = %g at step %d", i, prev_u[i], s);
        cr_expect_eq(m.scalars[VAE_SCALAR_TEMPERATURE], vae_schedule_temperature(&o.schedule, s, total),
                     "temperature at step %d", s);
        cr_expect_eq(m.scalars[VAE_SCALAR_CAPACITY_Z], vae_schedule_capacity(3, 10, INFINITY, s), "C_z at %d", s);
        cr_expect_eq(m.scalars[VAE_SCALAR_CAPACITY_C], vae_schedule_capacity(5, 10, logf(4.0f), s), "C_c at %d", s);
        cr_expect_eq(vae_trainer_scalar_now(t, VAE_SCALAR_CAPACITY_C), m.scalars[VAE_SCALAR_CAPACITY_C]);
        cr_expect(fabsf(m.scalars[VAE_SCALAR_CAP_WEIGHT_Z]) == 30.0f, "weight_z %g", m.scalars[VAE_SCALAR_CAP_WEIGHT_Z]);
        cr_expect(fabsf(m.scalars[VAE_SCALAR_CAP_WEIGHT_C]) == 20.0f, "weight_c %g", m.scalars[VAE_SCALAR_CAP_WEIGHT_C]);
    }
    cr_expect_eq(m.scalars[VAE_SCALAR_CAPACITY_C], logf(4.0f), "C_c capped at log K");
    vae_trainer_free(t);
    vae_device_data_free(&dd, be);
    vae_model_free(&m);
    vae_dataset_free(&d);
    vae_backend_free(be);
}
