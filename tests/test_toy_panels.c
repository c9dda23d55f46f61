/*
 * test_toy_panels.c: the 1-D toy watched while it trains: the schedule of its snapshots
 * (--snapshot-every N, auto: dense early, off), the snapshot files (one per scheduled step and
 * the last, each with the encoding, decoding and generation panels of the model at that step),
 * the report's sequence of them, the decoding panel's curve and the generation panel's distance
 * (the recorded one), `cuvae plot` drawing a saved toy model's panels again (the same bytes),
 * --force removing the snapshots, and the flag's bad values.
 */
#include "testutil.h"
#include "toy.h"
#include "toy_pictures.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char out[1 << 16];
#define cuvae(...) tu_cuvae(out, sizeof out, __VA_ARGS__)

/* A small toy run: 400 training values at batch 20 (20 steps per epoch), a 16-16 network. */
#define TOY "--data toy --toy-n 400,100 --batch-size 20 --hidden 16,16 --device cpu --threads 1 --quiet --seed 5"

Test(toy_panels, snapshot_schedule_is_dense_early_every_n_or_off)
{
    static const long auto_steps[] = {0, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000};
    int k = 0;
    for (long s = 0; s <= 40000; s++)
        if (vae_toy_snapshot_due(0, s)) {
            cr_assert_lt(k, 12, "step %ld is due beyond the 12 expected", s);
            cr_expect_eq(s, auto_steps[k], "auto snapshot %d at step %ld, expected %ld", k, s, auto_steps[k]);
            k++;
        }
    cr_expect_eq(k, 12);
    for (long s = 0; s <= 100; s++) {
        cr_expect_eq(vae_toy_snapshot_due(25, s), s % 25 == 0, "every 25 at step %ld", s);
        cr_expect_eq(vae_toy_snapshot_due(-1, s), 0, "off at step %ld", s);
    }
}

/* The snapshot files in dir, in name order (their steps), into steps; returns how many. */
static int snapshots_in(const char *dir, long *steps, int cap)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    const size_t plen = strlen(VAE_TOY_SNAPSHOT_PREFIX);
    while ((e = readdir(d)))
        if (strncmp(e->d_name, VAE_TOY_SNAPSHOT_PREFIX, plen) == 0 && n < cap)
            steps[n++] = strtol(e->d_name + plen, NULL, 10);
    closedir(d);
    for (int i = 0; i < n; i++) /* sort */
        for (int j = i + 1; j < n; j++)
            if (steps[j] < steps[i]) {
                long t = steps[i];
                steps[i] = steps[j];
                steps[j] = t;
            }
    return n;
}

/* The number printed after `what` in the text, or NAN. */
static double number_after(const char *text, const char *what)
{
    const char *p = text ? strstr(text, what) : NULL;
    return p ? strtod(p + strlen(what), NULL) : NAN;
}

Test(toy_panels, a_run_keeps_its_snapshots_and_the_report_shows_them_in_order)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/run", tu_tmpdir());
    /* 3 epochs of 20 steps: auto draws steps 0, 10, 20, 50 and the last, 60 */
    cr_assert_eq(cuvae("train " TOY " --epochs 3 --out %s", dir), 0, "%s", out);
    long steps[32];
    int n = snapshots_in(dir, steps, 32);
    static const long want[] = {0, 10, 20, 50, 60};
    cr_assert_eq(n, 5, "%d snapshots", n);
    for (int i = 0; i < n; i++)
        cr_expect_eq(steps[i], want[i], "snapshot %d is of step %ld", i, steps[i]);
    /* each has the three panels, titled with its step and epoch */
    for (int i = 0; i < n; i++) {
        char name[64], title[96];
        vae_toy_snapshot_name(steps[i], name, sizeof name);
        char *svg = tu_slurp_in(dir, name, NULL);
        cr_assert_not_null(svg, "%s", name);
        static const char *const panels[] = {"Encoding", "Decoding", "Generation"};
        for (int k = 0; k < 3; k++) {
            snprintf(title, sizeof title, "%s after %ld steps (epoch %.2f)", panels[k], steps[i], steps[i] / 20.0);
            cr_expect(strstr(svg, title), "%s has no panel '%s'", name, title);
        }
        cr_expect(strstr(svg, "Reconstructions f(z), z ~ q(z|x), of 100 test rows"), "%s: no reconstructions", name);
        cr_expect(strstr(svg, "The generating z ~ N(0, 1)"), "%s: no hist(z) of the generation", name);
        free(svg);
    }
    /* the model changes between snapshots: the decoder's curve at step 0 is not the one at 60 */
    char *first = tu_slurp_in(dir, VAE_TOY_SNAPSHOT_PREFIX "00000000.svg", NULL),
         *last = tu_slurp_in(dir, VAE_TOY_SNAPSHOT_PREFIX "00000060.svg", NULL);
    cr_assert(first && last);
    cr_expect(strcmp(first, last) != 0);
    free(first);
    free(last);
    /* the report shows them as a sequence, in step order, after the pictures */
    char path[600];
    snprintf(path, sizeof path, "%s/report.html", dir);
    char *html = tu_slurp(path, NULL);
    cr_assert_not_null(html);
    const char *seq = strstr(html, "<h2>While it trained</h2>");
    cr_assert_not_null(seq, "the report has no snapshot sequence");
    cr_expect(strstr(html, "5 snapshots of the encoding, decoding and generation panels"));
    const char *at = seq;
    for (int i = 0; i < n; i++) {
        char img[96];
        snprintf(img, sizeof img, "<img src=\"" VAE_TOY_SNAPSHOT_PREFIX "%08ld.svg\"", steps[i]);
        const char *p = strstr(at, img);
        cr_expect(p, "snapshot %ld missing or out of order in the sequence", steps[i]);
        if (p)
            at = p;
    }
    const char *pics = strstr(html, "<h2>Pictures</h2>");
    cr_assert_not_null(pics);
    cr_expect(strstr(pics, "<img src=\"" VAE_TOY_SNAPSHOT_PREFIX) >= seq,
              "a snapshot is among the pictures as well as in the sequence");
    cr_expect(strstr(html, "toy_decoded.svg</b>: Toy decoding"), "the decoding panel is not in the report");
    free(html);
    /* --snapshot-every 25: 0, 25, 50 and the last; off: none */
    char other[512];
    snprintf(other, sizeof other, "%s/every", tu_tmpdir());
    cr_assert_eq(cuvae("train " TOY " --epochs 3 --snapshot-every 25 --out %s", other), 0, "%s", out);
    n = snapshots_in(other, steps, 32);
    cr_expect(n == 4 && steps[0] == 0 && steps[1] == 25 && steps[2] == 50 && steps[3] == 60, "%d snapshots", n);
    /* --force replaces the run: its snapshots go with it */
    cr_assert_eq(cuvae("train " TOY " --epochs 1 --snapshot-every off --force --out %s", other), 0, "%s", out);
    cr_expect_eq(snapshots_in(other, steps, 32), 0, "--force left snapshots, or off drew some");
}

