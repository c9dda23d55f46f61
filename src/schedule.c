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

int vae_schedule_parse_lr(const char *text, vae_schedule *s)
{
    if (strcmp(text, "constant") == 0) {
        s->lr_kind = VAE_LR_CONSTANT;
        return 0;
    }
    if (strcmp(text, "cosine") == 0) {
        s->lr_kind = VAE_LR_COSINE;
        return 0;
    }
    if (strncmp(text, "step:", 5) == 0) {
        const char *p = text + 5;
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
    switch (s->lr_kind) {
    case VAE_LR_CONSTANT: snprintf(buf, (size_t)len, "constant"); return;
    case VAE_LR_COSINE: snprintf(buf, (size_t)len, "cosine"); return;
    case VAE_LR_STEP: snprintf(buf, (size_t)len, "step:%d:%.9g", s->lr_step_epochs, (double)s->lr_step_gamma); return;
    }
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
