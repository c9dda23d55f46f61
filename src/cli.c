/*
 * cli.c: value parsers and error printing shared by the subcommands.
 */
#define _GNU_SOURCE
#include "cli.h"

#include "run_dir.h"
#include "safetensors.h"
#include "data_source.h"
#include "vae_util.h"
#include "variant.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* strtol and friends skip leading white space (and strtoull accepts a minus
 * sign): a value must start with its number, as it must end with it, so " 5"
 * is refused like "5 " is. */
static int starts_with_number(const char *s, int allow_sign, int allow_point)
{
    if (allow_sign && (*s == '-' || *s == '+'))
        s++;
    return isdigit((unsigned char)*s) || (allow_point && *s == '.');
}

int vae_cli_parse_int(const char *flag, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!starts_with_number(s, 1, 0) || end == s || *end != '\0' || errno)
        return vae_set_error("%s: '%s' is not an integer", flag, s);
    if (v < lo || v > hi)
        return vae_set_error("%s: %ld is out of range (%ld..%ld)", flag, v, lo, hi);
    *out = (int)v;
    return 0;
}

int vae_cli_parse_u64(const char *flag, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s[strspn(s, " \t\n\v\f\r")] == '-')
        return vae_set_error("%s: '%s' must not be negative", flag, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (!starts_with_number(s, 0, 0) || end == s || *end != '\0' || errno)
        return vae_set_error("%s: '%s' is not a non-negative integer", flag, s);
    *out = (uint64_t)v;
    return 0;
}

int vae_cli_parse_float(const char *flag, const char *s, double lo, double hi, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!starts_with_number(s, 1, 1) || end == s || *end != '\0' || errno || !isfinite(v))
        return vae_set_error("%s: '%s' is not a finite number", flag, s);
    if (v < lo || v > hi)
        return vae_set_error("%s: %g is out of range (%g..%g)", flag, v, lo, hi);
    *out = (float)v;
    return 0;
}

int vae_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "cuvae %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'cuvae %s --help'.\n", cmd);
    return 2;
}

int vae_cli_fail(void)
{
    fprintf(stderr, "cuvae: %s\n", vae_last_error());
    return 1;
}

/* The data directory when --data is not given: $CUVAE_DATA, else the first of data/mnist under
 * the current directory, under the checkout cuvae was built from, and under the installed
 * share/cuvae that exists; data/mnist when none does (its error then says where it looked). */
static const char *default_data_dir(void)
{
    static char dir[4200];
    const char *env = getenv("CUVAE_DATA");
    if (env && *env)
        return env;
    const char *const roots[] = {".", CUVAE_SOURCE_DIR, CUVAE_INSTALL_DATA_DIR};
    struct stat st;
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        snprintf(dir, sizeof dir, "%s/data/mnist", roots[i]);
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            return i == 0 ? "data/mnist" : dir;
    }
    return "data/mnist";
}

void vae_run_settings_default(vae_run_settings *s)
{
    s->data_dir = default_data_dir();
    s->epochs = 10;
    s->batch_size = 128;
    s->lr = 1e-3f;
    s->seed = 1;
    vae_config_default(&s->cfg);
    s->device = VAE_DEVICE_AUTO;
    s->threads = 0;
    s->data_given = 0;
    s->tf32 = 0;
}

