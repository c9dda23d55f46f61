/*
 * run_dir.c: run directories, their provenance and atomic text files; see run_dir.h.
 */
#define _GNU_SOURCE
#include "run_dir.h"

#include "safetensors.h"

#include "sha256.h"
#include "vae_util.h"
#include "version.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *const vae_run_files[VAE_RUN_N_FILES] = {
    "model.safetensors", "best.safetensors", "checkpoint.safetensors", "metrics.csv", "metrics.jsonl",
    "provenance.txt",    "samples.png",      "reconstructions.png",    "report.html",
    /* the pictures (pictures.h vae_pictures[]) */
    "latent_scatter.svg", "manifold.png", "traversals.png", "interpolation.png", "per_digit.png", "loss_curves.svg",
    /* the toy's pictures (toy_pictures.h vae_toy_pictures[]) */
    "toy_density.svg", "toy_latent.svg", "toy_generated.svg",
};

int vae_run_escape(const char *in, char *out, size_t cap)
{
    char *esc = vae_safetensors_escape(in);
    size_t n = strlen(esc);
    int rc = n < cap ? 0 : -1;
    if (!rc)
        memcpy(out, esc, n + 1);
    vae_free(esc);
    return rc;
}

int vae_run_unescape(const char *in, char *out, size_t cap)
{
    char *raw = vae_safetensors_unescape(in);
    if (!raw)
        return vae_set_error("recorded path '%.200s' has a malformed escape", in);
    size_t n = strlen(raw);
    int rc = n < cap ? 0 : vae_set_error("recorded path '%.200s' is too long", in);
    if (!rc)
        memcpy(out, raw, n + 1);
    vae_free(raw);
    return rc;
}

int vae_run_dir_create_unique(const char *parent, char *out, size_t cap)
{
    if (vae_mkdir_p(parent))
        return -1;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    for (int k = 0; k < 1000; k++) {
        int w = k ? snprintf(out, cap, "%s/vae-%s-%ld-%d", parent, stamp, (long)getpid(), k)
                  : snprintf(out, cap, "%s/vae-%s-%ld", parent, stamp, (long)getpid());
        if (w < 0 || (size_t)w >= cap)
            return vae_set_error("%s: directory path too long", parent);
        if (mkdir(out, 0755) == 0)
            return 0;
        if (errno != EEXIST)
            return vae_set_error("cannot create run directory %s: %s", out, strerror(errno));
    }
    return vae_set_error("cannot create a unique run directory in %s", parent);
}

