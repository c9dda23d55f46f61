/*
 * testutil.c: see testutil.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <criterion/criterion.h>

#include "image.h"
#include "safetensors.h"
#include "vae_util.h"


#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *tu_tmpdir(void)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/cuvae-test-XXXXXX");
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        abort();
    }
    return buf;
}

void tu_write_file(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(bytes, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

void tu_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    cr_assert(n > 0 && (size_t)n < cap, "path too long: %s/%s", dir, name);
}

void *tu_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    cr_assert_eq(fseek(f, 0, SEEK_END), 0, "%s: cannot seek: %s", path, strerror(errno));
    long n = ftell(f);
    cr_assert(n >= 0, "%s: cannot tell its size: %s", path, strerror(errno));
    rewind(f);
    char *b = malloc((size_t)n + 1);
    cr_assert_not_null(b, "%s: out of memory for %ld bytes", path, n);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n, "%s: short read", path);
    fclose(f);
    b[n] = 0;
    if (len)
        *len = (size_t)n;
    return b;
}

void *tu_slurp_in(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    tu_join(path, sizeof path, dir, name);
    return tu_slurp(path, len);
}

void *tu_read_file(const char *path, size_t *len)
{
    void *b = tu_slurp(path, len);
    cr_assert_not_null(b, "cannot open %s: %s", path, strerror(errno));
    return b;
}

const char *tu_file_find(const char *path, const char *needle)
{
    static char *last;
    free(last);
    size_t n;
    last = tu_read_file(path, &n);
    const size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(last + i, needle, k) == 0)
            return last + i;
    return NULL;
}

int tu_file_has(const char *path, const char *needle)
{
    return tu_file_find(path, needle) != NULL;
}

int tu_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int tu_exists_in(const char *dir, const char *name)
{
    char path[4096];
    tu_join(path, sizeof path, dir, name);
    return tu_exists(path);
}

int tu_nonempty_in(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    tu_join(path, sizeof path, dir, name);
    return stat(path, &st) == 0 && st.st_size > 0;
}

void *tu_malloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    cr_assert_not_null(p, "malloc(%zu)", bytes);
    return p;
}

size_t tu_alloc_bytes;
int tu_alloc_buffers;
static void *(*counted_alloc)(vae_backend *, size_t);

static void *counting_alloc(vae_backend *be, size_t bytes)
{
    tu_alloc_bytes += bytes;
    tu_alloc_buffers++;
    return counted_alloc(be, bytes);
}

vae_backend tu_counting_backend(const vae_backend *be)
{
    vae_backend b = *be;
    counted_alloc = be->buffer_alloc;
    b.buffer_alloc = counting_alloc;
    tu_alloc_bytes = 0;
    tu_alloc_buffers = 0;
    return b;
}

int tu_run(const char *cmd, char *out, size_t outlen)
{
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p)
        return -1;
    size_t len = 0;
    if (out && outlen)
        out[0] = '\0';
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, p)) > 0) {
        if (out && len + 1 < outlen) {
            size_t take = got < outlen - 1 - len ? got : outlen - 1 - len;
            memcpy(out + len, chunk, take);
            len += take;
            out[len] = '\0';
        }
    }
    int st = pclose(p);
    if (st == -1)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void tu_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        double u = (double)(splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
        x[i] = (float)(lo + (hi - lo) * u);
    }
}

static int allclose_impl(const char *what, size_t n, double atol, double rtol,
                         double (*get)(const void *, size_t), const void *got, const void *ref)
{
    size_t worst = 0;
    double worst_excess = -INFINITY, max_abs = 0.0, num = 0.0, den = 0.0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        double g = get(got, i), r = get(ref, i);
        if (!isfinite(g) || !isfinite(r)) {
            fprintf(stderr, "%s: non-finite value at [%zu]: got %g, ref %g\n", what, i, g, r);
            return 0;
        }
        double d = fabs(g - r);
        double excess = d - (atol + rtol * fabs(r));
        if (d > max_abs)
            max_abs = d;
        num += d * d;
        den += r * r;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
        if (excess > 0)
            ok = 0;
    }
    if (!ok)
        fprintf(stderr, "%s: %zu elements, worst at [%zu]: got %.9g ref %.9g (atol %g rtol %g), "
                "max abs diff %.3g, nmse %.3g\n", what, n, worst, get(got, worst), get(ref, worst),
                atol, rtol, max_abs, den > 0 ? num / den : num);
    return ok;
}

static double get_f(const void *p, size_t i) { return ((const float *)p)[i]; }
static double get_d(const void *p, size_t i) { return ((const double *)p)[i]; }

double tu_ulps(float got, double want)
{
    if (isnan(got) || isnan(want))
        return isnan(got) && isnan(want) ? 0.0 : INFINITY;
    if ((double)got == want)
        return 0.0;
    if (isinf(want))
        return INFINITY;
    double a = fabs(want);
    if (a < 0x1p-126)
        a = 0x1p-126;
    int e;
    frexp(a, &e); /* a = m 2^e, m in [0.5, 1): ulp = 2^(e - 24) */
    return fabs((double)got - want) / ldexp(1.0, e - 24);
}

