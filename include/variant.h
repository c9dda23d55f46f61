/*
 * variant.h: the members of the model family, one description each. A variant lives in its
 * own file (src/compose_<name>.c), which exports `const vae_variant vae_variant_<name>`, and
 * src/variants.c lists them, one line each: adding a variant is one file and one line.
 *
 * A description says everything that differs between variants: the name --model takes, the
 * composition (the model.h calls that build its layers, latents and terms), the validation
 * of its own settings, the training defaults it prefers, the metadata it saves in a model
 * file and reads back, its lines in the summaries, its extra metrics columns and its extra
 * pictures. Nothing outside the variant files and the registry asks which variant a
 * configuration holds: the rest of the code asks the registry for the description
 * (vae_variant_of) or the model for its parts (model.h: vae_model_reads_label,
 * vae_model_gaussian, vae_model_categorical, the terms).
 *
 * Not here: the parts themselves and how they run (model.h), the flags (cli.h).
 */
#ifndef VAE_VARIANT_H
#define VAE_VARIANT_H

#include "config.h"
#include "dataset.h"
#include "device_data.h"
#include "model.h"
#include "safetensors.h"
#include "schedule.h"
#include "train.h"

#include <stdint.h>
#include <stdio.h>

/* Training settings a variant sets when the user did not give them; 0 (or no hidden layers):
 * the general default stays. */
typedef struct {
    int n_hidden, hidden[VAE_MAX_HIDDEN]; /* --hidden */
    int latent_dim;                       /* --latent */
    int batch_size;                       /* --batch-size */
    float lr;                             /* --lr */
} vae_variant_defaults;

/* Metadata entries of a model file, their values' text held here. */
#define VAE_VARIANT_META_MAX 4
typedef struct {
    int n;
    vae_st_meta entry[VAE_VARIANT_META_MAX];
    char text[VAE_VARIANT_META_MAX][32];
} vae_variant_meta;

/* Columns of metrics.csv beyond the losses and the terms, after them: one list for the header
 * and each row. */
#define VAE_METRICS_EXTRA_MAX 8
typedef struct {
    int n;
    const char *name[VAE_METRICS_EXTRA_MAX];
    double value[VAE_METRICS_EXTRA_MAX];
} vae_metrics_extra;

typedef struct vae_variant {
    const char *name;       /* --model's value, train.model's, and the model file's "model" ("cvae") */
    const char *title;      /* the first word of the model summary ("CVAE") */
    const char *help;       /* its entry under --model in `train --help`: lines of at most 60 columns,
                             * each ending in '\n' */
    const char *flags_help; /* the help of flags that only it reads ("  --disc K ...\n"), or NULL */
    int reads_labels;       /* its layers read the one-hot label: cfg.classes (2..256) is the data's,
                             * 1 + its largest training label; 0: cfg.classes must be 0 */
    int capacities;         /* its KL terms take --capacity-z and --capacity-c; 0: refused */
    const vae_variant_defaults *defaults; /* NULL: none */

    /* Its layers, latents and terms, composed with model.h's calls after vae_model_compose_begin
     * (cfg valid). 0. */
    int (*compose)(vae_model *m, const vae_config *cfg);
    /* Its own settings of a configuration (the general ones are checked already): 0, or -1 with
     * vae_set_error. NULL: nothing more to check. */
    int (*validate)(const vae_config *c);
    /* The metadata keys of its own settings, after "model" (vae_variant_meta_int). NULL: none. */
    void (*save_meta)(const vae_config *c, vae_variant_meta *meta);
    /* Read them back from a model file at path into c: 0, or -1 with vae_set_error naming the file
     * and the key (vae_checkpoint_meta_int, vae_checkpoint_bad_meta). NULL: none. */
    int (*read_meta)(const vae_safetensors *st, const char *path, vae_config *c);
    /* Lines of its own after the first line of the model summary. NULL: none. */
    void (*summary)(const vae_config *c, FILE *f);
    /* Its part of `compare`'s one-line description of the model (", a categorical latent ..."),
     * the training schedule at hand. NULL: none. */
    void (*describe)(const vae_config *c, const vae_schedule *schedule, FILE *f);
    /* Its extra metrics columns after an epoch (vae_metrics_extra_add): with t and test NULL only
     * the names are wanted (the header), the values then NAN. NULL: none. */
    void (*metrics_extras)(vae_model *m, const vae_trainer *t, vae_device_data *test_dev, const vae_dataset *test,
                           vae_metrics_extra *x);
    /* After training: what the final test losses and extra columns say that a user should hear
     * (the joint model's unused or collapsed code), as lines of "cuvae train: warning: ..." on f.
     * NULL: nothing. */
    void (*advise)(const vae_model *m, const vae_losses *test, const vae_metrics_extra *x, FILE *f);
    /* Pictures of its own, written into a run directory after training, and their file names
     * for the run's closing line ("categories.png"; several: comma-separated). NULL: none. */
    int (*pictures)(vae_model *m, const char *dir, uint64_t seed, int scale);
    const char *picture_files;
    /* The report's captions: of its own picture (NULL: none), and of samples.png when its samples
     * are not plain draws of the prior (NULL: they are). */
    const char *picture_caption;
    const char *samples_caption;
} vae_variant;

