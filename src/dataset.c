/*
 * dataset.c: the data sets declared in dataset.h. The loader finds the images
 * and labels files of a split (raw preferred over .gz), reads both with the
 * IDX reader, checks that they fit together and hands their buffers over
 * without copying; vae_dataset_from_floats copies rows of floats held in
 * memory; the rest reads and copies rows of either kind.
 */
#define _POSIX_C_SOURCE 200809L
#include "dataset.h"
#include "idx.h"
#include "vae_math.h"
#include "vae_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Each split's name and files (files[0] images, files[1] labels): dataset.h's list. */
static const struct {
    const char *name, *files[2];
} dataset_splits[VAE_SPLIT_COUNT] = {
#define DATASET_SPLIT(id, name, images, labels) [VAE_SPLIT_##id] = {name, {images, labels}},
    VAE_SPLITS(DATASET_SPLIT)
#undef DATASET_SPLIT
};

const char *vae_split_name(vae_split split) { return dataset_splits[split].name; }

#define DATASET_PATH_MAX 4096

/* The path of `name` in `dir`: the raw file if it exists, else name.gz if
 * that exists. Returns 1 with the path in buf (DATASET_PATH_MAX bytes), 0 if
 * neither exists, -1 with an error if the path is too long. */
static int dataset_find(const char *dir, const char *name, char *buf)
{
    static const char *const suffixes[2] = {"", ".gz"};
    for (int i = 0; i < 2; i++) {
        int w = snprintf(buf, DATASET_PATH_MAX, "%s/%s%s", dir, name, suffixes[i]);
        if (w < 0 || w >= DATASET_PATH_MAX)
            return vae_set_error("%s: directory path too long", dir);
        struct stat st;
        if (stat(buf, &st) == 0)
            return 1;
    }
    return 0;
}

/* 1 + the largest of labels[0..n): the number of classes of a labelled data set. */
static int dataset_classes(const uint8_t *labels, int n)
{
    int max = 0;
    for (int i = 0; i < n; i++)
        if (labels[i] > max)
            max = labels[i];
    return max + 1;
}

/* The one message for a directory that is missing or lacks files. */
static int dataset_missing(const char *dir, vae_split split, const char *problem)
{
    return vae_set_error("%s: %s; the %s split needs %s and %s there (each raw or .gz); "
                         "run scripts/fetch_mnist.sh %s to fetch MNIST",
                         dir, problem, dataset_splits[split].name, dataset_splits[split].files[0],
                         dataset_splits[split].files[1], dir);
}

int vae_dataset_load(const char *dir, vae_split split, vae_dataset *out)
{
    memset(out, 0, sizeof *out);
    if ((unsigned)split >= VAE_SPLIT_COUNT)
        return vae_set_error("%s: unknown data split %d (expected train or test)", dir, (int)split);

    struct stat st;
    if (stat(dir, &st) != 0) {
        char problem[256];
        snprintf(problem, sizeof problem, "cannot open data directory (%s)", strerror(errno));
        return dataset_missing(dir, split, problem);
    }
    if (!S_ISDIR(st.st_mode))
        return dataset_missing(dir, split, "not a directory");

    char paths[2][DATASET_PATH_MAX];
    int found[2];
    for (int i = 0; i < 2; i++) {
        found[i] = dataset_find(dir, dataset_splits[split].files[i], paths[i]);
        if (found[i] < 0)
            return -1;
    }
    if (!found[0] || !found[1]) {
        char problem[256];
        if (!found[0] && !found[1])
            snprintf(problem, sizeof problem, "missing %s and %s", dataset_splits[split].files[0],
                     dataset_splits[split].files[1]);
        else
            snprintf(problem, sizeof problem, "missing %s", dataset_splits[split].files[found[0] ? 1 : 0]);
        return dataset_missing(dir, split, problem);
    }

    /* the two headers first: counts that disagree are refused before anything is inflated */
    vae_idx images, labels;
    if (vae_idx_read_header(paths[0], &images) != 0 || vae_idx_read_header(paths[1], &labels) != 0)
        return -1;
    int rc = 0;
    if (images.ndim != 3)
        rc = vae_set_error("%s: images must have rank 3 (count, rows, cols), found rank %d",
                           paths[0], images.ndim);
    else if (labels.ndim != 1)
        rc = vae_set_error("%s: labels must have rank 1 (count), found rank %d", paths[1], labels.ndim);
    else if (labels.dims[0] != images.dims[0])
        rc = vae_set_error("%s: %d labels for %d images in %s", paths[1], labels.dims[0],
                           images.dims[0], paths[0]);
    if (rc != 0)
        return -1;
    if (vae_idx_read(paths[0], &images) != 0)
        return -1;
    if (vae_idx_read(paths[1], &labels) != 0) {
        vae_idx_free(&images);
        return -1;
    }
    if (images.ndim != 3 || labels.ndim != 1 || labels.dims[0] != images.dims[0]) {
        vae_set_error("%s or %s changed while it was read (its header no longer matches)", paths[0], paths[1]);
        vae_idx_free(&images);
        vae_idx_free(&labels);
        return -1;
    }

    /* vae_idx_read caps the data at VAE_IDX_MAX_BYTES, so all of these fit an int;
     * the product is still taken in 64 bits. */
    out->n = images.dims[0];
    out->rows = images.dims[1];
    out->cols = images.dims[2];
    out->dim = (int)((int64_t)images.dims[1] * images.dims[2]);
    out->pixels = images.data;
    out->labels = labels.data;
    out->classes = dataset_classes(out->labels, out->n);
    return 0;
}

