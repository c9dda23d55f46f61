/*
 * test_variants.c: every entry of the variant registry (variant.h) checked from its description
 * alone, so a new variant is tested by being listed: its name finds it, its help is listed, a
 * small configuration of it validates and composes, what it says of itself agrees with the
 * parts it composes (labels, capacities, one code latent), settings it does not take are
 * refused, and its model file names it and loads back as the same variant with the same
 * parameters. The numbers of each variant are tested in their own files (test_model, test_cvae).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "checkpoint.h"
#include "testutil.h"
#include "vae_util.h"
#include "variant.h"

TestSuite(variants);

/* A small valid configuration of variant v. */
static vae_config small_config_of(const vae_variant *v)
{
    vae_config c = tu_small_config();
    c.variant = v;
    c.classes = v->reads_labels ? 3 : 0;
    return c;
}

Test(variants, each_is_found_by_its_name_and_listed_in_the_help)
{
    cr_assert_gt(vae_variant_count(), 0);
    cr_expect_eq(vae_variant_of(&(vae_config){0}), vae_variant_at(0), "a configuration without one: the first");
    const char *help = vae_variant_help();
    for (int i = 0; i < vae_variant_count(); i++) {
        const vae_variant *v = vae_variant_at(i);
        cr_assert(v->name && v->name[0] && v->title && v->title[0] && v->compose, "variant %d", i);
        cr_expect_eq(vae_variant_find(v->name), v, "%s", v->name);
        const vae_variant *parsed = NULL;
        cr_expect_eq(vae_variant_parse(v->name, &parsed), 0, "%s", vae_last_error());
        cr_expect_eq(parsed, v);
        cr_expect(v->help && v->help[0] && v->help[strlen(v->help) - 1] == '\n', "%s: help lines end in newlines",
                  v->name);
        char entry[64];
        snprintf(entry, sizeof entry, " %s  ", v->name);
        cr_expect(strstr(help, entry), "%s is not in the help:\n%s", v->name, help);
    }
    const vae_variant *parsed = NULL;
    cr_expect_eq(vae_variant_parse("no-such-model", &parsed), -1);
    cr_expect(strstr(vae_last_error(), vae_variant_at(0)->name), "%s", vae_last_error());
}

/* What a description says of itself is what its composition does. */
Test(variants, descriptions_agree_with_their_compositions)
{
    for (int i = 0; i < vae_variant_count(); i++) {
        const vae_variant *v = vae_variant_at(i);
        vae_config c = small_config_of(v);
        cr_assert_eq(vae_config_validate(&c), 0, "%s: %s", v->name, vae_last_error());
        vae_model m;
        cr_assert_eq(vae_model_layout(&m, &c), 0, "%s: %s", v->name, vae_last_error());
        cr_expect_eq(vae_model_reads_label(&m), v->reads_labels, "%s: reads_labels", v->name);
        int codes = 0;
        for (int k = 0; k < m.n_latents; k++)
            codes += m.latent[k].kind == VAE_LATENT_GAUSSIAN || m.latent[k].kind == VAE_LATENT_DETERMINISTIC;
        cr_expect_eq(codes, 1, "%s: evaluation, pictures and encode read one Gaussian or deterministic latent",
                     v->name);
        const int code = vae_model_code(&m);
        cr_expect_eq(vae_model_has_prior(&m), m.latent[code].kind == VAE_LATENT_GAUSSIAN, "%s", v->name);
        cr_expect_geq(m.output, 0, "%s: a likelihood term", v->name);

        /* a label where none is read, none where one is: refused */
        c.classes = v->reads_labels ? 0 : 3;
        cr_expect_eq(vae_config_validate(&c), -1, "%s: classes %d", v->name, c.classes);
        c = small_config_of(v);

        /* capacities: composed as capacity terms where taken, refused elsewhere */
        c.cap_z = (vae_capacity){.max = 5.0f, .iters = 10, .gamma = 30.0f};
        if (v->capacities) {
            cr_assert_eq(vae_model_layout(&m, &c), 0, "%s: %s", v->name, vae_last_error());
            int capacity_terms = 0;
            for (int t = 0; t < m.n_terms; t++)
                capacity_terms += m.term[t].capacity >= 0;
            cr_expect_gt(capacity_terms, 0, "%s: takes capacities but composes no capacity term", v->name);
        } else {
            cr_expect_eq(vae_config_validate(&c), -1, "%s: a capacity it does not take", v->name);
            cr_expect(strstr(vae_last_error(), "--capacity-z: only for --model"), "%s", vae_last_error());
        }
    }
}

