/*
 * progress.h: the progress of a long pass over images (a training epoch, an
 * evaluation) on a terminal (a bar with percent, images/s, ETA and the running
 * loss, redrawn in place) or, when output is not a terminal, a plain log line
 * every few seconds.
 */
#ifndef VAE_PROGRESS_H
#define VAE_PROGRESS_H

#include <stdio.h>

typedef struct {
    FILE *f;
    int mode;          /* 1 bar, 0 plain lines, -1 silent */
    char label[64];    /* what is running: "epoch 3/10", "eval" */
    const char *row;   /* what is counted: "image", "value" */
    const char *rate;  /* its rate: "img/s", "values/s" */
    long total;        /* images in the epoch */
    double t_start;    /* when the epoch started */
    double t_last;     /* last time something was printed */
} vae_progress;

/* mode: 1 bar, 0 lines, -1 silent; see vae_progress_auto_mode. label names the pass in each line;
 * total counts images, unless vae_progress_units says otherwise. */
void vae_progress_begin(vae_progress *p, FILE *f, int mode, const char *label, long total);
/* What the pass counts and its rate, for rows that are not images ("value", "values/s"). */
void vae_progress_units(vae_progress *p, const char *row, const char *rate);
/* Whether an update is due now (so the caller only reads losses back when it is). */
int vae_progress_due(const vae_progress *p);
/* done of total images; the running loss is shown unless it is NAN. */
void vae_progress_update(vae_progress *p, long done, double running_loss);
/* Clear the bar line so the epoch's summary line can take its place. */
void vae_progress_end(vae_progress *p);
/* 1 when f is a terminal, else 0. */
int vae_progress_auto_mode(FILE *f);

#endif
