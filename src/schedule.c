/*
 * schedule.c: learning-rate schedules, the KL warm-up, the temperature and capacities; see schedule.h.
 */
#include "schedule.h"

#include "model.h"

#include "vae_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vae_schedule_default(vae_schedule *s)
{
    memset(s, 0, sizeof *s);
    s->lr_kind = VAE_LR_CONSTANT;
    s->lr_step_epochs = 0;
    s->lr_step_gamma = 0.1f;
    s->kl_warmup_epochs = 0.0f;
    s->temperature = VAE_TEMPERATURE_DEFAULT;
    s->temperature_end = 0.0f; /* no annealing */
}

/* The names of schedule.h's VAE_LR_SCHEDULE_KINDS, indexed by value. */
static const char *const lr_names[] = {
#define LR_NAME(id, value, name) [VAE_LR_##id] = name,
    VAE_LR_SCHEDULE_KINDS(LR_NAME)
#undef LR_NAME
};

int vae_schedule_parse_lr(const char *text, vae_schedule *s)
{
    const int k = vae_name_find(lr_names, VAE_NAMES_N(lr_names), text);
    if (k >= 0 && k != VAE_LR_STEP) { /* step takes its epochs */
        s->lr_kind = (vae_lr_schedule_kind)k;
        return 0;
    }
    const size_t step_len = strlen(lr_names[VAE_LR_STEP]);
    if (strncmp(text, lr_names[VAE_LR_STEP], step_len) == 0 && text[step_len] == ':') {
        const char *p = text + step_len + 1;
        char *end;
        long e = strtol(p, &end, 10);
        float g = 0.1f;
        int ok = end != p && *p >= '0' && *p <= '9' && e >= 1 && e <= 1000000;
        if (ok && *end == ':') {
            const char *q = end + 1;
            g = strtof(q, &end);
            ok = end != q && *end == '\0' && g > 0.0f && g <= 1.0f;
        } else {
            ok = ok && *end == '\0';
        }
        if (ok) {
            s->lr_kind = VAE_LR_STEP;
            s->lr_step_epochs = (int)e;
            s->lr_step_gamma = g;
            return 0;
        }
    }
    return vae_set_error("--lr-schedule '%s': expected constant, cosine, step:E or step:E:G "
                         "(every E >= 1 epochs multiply the rate by 0 < G <= 1, G 0.1 if not given)",
                         text);
}

void vae_schedule_lr_text(const vae_schedule *s, char *buf, int len)
{
    const char *name = vae_name_of(lr_names, VAE_NAMES_N(lr_names), s->lr_kind);
    if (s->lr_kind == VAE_LR_STEP)
        snprintf(buf, (size_t)len, "%s:%d:%.9g", name, s->lr_step_epochs, (double)s->lr_step_gamma);
    else
        snprintf(buf, (size_t)len, "%s", name);
}

float vae_schedule_lr(const vae_schedule *sch, float base_lr, long s, long total_steps, long steps_per_epoch)
{
    switch (sch->lr_kind) {
    case VAE_LR_CONSTANT: return base_lr;
    case VAE_LR_COSINE:
        if (total_steps <= 0)
            return base_lr;
        return (float)(base_lr * 0.5 * (1.0 + cos(3.14159265358979323846 * (double)s / (double)total_steps)));
    case VAE_LR_STEP: {
        long epoch = steps_per_epoch > 0 ? s / steps_per_epoch : 0;
        return (float)(base_lr * pow(sch->lr_step_gamma, (double)(epoch / sch->lr_step_epochs)));
    }
    }
    return base_lr;
}

float vae_schedule_kl_weight(const vae_schedule *sch, float beta, long s, long steps_per_epoch)
{
    if (!(sch->kl_warmup_epochs > 0.0f))
        return beta;
    double ramp = (double)sch->kl_warmup_epochs * (double)steps_per_epoch;
    double f = (double)s / ramp;
    return f >= 1.0 ? beta : (float)(beta * f);
}

float vae_schedule_temperature(const vae_schedule *sch, long s, long total_steps)
{
    const float t0 = sch->temperature > 0.0f ? sch->temperature : VAE_TEMPERATURE_DEFAULT;
    if (!(sch->temperature_end > 0.0f) || total_steps < 1)
        return t0;
    double f = (double)s / (double)total_steps;
    return (float)(t0 + (sch->temperature_end - t0) * (f < 1.0 ? f : 1.0));
}

float vae_schedule_capacity(float max, int iters, float cap, long s)
{
    double f = iters > 0 ? (double)s / (double)iters : 1.0;
    float c = f >= 1.0 ? max : (float)(max * f);
    return c < cap ? c : cap;
}