/* Defaults are valid settings of the variant; the header's extra columns are named. */
Test(variants, defaults_and_metrics_columns_are_well_formed)
{
    for (int i = 0; i < vae_variant_count(); i++) {
        const vae_variant *v = vae_variant_at(i);
        vae_config c = small_config_of(v);
        if (v->defaults) {
            const vae_variant_defaults *d = v->defaults;
            cr_expect(d->n_hidden >= 0 && d->n_hidden <= VAE_MAX_HIDDEN && d->latent_dim >= 0 && d->batch_size >= 0 &&
                          d->lr >= 0.0f,
                      "%s: defaults", v->name);
            if (d->n_hidden) {
                c.n_hidden = d->n_hidden;
                memcpy(c.hidden, d->hidden, sizeof d->hidden);
            }
            if (d->latent_dim)
                c.latent_dim = d->latent_dim;
            cr_expect_eq(vae_config_validate(&c), 0, "%s: %s", v->name, vae_last_error());
        }
        vae_model m;
        cr_assert_eq(vae_model_layout(&m, &c), 0, "%s: %s", v->name, vae_last_error());
        vae_metrics_extra x;
        vae_variant_metrics_extras(&m, NULL, NULL, NULL, &x);
        for (int k = 0; k < x.n; k++) {
            cr_expect(x.name[k] && x.name[k][0] && !strchr(x.name[k], ','), "%s: column %d", v->name, k);
            cr_expect(isnan(x.value[k]), "%s: %s has a value without a trainer", v->name, x.name[k]);
        }
        cr_expect_eq(!v->pictures, !v->picture_files, "%s: pictures and their file names go together", v->name);
    }
}

/* A model file says which variant it is ("model", absent for the first) and loads back as it. */
Test(variants, model_files_load_back_as_the_same_variant)
{
    vae_backend *be = vae_backend_cpu_init();
    for (int i = 0; i < vae_variant_count(); i++) {
        const vae_variant *v = vae_variant_at(i);
        vae_config c = small_config_of(v);
        vae_model a, b;
        cr_assert_eq(vae_model_init(&a, &c, be, 2), 0, "%s: %s", v->name, vae_last_error());
        vae_model_init_params(&a, 3 + (uint64_t)i);
        char path[600];
        snprintf(path, sizeof path, "%s/%s.safetensors", tu_tmpdir(), v->name);
        cr_assert_eq(vae_checkpoint_save(&a, path, NULL, 0), 0, "%s: %s", v->name, vae_last_error());
        vae_safetensors st;
        cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
        const char *named = vae_safetensors_meta_get(&st, "model");
        if (i == 0)
            cr_expect_null(named, "%s: files of the first variant name none", v->name);
        else
            cr_expect(named && strcmp(named, v->name) == 0, "%s: metadata model = %s", v->name, named ? named : "");
        vae_safetensors_free(&st);
        cr_assert_eq(vae_checkpoint_load(path, be, 2, &b), 0, "%s: %s", v->name, vae_last_error());
        cr_expect_eq(vae_variant_of(&b.cfg), v, "%s", v->name);
        cr_expect_eq(b.cfg.classes, a.cfg.classes, "%s", v->name);
        cr_expect_eq(b.cfg.disc, a.cfg.disc, "%s", v->name);
        cr_assert_eq(b.n_params, a.n_params, "%s", v->name);
        cr_expect(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0, "%s", v->name);
        vae_model_free(&a);
        vae_model_free(&b);
    }
    vae_backend_free(be);
}

/* The joint model's advice after training: a code that is unused (kl_c near 0) or that means
 * nothing (kl_c near log K, NMI near 0) is warned about, naming the flag that helps; a working
 * code, or a variant without advice, says nothing. */
static char *advice_of(const vae_model *m, double kl_c, double nmi)
{
    vae_losses test = vae_losses_nan(m);
    for (int t = 0; t < m->n_terms; t++)
        test.term[t] = m->term[t].latent == vae_model_categorical(m) && !vae_term_is_likelihood(m->term[t].op)
                           ? kl_c
                           : 50.0;
    vae_metrics_extra x = {0};
    vae_metrics_extra_add(&x, "nmi", nmi);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    vae_variant_advise(m, &test, &x, f);
    fclose(f);
    return text;
}

Test(variants, joint_warns_when_its_code_is_unused_or_means_nothing)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_config c = small_config_of(vae_variant_find("joint"));
    c.disc = 4;
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 8), 0, "%s", vae_last_error());
    char *unused = advice_of(&m, 0.003, 0.11), *meaningless = advice_of(&m, 1.38, 0.01),
         *working = advice_of(&m, 1.2, 0.4);
    cr_expect(strstr(unused, "warning: the categorical code is unused") && strstr(unused, "--capacity-c") &&
                  strstr(unused, "0.0030") && strstr(unused, "log K = 1.386"),
              "%s", unused);
    cr_expect(strstr(meaningless, "means nothing") && strstr(meaningless, "NMI with the test labels 0.010"), "%s",
              meaningless);
    cr_expect_str_eq(working, "");
    free(unused);
    free(meaningless);
    free(working);
    vae_model_free(&m);
    vae_config plain = small_config_of(vae_variant_find("vae"));
    cr_assert_eq(vae_model_init(&m, &plain, be, 8), 0, "%s", vae_last_error());
    char *none = advice_of(&m, 0.0, 0.0);
    cr_expect_str_eq(none, "", "the plain VAE advised: %s", none);
    free(none);
    vae_model_free(&m);
    vae_backend_free(be);
}
