/*
 * variants.c: the registry of the model family: the one list of variants, and what the rest
 * of the code asks of a configuration's variant through it (see variant.h). Adding a variant
 * is its file (src/compose_<name>.c, exporting vae_variant_<name>) and one line of VARIANTS.
 *
 * Not here: any variant's own composition, settings or metrics (its file).
 */
#include "variant.h"

#include "vae_util.h"

#include <string.h>

/* The registry, one line per variant; the first is the default and the variant of a model file
 * that names none (files written before the family existed). */
#define VARIANTS(X) \
    X(vae)          \
    X(cvae)         \
    X(joint)        \
    X(ae)

#define DECLARE(id) extern const vae_variant vae_variant_##id;
VARIANTS(DECLARE)
#undef DECLARE

#define ENTRY(id) &vae_variant_##id,
static const vae_variant *const variants[] = {VARIANTS(ENTRY)};
#undef ENTRY

#define N_VARIANTS ((int)(sizeof variants / sizeof variants[0]))

const vae_variant *vae_variant_of(const vae_config *c)
{
    return c->variant ? c->variant : variants[0];
}

const vae_variant *vae_variant_find(const char *name)
{
    for (int i = 0; i < N_VARIANTS; i++)
        if (strcmp(variants[i]->name, name) == 0)
            return variants[i];
    return NULL;
}

int vae_variant_count(void)
{
    return N_VARIANTS;
}

const vae_variant *vae_variant_at(int i)
{
    if (i < 0 || i >= N_VARIANTS)
        vae_fatal("variant %d of %d", i, N_VARIANTS);
    return variants[i];
}

/* "vae, cvae or joint": the names of the variants that `keep` accepts (all when NULL), the
 * last two joined by `conj`. */
static void names_text(char *buf, size_t cap, const char *conj, int (*keep)(const vae_variant *))
{
    const vae_variant *kept[N_VARIANTS];
    int n = 0;
    for (int i = 0; i < N_VARIANTS; i++)
        if (!keep || keep(variants[i]))
            kept[n++] = variants[i];
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", i == 0 ? "" : i == n - 1 ? conj : ", ",
                 kept[i]->name);
}

int vae_variant_parse(const char *s, const vae_variant **out)
{
    const vae_variant *v = vae_variant_find(s);
    if (!v) {
        char names[256];
        names_text(names, sizeof names, " or ", NULL);
        return vae_set_error("invalid --model '%s' (expected %s)", s, names);
    }
    *out = v;
    return 0;
}

const char *vae_variant_help(void)
{
    static char help[4096];
    if (help[0])
        return help;
    size_t width = 0, w = 0;
    for (int i = 0; i < N_VARIANTS; i++)
        if (strlen(variants[i]->name) > width)
            width = strlen(variants[i]->name);
    w += snprintf(help + w, sizeof help - w, "  --model KIND        the member of the model family (default %s):\n",
                  variants[0]->name);
    for (int i = 0; i < N_VARIANTS; i++) {
        const char *line = variants[i]->help;
        for (int first = 1; *line; first = 0) { /* "name  line", then the lines under the first */
            const char *end = strchr(line, '\n');
            const int len = end ? (int)(end - line) : (int)strlen(line);
            w += snprintf(help + w, sizeof help - w, "%24s%-*s  %.*s\n", "", (int)width, first ? variants[i]->name : "",
                          len, line);
            line += end ? len + 1 : len;
        }
    }
    for (int i = 0; i < N_VARIANTS; i++)
        if (variants[i]->flags_help)
            w += snprintf(help + w, sizeof help - w, "%s", variants[i]->flags_help);
    if (w >= sizeof help)
        vae_fatal("the variants' help exceeds %zu bytes", sizeof help);
    return help;
}

static int takes_capacities(const vae_variant *v)
{
    return v->capacities;
}

static int reads_labels(const vae_variant *v)
{
    return v->reads_labels;
}

