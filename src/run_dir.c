/*
 * run_dir.c: run directories, their provenance and atomic text files; see run_dir.h.
 */
#define _GNU_SOURCE
#include "run_dir.h"

#include "pictures.h"
#include "safetensors.h"
#include "sha256.h"
#include "toy_pictures.h"
#include "vae_util.h"
#include "version.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The run's own files; the pictures follow, from their lists (pictures.h VAE_PICTURE_KINDS,
 * toy_pictures.h VAE_TOY_PICTURE_KINDS). */
#define RUN_OWN_FILES(X)                                                                                    \
    X("model.safetensors") X("best.safetensors") X("checkpoint.safetensors") X("metrics.csv")              \
    X("metrics.jsonl") X("metrics_steps.csv") X("metrics_steps.jsonl") X("provenance.txt") X("samples.png") X("reconstructions.png") X("report.html")

const char *const vae_run_files[VAE_RUN_N_FILES] = {
#define RUN_FILE(file) file,
#define RUN_PICTURE(id, file, caption) file,
#define RUN_TOY_PICTURE(id, file) file,
    RUN_OWN_FILES(RUN_FILE) VAE_PICTURE_KINDS(RUN_PICTURE) VAE_TOY_PICTURE_KINDS(RUN_TOY_PICTURE)
#undef RUN_TOY_PICTURE
#undef RUN_PICTURE
#undef RUN_FILE
};

#define RUN_COUNT(file) +1
_Static_assert(0 RUN_OWN_FILES(RUN_COUNT) + VAE_PICTURES_N + VAE_TOY_N_PICTURES == VAE_RUN_N_FILES,
               "VAE_RUN_N_FILES (run_dir.h) is not the count of the run's own files and the pictures");
#undef RUN_COUNT

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

/* The snapshots a run drew while training (toy_pictures.h: toy_snapshot_<step>.svg, and their .tmp). */
static int remove_snapshots(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0; /* nothing to list: nothing of ours there */
    const size_t plen = strlen(VAE_TOY_SNAPSHOT_PREFIX);
    struct dirent *ent;
    int rc = 0;
    while (!rc && (ent = readdir(d))) {
        const char *name = ent->d_name;
        const size_t n = strlen(name);
        if (strncmp(name, VAE_TOY_SNAPSHOT_PREFIX, plen) != 0 ||
            !((n > plen + 4 && strcmp(name + n - 4, ".svg") == 0) || (n > plen + 8 && strcmp(name + n - 8, ".svg.tmp") == 0)))
            continue;
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (unlink(path) != 0 && errno != ENOENT)
            rc = vae_set_error("--force: cannot remove %s: %s", path, strerror(errno));
    }
    closedir(d);
    return rc;
}

int vae_run_dir_clear(const char *dir)
{
    vae_run_dir_remove_stale(dir);
    if (remove_snapshots(dir))
        return -1;
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

/* ---- the run directory's lock ---------------------------------------------------- */

enum { LOCK_TAKEN, LOCK_BUSY, LOCK_REFUSED };

static int lock_test_refuses(const char *kind)
{
    const char *t = getenv("CUVAE_TEST_LOCKS");
    return t && (strcmp(t, "none") == 0 || strcmp(t, kind) == 0);
}

static int lock_errno_refused(int e) { return e == ENOLCK || e == EOPNOTSUPP || e == EINVAL || e == ENOSYS; }

static int lock_flock(int fd)
{
    if (lock_test_refuses("posix"))
        return LOCK_REFUSED;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return LOCK_TAKEN;
    if (errno == EWOULDBLOCK)
        return LOCK_BUSY;
    return lock_errno_refused(errno) ? LOCK_REFUSED : -errno;
}

/* A POSIX write lock on the whole file; *pid the holder's when busy (0 when unknown). */
static int lock_posix(int fd, long *pid)
{
    *pid = 0;
    if (lock_test_refuses("none"))
        return LOCK_REFUSED;
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_SETLK, &l) == 0)
        return LOCK_TAKEN;
    if (errno == EACCES || errno == EAGAIN) {
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK && q.l_pid > 0)
            *pid = (long)q.l_pid;
        return LOCK_BUSY;
    }
    return lock_errno_refused(errno) ? LOCK_REFUSED : -errno;
}

/* The pid the holder wrote into the lock file (0 when none is there yet). */
static long lock_file_pid(int fd)
{
    for (int tries = 0; tries < 20; tries++) {
        char buf[32] = {0};
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
        if (pid > 0)
            return pid;
        usleep(5000); /* the holder writes it just after taking the lock */
    }
    return 0;
}

int vae_run_dir_lock(const char *dir, const char *what, int allow_unlocked, int *fd_out)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, VAE_RUN_LOCK_FILE);
    *fd_out = -1;
    for (int attempt = 0; attempt < 10; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
        if (fd < 0)
            return vae_set_error("%s: cannot open its lock file %s: %s", what, path, strerror(errno));
        struct stat st, now;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return vae_set_error("%s: its lock file %s is not a regular file", what, path);
        }
        long pid = 0;
        int f = lock_flock(fd), p = f == LOCK_BUSY ? LOCK_BUSY : lock_posix(fd, &pid);
        if (f < 0 || p < 0) {
            int e = f < 0 ? -f : -p;
            close(fd);
            return vae_set_error("%s: locking %s failed: %s", what, path, strerror(e));
        }
        if (f == LOCK_BUSY || p == LOCK_BUSY) {
            if (!pid)
                pid = lock_file_pid(fd);
            close(fd);
            char holder[64] = "another process";
            if (pid > 0)
                snprintf(holder, sizeof holder, "another process (pid %ld)", pid);
            return vae_set_error("%s: the run directory %s is in use: %s holds its lock (%s); wait for it to "
                                 "end, or use another directory",
                                 what, dir, holder, path);
        }
        if (f == LOCK_REFUSED && p == LOCK_REFUSED) {
            close(fd);
            if (!allow_unlocked)
                return vae_set_error("%s: the file system of %s refuses both flock and POSIX record locks, so "
                                     "nothing would keep a second process from writing into the run; pass "
                                     "--no-lock to run there unprotected",
                                     what, dir);
            fprintf(stderr, "warning: %s: the file system refuses locks; running without one (--no-lock): "
                            "nothing keeps a second process from writing into %s\n",
                    what, dir);
            return 0;
        }
        /* The file locked must still be the one at path: a directory removed and made again
         * meanwhile would leave this lock on a file no one else can find. */
        if (stat(path, &now) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
            close(fd);
            continue;
        }
        char line[32];
        int n = snprintf(line, sizeof line, "%-20ld\n", (long)getpid());
        if (pwrite(fd, line, (size_t)n, 0) != n || ftruncate(fd, n) != 0) {
            int e = errno;
            close(fd);
            return vae_set_error("%s: writing the lock file %s failed: %s", what, path, strerror(e));
        }
        *fd_out = fd;
        return 0;
    }
    return vae_set_error("%s: the lock file %s kept being replaced while it was locked", what, path);
}