int tu_allclose(const char *what, const float *got, const float *ref, size_t n, double atol, double rtol)
{
    return allclose_impl(what, n, atol, rtol, get_f, got, ref);
}

int tu_allclose_d(const char *what, const double *got, const double *ref, size_t n, double atol, double rtol)
{
    return allclose_impl(what, n, atol, rtol, get_d, got, ref);
}

void tu_make_patterns(vae_dataset *d, int n, uint64_t seed)
{
    *d = (vae_dataset){.n = n, .rows = 8, .cols = 8, .dim = 64, .kind = VAE_DATA_BYTES, .classes = 3};
    d->pixels = vae_calloc((size_t)n * 64, 1);
    d->labels = vae_calloc((size_t)n, 1);
    float noise[64];
    for (int i = 0; i < n; i++) {
        int k = i % 3;
        d->labels[i] = (uint8_t)k;
        tu_fill_uniform(noise, 64, seed + (uint64_t)i, 0, 60);
        for (int p = 0; p < 64; p++) {
            int r = p / 8, c = p % 8;
            int on = k == 0 ? c == 3 : k == 1 ? r == 4 : r == c;
            d->pixels[i * 64 + p] = (uint8_t)(on ? 255 - noise[p] : noise[p]);
        }
    }
}

static void put_be32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

static void write_split(const char *dir, const char *images, const char *labels, int n, uint64_t seed)
{
    vae_dataset d;
    tu_make_patterns(&d, n, seed);
    unsigned char *b = vae_calloc(16 + (size_t)n * 64, 1);
    put_be32(b, 0x803);
    put_be32(b + 4, (uint32_t)n);
    put_be32(b + 8, 8);
    put_be32(b + 12, 8);
    memcpy(b + 16, d.pixels, (size_t)n * 64);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, images);
    tu_write_file(path, b, 16 + (size_t)n * 64);
    put_be32(b, 0x801);
    memcpy(b + 8, d.labels, (size_t)n);
    snprintf(path, sizeof path, "%s/%s", dir, labels);
    tu_write_file(path, b, 8 + (size_t)n);
    vae_free(b);
    vae_dataset_free(&d);
}

void tu_write_patterns_idx(const char *dir, int n_train, int n_test, uint64_t seed)
{
    write_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", n_train, seed);
    write_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", n_test, seed + 1000000);
}

/* An IDX file of n images (side x side) or labels; seeded stroke patterns. */
static void write_stroke_file(const char *dir, const char *name, int n, int side, int images)
{
    int dim = side * side;
    size_t hdr = images ? 16 : 8, body = images ? (size_t)n * dim : (size_t)n;
    unsigned char *b = calloc(hdr + body, 1);
    put_be32(b, images ? 0x803 : 0x801);
    put_be32(b + 4, (uint32_t)n);
    if (images) {
        put_be32(b + 8, (uint32_t)side);
        put_be32(b + 12, (uint32_t)side);
    }
    for (int i = 0; i < n; i++) {
        if (!images) {
            b[hdr + i] = (unsigned char)(i % 3);
            continue;
        }
        for (int p = 0; p < dim; p++) {
            int r = p / side, c = p % side, k = i % 3;
            int on = k == 0 ? c == side / 2 : k == 1 ? r == side / 2 : r == c;
            b[hdr + (size_t)i * dim + p] = on ? 250 : (unsigned char)((i * 7 + p * 13) % 20);
        }
    }
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    tu_write_file(path, b, hdr + body);
    free(b);
}