/* ---- the registry (src/variants.c) ---------------------------------------------------- */
/* The variant of c (the plain VAE, the registry's first, when c->variant is NULL). */
const vae_variant *vae_variant_of(const vae_config *c);
/* The variant called `name`, or NULL. */
const vae_variant *vae_variant_find(const char *name);
/* --model's value: the variant called s, or -1 with vae_set_error listing the known ones. */
int vae_variant_parse(const char *s, const vae_variant **out);
/* Variants in the registry, and the i-th (0 .. count - 1), the plain VAE first. */
int vae_variant_count(void);
const vae_variant *vae_variant_at(int i);
/* The help of --model and of the variants' own flags, from their descriptions. */
const char *vae_variant_help(void);

/* What is true of c's variant (vae_config_validate's last step): the label classes its
 * reads_labels asks for, its own validate, and capacities only where it takes them. 0, or -1
 * with vae_set_error. */
int vae_variant_validate(const vae_config *c);
/* The model file's metadata of c's variant: "model" (absent for the registry's first, as in
 * files written before the family existed), then its save_meta's keys. */
void vae_variant_save_meta(const vae_config *c, vae_variant_meta *meta);
/* The variant of a model file at path ("model"; absent: the registry's first) into c->variant,
 * then its read_meta. 0, or -1 with vae_set_error. */
int vae_variant_read_meta(const vae_safetensors *st, const char *path, vae_config *c);
/* Its own lines after the model summary's first line (nothing for a variant without). */
void vae_variant_summary(const vae_config *c, FILE *f);
/* Its part of compare's description of the model (nothing for a variant without). */
void vae_variant_describe(const vae_config *c, const vae_schedule *schedule, FILE *f);
/* The extra metrics columns of m's variant (x->n 0 for one without). See metrics_extras. */
void vae_variant_metrics_extras(vae_model *m, const vae_trainer *t, vae_device_data *test_dev,
                                const vae_dataset *test, vae_metrics_extra *x);
/* Its advice after training (the variant's advise hook, if any), from the test losses and extras. */
void vae_variant_advise(const vae_model *m, const vae_losses *test, const vae_metrics_extra *x, FILE *f);
/* The pictures of m's variant into dir: 0 (also for one without), or -1 with vae_set_error. */
int vae_variant_pictures(vae_model *m, const char *dir, uint64_t seed, int scale);

/* ---- for the descriptions --------------------------------------------------------------- */
/* Append metadata key = value's decimal text. */
void vae_variant_meta_int(vae_variant_meta *meta, const char *key, int value);
/* Append metadata key = text (at most 31 bytes). */
void vae_variant_meta_text(vae_variant_meta *meta, const char *key, const char *text);
/* Append an extra metrics column. */
void vae_metrics_extra_add(vae_metrics_extra *x, const char *name, double value);

#endif /* VAE_VARIANT_H */
