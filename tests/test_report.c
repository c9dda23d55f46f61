/*
 * test_report.c: the run report and metrics.jsonl as a user meets them. A tiny
 * run trained through the cuvae program leaves metrics.jsonl (the rows of
 * metrics.csv, also after a resume) and report.html; the report is opened in
 * a real headless browser (Debian's chromium) with the network off, where a
 * checker script added to a copy of the page finds every image loaded and no
 * error, and a screenshot of the page is not blank. The checks are shown to
 * fail: a deleted picture makes the verdict name it, and a blank page's
 * screenshot fails the blankness check. `cuvae report DIR` writes the same
 * page again, escapes text for HTML, and shows pictures it does not know.
 *
 * Without chromium (or when it cannot start) the browser tests skip, saying
 * why; scripts/install_deps.sh installs it (role "browser" in
 * scripts/deps/debian.txt).
 */
#define _GNU_SOURCE
#include "image.h"
#include "safetensors.h"
#include "testutil.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char out[65536];
#define cuvae(...) tu_cuvae(out, sizeof out, __VA_ARGS__)




/* A small data set in dir/data; its path in data. */
static void write_data(const char *dir, char *data, size_t cap)
{
    snprintf(data, cap, "%s/data", dir);
    tu_write_stroke_idx(data, 240, 60, 12);
}

/* A tiny run trained through the program into dir/run (path in run). */
static void train_tiny(const char *dir, char *run, size_t cap, const char *extra)
{
    char data[4096];
    write_data(dir, data, sizeof data);
    snprintf(run, cap, "%s/run", dir);
    int rc = cuvae("train --data %s --out %s --epochs 2 --batch-size 32 --hidden 32 --latent 2 --device cpu "
                   "--quiet --samples 16 %s",
                   data, run, extra);
    cr_assert_eq(rc, 0, "train failed:\n%s", out);
}

/* ---- metrics.jsonl ------------------------------------------------------------------- */

/* metrics.jsonl of dir holds exactly metrics.csv's rows: same keys in order, same numbers. */
static void expect_jsonl_matches_csv(const char *dir, int rows)
{
    char *csv = tu_slurp_in(dir, "metrics.csv", NULL), *jsonl = tu_slurp_in(dir, "metrics.jsonl", NULL);
    cr_assert(csv && jsonl, "%s: metrics.csv or metrics.jsonl is missing", dir);
    char *save_c, *save_j;
    char *header = strtok_r(csv, "\n", &save_c);
    char names[32][64];
    int n_cols = 0;
    for (char *s = header, *tok, *sv; (tok = strtok_r(s, ",", &sv)); s = NULL)
        snprintf(names[n_cols++], sizeof names[0], "%s", tok);
    int n = 0;
    char *jline = strtok_r(jsonl, "\n", &save_j);
    for (char *line; (line = strtok_r(NULL, "\n", &save_c)); n++, jline = strtok_r(NULL, "\n", &save_j)) {
        cr_assert(jline != NULL, "metrics.jsonl has %d lines, metrics.csv more", n);
        json_error_t err;
        json_t *o = json_loads(jline, JSON_REJECT_DUPLICATES, &err);
        cr_assert(o && json_is_object(o), "metrics.jsonl line %d is not a JSON object: %s", n + 1, jline);
        cr_expect_eq((int)json_object_size(o), n_cols, "line %d: %s", n + 1, jline);
        const char *key;
        json_t *val;
        int j = 0;
        char *sv, *s = line;
        json_object_foreach(o, key, val)
        {
            char *cell = strtok_r(s, ",", &sv);
            s = NULL;
            cr_assert(cell != NULL, "line %d", n + 1);
            cr_expect_str_eq(key, names[j], "line %d: key %d is '%s', the CSV's column '%s'", n + 1, j, key,
                             names[j]);
            cr_expect(json_is_number(val), "line %d: %s is not a number", n + 1, key);
            if (j == 0)
                cr_expect(json_is_integer(val), "line %d: epoch is not an integer: %s", n + 1, jline);
            cr_expect_eq(json_number_value(val), strtod(cell, NULL), "line %d: %s is %.17g in JSON, %s in the CSV",
                         n + 1, key, json_number_value(val), cell);
            j++;
        }
        json_decref(o);
    }
    cr_expect_eq(n, rows, "metrics.csv has %d rows, expected %d", n, rows);
    cr_expect(jline == NULL, "metrics.jsonl has more lines than metrics.csv: %s", jline ? jline : "");
    free(csv);
    free(jsonl);
}

