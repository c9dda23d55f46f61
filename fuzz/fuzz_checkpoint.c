/*
 * fuzz_checkpoint.c: libFuzzer harness for the model loader (checkpoint.h):
 * a model file becomes a model on the CPU backend, batch capacity 1. Run with
 * -malloc_limit_mb so that a small file asking for a large model is a finding.
 */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"
#include "fuzz_input.h"

#include <stdlib.h>

static vae_backend *be;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    be = vae_backend_cpu_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vae_model m;
    if (vae_checkpoint_load(fuzz_input_path(data, size), be, 1, &m) == 0) {
        if (m.n_params == 0 || !m.params)
            abort();
        vae_model_free(&m);
    }
    return 0;
}