int vae_variant_validate(const vae_config *c)
{
    const vae_variant *v = vae_variant_of(c);
    if (v->reads_labels && (c->classes < 2 || c->classes > 256))
        return vae_set_error("a %s needs 2..256 label classes, not %d", v->name, c->classes);
    if (!v->reads_labels && c->classes != 0)
        return vae_set_error("a %s model reads no label: classes must be 0, not %d", v->name, c->classes);
    if (c->condition != VAE_CONDITION_BOTH && !v->reads_labels) {
        char names[256];
        names_text(names, sizeof names, " or ", reads_labels);
        return vae_set_error("--condition %s: only for a model that reads the label (--model %s)",
                             vae_condition_name(c->condition), names);
    }
    if (v->validate && v->validate(c))
        return -1;
    const vae_capacity *caps[2] = {&c->cap_z, &c->cap_c};
    for (int i = 0; i < 2; i++)
        if (caps[i]->gamma != 0.0f && (!v->capacities || !(caps[i]->gamma > 0.0f) || !(caps[i]->max >= 0.0f) ||
                                       caps[i]->iters < 1)) {
            char names[256];
            names_text(names, sizeof names, " or ", takes_capacities);
            return vae_set_error("--capacity-%s: only for --model %s, as MAX,ITERS,GAMMA with MAX >= 0, ITERS >= 1, "
                                 "GAMMA > 0",
                                 i ? "c" : "z", names);
        }
    return 0;
}

void vae_variant_meta_int(vae_variant_meta *meta, const char *key, int value)
{
    if (meta->n == VAE_VARIANT_META_MAX)
        vae_fatal("model metadata: more than %d entries of the variant", VAE_VARIANT_META_MAX);
    snprintf(meta->text[meta->n], sizeof meta->text[meta->n], "%d", value);
    meta->entry[meta->n] = (vae_st_meta){key, meta->text[meta->n]};
    meta->n++;
}

void vae_variant_meta_text(vae_variant_meta *meta, const char *key, const char *text)
{
    if (meta->n == VAE_VARIANT_META_MAX || strlen(text) >= sizeof meta->text[0])
        vae_fatal("model metadata: more than %d entries of the variant, or '%s' too long", VAE_VARIANT_META_MAX, text);
    snprintf(meta->text[meta->n], sizeof meta->text[meta->n], "%s", text);
    meta->entry[meta->n] = (vae_st_meta){key, meta->text[meta->n]};
    meta->n++;
}

void vae_variant_save_meta(const vae_config *c, vae_variant_meta *meta)
{
    const vae_variant *v = vae_variant_of(c);
    meta->n = 0;
    if (v != variants[0])
        meta->entry[meta->n++] = (vae_st_meta){"model", v->name};
    if (v->save_meta)
        v->save_meta(c, meta);
}

int vae_variant_read_meta(const vae_safetensors *st, const char *path, vae_config *c)
{
    const char *name = vae_safetensors_meta_get(st, "model");
    const vae_variant *v = name ? vae_variant_find(name) : variants[0];
    if (!v) {
        char names[256];
        names_text(names, sizeof names, " and ", NULL);
        return vae_set_error("%s: model '%s' is not supported by this build (it knows %s)", path, name, names);
    }
    c->variant = v;
    return v->read_meta ? v->read_meta(st, path, c) : 0;
}

void vae_variant_summary(const vae_config *c, FILE *f)
{
    const vae_variant *v = vae_variant_of(c);
    if (v->summary)
        v->summary(c, f);
}

void vae_variant_describe(const vae_config *c, const vae_schedule *schedule, FILE *f)
{
    const vae_variant *v = vae_variant_of(c);
    if (v->describe)
        v->describe(c, schedule, f);
}

void vae_metrics_extra_add(vae_metrics_extra *x, const char *name, double value)
{
    if (x->n == VAE_METRICS_EXTRA_MAX)
        vae_fatal("metrics: more than %d extra columns", VAE_METRICS_EXTRA_MAX);
    x->name[x->n] = name;
    x->value[x->n++] = value;
}

void vae_variant_metrics_extras(vae_model *m, const vae_trainer *t, vae_device_data *test_dev,
                                const vae_dataset *test, vae_metrics_extra *x)
{
    const vae_variant *v = vae_variant_of(&m->cfg);
    x->n = 0;
    if (v->metrics_extras)
        v->metrics_extras(m, t, test_dev, test, x);
}

void vae_variant_advise(const vae_model *m, const vae_losses *test, const vae_metrics_extra *x, FILE *f)
{
    const vae_variant *v = vae_variant_of(&m->cfg);
    if (v->advise)
        v->advise(m, test, x, f);
}

int vae_variant_pictures(vae_model *m, const char *dir, uint64_t seed, int scale)
{
    const vae_variant *v = vae_variant_of(&m->cfg);
    return v->pictures ? v->pictures(m, dir, seed, scale) : 0;
}