Test(report, metrics_jsonl_holds_the_csv_rows_also_after_a_resume)
{
    char run[4096];
    const char *dir = tu_tmpdir();
    train_tiny(dir, run, sizeof run, "--val-fraction 0.25");
    char *csv = tu_slurp_in(run, "metrics.csv", NULL);
    cr_assert(csv && strstr(csv, "val_loss"), "%s", csv ? csv : "no metrics.csv");
    free(csv);
    expect_jsonl_matches_csv(run, 2);
    cr_assert_eq(cuvae("train --resume %s --epochs 3 --quiet", run), 0, "%s", out);
    expect_jsonl_matches_csv(run, 3);
}

Test(report, jsonl_and_report_belong_to_the_run)
{
    /* a directory holding only metrics.jsonl or report.html holds a run: refused without --force */
    const char *names[] = {"metrics.jsonl", "report.html"};
    for (int i = 0; i < 2; i++) {
        char dir[4096], path[4200];
        snprintf(dir, sizeof dir, "%s", tu_tmpdir());
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        tu_write_file(path, "{}\n", 3);
        cr_expect_eq(cuvae("train --out %s --epochs 1 --device cpu --data /nonexistent", dir), 2, "%s:\n%s",
                     names[i], out);
        cr_expect(strstr(out, "holds a previous run"), "%s:\n%s", names[i], out);
    }
}

/* ---- report.html without a browser ------------------------------------------------------- */

Test(report, train_writes_it_and_report_writes_the_same_page_again)
{
    char run[4096];
    const char *dir = tu_tmpdir();
    train_tiny(dir, run, sizeof run, "");
    char *first = tu_slurp_in(run, "report.html", NULL);
    cr_assert(first != NULL, "train left no report.html");
    cr_expect(strstr(out, "report.html"), "train's last line does not name report.html:\n%s", out);
    /* the settings, the metrics, the pictures */
    cr_expect(strstr(first, "--latent 2"), "the command line is missing");
    cr_expect(strstr(first, "latent_dim"), "the model metadata is missing");
    cr_expect(strstr(first, "<img src=\"samples.png\""), "samples.png is missing");
    cr_expect(strstr(first, "<img src=\"reconstructions.png\""), "reconstructions.png is missing");
    /* train writes the pictures, loss_curves.svg among them, and the report shows every one */
    cr_expect(strstr(first, "<img src=\"loss_curves.svg\""), "loss_curves.svg is missing");
    cr_expect(strstr(first, "<img src=\"latent_scatter.svg\""), "latent_scatter.svg is missing");
    cr_expect(strstr(first, "<img src=\"manifold.png\""), "manifold.png (a 2-D latent) is missing");
    /* nothing from elsewhere: no script, no external reference */
    cr_expect(!strstr(first, "<script"), "the report holds a script");
    cr_expect(!strstr(first, "src=\"http") && !strstr(first, "href=") && !strstr(first, "url(") &&
                  !strstr(first, "@import") && !strstr(first, "src=\"//") && !strstr(first, "src=\"/"),
              "the report refers to something outside its directory");
    char path[4200];
    snprintf(path, sizeof path, "%s/report.html", run);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(cuvae("report %s", run), 0, "%s", out);
    char *again = tu_slurp_in(run, "report.html", NULL);
    cr_assert(again != NULL, "cuvae report wrote no report.html:\n%s", out);
    cr_expect_str_eq(again, first, "cuvae report wrote another page than train");
    free(first);
    free(again);
}

