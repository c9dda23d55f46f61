/*
 * report.h: report.html, one page a person opens from disk to see a run: the
 * configuration (provenance.txt and the model's metadata), the final metrics
 * and every epoch's (metrics.csv), the loss curves, and every picture in the
 * run directory with a caption.
 *
 * The page is self-contained and static: HTML with inline CSS, no script, no
 * font or file from elsewhere; pictures are referenced by relative path
 * (<img src="samples.png">), so the page works from a copy of the directory
 * and with no server and no network. Every text from a file is escaped for
 * HTML. The pictures are every *.png and *.svg in the directory: the known
 * names first, in a fixed order with fixed captions, then any other under its
 * file name. The curves are loss_curves.svg when the directory has one, else a
 * line chart of the losses drawn here as inline SVG from metrics.csv.
 *
 * Not here: making the pictures, training, the `cuvae report` command.
 */
#ifndef VAE_REPORT_H
#define VAE_REPORT_H

#include <stdio.h>

/* Write dir/report.html (atomically) from what dir holds. metrics.csv is required;
 * provenance.txt and model.safetensors are shown when present. 0, or -1 with
 * vae_set_error naming the file and the cause. */
int vae_report_write(const char *dir);

/* For the pages (this one and the sweep's): a raw byte string (a path, a file name) as valid UTF-8
 * text (run_dir's escape), HTML-escaped; and a file name as a relative URL, every byte but
 * [A-Za-z0-9._~-] percent-encoded ('/' too: one path component). */
void vae_html_text(FILE *f, const char *s);
void vae_html_url(FILE *f, const char *name);
/* The pages' style sheet. */
extern const char vae_report_css[];

/* The caption of a known picture name ("samples.png"), or NULL for another name. */
const char *vae_report_caption(const char *name);

#endif
