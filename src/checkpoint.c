/*
 * checkpoint.c: saving and loading a model as safetensors; see checkpoint.h.
 */
#include "checkpoint.h"

#include "architecture.h"
#include "vae_util.h"
#include "variant.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One saved tensor: a slice of the flat parameter buffer. */
typedef struct {
    char name[48];
    int ndim;
    int64_t shape[2];
    size_t off;
} saved_tensor;

/* The tensors of the file, in order: each Linear's weight then bias, or, for a layer saved
 * in parts (the head: encoder.mu, encoder.logvar), each part's rows of both. Returns the count. */
static int list_tensors(const vae_model *m, saved_tensor *t)
{
    int n = 0;
    for (int l = 0; l < m->n_linear; l++) {
        const vae_linear *L = &m->lin[l];
        const int parts = L->n_parts ? L->n_parts : 1;
        int row = 0;
        for (int p = 0; p < parts; p++) {
            const char *name = L->n_parts ? L->part[p].name : L->name;
            const int rows = L->n_parts ? L->part[p].rows : L->out;
            t[n] = (saved_tensor){.ndim = 2, .shape = {rows, L->in}, .off = L->w_off + (size_t)row * L->in};
            snprintf(t[n].name, sizeof t[n].name, "%s.weight", name);
            n++;
            t[n] = (saved_tensor){.ndim = 1, .shape = {rows, 0}, .off = L->b_off + (size_t)row};
            snprintf(t[n].name, sizeof t[n].name, "%s.bias", name);
            n++;
            row += rows;
        }
    }
    return n;
}

static size_t tensor_count(const saved_tensor *t)
{
    return t->ndim == 2 ? (size_t)(t->shape[0] * t->shape[1]) : (size_t)t->shape[0];
}

/* The tensors of st must be exactly t[0..nt), the tensors of the model `want` that
 * the metadata describes: same names, F32, same shapes, and so as many values in
 * all as want->n_params. 0, or -1 with one message naming the file and the mismatch. */
static int check_tensors(const char *path, const vae_safetensors *st, const vae_model *want,
                         const saved_tensor *t, int nt)
{
    uint64_t held = 0;
    for (int i = 0; i < st->n_tensors; i++)
        held += st->tensors[i].nbytes / vae_safetensors_dtype_size(st->tensors[i].dtype);
    if (st->n_tensors != nt || held != (uint64_t)want->n_params)
        return vae_set_error("%s: its metadata describes a model of %zu parameters in %d tensors, but the file "
                             "holds %d tensors of %llu values: the file is damaged or not from cuvae",
                             path, want->n_params, nt, st->n_tensors, (unsigned long long)held);
    for (int i = 0; i < nt; i++) {
        const vae_st_tensor *s = vae_safetensors_find(st, t[i].name);
        if (!s)
            return vae_set_error("%s: tensor '%s' is missing", path, t[i].name);
        int shape_ok = strcmp(s->dtype, "F32") == 0 && s->ndim == t[i].ndim && s->shape[0] == t[i].shape[0] &&
                       (t[i].ndim == 1 || s->shape[1] == t[i].shape[1]);
        if (!shape_ok) {
            char want_s[48];
            if (t[i].ndim == 2)
                snprintf(want_s, sizeof want_s, "(%lld, %lld)", (long long)t[i].shape[0], (long long)t[i].shape[1]);
            else
                snprintf(want_s, sizeof want_s, "(%lld)", (long long)t[i].shape[0]);
            return vae_set_error("%s: tensor '%s' is %s with %d dims, expected F32 %s", path, t[i].name, s->dtype,
                                 s->ndim, want_s);
        }
    }
    return 0;
}

/* The metadata that describes the model again must say what the configuration says: the
 * architecture JSON (what the PyTorch loader builds from) must be the one of the model the
 * configuration keys describe, and the train.* settings a run recorded must agree with them. */
