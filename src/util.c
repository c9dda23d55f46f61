/*
 * util.c: the error channel, checked allocation, checked file output
 * (whole files written atomically: vae_atomic_*) and the opening of input
 * files that refuses what is not a regular file (vae_open_regular), declared
 * in vae_util.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "vae_util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

static _Thread_local char vae_error_buf[1024];

int vae_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vae_error_buf, sizeof vae_error_buf, fmt, ap);
    va_end(ap);
    return -1;
}

const char *vae_last_error(void)
{
    return vae_error_buf;
}

void vae_fatal_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "cuvae: fatal: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (%s:%d)\n", file, line);
    exit(1);
}

void *vae_calloc_at(size_t count, size_t size, const char *file, int line)
{
    size_t bytes;
    if (vae_mul_overflow(count, size, &bytes))
        vae_fatal_at(file, line, "calloc(%zu, %zu): size overflows", count, size);
    void *p = calloc(bytes ? count : 1, bytes ? size : 1);
    if (!p)
        vae_fatal_at(file, line, "calloc(%zu, %zu): out of memory (%zu bytes)", count, size, bytes);
    return p;
}

void vae_free(void *p)
{
    free(p);
}

int vae_mul_overflow(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

char *vae_format_memory_shortfall(char *buf, size_t len, size_t need_bytes, size_t free_bytes, const char *where)
{
    const size_t mib = (size_t)1 << 20;
    size_t need_mib = need_bytes / mib + (need_bytes % mib != 0);
    snprintf(buf, len, "needs %zu MiB, %zu MiB free on %s", need_mib, free_bytes / mib, where);
    return buf;
}

int vae_mkdir_p(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return vae_set_error("invalid directory path '%s'", path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return vae_set_error("cannot create directory '%s': %s", buf, strerror(errno));
        struct stat st;
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
            return vae_set_error("'%s' exists and is not a directory", buf);
        buf[i] = c;
    }
    return 0;
}

double vae_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int vae_sync_parent_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        return 0; /* too long to name here; the rename has happened, the data is synced */
    int fd = open(dir, O_RDONLY);
    if (fd < 0)
        return vae_set_error("%s: written, but cannot open its directory \"%s\" to sync it: %s", path,
                             dir, strerror(errno));
    /* EINVAL: the file system does not support syncing directories. */
    if (fsync(fd) != 0 && errno != EINVAL) {
        int e = errno;
        close(fd);
        return vae_set_error("%s: written, but syncing its directory \"%s\" failed: %s", path, dir,
                             strerror(e));
    }
    if (close(fd) != 0)
        return vae_set_error("%s: written, but closing its directory \"%s\" failed: %s", path, dir,
                             strerror(errno));
    return 0;
}

const char *vae_file_type_name(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symbolic link";
    default: return "not a regular file";
    }
}

int vae_open_regular(const char *path)
{
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return vae_set_error("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return vae_set_error("%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return vae_set_error("%s: is %s, not a regular file", path, vae_file_type_name(st.st_mode));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return vae_set_error("%s: cannot clear O_NONBLOCK: %s", path, strerror(e));
    }
    return fd;
}

FILE *vae_fopen_regular(const char *path)
{
    int fd = vae_open_regular(path);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        vae_set_error("%s: fdopen: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}

char *vae_read_text(const char *path, size_t cap, size_t *len)
{
    FILE *f = vae_fopen_regular(path);
    if (!f)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (uint64_t)st.st_size > cap) {
        fclose(f);
        vae_set_error("%s: %lld bytes, more than the %zu a text file of cuvae may hold", path,
                      (long long)st.st_size, cap);
        return NULL;
    }
    const size_t size = (size_t)st.st_size;
    char *buf = vae_calloc(size + 2, 1);
    size_t n = fread(buf, 1, size + 1, f); /* one byte more: a file that grew is not read past its size */
    int err = ferror(f);
    fclose(f);
    if (err || n != size) {
        vae_free(buf);
        vae_set_error("%s: %s", path, err ? "read failed" : "changed size while it was read");
        return NULL;
    }
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

int vae_atomic_open(vae_atomic_file *a, const char *path)
{
    const size_t n = strlen(path);
    a->path = path;
    a->f = NULL;
    a->tmp = NULL;
    /* the rename would replace whatever stands at path: a device node or a FIFO is refused, not
     * replaced by a regular file (a symbolic link is followed to what it names; onto a directory
     * the rename fails by itself) */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
        return vae_set_error("%s: is %s; refusing to replace it with a regular file", path,
                             vae_file_type_name(st.st_mode));
    a->tmp = vae_calloc(n + 5, 1);
    memcpy(a->tmp, path, n);
    memcpy(a->tmp + n, ".tmp", 5);
    /* O_NONBLOCK: a stale "<path>.tmp" that is a FIFO fails here (ENXIO without a reader), not waits */
    int fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0666);
    if (fd >= 0) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 || !(a->f = fdopen(fd, "wb")))
            close(fd);
    }
    if (!a->f) {
        vae_set_error("%s: cannot create \"%s\": %s", path, a->tmp, strerror(errno));
        vae_free(a->tmp);
        a->tmp = NULL;
        return -1;
    }
    return 0;
}

void vae_atomic_abort(vae_atomic_file *a)
{
    if (a->f)
        fclose(a->f); /* already failing; the first error is the one reported */
    a->f = NULL;
    if (a->tmp)
        remove(a->tmp);
    vae_free(a->tmp);
    a->tmp = NULL;
}

int vae_atomic_commit(vae_atomic_file *a)
{
    int rc = -1;
    if (fflush(a->f) != 0) {
        vae_set_error("%s: writing \"%s\" failed: %s", a->path, a->tmp, strerror(errno));
    } else if (fsync(fileno(a->f)) != 0) {
        vae_set_error("%s: fsync of \"%s\" failed: %s", a->path, a->tmp, strerror(errno));
    } else {
        FILE *closing = a->f;
        a->f = NULL;
        if (fclose(closing) != 0)
            vae_set_error("%s: closing \"%s\" failed: %s", a->path, a->tmp, strerror(errno));
        else if (rename(a->tmp, a->path) != 0)
            vae_set_error("%s: cannot rename \"%s\" onto it: %s", a->path, a->tmp, strerror(errno));
        else
            rc = 0;
    }
    if (rc) {
        vae_atomic_abort(a);
        return -1;
    }
    vae_free(a->tmp);
    a->tmp = NULL;
    return vae_sync_parent_dir(a->path);
}

size_t vae_first_non_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return n;
}

const char *vae_non_finite_name(float v)
{
    return isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf";
}

const char *vae_name_of(const char *const *names, int n, int value)
{
    return value >= 0 && value < n && names[value] ? names[value] : "?";
}

int vae_name_find(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], s) == 0)
            return i;
    return -1;
}
