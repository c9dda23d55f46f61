/*
 * data_idx.c: the data source of a directory holding the four IDX files of MNIST and its kin
 * (dataset.h): its splits loaded from disk, its files hashed for provenance and checked again
 * when a model's recorded data is reused, and the image pictures of a finished run
 * (samples.png, reconstructions.png, the variant's own and those of pictures.h). See data_source.h.
 */
#include "data_source.h"
#include "pictures.h"
#include "render.h"
#include "sha256.h"
#include "train.h"
#include "train_settings.h"
#include "vae_util.h"
#include "variant.h"

#include <string.h>

static const char *idx_what(const char *data) { return data; }

static int idx_absolute(const char *data, char *out, size_t cap) { return vae_run_abspath(data, out, cap); }

static int idx_new_run(vae_train_settings *t, const int *given) { return 0; }

/* Data sets whose labels have names, recognized by the SHA-256 of their label bytes (the IDX
 * payload, after the header, so raw and gzip files alike): both splits' digests and the names. */
static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
static const struct {
    const char *train, *test;
    const char *const *names;
    int classes;
} named_sets[] = {
    {"657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
     "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9", fashion_names, 10}, /* Fashion-MNIST */
};

/* Give d its class names when its labels are those of a known data set (a subset is not). */
static void name_classes(vae_dataset *d)
{
    if (!d->labels)
        return;
    vae_sha256 h;
    char hex[65];
    vae_sha256_init(&h);
    vae_sha256_update(&h, d->labels, (size_t)d->n);
    vae_sha256_final_hex(&h, hex);
    for (size_t i = 0; i < sizeof named_sets / sizeof named_sets[0]; i++)
        if ((!strcmp(hex, named_sets[i].train) || !strcmp(hex, named_sets[i].test)) &&
            d->classes == named_sets[i].classes)
            d->class_names = named_sets[i].names;
}

static int load_named(const char *dir, vae_split split, vae_dataset *out)
{
    if (vae_dataset_load(dir, split, out))
        return -1;
    name_classes(out);
    return 0;
}

static int idx_load(const vae_train_settings *t, vae_dataset *train, vae_dataset *test)
{
    const char *dir = t->s.data_dir;
    if (load_named(dir, VAE_SPLIT_TRAIN, train))
        return -1;
    if (!test)
        return 0;
    if (load_named(dir, VAE_SPLIT_TEST, test)) {
        vae_dataset_free(train);
        return -1;
    }
    if (train->rows != test->rows || train->cols != test->cols) {
        vae_set_error("%s: training images are %dx%d but test images %dx%d", dir, train->rows, train->cols,
                      test->rows, test->cols);
        vae_dataset_free(train);
        vae_dataset_free(test);
        return -1;
    }
    return 0;
}

static int idx_load_split(const char *data, const char *model, vae_split split, vae_dataset *out)
{
    return load_named(data, split, out);
}

static int idx_record(const char *data, vae_run_data *d) { return vae_run_data_hash(data, d); }

/* The recorded directory, when its two files of the split are the bytes the model recorded. */
static int idx_recorded(const vae_safetensors *st, const char *model, const char *rec, vae_split split,
                        char *recorded, size_t cap, const char **data, FILE *log)
{
    if (rec[0] != '/') {
        fprintf(log, "data: %s (default; %s records no absolute data path)\n", *data, model);
        return 0;
    }
    if (vae_run_unescape(rec, recorded, cap))
        return -1;
    char paths[2][4096];
    if (vae_dataset_file_paths(recorded, split, paths)) {
        char why[1024];
        snprintf(why, sizeof why, "%s", vae_last_error());
        return vae_set_error("%s was trained on %s, which cannot be used here (%s); pass --data DIR", model, rec, why);
    }
    for (int i = 0; i < 2; i++) {
        const char *slash = strrchr(paths[i], '/');
        char key[4200], hex[65];
        snprintf(key, sizeof key, "train.data.sha256.%.200s", slash ? slash + 1 : paths[i]);
        const char *want = vae_safetensors_meta_get(st, key);
        if (vae_sha256_file(paths[i], hex))
            return -1;
        if (!want || strcmp(want, hex) != 0)
            return vae_set_error("%s: SHA-256 %s differs from the %s that %s recorded: the data changed since "
                                 "training; pass --data DIR to use it anyway",
                                 paths[i], hex, want ? want : "none", model);
    }
    *data = recorded;
    fprintf(log, "data: %s (recorded in the model; SHA-256 checked)\n", rec);
    return 0;
}