int vae_dataset_from_floats(vae_dataset *out, int n, int dim, const float *values, const uint8_t *labels)
{
    memset(out, 0, sizeof *out);
    if (n < 1 || dim < 1)
        return vae_set_error("float data set of %d rows of %d values: both must be at least 1", n, dim);
    if ((int64_t)n * dim > INT32_MAX)
        return vae_set_error("float data set of %d rows of %d values: more than 2^31 - 1 values", n, dim);
    const size_t count = (size_t)n * (size_t)dim;
    for (size_t k = 0; k < count; k++)
        if (!isfinite(values[k]))
            return vae_set_error("float data set: row %zu, value %zu is %g, not a finite number", k / (size_t)dim,
                                 k % (size_t)dim, (double)values[k]);
    *out = (vae_dataset){.n = n, .dim = dim, .kind = VAE_DATA_FLOATS};
    out->values = vae_calloc(count, sizeof(float));
    memcpy(out->values, values, count * sizeof(float));
    if (labels) {
        out->labels = vae_calloc((size_t)n, 1);
        memcpy(out->labels, labels, (size_t)n);
        out->classes = dataset_classes(out->labels, n);
    }
    return 0;
}

size_t vae_data_value_size(vae_data_kind kind)
{
    return kind == VAE_DATA_FLOATS ? sizeof(float) : 1;
}

void vae_dataset_row(const vae_dataset *d, int i, float *out)
{
    const size_t at = (size_t)i * (size_t)d->dim;
    if (d->kind == VAE_DATA_FLOATS) {
        memcpy(out, d->values + at, (size_t)d->dim * sizeof(float));
        return;
    }
    for (int j = 0; j < d->dim; j++)
        out[j] = vae_byte_unit(d->pixels[at + j]);
}

void vae_dataset_subset(const vae_dataset *d, const int32_t *idx, int n, vae_dataset *out)
{
    *out = *d;
    out->n = n;
    out->pixels = NULL;
    out->values = NULL;
    out->labels = NULL;
    const size_t row = (size_t)d->dim * vae_data_value_size(d->kind);
    unsigned char *dst = vae_calloc((size_t)n, row);
    const unsigned char *src = d->kind == VAE_DATA_FLOATS ? (const unsigned char *)d->values : d->pixels;
    for (int i = 0; i < n; i++)
        memcpy(dst + (size_t)i * row, src + (size_t)idx[i] * row, row);
    if (d->kind == VAE_DATA_FLOATS)
        out->values = (float *)dst;
    else
        out->pixels = dst;
    if (d->labels) {
        out->labels = vae_calloc((size_t)n, 1);
        for (int i = 0; i < n; i++)
            out->labels[i] = d->labels[idx[i]];
    }
}

int vae_dataset_file_paths(const char *dir, vae_split split, char paths[2][4096])
{
    if ((unsigned)split >= VAE_SPLIT_COUNT)
        return vae_set_error("%s: unknown data split %d (expected train or test)", dir, (int)split);
    for (int i = 0; i < 2; i++) {
        int found = dataset_find(dir, dataset_splits[split].files[i], paths[i]);
        if (found < 0)
            return -1;
        if (!found)
            return dataset_missing(dir, split, "a file is missing");
    }
    return 0;
}

void vae_dataset_free(vae_dataset *d)
{
    if (!d)
        return;
    vae_free(d->pixels);
    vae_free(d->values);
    vae_free(d->labels);
    memset(d, 0, sizeof *d);
}

const char *vae_dataset_class_name(const vae_dataset *d, int k, char buf[16])
{
    if (d && d->class_names && k >= 0 && k < d->classes)
        return d->class_names[k];
    snprintf(buf, 16, "%d", k);
    return buf;
}

int vae_dataset_check_labels(const vae_dataset *d, int classes, const char *source)
{
    if (!d->labels)
        return vae_set_error("%s: the data has no labels, and a conditional model needs one per row", source);
    for (int i = 0; i < d->n; i++)
        if (d->labels[i] >= classes)
            return vae_set_error("%s: label %d of row %d is out of range for a model of %d classes (0..%d)", source,
                                 d->labels[i], i, classes, classes - 1);
    return 0;
}