int vae_run_dir_count_files(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return errno == ENOENT ? 0 : vae_set_error("cannot use --out %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return vae_set_error("--out %s exists and is not a directory", dir);
    int n = 0;
    for (int i = 0; i < VAE_RUN_N_FILES; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", dir, vae_run_files[i]);
        if (lstat(path, &st) == 0)
            n++;
        snprintf(path, sizeof path, "%s/%s.tmp", dir, vae_run_files[i]);
        if (lstat(path, &st) == 0)
            n++;
    }
    return n;
}

int vae_run_dir_check_writable(const char *dir)
{
    if (vae_mkdir_p(dir)) {
        char why[512];
        snprintf(why, sizeof why, "%s", vae_last_error());
        return vae_set_error("cannot use --out %s: %s", dir, why);
    }
    char probe[PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s/.cuvae-write-test-XXXXXX", dir);
    int fd = mkstemp(probe);
    if (fd < 0)
        return vae_set_error("cannot write to --out %s: %s", dir, strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}

void vae_run_dir_remove_stale(const char *dir)
{
    for (int i = 0; i < VAE_RUN_N_FILES; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s.tmp", dir, vae_run_files[i]);
        unlink(path); /* absent is the usual case */
    }
}

int vae_run_dir_clear(const char *dir)
{
    vae_run_dir_remove_stale(dir);
    for (int i = 0; i < VAE_RUN_N_FILES; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", dir, vae_run_files[i]);
        if (unlink(path) != 0 && errno != ENOENT)
            return vae_set_error("--force: cannot remove %s: %s", path, strerror(errno));
    }
    return vae_sync_parent_dir(dir);
}

int vae_run_write_text(const char *dir, const char *name, const char *text, size_t len)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    vae_atomic_file out;
    if (vae_atomic_open(&out, path))
        return -1;
    if (fwrite(text, 1, len, out.f) != len) {
        vae_set_error("%s: writing \"%s\" failed: %s", path, out.tmp, strerror(errno));
        vae_atomic_abort(&out);
        return -1;
    }
    return vae_atomic_commit(&out);
}

int vae_run_abspath(const char *path, char *out, size_t cap)
{
    char buf[PATH_MAX];
    if (!realpath(path, buf))
        return vae_set_error("%s: %s", path, strerror(errno));
    if (strlen(buf) >= cap)
        return vae_set_error("%s: path too long", path);
    snprintf(out, cap, "%s", buf);
    return 0;
}

int vae_run_data_hash(const char *dir, vae_run_data *d)
{
    memset(d, 0, sizeof *d);
    if (vae_run_abspath(dir, d->dir, sizeof d->dir))
        return -1;
    d->n_files = 4;
    for (int split = 0; split < 2; split++) {
        char paths[2][4096];
        if (vae_dataset_file_paths(d->dir, (vae_split)split, paths))
            return -1;
        for (int i = 0; i < 2; i++) {
            memcpy(d->path[2 * split + i], paths[i], sizeof paths[i]);
            if (vae_sha256_file(paths[i], d->sha256[2 * split + i]))
                return -1;
        }
    }
    return 0;
}

const char *vae_run_data_name(const vae_run_data *d, int i)
{
    const char *slash = strrchr(d->path[i], '/');
    return slash ? slash + 1 : d->path[i];
}

/* Append s to the growing string *buf (length *len, capacity *cap). */
static void append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t c = (*len + n + 1) * 2;
        char *b = vae_calloc(c, 1);
        if (*buf)
            memcpy(b, *buf, *len);
        vae_free(*buf);
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

char *vae_run_provenance(const char *what, int argc, char **argv, const char *device, const vae_run_data *d)
{
    char *buf = NULL, line[4 * 4096 + 256];
    size_t len = 0, cap = 0;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32], host[256] = "unknown";
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = 0;
    snprintf(line, sizeof line, "%s: %s\ncommand:", what, stamp);
    append(&buf, &len, &cap, line);
    for (int i = 0; i < argc; i++) {
        char *esc = vae_calloc(4 * strlen(argv[i]) + 1, 1);
        vae_run_escape(argv[i], esc, 4 * strlen(argv[i]) + 1);
        int quote = esc[0] == 0 || strpbrk(esc, " \t'\"$`*?[]{}()<>|&;#~!") != NULL;
        append(&buf, &len, &cap, quote ? " '" : " ");
        append(&buf, &len, &cap, esc);
        if (quote)
            append(&buf, &len, &cap, "'");
        vae_free(esc);
    }
    char esc[4 * 4096 + 1];
    snprintf(line, sizeof line, "\nversion: %s\ncommit: %s\nhost: %s\ndevice: %s\n", CUVAE_VERSION, CUVAE_COMMIT,
             host, device);
    append(&buf, &len, &cap, line);
    vae_run_escape(d->dir, esc, sizeof esc);
    snprintf(line, sizeof line, "data: %s\n", esc);
    append(&buf, &len, &cap, line);
    for (int i = 0; i < d->n_files; i++) {
        vae_run_escape(d->path[i], esc, sizeof esc);
        snprintf(line, sizeof line, "sha256: %s  %s\n", d->sha256[i], esc);
        append(&buf, &len, &cap, line);
    }
    return buf;
}