void tu_write_stroke_idx(const char *dir, int n_train, int n_test, int side)
{
    mkdir(dir, 0755);
    write_stroke_file(dir, "train-images-idx3-ubyte", n_train, side, 1);
    write_stroke_file(dir, "train-labels-idx1-ubyte", n_train, side, 0);
    write_stroke_file(dir, "t10k-images-idx3-ubyte", n_test, side, 1);
    write_stroke_file(dir, "t10k-labels-idx1-ubyte", n_test, side, 0);
}

int tu_cuvae(char *out, size_t outlen, const char *fmt, ...)
{
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s", CUVAE_BINARY, args);
    return tu_run(cmd, out, outlen);
}

void tu_need_gpu(void)
{
    if (vae_cuda_device_count() == 0) {
        vae_backend *none = vae_backend_cuda_init(0);
        cr_assert_null(none, "vae_backend_cuda_init(0) made a backend though vae_cuda_device_count() is 0");
#ifdef CUVAE_CUDA_EMU
        /* The emulated build's device is always there: a CUDA test that cannot get it has found
         * a broken emulator, and must fail, not skip. */
        cr_assert_fail("the emulated build has no CUDA device: %s", vae_last_error());
#else
        cr_skip_test("%s", vae_last_error()); /* "no CUDA device: <why>"; does not return */
#endif
    }
}

vae_backend *tu_cuda_backend(void)
{
    tu_need_gpu();
    vae_backend *be = vae_backend_cuda_init(0);
    cr_assert_not_null(be, "vae_backend_cuda_init(0) failed with a device present: %s", vae_last_error());
    cr_assert_eq(be->kind, VAE_BACKEND_CUDA);
    return be;
}

void tu_session_open(tu_session *s, vae_backend *be, const vae_dataset *train, const vae_dataset *test)
{
    vae_train_options o = {.epochs = 4, .batch_size = 16,
                           .adam = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
                           .seed = 9, .progress = -1, .log = stderr};
    tu_session_open_with(s, be, train, test, &o);
}

void tu_session_open_with(tu_session *s, vae_backend *be, const vae_dataset *train, const vae_dataset *test,
                          const vae_train_options *o)
{
    memset(s, 0, sizeof *s);
    s->be = be;
    vae_config c;
    vae_config_default(&c);
    c.input_dim = 64;
    c.image_rows = c.image_cols = 8;
    c.latent_dim = 3;
    cr_assert_eq(vae_config_parse_hidden("24", &c), 0);
    cr_assert_eq(vae_model_init(&s->m, &c, s->be, 16), 0, "%s", vae_last_error());
    vae_model_init_params(&s->m, 9);
    vae_device_data_init(&s->dtr, s->be, train);
    vae_device_data_init(&s->dte, s->be, test);
    vae_train_options with_stop = *o;
    with_stop.stop = &s->stop;
    s->t = vae_trainer_init(&s->m, &with_stop);
}

void tu_session_close(tu_session *s)
{
    vae_trainer_free(s->t);
    vae_device_data_free(&s->dtr, s->be);
    vae_device_data_free(&s->dte, s->be);
    vae_model_free(&s->m);
    vae_backend_free(s->be);
}

size_t tu_scalar_steps(vae_backend *be, const float *lr, const float *kl, int steps, float **params)
{
    vae_config c;
    vae_config_default(&c);
    c.input_dim = 64;
    c.image_rows = c.image_cols = 8;
    c.hidden[0] = 24;
    c.latent_dim = 3;
    const int B = 12;
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, B), 0, "%s", vae_last_error());
    vae_model_init_params(&m, 17);
    vae_dataset d;
    tu_make_patterns(&d, B, 5);
    float *x = vae_calloc((size_t)B * 64, sizeof(float)), eps[12 * 3];
    for (int i = 0; i < B * 64; i++)
        x[i] = d.pixels[i] / 255.0f;
    tu_fill_uniform(eps, (size_t)B * 3, 6, -1.5f, 1.5f);
    be->upload(be, m.x, x, (size_t)B * 64 * sizeof(float));
    be->upload(be, m.noise[vae_model_gaussian(&m)], eps, sizeof eps);
    const vae_adam_config adam = {.lr = 0.0f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    *params = malloc((size_t)(steps + 1) * m.n_params * sizeof(float));
    be->download(be, *params, m.params, m.n_params * sizeof(float));
    vae_graph *g = NULL;
    for (int s = 0; s < steps; s++) {
        vae_model_set_scalar(&m, VAE_SCALAR_LR, lr[s]);
        vae_model_set_scalar(&m, VAE_SCALAR_KL_WEIGHT, kl[s]);
        if (!be->graph_capture_begin) {
            vae_model_train_step(&m, B, &adam, 0.0f);
        } else {
            if (!g) {
                be->graph_capture_begin(be);
                vae_model_train_step(&m, B, &adam, 0.0f);
                g = be->graph_capture_end(be);
            }
            be->graph_launch(be, g);
        }
        be->download(be, *params + (size_t)(s + 1) * m.n_params, m.params, m.n_params * sizeof(float));
    }
    if (g)
        be->graph_free(be, g);
    size_t n = m.n_params;
    vae_free(x);
    vae_dataset_free(&d);
    vae_model_free(&m);
    return n;
}