static int check_agrees(const char *path, const vae_safetensors *st, const vae_model *want)
{
    const vae_config *c = &want->cfg;
    const char *arch = vae_safetensors_meta_get(st, "architecture");
    if (arch) {
        char *mine = vae_architecture_json(want);
        int same = strcmp(arch, mine) == 0;
        vae_free(mine);
        if (!same)
            return vae_set_error("%s: metadata 'architecture' describes another network than its input_dim, "
                                 "hidden, latent_dim, activation and likelihood: the file is damaged or was edited",
                                 path);
    }
    char hidden[VAE_MAX_HIDDEN * 12 + 1] = "", latent[16];
    for (int i = 0; i < c->n_hidden; i++)
        snprintf(hidden + strlen(hidden), sizeof hidden - strlen(hidden), "%s%d", i ? "," : "", c->hidden[i]);
    snprintf(latent, sizeof latent, "%d", c->latent_dim);
    const struct {
        const char *key, *config_key, *value;
    } pairs[] = {
        {"train.activation", "activation", vae_act_name(c->act)},
        {"train.likelihood", "likelihood", vae_likelihood_name(c->likelihood)},
        {"train.hidden", "hidden", hidden},
        {"train.latent", "latent_dim", latent},
        {"train.model", "model", vae_variant_of(c)->name},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const char *rec = vae_safetensors_meta_get(st, pairs[i].key);
        if (rec && strcmp(rec, pairs[i].value) != 0)
            return vae_set_error("%s: metadata %s = '%.40s' contradicts %s = '%.40s': the file is damaged or was "
                                 "edited",
                                 path, pairs[i].key, rec, pairs[i].config_key, pairs[i].value);
    }
    return 0;
}

int vae_checkpoint_save(const vae_model *m, const char *path, const vae_st_meta *extra, int n_extra)
{
    const vae_config *c = &m->cfg;
    float *host = vae_calloc(m->n_params, sizeof(float));
    m->be->download(m->be, host, m->params, m->n_params * sizeof(float));

    saved_tensor t[2 * VAE_MAX_LINEAR * VAE_MAX_PARTS];
    int nt = list_tensors(m, t);
    for (int i = 0; i < nt; i++) {
        size_t n = tensor_count(&t[i]), bad = vae_first_non_finite(host + t[i].off, n);
        if (bad < n) { /* the training loop stops before this; the last line of defence */
            vae_set_error("%s: not saved: tensor '%s' holds %s at element %zu (a diverged model is never written)",
                          path, t[i].name, vae_non_finite_name(host[t[i].off + bad]), bad);
            vae_free(host);
            return -1;
        }
    }
    vae_st_tensor_in in[2 * VAE_MAX_LINEAR * VAE_MAX_PARTS];
    for (int i = 0; i < nt; i++)
        in[i] = (vae_st_tensor_in){.name = t[i].name, .ndim = t[i].ndim,
                                   .shape = {t[i].shape[0], t[i].shape[1]}, .data = host + t[i].off};

    char dims[5][32], hidden[VAE_MAX_HIDDEN * 8 + 1] = "", beta[32];
    snprintf(dims[0], 32, "%d", c->input_dim);
    snprintf(dims[1], 32, "%d", c->image_rows);
    snprintf(dims[2], 32, "%d", c->image_cols);
    snprintf(dims[3], 32, "%d", c->latent_dim);
    for (int i = 0; i < c->n_hidden; i++) {
        size_t len = strlen(hidden);
        snprintf(hidden + len, sizeof hidden - len, "%s%d", i ? "," : "", c->hidden[i]);
    }
    snprintf(beta, sizeof beta, "%.9g", (double)c->beta);
    char *arch = vae_architecture_json(m);
    vae_st_meta meta[VAE_CHECKPOINT_META_MAX] = {
        {"format", "cuvae"},          {"format_version", "1"},       {"input_dim", dims[0]},
        {"image_rows", dims[1]},      {"image_cols", dims[2]},       {"latent_dim", dims[3]},
        {"hidden", hidden},           {"activation", vae_act_name(c->act)},
        {"beta", beta},               {"likelihood", vae_likelihood_name(c->likelihood)},
        {"architecture", arch},
    };
    int nm = 11;
    char sigma[32];
    if (c->likelihood == VAE_LIKELIHOOD_GAUSSIAN) {
        snprintf(sigma, sizeof sigma, "%.9g", (double)c->sigma);
        meta[nm++] = (vae_st_meta){"sigma", sigma};
    }
    vae_variant_meta variant_meta; /* "model" (but for the plain VAE) and the variant's own keys */
    vae_variant_save_meta(c, &variant_meta);
    for (int i = 0; i < variant_meta.n; i++)
        meta[nm++] = variant_meta.entry[i];
    if (nm + n_extra > VAE_CHECKPOINT_META_MAX)
        vae_fatal("model metadata: %d configuration and %d extra entries exceed %d", nm, n_extra,
                  VAE_CHECKPOINT_META_MAX);
    for (int i = 0; i < n_extra; i++)
        meta[nm++] = extra[i];
    int rc = vae_safetensors_write(path, in, nt, meta, nm);
    vae_free(arch);
    vae_free(host);
    return rc;
}

