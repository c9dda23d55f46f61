/*
 * fuzz_safetensors.c: libFuzzer harness for the safetensors reader
 * (safetensors.h). A file that reads must hold tensors that tile the data
 * buffer exactly, each aligned to its element size.
 */
#include "fuzz_input.h"
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vae_safetensors st;
    if (vae_safetensors_read(fuzz_input_path(data, size), &st) == 0) {
        size_t sum = 0;
        for (int k = 0; k < st.n_tensors; k++) {
            const vae_st_tensor *t = &st.tensors[k];
            size_t elem = vae_safetensors_dtype_size(t->dtype);
            if (!elem || (uintptr_t)t->data % elem || vae_safetensors_find(&st, t->name) != t)
                abort();
            if (t->nbytes) {
                volatile uint8_t sink = ((const uint8_t *)t->data)[t->nbytes - 1];
                (void)sink;
            }
            sum += t->nbytes;
        }
        for (int k = 0; k < st.n_meta; k++)
            if (strcmp(vae_safetensors_meta_get(&st, st.meta[k].key), st.meta[k].value) != 0)
                abort();
        if (sum != st.blob_size)
            abort();
    }
    vae_safetensors_free(&st);
    return 0;
}