json_t *tu_run_json(const char *cmd)
{
    static char out[1 << 16];
    char full[9000];
    snprintf(full, sizeof full, "(%s 2>/dev/null)", cmd);
    cr_assert_eq(tu_run(full, out, sizeof out), 0, "%s:\n%s", cmd, out);
    json_error_t err;
    json_t *o = json_loads(out, 0, &err);
    cr_assert(o && json_is_object(o), "%s: not one JSON object (%s):\n%s", cmd, err.text, out);
    return o;
}

double tu_json_num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    cr_assert(v && json_is_number(v), "no number '%s' in the JSON", key);
    return json_number_value(v);
}

const char *tu_need_torch(void)
{
    static const char *const cands[] = {"python3", "/usr/bin/python3"};
    char cmd[256], buf[256];
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        snprintf(cmd, sizeof cmd, "%s -c 'import torch, numpy'", cands[i]);
        if (tu_run(cmd, buf, sizeof buf) == 0)
            return cands[i];
    }
    cr_skip_test("PyTorch is not importable by python3 or /usr/bin/python3 (scripts/install_deps.sh --torch)");
    return NULL;
}

vae_config tu_small_config(void)
{
    vae_config c;
    vae_config_default(&c);
    c.input_dim = 13;
    c.image_rows = 1;
    c.image_cols = 13;
    c.latent_dim = 3;
    c.n_hidden = 2;
    c.hidden[0] = 11;
    c.hidden[1] = 7;
    return c;
}

void tu_small_model(vae_model *m, vae_backend *be, int B, float lr)
{
    vae_config c = tu_small_config();
    cr_assert_eq(vae_model_init(m, &c, be, B), 0);
    vae_model_set_scalar(m, VAE_SCALAR_LR, lr);
    vae_model_init_params(m, 5);
    float *x = vae_calloc((size_t)B * 13, sizeof(float)), *eps = vae_calloc((size_t)B * 3, sizeof(float));
    tu_fill_uniform(x, (size_t)B * 13, 6, 0.0f, 1.0f);
    tu_fill_uniform(eps, (size_t)B * 3, 7, -1.5f, 1.5f);
    be->upload(be, m->x, x, (size_t)B * 13 * sizeof(float));
    be->upload(be, m->noise[vae_model_gaussian(m)], eps, (size_t)B * 3 * sizeof(float));
    vae_free(x);
    vae_free(eps);
}

void tu_metrics_losses(const char *run_dir, char *dst, size_t cap)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.csv", run_dir);
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s: cannot be read", path);
    char line[8192];
    size_t w = 0;
    dst[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        char *cut = strrchr(line, ',');
        cr_assert(cut, "%s: a line without columns: %s", path, line);
        *cut = '\0';
        cut = strrchr(line, ',');
        cr_assert(cut, "%s: a line with one column: %s", path, line);
        *cut = '\0';
        int n = snprintf(dst + w, cap - w, "%s\n", line);
        cr_assert(n >= 0 && (size_t)n < cap - w, "%s: more than %zu bytes of losses", path, cap);
        w += (size_t)n;
    }
    fclose(f);
}

