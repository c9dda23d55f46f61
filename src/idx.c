/*
 * idx.c: the IDX reader declared in idx.h.
 *
 * The file is opened with open() (so a missing file reports strerror), checked
 * to be a regular file, and read through zlib's gzdopen()/gzread(), which
 * passes a raw file through unchanged and inflates a gzip file. For a raw file
 * the size on disk is compared with the size the header promises before any
 * data is allocated; for a gzip file, whose size is known only by inflating
 * it, the data buffer grows in steps so that a tiny file claiming a huge
 * array cannot make us allocate the whole claim up front.
 */
#define _POSIX_C_SOURCE 200809L
#include "idx.h"
#include "vae_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enum {
    IDX_TYPE_UBYTE = 0x08,
    IDX_MAX_RANK = 4,
};

/* Largest single gzread() request; gzread takes an unsigned and returns an int. */
#define IDX_READ_CHUNK ((size_t)1 << 30)
/* First size of the data buffer of a gzip file whose header promises more. */
#define IDX_GROW_START ((size_t)64 << 20)
/* Trailing bytes after the data are counted up to this many, then "more than". */
#define IDX_TRAILING_COUNT_MAX ((size_t)16 << 20)

/* The name of an IDX element type, or NULL for a byte no IDX file uses. */
static const char *idx_type_name(int type)
{
    switch (type) {
    case 0x08: return "uint8";
    case 0x09: return "int8";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return NULL;
    }
}

/* zlib's message for the error state of gz, without the "<fd:N>: " prefix
 * that gzdopen'ed streams put in front of it. */
static const char *idx_gz_message(gzFile gz)
{
    int zerr = Z_OK;
    const char *msg = gzerror(gz, &zerr);
    if (!msg || !*msg)
        return "unknown zlib error";
    if (strncmp(msg, "<fd:", 4) == 0) {
        const char *p = strstr(msg, ">: ");
        if (p)
            return p + 3;
    }
    return msg;
}

/* Read up to n bytes into buf (n bytes of storage), in chunks gzread accepts.
 * Returns the number of bytes read, fewer than n only at the end of the data
 * or on an error; *zerr is then zlib's error state (Z_OK at a clean end,
 * Z_BUF_ERROR when a gzip stream stops early, Z_DATA_ERROR when it is
 * corrupt, Z_ERRNO when reading the file failed). */
static size_t idx_gz_read(gzFile gz, uint8_t *buf, size_t n, int *zerr)
{
    size_t got = 0;
    *zerr = Z_OK;
    while (got < n) {
        size_t want = n - got < IDX_READ_CHUNK ? n - got : IDX_READ_CHUNK;
        int r = gzread(gz, buf + got, (unsigned)want);
        if (r < 0) {
            gzerror(gz, zerr);
            if (*zerr == Z_OK)
                *zerr = Z_ERRNO;
            break;
        }
        got += (size_t)r;
        if ((size_t)r < want) {
            gzerror(gz, zerr);
            break;
        }
    }
    return got;
}

/* Record the message for zlib error `zerr`. zlib inflates ahead of what we
 * have asked for, so the error need not lie in the part being read. */
static int idx_gz_fail(const char *path, gzFile gz, int zerr)
{
    if (zerr == Z_ERRNO)
        return vae_set_error("%s: read error: %s", path, idx_gz_message(gz));
    if (zerr == Z_MEM_ERROR)
        vae_fatal("%s: zlib ran out of memory", path);
    return vae_set_error("%s: corrupt gzip stream: %s", path, idx_gz_message(gz));
}