Test(report, escapes_text_shows_unknown_pictures_and_prefers_loss_curves_svg)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    const char csv[] = "epoch,train_loss,train_recon,train_kl,test_loss,test_recon,test_kl,seconds,images_per_second\n"
                       "1,200.5,190.25,10.25,199.0,189.0,10.0,1.5,1000.0\n";
    tu_write_file(path, csv, strlen(csv));
    snprintf(path, sizeof path, "%s/provenance.txt", dir);
    const char prov[] = "started: now\ncommand: cuvae train --out '<script>alert(1)</script> & \"q\"'\n";
    tu_write_file(path, prov, strlen(prov));
    uint8_t px[4] = {0, 255, 255, 0};
    snprintf(path, sizeof path, "%s/my pic&.png", dir);
    cr_assert_eq(vae_png_write_gray(path, px, 2, 2), 0);
    cr_assert_eq(cuvae("report %s", dir), 0, "%s", out);
    char *html = tu_slurp_in(dir, "report.html", NULL);
    cr_assert(html != NULL);
    cr_expect(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;"), "not escaped:\n%s", html);
    cr_expect(!strstr(html, "<script>"), "a script got through:\n%s", html);
    cr_expect(strstr(html, "<img src=\"my%20pic%26.png\""), "the unknown picture's link:\n%s", html);
    cr_expect(strstr(html, "<b>my pic&amp;.png</b>"), "the unknown picture's caption:\n%s", html);
    cr_expect(strstr(html, "<polyline"), "no fallback chart without loss_curves.svg");
    cr_expect(strstr(html, "model.safetensors"), "the missing model is not mentioned");
    free(html);

    snprintf(path, sizeof path, "%s/loss_curves.svg", dir);
    const char svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>";
    tu_write_file(path, svg, strlen(svg));
    cr_assert_eq(cuvae("report %s", dir), 0, "%s", out);
    html = tu_slurp_in(dir, "report.html", NULL);
    cr_expect(strstr(html, "<img src=\"loss_curves.svg\""), "loss_curves.svg is not shown");
    cr_expect(!strstr(html, "<polyline"), "the fallback chart is drawn beside loss_curves.svg");
    free(html);
}

/* Without loss_curves.svg the page draws the loss with the plot writer: ticks at round values
 * (10, 20, ... and epochs 5, 10, ...), not at fractions of the data's range (68.39, 51.77, ...) or
 * at every third epoch (1, 4, 7, ...), as its own chart once did. */
Test(report, the_fallback_chart_has_round_ticks)
{
    char dir[4096], path[4200], csv[8192];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    int w = snprintf(csv, sizeof csv, "epoch,train_loss,train_recon,train_kl,test_loss,test_recon,test_kl,seconds,"
                                      "images_per_second\n");
    for (int e = 1; e <= 21; e++) {
        const double tr = 2.0 + 66.39 / (e * e), te = 1.9 + 3.0 / e;
        w += snprintf(csv + w, sizeof csv - (size_t)w, "%d,%.4f,1,1,%.4f,1,1,0.1,1000\n", e, tr, te);
    }
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    tu_write_file(path, csv, strlen(csv));
    cr_assert_eq(cuvae("report %s", dir), 0, "%s", out);
    char *html = tu_slurp_in(dir, "report.html", NULL);
    cr_assert(html != NULL);
    char *chart = strstr(html, "<figure><svg"), *end = chart ? strstr(chart, "</svg>") : NULL;
    cr_assert(chart && end, "no fallback chart:\n%s", html);
    end[0] = 0; /* the chart alone: the page's tables hold the values too */
    cr_expect(strstr(chart, "<polyline"), "no lines in the chart");
    cr_expect(strstr(chart, ">10<") && strstr(chart, ">20<") && strstr(chart, ">60<"), "no round y ticks:\n%s", chart);
    cr_expect(strstr(chart, ">15<") && !strstr(chart, ">7<") && !strstr(chart, ">13<"), "x ticks not round:\n%s",
              chart);
    cr_expect(!strstr(chart, "51.77") && !strstr(chart, "68.39"), "ticks at fractions of the range:\n%s", chart);
    cr_expect(!strstr(html, "<?xml"), "an XML declaration inside the HTML");
    free(html);
}

/* samples.png's caption says what the variant's samples are (the conditional and joint models' are
 * not plain draws of the prior), and the joint model's categories.png has its own. */
