/*
 * sweep_plan.c: a sweep's plan (sweep.h): the base command's lists expanded into runs, each run's
 * values checked as `train` checks them, the plan written as plan.jsonl and read back, and each
 * run's state read from its run directory.
 */
#define _GNU_SOURCE
#include "sweep.h"

#include "cli.h"
#include "run_dir.h"
#include "train_settings.h"
#include "vae_util.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "version.h"

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = vae_calloc(n, 1);
    memcpy(d, s, n);
    return d;
}

/* ---- the flags a sweep passes to train ----------------------------------------------------- */

/* Flags of train that the sweep decides itself. */
static const char *const owned_flags[] = {"--out", "--resume", "--force", "--quiet", "--help"};

/* Train's flags besides its settings that a base command may give, one value for every run. */
static const struct option passthrough[] = {
    VAE_CLI_DEVICE_OPTION,
    {"scale", required_argument, 0, 0},
    {"no-lock", no_argument, 0, 0},
    {0, 0, 0, 0},
};

/* The getopt entry of train's flag `flag` ("--beta"), or NULL. */
static const struct option *train_option(const char *flag, const struct option *settings)
{
    if (strncmp(flag, "--", 2) != 0)
        return NULL;
    for (const struct option *o = settings; o->name; o++)
        if (!strcmp(o->name, flag + 2))
            return o;
    for (const struct option *o = passthrough; o->name; o++)
        if (!strcmp(o->name, flag + 2))
            return o;
    return NULL;
}

/* Apply flag = value to scratch settings t; -1 with vae_set_error when train would refuse it. */
static int check_value(vae_train_settings *t, int *given, const struct option *o, const char *value)
{
    if (o->val == 0) { /* --scale */
        int scale;
        return o->has_arg == no_argument ? 0 : vae_cli_parse_int("--scale", value, 1, 64, &scale);
    }
    int r = vae_train_setting_parse(t, given, o->val, value);
    if (r < 0)
        return -1;
    if (r == 0 && vae_cli_apply_shared(&t->s, o->val, value) < 0) /* --device, --threads */
        return -1;
    return 0;
}

static void scratch_settings(vae_train_settings *t, int *given)
{
    memset(t, 0, sizeof *t);
    memset(given, 0, VAE_TS_N * sizeof *given);
    t->samples = 64;
    t->checkpoint_every = 1;
    vae_run_settings_default(&t->s);
    vae_schedule_default(&t->schedule);
    vae_toy_default(&t->toy);
}

/* ---- lists ------------------------------------------------------------------------------- */

/* Split s at each `sep` into a new list (*n items). */
static char **split(const char *s, char sep, int *n)
{
    int count = 1;
    for (const char *p = s; *p; p++)
        count += *p == sep;
    char **out = vae_calloc((size_t)count, sizeof *out);
    *n = 0;
    const char *start = s;
    for (const char *p = s;; p++)
        if (*p == sep || !*p) {
            out[*n] = vae_calloc((size_t)(p - start) + 1, 1);
            memcpy(out[(*n)++], start, (size_t)(p - start));
            if (!*p)
                break;
            start = p + 1;
        }
    return out;
}

/* "A:B" with integers A <= B as the list A, A+1, ..., B; NULL when s is no such range. */
static char **range(const char *s, int *n)
{
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10);
    if (end == s || *end != ':' || errno)
        return NULL;
    const char *b_text = end + 1;
    long b = strtol(b_text, &end, 10);
    if (end == b_text || *end || errno || b < a || b - a >= VAE_SWEEP_MAX_RUNS)
        return NULL;
    char **out = vae_calloc((size_t)(b - a + 1), sizeof *out);
    for (long v = a; v <= b; v++) {
        out[v - a] = vae_calloc(24, 1);
        snprintf(out[v - a], 24, "%ld", v);
    }
    *n = (int)(b - a + 1);
    return out;
}

/* The alternatives of flag's value: itself when train takes it as it is, else its ';', ':' or ','
 * list; each checked alone. -1 with vae_set_error naming the flag and the bad item. */
