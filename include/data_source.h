/*
 * data_source.h: where a run's rows come from, behind one interface. A --data value names
 * its source (vae_data_source_of): "toy" the 1-D Gaussian-mixture toy drawn in memory
 * (src/data_toy.c), anything else a directory of the four IDX files of MNIST and its kin
 * (src/data_idx.c). Commands ask the source (load, describe, record for provenance, which
 * pictures apply) and never which source it is.
 *
 * Adding a source (a .npy array, a folder of images): one file src/data_<name>.c defining a
 * vae_data_source, and one line in the list of src/data_source.c, before the IDX directory,
 * which takes every value the others refuse. Settings of its own (as the toy's --toy-*) are
 * rows of the training settings' table (train_settings.h).
 */
#ifndef VAE_DATA_SOURCE_H
#define VAE_DATA_SOURCE_H

#include "dataset.h"
#include "model.h"
#include "run_dir.h"
#include "safetensors.h"

#include <stdio.h>

struct vae_train_settings;

/* The end of a finished run, for its source's pictures: what they read, and what they give
 * back for the model file and the run's last lines. */
typedef struct {
    vae_model *m;
    const struct vae_train_settings *ts;
    const vae_dataset *train; /* the rows trained on (the validation rows held out) */
    const vae_dataset *test;
    const char *dir; /* the run directory */
    int scale;       /* --scale of the PNG grids */
    /* filled by the source: */
    char meta_key[32], meta_value[32]; /* one metadata entry for model.safetensors ("" none) */
    char files[256];                   /* ",samples.png,...": the files written, for the "wrote" line */
    char tail[128];                    /* what that line says after the list of files */
    char summary[512];                 /* lines printed after the final loss, each ending in '\n' ("" none) */
} vae_source_run_end;

/* A training step's end, for its source's snapshot of the model as it stands. */
typedef struct {
    vae_model *m;
    const struct vae_train_settings *ts;
    const vae_dataset *test;
    const char *dir;  /* the run directory */
    long step;        /* steps of the run done (0: before the first) */
    double epoch;     /* step / steps per epoch */
    int last;         /* the run's last step: drawn whatever the schedule */
} vae_source_step;

typedef struct vae_data_source {
    const char *name; /* "idx", "toy" */
    const char *row;  /* one row in messages: "image", "value" */
    const char *rate; /* rows per second in messages: "img/s", "values/s" */
    /* Whether a --data value names this source; NULL: every value (the last in the list). */
    int (*selects)(const char *data);
    /* How messages name the data of --data `data`: the directory, "--data toy". */
    const char *(*what)(const char *data);
    /* The canonical text of --data `data` that a run records as train.data (before escaping):
     * the absolute directory, the source's name. 0, or -1 with vae_set_error. */
    int (*absolute)(const char *data, char *out, size_t cap);
    /* A new run's settings once the flags are parsed (given[k] set for each setting k of
     * train_settings.h given): the checks of the source's own flags and its model's defaults
     * for the flags not given. 0, or -1 with vae_set_error: a usage error. */
    int (*new_run)(struct vae_train_settings *t, const int *given);
    /* The source's own settings (rows of train_settings.h's table whose source it is; NULL when it
     * has none): setting k from its text (0, or -1 with vae_set_error naming the flag), and its
     * canonical text into buf (VAE_SETTING_MAX bytes). */
    int (*apply)(struct vae_train_settings *t, int k, const char *arg);
    void (*text)(const struct vae_train_settings *t, int k, char *buf);
    /* The training and test sets of the run t (test NULL: the training set alone). 0, or -1 with
     * vae_set_error naming the data. */
    int (*load)(const struct vae_train_settings *t, vae_dataset *train, vae_dataset *test);
    /* One split of the data of --data `data` for the model file `model` (whose recorded settings
     * may say how it was drawn). 0, or -1 with vae_set_error. */
    int (*load_split)(const char *data, const char *model, vae_split split, vae_dataset *out);
    /* The run's data record: its absolute text (as `absolute`) and each file's
     * SHA-256, for provenance and for a resume to check. 0, or -1 with vae_set_error. */
    int (*record)(const char *data, vae_run_data *d);
    /* The data a model file recorded (its "train.data" value `rec`, with the file's metadata
     * st), made ready for another command: its directory into recorded (cap bytes) after
     * checking its files are those trained on. 0 with *data set (and a line to log), or -1 with
     * vae_set_error. */
    int (*recorded)(const vae_safetensors *st, const char *model, const char *rec, vae_split split,
                    char *recorded, size_t cap, const char **data, FILE *log);
    /* The input files of a split (for a command's --out check): 0..2 paths appended to inputs. */
    void (*inputs)(const char *data, vae_split split, char paths[2][4096], const char **inputs, int *n);
    /* Where a split's labels come from, for messages (a labels file, or the data's name). */
    void (*labels_name)(const char *data, vae_split split, char *out, size_t cap);
    /* The run header's line on the data. */
    void (*describe)(const struct vae_train_settings *t, const vae_dataset *train, const vae_dataset *test,
                     int n_val, FILE *log);
    /* The pictures of a finished run into e->dir, the model's extra metadata and the last lines.
     * 0, or -1 with vae_set_error. */
    int (*pictures)(vae_source_run_end *e);
    /* After a training step (and before the first): the source's snapshot of the model into
     * s->dir when its schedule says so (the toy's panels, --snapshot-every). 0 (drawn, or not
     * due), or -1 with vae_set_error. NULL: none. */
    int (*snapshot)(const vae_source_step *s);
    /* `cuvae plot` of a saved model of this source whose rows are not images (model file `model`):
     * its pictures into out_dir, and a line on log per file. Returns how many were written, or -1
     * with vae_set_error. NULL: the image pictures (pictures.h). */
    int (*plot)(vae_model *m, const char *model, const char *out_dir, FILE *log);
} vae_data_source;

/* The source a --data value names (never NULL). */
const vae_data_source *vae_data_source_of(const char *data);

/* The toy, whose settings are rows of train_settings.h's table. */
extern const vae_data_source vae_data_toy;

#endif /* VAE_DATA_SOURCE_H */