Test(toy_panels, the_panels_carry_the_recorded_distance_and_plot_draws_them_again)
{
    char dir[512], again[600];
    snprintf(dir, sizeof dir, "%s/run", tu_tmpdir());
    cr_assert_eq(cuvae("train " TOY " --epochs 2 --snapshot-every off --out %s", dir), 0, "%s", out);
    /* the generation panel's distance is the one the run printed and recorded in the model */
    char *gen = tu_slurp_in(dir, "toy_generated.svg", NULL);
    cr_assert_not_null(gen);
    const double drawn = number_after(gen, "Generated data: total variation ");
    const double printed = number_after(out, "toy: total variation distance ");
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    char *rec = tu_st_meta(path, "train.toy_tv");
    const double recorded = strtod(rec, NULL);
    free(rec);
    cr_expect(isfinite(drawn) && fabs(drawn - recorded) <= 5e-5, "drawn %.4f, recorded %.6f", drawn, recorded);
    cr_expect(fabs(printed - recorded) <= 5e-5, "printed %.4f, recorded %.6f", printed, recorded);
    cr_expect(strstr(gen, "Generation: (x, z), z ~ N(0, 1), x = f(z) + sigma eps"), "no (x, z) scatter");
    cr_expect(strstr(gen, "The generating z ~ N(0, 1)"), "no hist(z)");
    /* the decoding panel: the decoder's mean curve, 241 points over z in [-3, 3], and the reconstructions */
    char *dec = tu_slurp_in(dir, "toy_decoded.svg", NULL);
    cr_assert_not_null(dec);
    const char *curve = strstr(dec, "the decoder&apos;s mean x = f(z)");
    cr_assert_not_null(curve);
    const char *pl = strstr(curve, "points=\"");
    cr_assert_not_null(pl);
    int pts = 0;
    for (const char *c = pl + 8; *c && *c != '"'; c++)
        pts += *c == ',';
    cr_expect_eq(pts, 241, "the decoder's curve has %d points", pts);
    cr_expect(strstr(dec, "Reconstructions f(z), z ~ q(z|x), of 100 test rows, and the true density"));
    /* cuvae plot on the saved model: the same four panels, byte for byte, and its loss curves */
    snprintf(again, sizeof again, "%s/again", tu_tmpdir());
    cr_assert_eq(cuvae("plot --model %s --out %s --device cpu --threads 1", path, again), 0, "%s", out);
    cr_expect(strstr(out, "wrote 5 pictures"), "%s", out);
    for (int k = 0; k < VAE_TOY_N_PICTURES; k++) {
        size_t na, nb;
        char *a = tu_slurp_in(dir, vae_toy_pictures[k], &na), *b = tu_slurp_in(again, vae_toy_pictures[k], &nb);
        cr_assert(a && b, "%s", vae_toy_pictures[k]);
        cr_expect(na == nb && memcmp(a, b, na) == 0, "plot's %s differs from the run's", vae_toy_pictures[k]);
        free(a);
        free(b);
    }
    cr_expect(tu_exists_in(again, "loss_curves.svg"));
    free(gen);
    free(dec);
}

Test(toy_panels, bad_snapshot_every_values_are_refused_naming_the_flag)
{
    static const char *const bad[] = {"0", "-3", "x", "2.5", "sometimes"};
    char dir[512];
    snprintf(dir, sizeof dir, "%s/never", tu_tmpdir());
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(cuvae("train " TOY " --snapshot-every %s --out %s", bad[i], dir), 2, "%s: %s", bad[i], out);
        cr_expect(strstr(out, "--snapshot-every"), "%s: %s", bad[i], out);
        cr_expect(!tu_exists(dir));
    }
    /* a toy flag: refused with another source */
    cr_expect_eq(cuvae("train --data %s/nowhere --snapshot-every 5 --out %s", tu_tmpdir(), dir), 2, "%s", out);
    cr_expect(strstr(out, "--snapshot-every: only with --data toy"), "%s", out);
}