static int alternatives(const struct option *o, const char *flag, const char *value, vae_sweep_axis *axis)
{
    vae_train_settings t;
    int given[VAE_TS_N];
    char **items = NULL;
    int n = 0;
    scratch_settings(&t, given);
    if (strchr(value, ';'))
        items = split(value, ';', &n);
    else if (check_value(&t, given, o, value) == 0) {
        items = split(value, '\0', &n); /* one value */
    } else if (!(items = range(value, &n)))
        items = split(value, ',', &n);
    axis->flag = dup_str(flag);
    axis->n = n;
    axis->values = items;
    for (int i = 0; i < n; i++) {
        scratch_settings(&t, given);
        if (!items[i][0])
            return vae_set_error("%s %s: an empty item in the list", flag, value);
        if (check_value(&t, given, o, items[i])) {
            char why[1024];
            snprintf(why, sizeof why, "%s", vae_last_error());
            return vae_set_error("%s %s: item '%s': %s", flag, value, items[i], why);
        }
    }
    return 0;
}

static void axis_free(vae_sweep_axis *a)
{
    for (int i = 0; i < a->n; i++)
        vae_free(a->values[i]);
    vae_free(a->values);
    vae_free(a->flag);
    memset(a, 0, sizeof *a);
}

/* ---- names ------------------------------------------------------------------------------- */

/* "beta=0.5_latent=2": each varied flag (without its dashes) and value, a character outside
 * [A-Za-z0-9.+=_-] as '-'; "run" when nothing varies. */
static char *run_name(const vae_sweep_plan *p, char *const *values)
{
    size_t cap = 8;
    for (int a = 0; a < p->n_axes; a++)
        cap += strlen(p->axes[a].flag) + strlen(values[a]) + 2;
    char *name = vae_calloc(cap, 1), *w = name;
    for (int a = 0; a < p->n_axes; a++) {
        w += sprintf(w, "%s%s=", a ? "_" : "", p->axes[a].flag + 2);
        for (const char *c = values[a]; *c; c++)
            *w++ = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                           strchr(".+-", *c)
                       ? *c
                       : '-';
    }
    if (!p->n_axes)
        strcpy(name, "run");
    return name;
}

/* ---- expansion --------------------------------------------------------------------------- */