static const char *caption_of(const char *html, const char *file)
{
    static char cap[512];
    char key[64];
    snprintf(key, sizeof key, "<b>%s</b>: ", file);
    const char *p = strstr(html, key);
    if (!p)
        return "";
    p += strlen(key);
    const char *e = strchr(p, '<');
    snprintf(cap, sizeof cap, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
    return cap;
}

static void run_of_variant(const char *dir, const char *variant)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    const char csv[] = "epoch,train_loss,train_recon,train_kl,test_loss,test_recon,test_kl,seconds,images_per_second\n"
                       "1,200.5,190.25,10.25,199.0,189.0,10.0,1.5,1000.0\n";
    tu_write_file(path, csv, strlen(csv));
    uint8_t px[4] = {0, 255, 255, 0};
    const char *pictures[2] = {"samples.png", "categories.png"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, pictures[k]);
        cr_assert_eq(vae_png_write_gray(path, px, 2, 2), 0);
    }
    const float w[1] = {0};
    vae_st_tensor_in t = {.name = "w", .ndim = 1, .shape = {1}, .data = w};
    vae_st_meta meta[4] = {{"format", "cuvae"}, {"model", variant}, {"classes", "10"}, {"disc", "10"}};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cr_assert_eq(vae_safetensors_write(path, &t, 1, meta, strcmp(variant, "vae") ? 4 : 1), 0, "%s", vae_last_error());
}

Test(report, captions_follow_the_variant)
{
    static const struct {
        const char *variant, *samples, *categories;
    } want[] = {
        {"vae", "draws of the prior N(0, I)", ""},
        {"cvae", "one row per class y", ""},
        {"joint", "categorical code cycling", "one row per class k of the categorical latent"},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", tu_tmpdir());
        run_of_variant(dir, want[k].variant);
        cr_assert_eq(cuvae("report %s", dir), 0, "%s", out);
        char *html = tu_slurp_in(dir, "report.html", NULL);
        cr_assert(html);
        const char *s = caption_of(html, "samples.png");
        cr_expect(strstr(s, want[k].samples), "%s: samples.png's caption: %s", want[k].variant, s);
        cr_expect(!strstr(s, "prior") == !strstr(want[k].samples, "prior"), "%s: %s", want[k].variant, s);
        const char *c = caption_of(html, "categories.png");
        cr_expect(want[k].categories[0] ? strstr(c, want[k].categories) != NULL : c[0] == 0,
                  "%s: categories.png's caption: '%s'", want[k].variant, c);
        free(html);
    }
}

Test(report, command_errors)
{
    cr_expect_eq(cuvae("report"), 2, "%s", out);
    cr_expect(strstr(out, "the run directory DIR is required"), "%s", out);
    cr_expect_eq(cuvae("report a b"), 2, "%s", out);
    cr_expect_eq(cuvae("report --bogus"), 2, "%s", out);
    cr_expect_eq(cuvae("report --help"), 0, "%s", out);
    cr_expect(strstr(out, "usage: cuvae report DIR"), "%s", out);
    cr_expect_eq(cuvae("report /nonexistent/run"), 1, "%s", out);
    cr_expect(strstr(out, "/nonexistent/run") && strstr(out, "no metrics.csv"), "%s", out);
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    tu_write_file(path, "epoch,train_loss\n1,2,3\n", 23);
    cr_expect_eq(cuvae("report %s", dir), 1, "%s", out);
    cr_expect(strstr(out, "metrics.csv: line 2 has 3 values but the header names 2"), "%s", out);
}

/* ---- in a browser -------------------------------------------------------------------------- */

/* The checker added to a copy of the page, first in <head>: it records every failed load, script error
 * and console.error/warn, and after the load event writes its verdict into <pre id="verdict">. */
static const char checker[] =
    "<script>var errs=[];"
    "window.addEventListener('error',function(e){var t=e.target;"
    "errs.push(t&&t!==window&&t.getAttribute?'failed to load '+t.getAttribute('src'):'script error: '+e.message);},"
    "true);"
    "['error','warn'].forEach(function(k){var o=console[k];console[k]=function(){"
    "errs.push('console.'+k+': '+Array.prototype.join.call(arguments,' '));o.apply(console,arguments);};});"
    "window.addEventListener('load',function(){var im=document.images,bad=[];"
    "for(var i=0;i<im.length;i++){if(!im[i].complete||!(im[i].naturalWidth>0)||!(im[i].naturalHeight>0))"
    "bad.push(im[i].getAttribute('src'));}"
    "var v=document.createElement('pre');v.id='verdict';"
    "v.textContent=(bad.length||errs.length?'FAIL':'OK')+' images='+im.length+"
    "' svg='+document.getElementsByTagName('svg').length+"
    "(bad.length?' not-loaded: '+bad.join(' '):'')+(errs.length?' errors: '+errs.join(' | '):'');"
    "document.body.appendChild(v);});</script>";