/* Format dims[0..ndim-1] as "a x b x c" into buf. */
static const char *idx_format_dims(const uint32_t *dims, int ndim, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndim && len < size; i++) {
        int w = snprintf(buf + len, size - len, i ? " x %u" : "%u", (unsigned)dims[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    return buf;
}

/* Parse and check the magic and dimensions; fills ndim, dims and count. */
static int idx_read_header(const char *path, gzFile gz, vae_idx *out, size_t *header_bytes)
{
    uint8_t magic[4];
    int zerr;
    size_t got = idx_gz_read(gz, magic, sizeof magic, &zerr);
    if (zerr != Z_OK && zerr != Z_BUF_ERROR)
        return idx_gz_fail(path, gz, zerr);
    if (got == 0 && zerr == Z_BUF_ERROR)
        return vae_set_error("%s: truncated gzip stream: it ends before any data (%s)", path,
                             idx_gz_message(gz));
    if (got == 0)
        return vae_set_error("%s: empty file (expected an IDX header)", path);
    if (got < sizeof magic)
        return vae_set_error("%s: truncated header: expected a 4-byte magic number, found %zu bytes%s",
                             path, got, zerr == Z_BUF_ERROR ? " (gzip stream ends early)" : "");

    uint32_t m = (uint32_t)magic[0] << 24 | (uint32_t)magic[1] << 16 | (uint32_t)magic[2] << 8 | magic[3];
    if (magic[0] != 0 || magic[1] != 0)
        return vae_set_error("%s: bad magic 0x%08X (expected 0x0000080N); not an IDX file", path,
                             (unsigned)m);
    const char *type_name = idx_type_name(magic[2]);
    if (!type_name)
        return vae_set_error("%s: bad magic 0x%08X: unknown element type 0x%02X "
                             "(IDX types are 0x08, 0x09 and 0x0B to 0x0E)",
                             path, (unsigned)m, magic[2]);
    if (magic[2] != IDX_TYPE_UBYTE)
        return vae_set_error("%s: unsupported element type 0x%02X (%s); "
                             "cuvae reads unsigned-byte IDX only", path, magic[2], type_name);
    int ndim = magic[3];
    if (ndim < 1 || ndim > IDX_MAX_RANK)
        return vae_set_error("%s: rank %d in magic 0x%08X is not supported (cuvae reads rank 1 to %d)",
                             path, ndim, (unsigned)m, IDX_MAX_RANK);

    uint8_t raw[4 * IDX_MAX_RANK];
    size_t need = 4 * (size_t)ndim;
    got = idx_gz_read(gz, raw, need, &zerr);
    if (zerr != Z_OK && zerr != Z_BUF_ERROR)
        return idx_gz_fail(path, gz, zerr);
    if (got < need)
        return vae_set_error("%s: truncated header: expected %d dimension sizes (%zu bytes), found %zu bytes%s",
                             path, ndim, need, got,
                             zerr == Z_BUF_ERROR ? " (gzip stream ends early)" : "");

    uint32_t dims[IDX_MAX_RANK];
    for (int i = 0; i < ndim; i++) {
        const uint8_t *b = raw + 4 * i;
        dims[i] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    }
    char text[96];
    for (int i = 0; i < ndim; i++) {
        if (dims[i] == 0)
            return vae_set_error("%s: dimension %d of %d is zero (dimensions %s)", path, i + 1, ndim,
                                 idx_format_dims(dims, ndim, text, sizeof text));
    }
    /* Every factor is below 2^32 and the running product stays at or below
     * VAE_IDX_MAX_BYTES < 2^31, so the 64-bit products cannot overflow. */
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        count *= dims[i];
        if (count > VAE_IDX_MAX_BYTES)
            return vae_set_error("%s: dimensions %s exceed the limit of %zu bytes of data", path,
                                 idx_format_dims(dims, ndim, text, sizeof text), VAE_IDX_MAX_BYTES);
    }

    out->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        out->dims[i] = (int)dims[i];
    out->count = (size_t)count;
    *header_bytes = sizeof magic + need;
    return 0;
}

/* Read exactly out->count data bytes into a new out->data. */
static int idx_read_data(const char *path, gzFile gz, vae_idx *out)
{
    size_t count = out->count;
    size_t cap = gzdirect(gz) || count <= IDX_GROW_START ? count : IDX_GROW_START;
    uint8_t *buf = vae_calloc(cap, 1);
    size_t got = 0;
    int zerr = Z_OK;
    for (;;) {
        got += idx_gz_read(gz, buf + got, cap - got, &zerr);
        if (got < cap || cap == count)
            break;
        size_t grown = cap * 2 < count ? cap * 2 : count;
        uint8_t *bigger = vae_calloc(grown, 1);
        memcpy(bigger, buf, got);
        vae_free(buf);
        buf = bigger;
        cap = grown;
    }
    if (zerr != Z_OK && zerr != Z_BUF_ERROR) {
        vae_free(buf);
        return idx_gz_fail(path, gz, zerr);
    }
    if (got < count) {
        vae_free(buf);
        return vae_set_error("%s: truncated: expected %zu bytes of data, found %zu%s", path, count, got,
                             zerr == Z_BUF_ERROR ? " (gzip stream ends early)" : "");
    }
    out->data = buf;
    return 0;
}

/* After the data the stream must end, cleanly: no more bytes, and for gzip an
 * intact trailer (CRC and length). */
static int idx_check_end(const char *path, gzFile gz)
{
    uint8_t scratch[1 << 16];
    size_t extra = 0;
    int zerr = Z_OK;
    for (;;) {
        size_t got = idx_gz_read(gz, scratch, sizeof scratch, &zerr);
        extra += got;
        if (got < sizeof scratch || extra > IDX_TRAILING_COUNT_MAX)
            break;
    }
    if (zerr != Z_OK && zerr != Z_BUF_ERROR)
        return idx_gz_fail(path, gz, zerr);
    if (extra > IDX_TRAILING_COUNT_MAX)
        return vae_set_error("%s: more than %zu trailing bytes after the data the header describes",
                             path, IDX_TRAILING_COUNT_MAX);
    if (extra > 0)
        return vae_set_error("%s: %zu trailing bytes after the data the header describes", path, extra);
    if (zerr == Z_BUF_ERROR)
        return vae_set_error("%s: truncated gzip stream: it ends before its trailer (%s)", path,
                             idx_gz_message(gz));
    return 0;
}

/* gzread() decodes concatenated gzip members but silently drops whatever
 * follows the last member when it is not another member. Walk the members of
 * the gzip file open at fd (raw bytes, from offset 0, not moving its offset)
 * and refuse bytes after the last one. Only run after gzread() read the file
 * cleanly, so a stream error here means the file changed under us. */
static int idx_gz_check_members(const char *path, int fd)
{
    enum { IN = 1 << 16, OUT = 1 << 16 };
    uint8_t *in = vae_calloc(IN, 1), *out = vae_calloc(OUT, 1);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        vae_fatal("%s: inflateInit2 failed (out of memory)", path);
    off_t at = 0;
    int rc = 0, ended = 0;
    for (;;) {
        if (zs.avail_in == 0) {
            ssize_t got = pread(fd, in, IN, at);
            if (got < 0) {
                rc = vae_set_error("%s: read error: %s", path, strerror(errno));
                break;
            }
            at += got;
            zs.next_in = in;
            zs.avail_in = (uInt)got;
            if (got == 0) {
                if (!ended)
                    rc = vae_set_error("%s: the gzip data ends inside a member (truncated, or stray bytes "
                                       "after the last member)", path);
                break;
            }
        }
        if (ended) {
            /* bytes after a member: another member, or trailing garbage */
            if (zs.next_in[0] != 0x1f || (zs.avail_in > 1 && zs.next_in[1] != 0x8b)) {
                off_t left = (off_t)zs.avail_in;
                struct stat sb;
                if (fstat(fd, &sb) == 0 && sb.st_size > at)
                    left += sb.st_size - at;
                rc = vae_set_error("%s: %lld trailing bytes after the end of the gzip stream", path,
                                   (long long)left);
                break;
            }
            if (inflateReset(&zs) != Z_OK)
                vae_fatal("%s: inflateReset failed", path);
            ended = 0;
        }
        zs.next_out = out;
        zs.avail_out = OUT;
        int z = inflate(&zs, Z_NO_FLUSH);
        if (z == Z_STREAM_END)
            ended = 1;
        else if (z != Z_OK && z != Z_BUF_ERROR) {
            rc = vae_set_error("%s: corrupt gzip stream: %s", path, zs.msg ? zs.msg : "inflate failed");
            break;
        }
    }
    inflateEnd(&zs);
    vae_free(in);
    vae_free(out);
    return rc;
}

int vae_idx_read(const char *path, vae_idx *out)
{
    memset(out, 0, sizeof *out);
    int fd = vae_open_regular(path); /* a FIFO or a device is refused, not waited on */
    if (fd < 0)
        return -1;
    struct stat st; /* its size, below; vae_open_regular saw a regular file */
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return vae_set_error("%s: cannot stat: %s", path, strerror(e));
    }
    int raw_fd = dup(fd); /* for the check of what follows the gzip members */
    if (raw_fd < 0) {
        int e = errno;
        close(fd);
        return vae_set_error("%s: cannot open: %s", path, strerror(e));
    }
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        close(raw_fd);
        vae_fatal("%s: gzdopen failed (out of memory)", path);
    }
    gzbuffer(gz, 1 << 17);

    size_t header_bytes = 0;
    int rc = idx_read_header(path, gz, out, &header_bytes);
    if (rc == 0 && gzdirect(gz)) {
        /* A raw file: its size says at once whether the data is all there. */
        size_t size = (size_t)st.st_size;
        size_t have = size > header_bytes ? size - header_bytes : 0;
        if (have < out->count)
            rc = vae_set_error("%s: truncated: expected %zu bytes of data, found %zu", path, out->count, have);
        else if (have > out->count)
            rc = vae_set_error("%s: %zu trailing bytes after the data the header describes", path,
                               have - out->count);
    }
    if (rc == 0)
        rc = idx_read_data(path, gz, out);
    if (rc == 0)
        rc = idx_check_end(path, gz);
    if (rc == 0 && !gzdirect(gz))
        rc = idx_gz_check_members(path, raw_fd);
    gzclose_r(gz);
    close(raw_fd);
    if (rc != 0) {
        vae_idx_free(out);
        return -1;
    }
    return 0;
}

int vae_idx_read_header(const char *path, vae_idx *out)
{
    memset(out, 0, sizeof *out);
    int fd = vae_open_regular(path);
    if (fd < 0)
        return -1;
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        vae_fatal("%s: gzdopen failed (out of memory)", path);
    }
    size_t header_bytes = 0;
    int rc = idx_read_header(path, gz, out, &header_bytes);
    gzclose_r(gz);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

void vae_idx_free(vae_idx *a)
{
    if (!a)
        return;
    vae_free(a->data);
    memset(a, 0, sizeof *a);
}
