/*
 * test_plot.c: the SVG plot writer: nice ticks on hand cases, XML escaping,
 * well-formed output (parsed back by python3's xml.etree) holding the title,
 * axis labels and legend entries, NaN/inf and empty series, histograms,
 * stacked panels, and byte-identical output for identical calls.
 */
#define _GNU_SOURCE
#include "plot.h"
#include "testutil.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static void expect_ticks(double lo, double hi, int target, double want_step, const double *want, int n_want)
{
    double t[64], step = 0;
    int n = vae_plot_nice_ticks(lo, hi, target, t, 64, &step);
    cr_expect(fabs(step - want_step) <= 1e-12 * want_step, "[%g, %g]: step %g, expected %g", lo, hi, step, want_step);
    cr_assert_eq(n, n_want, "[%g, %g]: %d ticks, expected %d", lo, hi, n, n_want);
    for (int i = 0; i < n; i++)
        cr_expect(fabs(t[i] - want[i]) <= 1e-9 * want_step, "[%g, %g] tick %d: %.17g, expected %g", lo, hi, i, t[i],
                  want[i]);
}

Test(plot, nice_ticks_hand_cases)
{
    expect_ticks(0, 1, 5, 0.2, (double[]){0, 0.2, 0.4, 0.6, 0.8, 1}, 6);
    expect_ticks(0, 10, 5, 2, (double[]){0, 2, 4, 6, 8, 10}, 6);
    expect_ticks(-3.7, 12.2, 6, 2, (double[]){-4, -2, 0, 2, 4, 6, 8, 10, 12, 14}, 10);
    expect_ticks(183.5, 243.4, 6, 10, (double[]){180, 190, 200, 210, 220, 230, 240, 250}, 8);
    expect_ticks(0.00123, 0.00187, 4, 0.0002, (double[]){0.0012, 0.0014, 0.0016, 0.0018, 0.002}, 5);
    /* a single value is widened by a tenth of itself: [4.5, 5.5], steps of 0.2 */
    expect_ticks(5, 5, 6, 0.2, (double[]){4.4, 4.6, 4.8, 5.0, 5.2, 5.4, 5.6}, 7);
    expect_ticks(0, 0, 2, 1, (double[]){-1, 0, 1}, 3);
    /* reversed bounds are the same range */
    expect_ticks(10, 0, 5, 2, (double[]){0, 2, 4, 6, 8, 10}, 6);
    double t[8];
    cr_expect_eq(vae_plot_nice_ticks(NAN, 1, 5, t, 8, NULL), 0);
    cr_expect_eq(vae_plot_nice_ticks(0, INFINITY, 5, t, 8, NULL), 0);
    cr_expect_eq(vae_plot_nice_ticks(0, 1000, 1000, t, 8, NULL), 8, "at most max ticks are written");
}

Test(plot, escape_for_xml)
{
    char *e = vae_plot_escape("a<b & \"c\" 'd' > e\x01");
    cr_expect_str_eq(e, "a&lt;b &amp; &quot;c&quot; &apos;d&apos; &gt; e ");
    vae_free(e);
    e = vae_plot_escape(NULL);
    cr_expect_str_eq(e, "");
    vae_free(e);
}

Test(plot, colors_are_ten_distinct)
{
    for (int i = 0; i < VAE_PLOT_N_COLORS; i++)
        for (int j = 0; j < i; j++)
            cr_expect_str_neq(vae_plot_color(i), vae_plot_color(j));
    cr_expect_str_eq(vae_plot_color(13), vae_plot_color(3));
    cr_expect_str_eq(vae_plot_color(-1), vae_plot_color(9));
}