static const char chromium_flags[] =
    "--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update "
    "--disable-sync --no-first-run --hide-scrollbars --host-resolver-rules='MAP * ~NOTFOUND' "
    "--enable-logging=stderr --v=0";

/* The browser's name on the PATH, or skip the test saying why. */
static const char *browser_or_skip(void)
{
    static const char *names[] = {"chromium", "chromium-browser"};
    for (int i = 0; i < 2; i++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "command -v %s", names[i]);
        if (tu_run(cmd, out, sizeof out) == 0)
            return names[i];
    }
    cr_skip_test("no headless browser: chromium is not installed (scripts/install_deps.sh installs it, role "
                 "'browser' in scripts/deps/debian.txt)");
    return NULL;
}

/* Run the browser on url with `what` ("--dump-dom" or "--screenshot=PATH --window-size=..."); stdout to
 * out_path, stderr to err_path. Skips the test, quoting the browser, when it does not start. */
static void browse(const char *browser, const char *what, const char *url, const char *out_path, const char *err_path)
{
    char cmd[8192];
    const char *profile = tu_tmpdir(); /* a fresh profile for each start */
    snprintf(cmd, sizeof cmd, "(timeout 120 %s %s --user-data-dir=%s %s '%s' > '%s' 2> '%s')", browser,
             chromium_flags, profile, what, url, out_path, err_path);
    int rc = tu_run(cmd, out, sizeof out);
    if (rc != 0) {
        char *err = tu_slurp(err_path, NULL);
        const char *tail = err ? err + (strlen(err) > 600 ? strlen(err) - 600 : 0) : "";
        char why[1024];
        snprintf(why, sizeof why, "%s did not run (exit %d): %s", browser, rc, tail);
        free(err);
        cr_skip_test("%s", why);
    }
}

/* The page's verdict: the report's copy with the checker, loaded in the browser; the <pre id=verdict>
 * text into verdict. Fails when the browser printed a console message. */
static void verdict_of(const char *browser, const char *run, char *verdict, size_t cap)
{
    char *html = tu_slurp_in(run, "report.html", NULL);
    cr_assert(html != NULL, "%s has no report.html", run);
    char *head = strstr(html, "<head>");
    cr_assert(head != NULL, "report.html has no <head>");
    head += strlen("<head>");
    char path[4200], dom[4200], err[4200], url[4300];
    snprintf(path, sizeof path, "%s/check-report.html", run);
    FILE *f = fopen(path, "wb");
    cr_assert(f != NULL);
    fwrite(html, 1, (size_t)(head - html), f);
    fputs(checker, f);
    fputs(head, f);
    cr_assert_eq(fclose(f), 0);
    free(html);
    snprintf(dom, sizeof dom, "%s/dom.html", tu_tmpdir());
    snprintf(err, sizeof err, "%s/stderr.txt", tu_tmpdir());
    snprintf(url, sizeof url, "file://%s", path);
    browse(browser, "--dump-dom", url, dom, err);
    unlink(path);
    char *d = tu_slurp(dom, NULL), *e = tu_slurp(err, NULL);
    cr_assert(d != NULL);
    char *v = strstr(d, "<pre id=\"verdict\">");
    cr_assert(v != NULL, "the page wrote no verdict; the DOM:\n%.4000s\nstderr:\n%.2000s", d, e ? e : "");
    v += strlen("<pre id=\"verdict\">");
    char *end = strstr(v, "</pre>");
    cr_assert(end != NULL);
    snprintf(verdict, cap, "%.*s", (int)(end - v), v);
    /* the browser prints every console message of the page to stderr */
    cr_expect(!e || !strstr(e, ":CONSOLE"), "the page logged to the console:\n%s", e);
    free(d);
    free(e);
}

