/*
 * progress.c: see progress.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "progress.h"

#include "vae_util.h"

#include <unistd.h>

#define BAR_INTERVAL_S 0.1
#define LINE_INTERVAL_S 10.0

int vae_progress_auto_mode(FILE *f)
{
    return isatty(fileno(f)) ? 1 : 0;
}

void vae_progress_begin(vae_progress *p, FILE *f, int mode, const char *label, long total)
{
    p->f = f;
    p->mode = f ? mode : -1;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->row = "image";
    p->rate = "img/s";
    p->total = total;
    p->t_start = p->t_last = vae_now_seconds();
}

int vae_progress_due(const vae_progress *p)
{
    if (p->mode < 0)
        return 0;
    double interval = p->mode == 1 ? BAR_INTERVAL_S : LINE_INTERVAL_S;
    return vae_now_seconds() - p->t_last >= interval;
}

static void format_time(char *buf, size_t n, double s)
{
    if (s < 0 || s > 359999)
        s = 0;
    int t = (int)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%d:%02d", t / 60, t % 60);
}

void vae_progress_units(vae_progress *p, const char *row, const char *rate)
{
    p->row = row;
    p->rate = rate;
}

void vae_progress_update(vae_progress *p, long done, double running_loss)
{
    if (p->mode < 0)
        return;
    double now = vae_now_seconds(), el = now - p->t_start;
    double rate = el > 0 ? done / el : 0;
    double pct = p->total ? 100.0 * done / p->total : 100.0;
    char eta[16], loss[32] = "";
    format_time(eta, sizeof eta, rate > 0 ? (p->total - done) / rate : 0);
    if (p->mode == 1) {
        char bar[31];
        int fill = (int)(pct * 30 / 100);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[30] = '\0';
        if (running_loss == running_loss) /* not NAN */
            snprintf(loss, sizeof loss, "  loss %.3f", running_loss);
        fprintf(p->f, "\r\033[K%s [%s] %3.0f%%  %8.0f %s  ETA %s%s", p->label, bar, pct, rate, p->rate, eta, loss);
    } else {
        if (running_loss == running_loss)
            snprintf(loss, sizeof loss, ", loss %.3f", running_loss);
        fprintf(p->f, "%s: %ld/%ld %ss (%.0f%%), %.0f %s, ETA %s%s\n", p->label, done, p->total, p->row, pct, rate,
                p->rate, eta, loss);
    }
    fflush(p->f);
    p->t_last = now;
}

void vae_progress_end(vae_progress *p)
{
    if (p->mode == 1) {
        fprintf(p->f, "\r\033[K");
        fflush(p->f);
    }
}