int vae_sweep_expand(int argc, char **argv, const char *dir, int zip, int threads, vae_sweep_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    static const struct option none[] = {{0, 0, 0, 0}};
    struct option settings[sizeof none / sizeof none[0] + VAE_TS_N + 32];
    static const struct option shared[] = {VAE_CLI_TRAINING_OPTIONS, VAE_CLI_MODEL_OPTIONS, VAE_CLI_MODEL_KIND_OPTION,
                                           VAE_CLI_TF32_OPTION, {0, 0, 0, 0}};
    vae_train_setting_options(settings, shared, 0);
    char exe[PATH_MAX];
    const char *abs_dir = dir;
    ssize_t n_exe = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n_exe < 0)
        return vae_set_error("/proc/self/exe: %s", strerror(errno));
    exe[n_exe] = 0;
    plan->dir = dup_str(abs_dir);
    plan->cuvae = dup_str(exe);
    plan->version = dup_str(CUVAE_VERSION);
    plan->zip = zip;
    /* the base: (flag, value or NULL) pairs in order; a varied flag becomes an axis */
    const char **base_flag = vae_calloc((size_t)argc + 1, sizeof *base_flag);
    const char **base_value = vae_calloc((size_t)argc + 1, sizeof *base_value);
    int n_base = 0, threads_given = 0, rc = -1;
    for (int i = 0; i < argc; i++) {
        const char *flag = argv[i];
        for (size_t k = 0; k < sizeof owned_flags / sizeof owned_flags[0]; k++)
            if (!strcmp(flag, owned_flags[k])) {
                vae_set_error("%s: the sweep decides it (each run's directory is DIR/runs/NAME, and `cuvae sweep DIR` "
                              "continues a sweep)", flag);
                goto out;
            }
        const struct option *o = train_option(flag, settings);
        if (!o) {
            vae_set_error("%s: not a flag of cuvae train (cuvae train --help lists them)", flag);
            goto out;
        }
        for (int b = 0; b < n_base; b++)
            if (!strcmp(base_flag[b], flag)) {
                vae_set_error("%s is given twice", flag);
                goto out;
            }
        threads_given |= !strcmp(flag, "--threads");
        base_flag[n_base] = flag;
        base_value[n_base] = NULL;
        if (o->has_arg == required_argument) {
            if (i + 1 >= argc) {
                vae_set_error("%s needs a value", flag);
                goto out;
            }
            vae_sweep_axis axis;
            if (alternatives(o, flag, argv[++i], &axis)) {
                axis_free(&axis);
                goto out;
            }
            if (axis.n > 1) {
                if (plan->n_axes == VAE_SWEEP_MAX_AXES) {
                    axis_free(&axis);
                    vae_set_error("more than %d flags vary", VAE_SWEEP_MAX_AXES);
                    goto out;
                }
                plan->axes[plan->n_axes++] = axis;
                base_value[n_base] = NULL;
                base_flag[n_base] = plan->axes[plan->n_axes - 1].flag; /* a placeholder: the run's value */
            } else {
                base_value[n_base] = argv[i];
                axis_free(&axis);
            }
        }
        n_base++;
    }
    /* how many runs */
    long n_runs = 1;
    for (int a = 0; a < plan->n_axes; a++) {
        if (zip && plan->axes[a].n != plan->axes[0].n) {
            vae_set_error("--zip takes lists of one length: %s has %d values, %s has %d", plan->axes[0].flag,
                          plan->axes[0].n, plan->axes[a].flag, plan->axes[a].n);
            goto out;
        }
        n_runs = zip ? plan->axes[a].n : n_runs * plan->axes[a].n;
        if (n_runs > VAE_SWEEP_MAX_RUNS) {
            vae_set_error("the lists make more than %d runs", VAE_SWEEP_MAX_RUNS);
            goto out;
        }
    }
    plan->runs = vae_calloc((size_t)n_runs, sizeof *plan->runs);
    for (long r = 0; r < n_runs; r++) {
        vae_sweep_run *run = &plan->runs[plan->n_runs++];
        run->index = (int)r;
        run->threads = threads;
        run->values = vae_calloc((size_t)plan->n_axes + 1, sizeof *run->values);
        long rest = r;
        for (int a = plan->n_axes - 1; a >= 0; a--) { /* the last list varies fastest */
            int pick = zip ? (int)r : (int)(rest % plan->axes[a].n);
            rest = zip ? rest : rest / plan->axes[a].n;
            run->values[a] = dup_str(plan->axes[a].values[pick]);
        }
        run->name = run_name(plan, run->values);
        for (long q = 0; q < r; q++) /* two names alike after the file-name mapping: the index added */
            if (!strcmp(plan->runs[q].name, run->name)) {
                char *longer = vae_calloc(strlen(run->name) + 24, 1);
                sprintf(longer, "%s-%ld", run->name, r);
                vae_free(run->name);
                run->name = longer;
                break;
            }
        run->dir = vae_calloc(strlen(abs_dir) + strlen(run->name) + 8, 1);
        sprintf(run->dir, "%s/runs/%s", abs_dir, run->name);
        /* the argv: train, the base flags with this run's values, --threads, --out */
        run->argv = vae_calloc((size_t)2 * n_base + 6, sizeof *run->argv);
        run->argv[run->argc++] = dup_str("train");
        vae_train_settings t;
        int given[VAE_TS_N];
        char data_abs[PATH_MAX]; /* --data made absolute: the plan runs from anywhere */
        scratch_settings(&t, given);
        for (int b = 0; b < n_base; b++) {
            const char *value = base_value[b];
            for (int a = 0; a < plan->n_axes; a++)
                if (base_flag[b] == plan->axes[a].flag)
                    value = run->values[a];
            if (value && !strcmp(base_flag[b], "--data") && strcmp(value, "toy") != 0) {
                if (vae_run_abspath(value, data_abs, sizeof data_abs)) {
                    char why[1024];
                    snprintf(why, sizeof why, "%s", vae_last_error());
                    vae_set_error("--data %s", why);
                    goto out;
                }
                value = data_abs;
            }
            check_value(&t, given, train_option(base_flag[b], settings), value);
            run->argv[run->argc++] = dup_str(base_flag[b]);
            if (value)
                run->argv[run->argc++] = dup_str(value);
            if (!strcmp(base_flag[b], "--threads"))
                run->threads = atoi(value);
        }
        if (vae_train_settings_new_run(&t, given)) { /* the combination, as train checks it */
            char why[1024];
            snprintf(why, sizeof why, "%s", vae_last_error());
            vae_set_error("run %s: %s", run->name, why);
            goto out;
        }
        if (!threads_given) {
            char text[24];
            snprintf(text, sizeof text, "%d", threads);
            run->argv[run->argc++] = dup_str("--threads");
            run->argv[run->argc++] = dup_str(text);
        }
        run->argv[run->argc++] = dup_str("--out");
        run->argv[run->argc++] = dup_str(run->dir);
    }
    rc = 0;
out:
    vae_free(base_flag);
    vae_free(base_value);
    if (rc)
        vae_sweep_plan_free(plan);
    return rc;
}