int vae_cli_apply_shared(vae_run_settings *s, int opt, const char *arg)
{
    int rc = 0;
    switch (opt) {
    case VAE_OPT_DATA:
        s->data_dir = arg;
        s->data_given = 1;
        break;
    case VAE_OPT_EPOCHS: rc = vae_cli_parse_int("--epochs", arg, 1, 100000, &s->epochs); break;
    case VAE_OPT_BATCH: rc = vae_cli_parse_int("--batch-size", arg, 1, 65536, &s->batch_size); break;
    case VAE_OPT_LR: rc = vae_cli_parse_float("--lr", arg, 1e-12, 10.0, &s->lr); break;
    case VAE_OPT_SEED: rc = vae_cli_parse_u64("--seed", arg, &s->seed); break;
    case VAE_OPT_HIDDEN: rc = vae_config_parse_hidden(arg, &s->cfg); break;
    case VAE_OPT_LATENT: rc = vae_cli_parse_int("--latent", arg, 1, 4096, &s->cfg.latent_dim); break;
    case VAE_OPT_ACT: rc = vae_act_parse(arg, &s->cfg.act); break;
    case VAE_OPT_BETA: rc = vae_cli_parse_float("--beta", arg, 0.0, 1e6, &s->cfg.beta); break;
    case VAE_OPT_LIKELIHOOD: rc = vae_likelihood_parse(arg, &s->cfg.likelihood); break;
    case VAE_OPT_SIGMA: rc = vae_cli_parse_float("--sigma", arg, 1e-6, 1e6, &s->cfg.sigma); break;
    case VAE_OPT_MODEL_KIND: rc = vae_variant_parse(arg, &s->cfg.variant); break;
    case VAE_OPT_DISC: rc = vae_cli_parse_int("--disc", arg, 2, 1024, &s->cfg.disc); break;
    case VAE_OPT_DEVICE: rc = vae_device_parse(arg, &s->device); break;
    case VAE_OPT_THREADS: rc = vae_cli_parse_int("--threads", arg, 1, 1024, &s->threads); break;
    case VAE_OPT_TF32: /* the flag (no value), or a recorded train.math */
        if (!arg || strcmp(arg, "tf32") == 0)
            s->tf32 = 1;
        else if (strcmp(arg, "fp32") == 0)
            s->tf32 = 0;
        else
            rc = vae_set_error("--tf32: '%s' is neither fp32 nor tf32", arg);
        break;
    default: return 0;
    }
    return rc ? -1 : 1;
}

/* The long options whose names start with `name` (len chars); *exact the one
 * named exactly, if any. */
static int long_option_matches(const struct option *opts, const char *name, size_t len,
                               const struct option **first, const struct option **exact)
{
    int n = 0;
    *first = *exact = NULL;
    for (const struct option *o = opts; o->name; o++) {
        if (strncmp(o->name, name, len) != 0)
            continue;
        if (strlen(o->name) == len)
            *exact = o;
        if (!*first)
            *first = o;
        n++;
    }
    return n;
}

/* Edit distance (insertions, deletions, substitutions, swaps of neighbours) between a (la chars)
 * and b, stopping early above 3 (longer names than 63 count as far). */