static void idx_inputs(const char *data, vae_split split, char paths[2][4096], const char **inputs, int *n)
{
    if (vae_dataset_file_paths(data, split, paths))
        return;
    inputs[(*n)++] = paths[0];
    inputs[(*n)++] = paths[1];
}

static void idx_labels_name(const char *data, vae_split split, char *out, size_t cap)
{
    char paths[2][4096];
    snprintf(out, cap, "%s", vae_dataset_file_paths(data, split, paths) ? data : paths[1]);
}

static void idx_describe(const vae_train_settings *t, const vae_dataset *train, const vae_dataset *test, int n_val,
                         FILE *log)
{
    fprintf(log, "data: %s (%d training, %d test images, %dx%d)\n", t->s.data_dir, train->n, test->n, train->rows,
            train->cols);
}

/* samples.png (a model with a prior) and reconstructions.png, the model's own picture (the joint
 * model's categories.png), then every picture of pictures.h that applies; the summary names the
 * pictures skipped and why. */
static int idx_pictures(vae_source_run_end *e)
{
    const uint64_t seed = e->ts->s.seed;
    const int prior = vae_model_has_prior(e->m);
    char path[4200];
    snprintf(path, sizeof path, "%s/samples.png", e->dir);
    if (prior &&
        vae_render_samples(e->m, path, e->ts->samples, -1, seed, e->scale, e->test->class_names, VAE_RENDER_MEANS))
        return -1;
    snprintf(path, sizeof path, "%s/reconstructions.png", e->dir);
    if (vae_render_reconstructions(e->m, e->test, path, 32, e->scale))
        return -1;
    if (vae_variant_pictures(e->m, e->dir, seed, e->scale)) /* the variant's own, if any */
        return -1;
    const char *own = vae_variant_of(&e->m->cfg)->picture_files;
    snprintf(e->files, sizeof e->files, "%s,reconstructions.png%s%s", prior ? ",samples.png" : "", own ? "," : "",
             own ? own : "");
    if (!prior) { /* one line: the pictures of the prior not drawn, and why */
        char skipped[160] = "samples.png";
        for (int k = 0; k < VAE_PICTURES_N; k++)
            if (vae_picture_skip_reason(e->m, (vae_picture_kind)k))
                snprintf(skipped + strlen(skipped), sizeof skipped - strlen(skipped), ", %s", vae_pictures[k].file);
        snprintf(e->summary, sizeof e->summary, "not drawn: %s: %s\n", skipped, VAE_PICTURE_NO_PRIOR);
    }
    snprintf(path, sizeof path, "%s/metrics.csv", e->dir);
    vae_pictures_options po = {.scale = e->scale, .seed = seed, .metrics_csv = path, .log = NULL};
    if (vae_pictures_write_all(e->m, e->test, e->dir, &po) < 0)
        return -1;
    snprintf(e->tail, sizeof e->tail, " and the pictures (cuvae plot --help)");
    return 0;
}

const vae_data_source vae_data_idx = {
    .name = "idx",
    .row = "image",
    .rate = "img/s",
    .selects = NULL,
    .what = idx_what,
    .absolute = idx_absolute,
    .new_run = idx_new_run,
    .load = idx_load,
    .load_split = idx_load_split,
    .record = idx_record,
    .recorded = idx_recorded,
    .inputs = idx_inputs,
    .labels_name = idx_labels_name,
    .describe = idx_describe,
    .pictures = idx_pictures,
};