/* Fraction of pixels darker than 240 and the standard deviation of a screenshot (as gray). */
static void screenshot_stats(const char *png, double *ink, double *sd)
{
    uint8_t *px;
    int w, h;
    cr_assert_eq(vae_png_read_gray(png, &px, &w, &h), 0, "%s", vae_last_error());
    double sum = 0, sum2 = 0;
    size_t dark = 0, n = (size_t)w * (size_t)h;
    for (size_t i = 0; i < n; i++) {
        sum += px[i];
        sum2 += (double)px[i] * px[i];
        dark += px[i] < 240;
    }
    double mean = sum / (double)n;
    *ink = (double)dark / (double)n;
    *sd = sqrt(fmax(sum2 / (double)n - mean * mean, 0));
    vae_free(px);
}

/* Pages with text, tables and pictures are well above these; a blank page is 0 and 0. */
#define MIN_INK 0.02
#define MIN_SD 20.0

Test(report, renders_in_a_headless_browser_with_every_picture)
{
    const char *browser = browser_or_skip();
    char run[4096];
    const char *dir = tu_tmpdir();
    train_tiny(dir, run, sizeof run, "--val-fraction 0.25");
    char verdict[4096];
    verdict_of(browser, run, verdict, sizeof verdict);
    cr_expect(strncmp(verdict, "OK ", 3) == 0, "the report did not render cleanly: %s", verdict);
    int images = 0, svgs = 0;
    cr_assert_eq(sscanf(verdict, "%*s images=%d svg=%d", &images, &svgs), 2, "%s", verdict);
    cr_expect_geq(images, 2, "%s: fewer images than samples.png and reconstructions.png", verdict);
    cr_expect_geq(images + svgs, 3, "%s: no curves", verdict);

    char shot[4200], err[4200], what[4400], url[4300];
    snprintf(shot, sizeof shot, "%s/report.png", tu_tmpdir());
    snprintf(err, sizeof err, "%s/stderr.txt", tu_tmpdir());
    snprintf(what, sizeof what, "--screenshot=%s --window-size=1200,2000", shot);
    snprintf(url, sizeof url, "file://%s/report.html", run);
    browse(browser, what, url, "/dev/null", err);
    double ink, sd;
    screenshot_stats(shot, &ink, &sd);
    cr_expect(ink > MIN_INK && sd > MIN_SD, "the screenshot %s looks blank: %.4f of its pixels dark, sd %.1f", shot,
              ink, sd);
    cr_log_info("report screenshot %s: %.3f of its pixels dark, sd %.1f; verdict %s", shot, ink, sd, verdict);
}

Test(report, the_browser_checks_fail_on_a_missing_picture_and_a_blank_page)
{
    const char *browser = browser_or_skip();
    char run[4096];
    const char *dir = tu_tmpdir();
    train_tiny(dir, run, sizeof run, "");
    char path[4200], verdict[4096];
    snprintf(path, sizeof path, "%s/samples.png", run);
    cr_assert_eq(unlink(path), 0);
    verdict_of(browser, run, verdict, sizeof verdict);
    cr_expect(strncmp(verdict, "FAIL ", 5) == 0 && strstr(verdict, "not-loaded: samples.png"),
              "a missing samples.png went unnoticed: %s", verdict);

    /* a blank page's screenshot fails the test's blankness check */
    char blank[4200], shot[4200], err[4200], what[4400], url[4300];
    snprintf(blank, sizeof blank, "%s/blank.html", tu_tmpdir());
    tu_write_file(blank, "<!DOCTYPE html><html><body></body></html>", 41);
    snprintf(shot, sizeof shot, "%s/blank.png", tu_tmpdir());
    snprintf(err, sizeof err, "%s/stderr.txt", tu_tmpdir());
    snprintf(what, sizeof what, "--screenshot=%s --window-size=1200,2000", shot);
    snprintf(url, sizeof url, "file://%s", blank);
    browse(browser, what, url, "/dev/null", err);
    double ink, sd;
    screenshot_stats(shot, &ink, &sd);
    cr_expect(!(ink > MIN_INK && sd > MIN_SD), "a blank page passed the check: %.4f dark, sd %.1f", ink, sd);
}
