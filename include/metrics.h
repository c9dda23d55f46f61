/*
 * metrics.h: the per-epoch metrics of a run as a table, read from the text of
 * metrics.csv, and the same rows as JSON lines (metrics.jsonl).
 *
 * metrics.csv is the record: `cuvae train` keeps its text in memory (and in
 * the checkpoint), and metrics.jsonl is always made from that text by
 * vae_metrics_jsonl, so the two files can never disagree. One JSON object per
 * data row, keys from the header in its order: "epoch" and "step" integers (a whole epoch), every other
 * column a number printed with 15 significant digits (the CSV's 4 to 6
 * decimals come back exactly), or null for a value that is not a finite number.
 *
 * Not here: writing the files (cmd_train.c, run_dir.h), the HTML report.
 */
#ifndef VAE_METRICS_H
#define VAE_METRICS_H

#include <stddef.h>

/* metrics.csv parsed: n_cols names, n_rows rows of n_cols cells. */
typedef struct {
    int n_cols, n_rows;
    char **names;   /* (n_cols) owned */
    char **cells;   /* (n_rows, n_cols) owned texts, as in the file */
    double *values; /* (n_rows, n_cols) strtod of each cell; NaN where it is not a number */
} vae_metrics_table;

/* Parse the text of metrics.csv (len bytes; a header line, then rows; a last line without
 * its newline counts). 0, or -1 with vae_set_error naming `what` (the file) and the line
 * for a row whose cell count differs from the header's. Free with vae_metrics_table_free. */
int vae_metrics_parse(const char *csv, size_t len, const char *what, vae_metrics_table *t);
void vae_metrics_table_free(vae_metrics_table *t);

/* Column index of name, or -1. */
int vae_metrics_column(const vae_metrics_table *t, const char *name);

/* The JSON lines of t's rows (one object per row, each line ending in '\n'; "" for no
 * rows). Returns a vae_calloc'd string; its length in *len. */
char *vae_metrics_jsonl(const vae_metrics_table *t, size_t *len);

#endif