/* Write svg to a file and parse it with python3's xml.etree; skips visibly without python3. */
static void expect_well_formed(const char *svg, size_t len)
{
    char out[4096];
    if (tu_run("python3 -c 'import xml.etree.ElementTree'", out, sizeof out) != 0)
        cr_skip_test("python3 with xml.etree is not available: %s", out);
    char path[1024], cmd[2048];
    snprintf(path, sizeof path, "%s/plot.svg", tu_tmpdir());
    tu_write_file(path, svg, len);
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); "
             "assert r.tag == \"{http://www.w3.org/2000/svg}svg\", r.tag' %s",
             path);
    int rc = tu_run(cmd, out, sizeof out);
    cr_expect_eq(rc, 0, "the SVG is not well-formed XML: %s\n%s", out, svg);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

Test(plot, lines_scatter_and_legend_well_formed)
{
    double x[5] = {1, 2, 3, 4, 5}, y1[5] = {10, 8, 7, 6.5, 6.2}, y2[5] = {11, 9, NAN, 7, INFINITY};
    vae_plot *p = vae_plot_new("Loss & <gain>", "epoch", "nats \"per\" image");
    vae_plot_line(p, "train", x, y1, 5, 0);
    vae_plot_line(p, "test's", x, y2, 5, 1);
    int cls[4] = {0, 1, 2, 11};
    double sx[4] = {0, 1, -1, 0.5}, sy[4] = {0, 1, -1, NAN};
    const char *names[3] = {"zero", "one", "two"};
    vae_plot_scatter(p, sx, sy, cls, 4, names, 3);
    size_t len;
    char *svg = vae_plot_svg(p, &len);
    cr_assert_eq(strlen(svg), len);
    cr_expect(strstr(svg, "Loss &amp; &lt;gain&gt;"), "title missing:\n%s", svg);
    cr_expect(strstr(svg, ">epoch</text>"), "x label missing");
    cr_expect(strstr(svg, ">nats &quot;per&quot; image</text>"), "y label missing");
    cr_expect(strstr(svg, ">train</text>") && strstr(svg, ">test&apos;s</text>"), "line legend missing");
    cr_expect(strstr(svg, ">zero</text>") && strstr(svg, ">one</text>") && strstr(svg, ">two</text>"),
              "class legend missing");
    cr_expect(!strstr(svg, "nan") && !strstr(svg, "inf"), "a non-finite number reached the SVG");
    /* y2 breaks at its NaN into two polylines (the inf ends the second); y1 is one */
    cr_expect_eq(count(svg, "<polyline"), 3);
    /* 3 finite scatter points, point 3 in class 11 = colour 1 */
    cr_expect_eq(count(svg, "r=\"2.5\""), 3);
    /* the y axis covers -1..11 (lines and points) with steps of 2: labels -2 .. 12, no decimals */
    cr_expect(strstr(svg, ">12</text>") && strstr(svg, ">-2</text>") && !strstr(svg, ">12.0</text>"),
              "y tick labels missing:\n%s", svg);
    expect_well_formed(svg, len);
    vae_free(svg);
    vae_plot_free(p);
}

Test(plot, empty_and_non_finite_plots_still_draw_axes)
{
    vae_plot *p = vae_plot_new(NULL, NULL, NULL);
    size_t len;
    char *svg = vae_plot_svg(p, &len);
    cr_expect(strstr(svg, "<svg") && strstr(svg, "</svg>"));
    cr_expect(strstr(svg, ">0.0</text>") || strstr(svg, ">0</text>"), "axes without data have no ticks:\n%s", svg);
    expect_well_formed(svg, len);
    vae_free(svg);
    vae_plot_free(p);

    double nan_only[3] = {NAN, INFINITY, -INFINITY}, huge[2] = {-1e308, 1e308};
    p = vae_plot_new("non-finite", "x", "y");
    vae_plot_line(p, "none", nan_only, nan_only, 3, 0);
    vae_plot_line(p, "empty", NULL, NULL, 0, 1);
    vae_plot_scatter(p, NULL, NULL, NULL, 0, NULL, 0);
    vae_plot_histogram(p, "no values", nan_only, 3, 10, 0, 0, 2);
    vae_plot_line(p, "huge", huge, huge, 2, 3);
    svg = vae_plot_svg(p, &len);
    cr_expect(!strstr(svg, "nan") && !strstr(svg, "inf"), "a non-finite number reached the SVG:\n%s", svg);
    cr_expect(strstr(svg, ">none</text>") && strstr(svg, ">empty</text>"), "legend entries of empty series");
    expect_well_formed(svg, len);
    vae_free(svg);
    vae_plot_free(p);
}