int vae_checkpoint_meta_int(const vae_safetensors *st, const char *path, const char *key, int *out)
{
    const char *v = vae_safetensors_meta_get(st, key);
    if (!v)
        return vae_set_error("%s: not a cuvae model: metadata '%s' is missing", path, key);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    /* digits only, as the writer writes them: no sign, no spaces (strtol would take " 20" and "+20") */
    if (v[0] < '0' || v[0] > '9' || end == v || *end || errno || x < 0 || x > (1L << 30))
        return vae_set_error("%s: metadata %s = '%.40s' is not a valid size (digits only)", path, key, v);
    *out = (int)x;
    return 0;
}

int vae_checkpoint_bad_meta(const vae_safetensors *st, const char *path, const char *key, const char *need)
{
    return vae_set_error("%s: metadata %s = '%.60s' is not %s: the file is damaged or was not written by cuvae",
                         path, key, vae_safetensors_meta_get(st, key), need);
}

/* The file's values that vae_config_validate would refuse in the words of the flags that set them
 * in training (--beta inf ...), refused here in the words of the file: its path, the key and the
 * value as stored (a variant's own keys: its read_meta). vae_config_validate stays the last word
 * on the rest. */
static int check_meta_values(const char *path, const vae_safetensors *st, const vae_config *c)
{
    const char *key = NULL, *need = NULL;
    if (!(c->beta >= 0.0f) || !isfinite(c->beta))
        key = "beta", need = "a finite number >= 0 (the weight of the KL term)";
    else if (c->likelihood == VAE_LIKELIHOOD_GAUSSIAN && (!(c->sigma > 0.0f) || !isfinite(c->sigma)))
        key = "sigma", need = "a finite number > 0 (the Gaussian likelihood's standard deviation)";
    else if (c->latent_dim < 1 || c->latent_dim > 4096)
        key = "latent_dim", need = "a latent size in 1..4096";
    return key ? vae_checkpoint_bad_meta(st, path, key, need) : 0;
}

