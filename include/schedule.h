/*
 * schedule.h: values that change from step to step during training, computed
 * on the host for step s of a run of S steps (s = 0 .. S-1, counted over all
 * epochs) and written to the model's backend scalars before the step runs
 * (model.h, vae_model_set_scalar), so a replayed CUDA graph sees them change.
 *
 *   learning rate  constant   lr_s = lr
 *                  cosine     lr_s = lr * (1 + cos(pi * s / S)) / 2        (to 0 over the run)
 *                  step:E:G   lr_s = lr * G^floor(epoch_s / E)             (PyTorch's StepLR)
 *   KL weight      warm-up over W epochs: beta * min(1, s / (W * steps per epoch)),
 *                  rising linearly from 0; W = 0 is beta throughout.
 *   temperature    tau_s = T + (T_end - T) * s / S    (Gumbel-softmax; no T_end: T throughout)
 *   capacity       C_s = max * min(1, s / iters), and for a categorical latent of K classes at
 *                  most log K (Burgess 2018's linearly increasing capacity).
 *
 * Not here: the trainer's step counting (train.c) or the recorded settings (train_settings.c).
 */
#ifndef VAE_SCHEDULE_H
#define VAE_SCHEDULE_H

/* The learning-rate schedules, listed once: X(ID, value, name), the name --lr-schedule takes (step's
 * followed by ":E" or ":E:G"). The enum (VAE_LR_CONSTANT = 0, ...) and the names (schedule.c)
 * come from it. */
#define VAE_LR_SCHEDULE_KINDS(X) \
    X(CONSTANT, 0, "constant")   \
    X(COSINE, 1, "cosine")       \
    X(STEP, 2, "step")

typedef enum {
#define VAE_LR_ENUM(id, value, name) VAE_LR_##id = value,
    VAE_LR_SCHEDULE_KINDS(VAE_LR_ENUM)
#undef VAE_LR_ENUM
} vae_lr_schedule_kind;

typedef struct {
    vae_lr_schedule_kind lr_kind;
    int lr_step_epochs;      /* step: every E epochs ... */
    float lr_step_gamma;     /* ... multiply by G */
    float kl_warmup_epochs;  /* W; 0: no warm-up */
    float temperature;       /* T: the Gumbel-softmax temperature at the first step; 0 (a zeroed
                              * schedule): VAE_TEMPERATURE_DEFAULT (model.h) */
    float temperature_end;   /* T_end: at the end of the run (linear in between); 0: no annealing */
} vae_schedule;

/* Constant learning rate, no warm-up, temperature VAE_TEMPERATURE_DEFAULT (model.h) throughout. */
void vae_schedule_default(vae_schedule *s);
/* Parse --lr-schedule "constant" | "cosine" | "step:E" | "step:E:G" (E >= 1 epochs, 0 < G <= 1;
 * G defaults to 0.1) into s. -1 with vae_set_error naming the flag. */
int vae_schedule_parse_lr(const char *text, vae_schedule *s);
/* The canonical text of s's learning-rate schedule ("constant", "cosine", "step:10:0.1"). */
void vae_schedule_lr_text(const vae_schedule *s, char *buf, int len);

/* The learning rate of step s (0-based) of a run of total_steps steps, steps_per_epoch per epoch. */
float vae_schedule_lr(const vae_schedule *sch, float base_lr, long s, long total_steps, long steps_per_epoch);
/* The KL weight of step s: beta times the warm-up factor. */
float vae_schedule_kl_weight(const vae_schedule *sch, float beta, long s, long steps_per_epoch);

/* The Gumbel-softmax temperature of step s of a run of total_steps steps. */
float vae_schedule_temperature(const vae_schedule *sch, long s, long total_steps);
/* The capacity C of step s for a capacity rising to max over iters steps, capped at cap
 * (log K for a categorical latent; INFINITY for none). */
float vae_schedule_capacity(float max, int iters, float cap, long s);

#endif
