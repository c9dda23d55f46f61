/*
 * fuzz_idx.c: libFuzzer harness for the IDX reader (idx.h), raw and gzip: the
 * input is the file as it lies on disk; zlib tells raw from gzip by its magic.
 * A read that succeeds must describe data that is all there.
 */
#include "fuzz_input.h"
#include "idx.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vae_idx a;
    if (vae_idx_read(fuzz_input_path(data, size), &a) == 0) {
        size_t count = 1;
        for (int i = 0; i < a.ndim; i++)
            count *= (size_t)a.dims[i];
        if (a.ndim < 1 || a.ndim > 4 || count != a.count || !a.data)
            abort();
        volatile uint8_t sink = a.data[a.count - 1]; /* the last byte is readable */
        (void)sink;
    }
    vae_idx_free(&a);
    return 0;
}