static int edit_distance(const char *a, size_t la, const char *b)
{
    const size_t lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            best = d[i - 1][j] + 1 < best ? d[i - 1][j] + 1 : best;
            best = d[i][j - 1] + 1 < best ? d[i][j - 1] + 1 : best;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* The option nearest the mistyped `name` (len chars): within 2 edits (1 for names of up to 4
 * characters) and nearer than any other; NULL when none or a tie. */
static const struct option *closest_option(const struct option *opts, const char *name, size_t len)
{
    const struct option *best = NULL;
    int best_d = len <= 4 ? 2 : 3, ties = 0;
    for (const struct option *o = opts; o->name; o++) {
        if (strcmp(o->name, "help") == 0)
            continue;
        int d = edit_distance(name, len, o->name);
        if (d < best_d) {
            best_d = d;
            best = o;
            ties = 0;
        } else if (d == best_d && best) {
            ties++;
        }
    }
    return ties ? NULL : best;
}

/* Explain why getopt_long refused the argument `arg` (it reports an unknown,
 * an ambiguous and a value-taking-no-value long option alike). */
static void report_bad_option(const char *cmd, const char *arg, int optopt_, const struct option *opts)
{
    if (strncmp(arg, "--", 2) != 0) {
        vae_cli_usage_error(cmd, "unknown option '-%c'", optopt_ ? optopt_ : arg[1]);
        return;
    }
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct option *first, *exact;
    int n = long_option_matches(opts, name, len, &first, &exact);
    const struct option *o = exact ? exact : n == 1 ? first : NULL;
    if (o && eq && o->has_arg == no_argument) {
        vae_cli_usage_error(cmd, "option '--%s' takes no value (got '%s')", o->name, arg);
        return;
    }
    if (!o && n > 1) {
        char list[512] = "";
        for (const struct option *p = opts; p->name; p++)
            if (strncmp(p->name, name, len) == 0) {
                size_t used = strlen(list);
                snprintf(list + used, sizeof list - used, "%s--%s", used ? ", " : "", p->name);
            }
        vae_cli_usage_error(cmd, "option '--%.*s' is ambiguous: it could be %s", (int)len, name, list);
        return;
    }
    const struct option *near = closest_option(opts, name, len);
    if (near)
        vae_cli_usage_error(cmd, "unknown option '--%.*s'; did you mean --%s?", (int)len, name, near->name);
    else
        vae_cli_usage_error(cmd, "unknown option '--%.*s'", (int)len, name);
}

/* Exit codes of next_option beside an option's code and -1 (the end). */
#define EXIT_USAGE (-2)
#define EXIT_HELP (-3)

/* The next option the command handles itself (shared ones applied to s when not NULL), -1 at the
 * end, or EXIT_HELP / EXIT_USAGE after printing the help or a usage error. */
static int next_option(const char *cmd, int argc, char **argv, const struct option *opts, void (*help)(void),
                       vae_run_settings *s)
{
    for (;;) {
        opterr = 0;
        int idx = -1;
        int c = getopt_long(argc, argv, ":h", opts, &idx);
        if (c == '?') {
            report_bad_option(cmd, argv[optind - 1], optopt, opts);
            return EXIT_USAGE;
        }
        if (c == ':') {
            vae_cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
            return EXIT_USAGE;
        }
        if (c == -1 && optind < argc) {
            vae_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
            return EXIT_USAGE;
        }
        if (c != -1 && idx >= 0 && opts[idx].has_arg == required_argument && optarg && optarg[0] == '\0') {
            vae_cli_usage_error(cmd, "option '--%s' needs a value, not an empty string", opts[idx].name);
            return EXIT_USAGE;
        }
        if (c == 'h') {
            help();
            return EXIT_HELP;
        }
        if (c == -1 || !s)
            return c;
        int r = vae_cli_apply_shared(s, c, optarg);
        if (r < 0) {
            vae_cli_usage_error(cmd, "%s", vae_last_error());
            return EXIT_USAGE;
        }
        if (r == 0)
            return c; /* the command's own option; a shared one is applied: on to the next */
    }
}

int vae_cli_parse(const char *cmd, int argc, char **argv, const struct option *opts, void (*help)(void),
                  vae_run_settings *shared, vae_cli_option_fn own, void *ctx)
{
    int c;
    optind = 0;
    while ((c = next_option(cmd, argc, argv, opts, help, shared)) != -1) {
        if (c == EXIT_HELP)
            return 0;
        if (c == EXIT_USAGE)
            return 2;
        int rc = own ? own(ctx, c, optarg) : 0;
        if (rc)
            return rc;
    }
    return -1;
}

int vae_cli_check_labels(const vae_model *m, const char *model_path, const vae_dataset *d, const char *dir,
                         vae_split split)
{
    if (!vae_model_reads_label(m))
        return 0;
    char labels[4096], src[8400];
    vae_data_source_of(dir)->labels_name(dir, split, labels, sizeof labels);
    snprintf(src, sizeof src, "%s (for %s)", labels, model_path);
    return vae_dataset_check_labels(d, m->cfg.classes, src);
}

const char vae_cli_help_model[] =
    "  --hidden LIST       hidden layer sizes of the encoder, mirrored in the decoder (default 400;\n"
    "                      e.g. 512,256 gives 784-512-256-Z-256-512-784)\n"
    "  --latent Z          latent dimensions (default 20)\n"
    "  --activation ACT    relu or tanh for hidden layers (default relu)\n"
    "  --beta X            weight of the KL term (default 1: the plain VAE)\n"
    "  --likelihood L      the decoder's distribution: bernoulli (on logits, default) or gaussian\n"
    "                      (mean, fixed standard deviation --sigma; its -log p(x|z) in nats with\n"
    "                      the constants included)\n"
    "  --sigma S           standard deviation of the Gaussian likelihood (default 1)\n";
const char vae_cli_help_training[] =
    "  --data DIR          directory with the four MNIST-format IDX files, raw or .gz\n"
    "                      (default: $CUVAE_DATA, else data/mnist under the current directory,\n"
    "                      the checkout cuvae was built from, or the install's share/cuvae;\n"
    "                      Fashion-MNIST: /usr/share/datasets/fashion-mnist)\n"
    "  --epochs N          passes over the training set (default 10)\n"
    "  --batch-size B      images per step (default 128)\n"
    "  --lr X              Adam learning rate (default 1e-3; betas 0.9, 0.999, eps 1e-8)\n"
    "  --seed S            seeds initialization, data order and noise (default 1)\n";
#define HELP_THREADS                                                                                  \
    "  --threads N         OpenMP threads of the CPU backend (default: OMP_NUM_THREADS, else one per\n" \
    "                      core); results are bit-identical only for the same N\n"
const char vae_cli_help_device[] =
    "  --device DEV        auto (GPU 0 when present, else CPU; says which), cpu, cuda (GPU 0) or\n"
    "                      cuda:N (GPU N; 'cuvae devices' lists them) (default auto)\n" HELP_THREADS;
const char vae_cli_help_threads[] = HELP_THREADS;
const char vae_cli_help_tf32[] =
    "  --tf32              the CUDA backend's GEMMs in TF32 on the tensor cores (inputs rounded to\n"
    "                      10 mantissa bits, sums in FP32); default FP32. No effect on the CPU\n"
    "                      backend, so refused when the CPU is the only backend asked for\n";

int vae_cli_refuse_tf32(const char *cmd, const char *cpu_only)
{
    return vae_cli_usage_error(cmd, "--tf32 changes only the CUDA backend's GEMMs, and %s asks for the CPU alone, "
                                    "which computes in FP32; drop --tf32 or run on a GPU",
                               cpu_only);
}

vae_backend *vae_cli_backend(const vae_run_settings *s, FILE *log)
{
    if (s->threads > 0)
        vae_cpu_set_threads(s->threads);
    vae_backend *be = vae_backend_create(s->device);
    char dev[16];
    if (!be && vae_device_is_cuda(s->device)) {
        char why[512];
        snprintf(why, sizeof why, "%s", vae_last_error());
        vae_set_error("--device %s: %s; --device cpu runs on the CPU", vae_device_text(s->device, dev), why);
    }
    if (be && s->tf32 && be->kind == VAE_BACKEND_CUDA)
        vae_cuda_set_tf32(be, 1);
    const char *math = !s->tf32 ? "" : be && be->kind == VAE_BACKEND_CUDA ? ", GEMMs in TF32 (--tf32)"
                                                                          : ", --tf32 has no effect on the CPU (FP32)";
    if (be && log)
        fprintf(log, "device: %s (%s)%s%s\n", s->device == VAE_DEVICE_AUTO ? be->name : vae_device_text(s->device, dev),
                be->device_name,
                s->device == VAE_DEVICE_AUTO && be->kind == VAE_BACKEND_CPU ? ", no CUDA device found" : "", math);
    return be;
}

/* One index of an --indices item: digits only, below n_max. */
static int parse_index(const char *flag, const char *item, const char *s, size_t len, int n_max, int *out)
{
    if (len == 0 || strspn(s, "0123456789") < len)
        return vae_set_error("%s: '%s' is not an index or a range A-B of indices", flag, item);
    long v = 0;
    for (size_t i = 0; i < len && v < n_max; i++)
        v = v * 10 + (s[i] - '0');
    if (v >= n_max)
        return vae_set_error("%s: index %.*s is out of range: the test set has %d images (0..%d)", flag, (int)len,
                             s, n_max, n_max - 1);
    *out = (int)v;
    return 0;
}

int vae_cli_parse_indices(const char *flag, const char *s, int n_max, int **out, int *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    const char *p = s;
    for (;;) {
        size_t len = strcspn(p, ",");
        char item[64];
        snprintf(item, sizeof item, "%.*s", (int)(len < 60 ? len : 60), p);
        const char *dash = memchr(p, '-', len);
        int a = 0, b = 0;
        if (parse_index(flag, item, p, dash ? (size_t)(dash - p) : len, n_max, &a) ||
            parse_index(flag, item, dash ? dash + 1 : p, dash ? len - (size_t)(dash - p) - 1 : len, n_max, &b))
            goto fail;
        if (b < a) {
            vae_set_error("%s: range '%s' runs backwards", flag, item);
            goto fail;
        }
        if ((size_t)*n + (size_t)(b - a + 1) > VAE_CLI_MAX_INDICES) {
            vae_set_error("%s: more than %d indices", flag, VAE_CLI_MAX_INDICES);
            goto fail;
        }
        if ((size_t)*n + (size_t)(b - a + 1) > cap) {
            size_t ncap = cap ? cap * 2 : 16;
            while (ncap < (size_t)*n + (size_t)(b - a + 1))
                ncap *= 2;
            int *grown = vae_calloc(ncap, sizeof *grown);
            if (*n)
                memcpy(grown, *out, (size_t)*n * sizeof *grown);
            vae_free(*out);
            *out = grown;
            cap = ncap;
        }
        for (int i = a; i <= b; i++)
            (*out)[(*n)++] = i;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
fail:
    vae_free(*out);
    *out = NULL;
    *n = 0;
    return -1;
}

int vae_cli_model_data(const char *model, vae_split split, vae_run_settings *s, char *recorded, size_t cap)
{
    if (s->data_given) {
        fprintf(stderr, "data: %s (--data)\n", s->data_dir);
        return 0;
    }
    vae_safetensors st;
    if (vae_safetensors_read(model, &st))
        return -1;
    const char *rec = vae_safetensors_meta_get(&st, "train.data");
    int rc = 0;
    if (rec)
        rc = vae_data_source_of(rec)->recorded(&st, model, rec, split, recorded, cap, &s->data_dir, stderr);
    else
        fprintf(stderr, "data: %s (default; %s records no absolute data path)\n", s->data_dir, model);
    vae_safetensors_free(&st);
    return rc;
}

const char *vae_cli_model_file(const char *arg, char *buf, size_t cap)
{
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(buf, cap, "%s/model.safetensors", arg);
    else
        snprintf(buf, cap, "%s", arg);
    return buf;
}

/* Whether the safetensors file at path is a cuvae model or checkpoint (its 'format'). */
static int holds_model(const char *path)
{
    vae_safetensors st;
    if (vae_safetensors_read(path, &st))
        return 0;
    const char *fmt = vae_safetensors_meta_get(&st, "format");
    int is = fmt && (strcmp(fmt, "cuvae") == 0 || strcmp(fmt, "cuvae-checkpoint") == 0);
    vae_safetensors_free(&st);
    return is;
}

int vae_cli_check_output(const char *cmd, const char *out, const char *const *inputs, int n_inputs, int force)
{
    struct stat o, in;
    if (stat(out, &o) != 0)
        return 0; /* a new file (or one the write will fail to make, saying why) */
    for (int i = 0; i < n_inputs; i++)
        if (stat(inputs[i], &in) == 0 && in.st_dev == o.st_dev && in.st_ino == o.st_ino)
            return vae_cli_usage_error(cmd, "--out %s is the input %s (the same file): writing it would destroy "
                                            "it; give another --out",
                                       out, inputs[i]);
    if (!force && S_ISREG(o.st_mode) && holds_model(out))
        return vae_cli_usage_error(cmd, "--out %s holds a cuvae model; give another --out, or --force to replace "
                                        "it",
                                   out);
    return 0;
}

void vae_cli_data_inputs(const char *dir, vae_split split, char paths[2][4096], const char **inputs, int *n)
{
    vae_data_source_of(dir)->inputs(dir, split, paths, inputs, n);
}

int vae_cli_check_data_shape(const vae_model *m, const char *model_path, const vae_dataset *d, const char *dir)
{
    const vae_config *c = &m->cfg;
    if (d->dim != c->input_dim)
        return vae_set_error("%s: the data has %d values per image, but the model %s takes %d", dir, d->dim,
                             model_path, c->input_dim);
    const int model_image = c->image_rows > 0 && c->image_cols > 0 && c->image_rows * c->image_cols == c->input_dim;
    if (model_image && d->rows > 0 && d->cols > 0 && (d->rows != c->image_rows || d->cols != c->image_cols))
        return vae_set_error("%s: the images are %dx%d, but the model %s was trained on %dx%d images (the same %d "
                             "pixels in another shape)",
                             dir, d->rows, d->cols, model_path, c->image_rows, c->image_cols, d->dim);
    return 0;
}
