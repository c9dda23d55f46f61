/*
 * fuzz_idx_gz.c: libFuzzer harness for the gzip path of the IDX reader
 * (idx.h). Mutating compressed bytes mostly breaks the CRC, so here the input
 * is the IDX content: the harness gzips it, in one member or two (split where
 * the first byte says), sometimes followed by stray bytes, and reads that.
 * A read that succeeds must have no stray bytes and give back the content.
 */
#include "fuzz_input.h"
#include "idx.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Append a gzip member holding in[0..n) to out at *len. */
static void gzip_member(const uint8_t *in, size_t n, uint8_t *out, size_t *len, size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out + *len;
    zs.avail_out = (uInt)(cap - *len);
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
        abort();
    *len = cap - zs.avail_out;
    deflateEnd(&zs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    size_t cap = 2 * (n + 64) + 256, len = 0;
    uint8_t *gz = malloc(cap);
    if (!gz)
        abort();
    size_t split = (ctl & 0x80) && n ? (ctl & 0x3f) % (n + 1) : n;
    gzip_member(body, split, gz, &len, cap);
    if (split < n)
        gzip_member(body + split, n - split, gz, &len, cap);
    int stray = ctl & 0x40;
    if (stray)
        gz[len++] = ctl; /* one stray byte after the last member */
    vae_idx a;
    if (vae_idx_read(fuzz_input_path(gz, len), &a) == 0) {
        size_t header = 4 + 4 * (size_t)a.ndim;
        if (stray || header + a.count != n || memcmp(a.data, body + header, a.count) != 0)
            abort();
    }
    vae_idx_free(&a);
    free(gz);
    return 0;
}