int vae_checkpoint_load(const char *path, vae_backend *be, int batch_cap, vae_model *m)
{
    vae_safetensors st;
    memset(m, 0, sizeof *m);
    if (vae_safetensors_read(path, &st))
        return -1;
    int rc = -1;
    vae_config c;
    vae_config_default(&c);
    const char *fmt = vae_safetensors_meta_get(&st, "format");
    const char *ver = vae_safetensors_meta_get(&st, "format_version");
    if (!fmt || strcmp(fmt, "cuvae") != 0) {
        vae_set_error("%s: not a cuvae model (metadata 'format' is %s%s%s)", path, fmt ? "'" : "missing",
                      fmt ? fmt : "", fmt ? "'" : "");
        goto out;
    }
    if (!ver || strcmp(ver, "1") != 0) {
        vae_set_error("%s: unsupported cuvae format_version '%s' (this build reads 1)", path, ver ? ver : "");
        goto out;
    }
    if (vae_checkpoint_meta_int(&st, path, "input_dim", &c.input_dim) ||
        vae_checkpoint_meta_int(&st, path, "image_rows", &c.image_rows) ||
        vae_checkpoint_meta_int(&st, path, "image_cols", &c.image_cols) ||
        vae_checkpoint_meta_int(&st, path, "latent_dim", &c.latent_dim))
        goto out;
    const char *hidden = vae_safetensors_meta_get(&st, "hidden");
    const char *act = vae_safetensors_meta_get(&st, "activation");
    const char *beta = vae_safetensors_meta_get(&st, "beta");
    const char *lik = vae_safetensors_meta_get(&st, "likelihood");
    if (!hidden || !act || !beta || !lik) {
        vae_set_error("%s: not a cuvae model: metadata hidden/activation/beta/likelihood missing", path);
        goto out;
    }
    if (vae_likelihood_parse(lik, &c.likelihood)) {
        vae_set_error("%s: likelihood '%s' is not supported by this build", path, lik);
        goto out;
    }
    if (c.likelihood == VAE_LIKELIHOOD_GAUSSIAN) {
        const char *sigma = vae_safetensors_meta_get(&st, "sigma");
        char *send;
        c.sigma = sigma ? strtof(sigma, &send) : 0.0f;
        if (!sigma || send == sigma || *send) {
            vae_set_error("%s: a Gaussian likelihood needs metadata sigma (a number), found '%s'", path,
                          sigma ? sigma : "nothing");
            goto out;
        }
    }
    if (vae_variant_read_meta(&st, path, &c))
        goto out;
    if (hidden[0] == '\0') {
        c.n_hidden = 0;
    } else if (vae_config_parse_hidden(hidden, &c)) {
        vae_set_error("%s: metadata hidden = '%.60s' is not a list of layer sizes (1..65536, at most %d, like 400 "
                      "or 512,256)", path, hidden, VAE_MAX_HIDDEN);
        goto out;
    }
    if (vae_act_parse(act, &c.act))
        goto prefix;
    char *end;
    c.beta = strtof(beta, &end);
    if (end == beta || *end) {
        vae_set_error("%s: metadata beta = '%s' is not a number", path, beta);
        goto out;
    }
    if (check_meta_values(path, &st, &c))
        goto out;
    /* The file is checked against itself before anything is allocated for it: the
     * metadata's model must be exactly the tensors present, so a small file cannot
     * ask for a large model. */
    vae_model want;
    if (vae_model_layout(&want, &c))
        goto prefix;
    saved_tensor t[2 * VAE_MAX_LINEAR * VAE_MAX_PARTS];
    int nt = list_tensors(&want, t);
    if (check_tensors(path, &st, &want, t, nt) || check_agrees(path, &st, &want))
        goto out;
    if (vae_model_init(m, &c, be, batch_cap))
        goto prefix;
    float *host = vae_calloc(m->n_params, sizeof(float));
    for (int i = 0; i < nt; i++) {
        memcpy(host + t[i].off, vae_safetensors_find(&st, t[i].name)->data, tensor_count(&t[i]) * sizeof(float));
        size_t n = tensor_count(&t[i]), bad = vae_first_non_finite(host + t[i].off, n);
        if (bad < n) {
            vae_set_error("%s: tensor '%s' holds %s at element %zu: the model diverged in training "
                          "(or the file is damaged) and cannot be used",
                          path, t[i].name, vae_non_finite_name(host[t[i].off + bad]), bad);
            vae_free(host);
            vae_model_free(m);
            goto out;
        }
    }
    be->upload(be, m->params, host, m->n_params * sizeof(float));
    vae_free(host);
    rc = 0;
    goto out;

prefix: {
        char why[512];
        snprintf(why, sizeof why, "%s", vae_last_error());
        vae_set_error("%s: %s", path, why);
        goto out;
    }
out:
    vae_safetensors_free(&st);
    return rc;
}