void vae_sweep_plan_free(vae_sweep_plan *p)
{
    for (int r = 0; r < p->n_runs; r++) {
        vae_sweep_run *run = &p->runs[r];
        for (int a = 0; a < p->n_axes; a++)
            vae_free(run->values[a]);
        vae_free(run->values);
        for (int i = 0; i < run->argc; i++)
            vae_free(run->argv[i]);
        vae_free(run->argv);
        vae_free(run->name);
        vae_free(run->dir);
    }
    vae_free(p->runs);
    for (int a = 0; a < p->n_axes; a++)
        axis_free(&p->axes[a]);
    vae_free(p->dir);
    vae_free(p->cuvae);
    vae_free(p->version);
    memset(p, 0, sizeof *p);
}

/* ---- plan.jsonl -------------------------------------------------------------------------- */

static void append_line(char **text, size_t *len, json_t *obj)
{
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!line)
        vae_fatal("json_dumps: out of memory");
    size_t n = strlen(line);
    char *grown = vae_calloc(*len + n + 2, 1);
    if (*text)
        memcpy(grown, *text, *len);
    memcpy(grown + *len, line, n);
    grown[*len + n] = '\n';
    vae_free(*text);
    *text = grown;
    *len += n + 1;
    free(line);
    json_decref(obj);
}

char *vae_sweep_plan_text(const vae_sweep_plan *p)
{
    char *text = NULL;
    size_t len = 0;
    json_t *varied = json_array();
    for (int a = 0; a < p->n_axes; a++) {
        json_t *values = json_array();
        for (int i = 0; i < p->axes[a].n; i++)
            json_array_append_new(values, json_string(p->axes[a].values[i]));
        json_array_append_new(varied, json_pack("{s:s, s:o}", "flag", p->axes[a].flag, "values", values));
    }
    append_line(&text, &len,
                json_pack("{s:i, s:s, s:s, s:s, s:b, s:i, s:o}", "sweep", 1, "dir", p->dir, "cuvae", p->cuvae,
                          "version", p->version, "zip", p->zip, "runs", p->n_runs, "varied", varied));
    for (int r = 0; r < p->n_runs; r++) {
        const vae_sweep_run *run = &p->runs[r];
        json_t *values = json_array(), *argv = json_array();
        for (int a = 0; a < p->n_axes; a++)
            json_array_append_new(values, json_string(run->values[a]));
        for (int i = 0; i < run->argc; i++)
            json_array_append_new(argv, json_string(run->argv[i]));
        append_line(&text, &len,
                    json_pack("{s:i, s:s, s:s, s:i, s:o, s:o}", "index", run->index, "name", run->name, "dir",
                              run->dir, "threads", run->threads, "values", values, "argv", argv));
    }
    return text;
}

static char *json_dup(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? dup_str(s) : NULL;
}