const tu_compare_model tu_compare_models[] = {
    {"vae", "--hidden 65 --latent 5", "model vae 784-65-5, relu, bernoulli likelihood, beta 1\n"},
    {"vae, gaussian likelihood, tanh, two layers",
     "--hidden 65,33 --latent 7 --activation tanh --likelihood gaussian --sigma 0.5 --beta 4",
     "model vae 784-65-33-7, tanh, gaussian likelihood (sigma 0.5), beta 4\n"},
    {"cvae", "--model cvae --hidden 65 --latent 5", "model cvae 784-65-5, relu, bernoulli likelihood, beta 1, 10 label "
                                                    "classes\n"},
    {"joint", "--model joint --hidden 65,33 --latent 5 --disc 7",
     "model joint 784-65-33-5, relu, bernoulli likelihood, beta 1, a categorical latent of 7 classes, temperature "
     "0.67\n"},
    {"joint, controlled capacity, annealed temperature",
     "--model joint --hidden 65 --latent 5 --capacity-z 5,8,30 --capacity-c 2,8,30 --temperature 1 "
     "--temperature-anneal 0.3",
     "a categorical latent of 10 classes, temperature 1 to 0.3, capacity-z 5,8,30, capacity-c 2,8,30\n"},
    {"dynamic binarization", "--binarize dynamic --hidden 65 --latent 5", ", dynamic binarization, "},
    {"static binarization", "--binarize static --hidden 65 --latent 5", ", static binarization, "},
    {"clipping, step learning rate, KL warm-up",
     "--clip-grad-norm 2 --lr-schedule step:1:0.5 --kl-warmup 1 --hidden 65 --latent 5",
     "step:1:0.5, KL warm-up over 1 epochs), gradients clipped to norm 2, "},
    {"toy", "--data toy", "model vae 1-100-100-1, tanh, gaussian likelihood (sigma 0.1), beta 1\n"},
    {"toy, conditional", "--data toy --model cvae --latent 2 --toy-n 3000,100",
     "model cvae 1-100-100-2, tanh, gaussian likelihood (sigma 0.1), beta 1, 4 label classes\n"},
};
const int tu_compare_model_count = (int)(sizeof tu_compare_models / sizeof tu_compare_models[0]);

void tu_st_rewrite_meta(const char *path, const char *key, const char *value)
{
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    vae_st_tensor_in *t = tu_malloc((size_t)(st.n_tensors + 1) * sizeof *t);
    vae_st_meta *meta = tu_malloc((size_t)(st.n_meta + 1) * sizeof *meta);
    for (int i = 0; i < st.n_tensors; i++) {
        cr_assert(st.tensors[i].ndim <= 4 && strcmp(st.tensors[i].dtype, "F32") == 0, "%s: tensor %s", path,
                  st.tensors[i].name);
        t[i] = (vae_st_tensor_in){.name = st.tensors[i].name, .ndim = st.tensors[i].ndim, .data = st.tensors[i].data};
        for (int d = 0; d < st.tensors[i].ndim; d++)
            t[i].shape[d] = st.tensors[i].shape[d];
    }
    int n = 0, found = 0;
    for (int i = 0; i < st.n_meta; i++) {
        if (strcmp(st.meta[i].key, key) != 0) {
            meta[n++] = st.meta[i];
        } else {
            found = 1;
            if (value)
                meta[n++] = (vae_st_meta){key, value};
        }
    }
    if (!found && value)
        meta[n++] = (vae_st_meta){key, value};
    cr_assert_eq(vae_safetensors_write(path, t, st.n_tensors, meta, n), 0, "%s", vae_last_error());
    free(t);
    free(meta);
    vae_safetensors_free(&st);
}

char *tu_st_meta(const char *path, const char *key)
{
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    const char *v = vae_safetensors_meta_get(&st, key);
    cr_assert_not_null(v, "%s: no metadata '%s'", path, key);
    char *copy = strdup(v);
    vae_safetensors_free(&st);
    return copy;
}

void tu_grid_origin(const uint8_t *px, int width, int height, int *x0, int *y0)
{
    const uint8_t *bottom = px + (size_t)(height - 1) * width;
    *x0 = 0;
    while (*x0 < width && bottom[*x0] != VAE_GRID_BORDER_VALUE)
        (*x0)++;
    cr_assert_lt(*x0, width, "no grid border in the bottom row of the picture");
    *y0 = height - 1;
    while (*y0 > 0 && px[(size_t)(*y0 - 1) * width + *x0] == VAE_GRID_BORDER_VALUE)
        (*y0)--;
}