Test(plot, histogram_counts_equal_bins)
{
    double v[8] = {0, 0.5, 1.2, 2.1, 2.5, 2.9, NAN, 7};
    vae_plot *p = vae_plot_new("h", "value", "count");
    vae_plot_histogram(p, "values", v, 8, 3, 0, 3, 4); /* bins [0,1) 2, [1,2) 1, [2,3] 3; NaN and 7 not counted */
    size_t len;
    char *svg = vae_plot_svg(p, &len);
    /* three bars and the legend's swatch */
    cr_expect_eq(count(svg, "fill-opacity=\"0.35\""), 4, "%s", svg);
    /* the y axis reaches the largest count, 3, with ticks at whole numbers */
    cr_expect(strstr(svg, ">3.0</text>") || strstr(svg, ">3</text>"), "%s", svg);
    expect_well_formed(svg, len);
    vae_free(svg);
    vae_plot_free(p);
}

Test(plot, stacked_panels_and_deterministic_bytes)
{
    double x[3] = {1, 2, 3}, y[3] = {3, 1, 2}, y0[3] = {30, 10, 20};
    size_t la, lb;
    char *a[2];
    for (int rep = 0; rep < 2; rep++) {
        vae_plot *p[2] = {vae_plot_new("first", "epoch", "a"), vae_plot_new("second", "epoch", "b")};
        vae_plot_x_integer(p[0]);
        vae_plot_line(p[0], "s", x, y0, 3, 0);
        vae_plot_line(p[1], "s", x, y, 3, 0);
        a[rep] = vae_plot_svg_stack((const vae_plot *const *)p, 2, rep ? &lb : &la);
        vae_plot_free(p[0]);
        vae_plot_free(p[1]);
    }
    cr_assert_eq(la, lb);
    cr_expect(memcmp(a[0], a[1], la) == 0, "two identical plots gave different bytes");
    cr_expect(strstr(a[0], "height=\"920\""), "two panels of 460 stacked");
    cr_expect_eq(count(a[0], "translate(0 "), 2);
    cr_expect(strstr(a[0], ">first</text>") && strstr(a[0], ">second</text>"));
    /* whole-number epoch ticks in the first panel: 1, 2, 3 and no 1.5 */
    const char *second = strstr(a[0], "translate(0 460)");
    cr_assert_not_null(second);
    cr_expect(!memmem(a[0], (size_t)(second - a[0]), ">1.5</text>", 11), "fractional epoch tick");
    cr_expect(strstr(second, ">1.5</text>") || strstr(second, ">2.5</text>"),
              "the second panel keeps fractional ticks");
    expect_well_formed(a[0], la);
    vae_free(a[0]);
    vae_free(a[1]);
}

Test(plot, write_is_atomic_file)
{
    vae_plot *p = vae_plot_new("t", "x", "y");
    const char *dir = tu_tmpdir();
    cr_assert_eq(vae_plot_write(p, dir, "p.svg"), 0, "%s", vae_last_error());
    char path[1024];
    snprintf(path, sizeof path, "%s/p.svg", dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char head[6] = {0};
    cr_expect_eq(fread(head, 1, 5, f), 5u);
    cr_expect_str_eq(head, "<?xml");
    fclose(f);
    cr_expect_eq(vae_plot_write(p, "/nonexistent/dir", "p.svg"), -1);
    cr_expect(strstr(vae_last_error(), "/nonexistent/dir/p.svg"), "%s", vae_last_error());
    vae_plot_free(p);
}