int vae_sweep_plan_read(const char *dir, vae_sweep_plan *p)
{
    memset(p, 0, sizeof *p);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, VAE_SWEEP_PLAN);
    size_t len;
    char *text = vae_read_text(path, VAE_TEXT_FILE_MAX, &len);
    if (!text)
        return -1;
    int line_no = 0, rc = -1;
    long n_runs = 0; /* as the header says */
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t err;
        json_t *obj = json_loads(line, 0, &err);
        line_no++;
        if (!json_is_object(obj)) {
            json_decref(obj);
            vae_set_error("%s: line %d is not a JSON object: %s", path, line_no, err.text);
            goto out;
        }
        if (line_no == 1) {
            json_t *varied = json_object_get(obj, "varied"), *axis;
            size_t a;
            p->dir = json_dup(obj, "dir");
            p->cuvae = json_dup(obj, "cuvae");
            p->version = json_dup(obj, "version");
            p->zip = json_is_true(json_object_get(obj, "zip"));
            n_runs = json_integer_value(json_object_get(obj, "runs"));
            if (json_integer_value(json_object_get(obj, "sweep")) != 1 || !p->dir || !p->cuvae || !p->version ||
                !json_is_array(varied) || json_array_size(varied) > VAE_SWEEP_MAX_AXES || n_runs < 1 ||
                n_runs > VAE_SWEEP_MAX_RUNS) {
                json_decref(obj);
                vae_set_error("%s: its first line is not a cuvae sweep plan's header", path);
                goto out;
            }
            json_array_foreach(varied, a, axis)
            {
                json_t *values = json_object_get(axis, "values"), *v;
                size_t i;
                vae_sweep_axis *ax = &p->axes[p->n_axes++];
                ax->flag = json_dup(axis, "flag");
                ax->values = vae_calloc(json_array_size(values) + 1, sizeof *ax->values);
                json_array_foreach(values, i, v) ax->values[ax->n++] = dup_str(json_string_value(v) ? json_string_value(v) : "");
                if (!ax->flag) {
                    json_decref(obj);
                    vae_set_error("%s: a varied flag without its name", path);
                    goto out;
                }
            }
            p->runs = vae_calloc((size_t)n_runs, sizeof *p->runs);
            p->n_runs = 0;
            json_decref(obj);
            continue;
        }
        json_t *values = json_object_get(obj, "values"), *argv = json_object_get(obj, "argv"), *v;
        size_t i;
        if (p->n_runs >= n_runs || !p->runs ||
            json_integer_value(json_object_get(obj, "index")) != p->n_runs || !json_is_array(values) ||
            (int)json_array_size(values) != p->n_axes || !json_is_array(argv) || json_array_size(argv) < 1) {
            json_decref(obj);
            vae_set_error("%s: line %d is not run %d of the plan", path, line_no, p->n_runs);
            goto out;
        }
        vae_sweep_run *run = &p->runs[p->n_runs++];
        run->index = p->n_runs - 1;
        run->name = json_dup(obj, "name");
        run->dir = json_dup(obj, "dir");
        run->threads = (int)json_integer_value(json_object_get(obj, "threads"));
        run->values = vae_calloc((size_t)p->n_axes + 1, sizeof *run->values);
        json_array_foreach(values, i, v) run->values[i] = dup_str(json_string_value(v) ? json_string_value(v) : "");
        run->argv = vae_calloc(json_array_size(argv) + 1, sizeof *run->argv);
        json_array_foreach(argv, i, v) run->argv[run->argc++] = dup_str(json_string_value(v) ? json_string_value(v) : "");
        json_decref(obj);
        if (!run->name || !run->dir || !run->name[0] || strchr(run->name, '/')) {
            vae_set_error("%s: run %d has no name or directory", path, run->index);
            goto out;
        }
    }
    if (line_no == 0)
        vae_set_error("%s: empty", path);
    else if (p->n_runs != n_runs)
        vae_set_error("%s: %d runs of the %ld its header announces (a damaged plan)", path, p->n_runs, n_runs);
    else
        rc = 0;
out:
    vae_free(text);
    if (rc)
        vae_sweep_plan_free(p);
    return rc;
}

int vae_sweep_plan_same(const vae_sweep_plan *a, const vae_sweep_plan *b)
{
    if (a->n_runs != b->n_runs)
        return 0;
    for (int r = 0; r < a->n_runs; r++) {
        const vae_sweep_run *x = &a->runs[r], *y = &b->runs[r];
        if (strcmp(x->name, y->name) || strcmp(x->dir, y->dir) || x->argc != y->argc)
            return 0;
        for (int i = 0; i < x->argc; i++)
            if (strcmp(x->argv[i], y->argv[i]))
                return 0;
    }
    return 1;
}

void vae_sweep_plan_print(const vae_sweep_plan *p, FILE *f)
{
    fprintf(f, "sweep %s: %d run%s", p->dir, p->n_runs, p->n_runs == 1 ? "" : "s");
    for (int a = 0; a < p->n_axes; a++)
        fprintf(f, "%s %s (%d values)", a ? "," : " over", p->axes[a].flag, p->axes[a].n);
    fprintf(f, "%s\n", p->n_axes > 1 ? (p->zip ? ", zipped" : ", every combination") : "");
    for (int r = 0; r < p->n_runs; r++) {
        const vae_sweep_run *run = &p->runs[r];
        fprintf(f, "%4d  %s\n      %s", r, run->name, p->cuvae);
        for (int i = 0; i < run->argc; i++)
            fprintf(f, " %s", run->argv[i]);
        fputc('\n', f);
    }
}

vae_sweep_state vae_sweep_run_state(const vae_sweep_plan *p, int i)
{
    char path[PATH_MAX + 64];
    struct stat st;
    snprintf(path, sizeof path, "%s/failed/%s", p->dir, p->runs[i].name);
    if (stat(path, &st) == 0)
        return VAE_SWEEP_FAILED;
    snprintf(path, sizeof path, "%s/model.safetensors", p->runs[i].dir);
    if (stat(path, &st) == 0)
        return VAE_SWEEP_FINISHED;
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", p->runs[i].dir);
    return stat(path, &st) == 0 ? VAE_SWEEP_INTERRUPTED : VAE_SWEEP_NEW;
}
