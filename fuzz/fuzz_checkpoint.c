/*
 * fuzz_checkpoint.c: libFuzzer harness for the two readers of cuvae's own
 * files: the model loader (checkpoint.h), a model file becoming a model on the
 * CPU backend, batch capacity 1; and the training checkpoint (train_state.h,
 * train_settings.h), read, its recorded train.* settings applied, and its
 * state (step, loss sums, best epoch, metrics rows and header) checked
 * against the model those settings describe on 2x2 images, in epochs of 8
 * steps, as `train --resume` does before anything is allocated. Run with
 * -malloc_limit_mb so that a small file asking for a large model is a finding.
 */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"
#include "fuzz_input.h"
#include "train_settings.h"
#include "train_state.h"

#include <stdlib.h>

static vae_backend *be;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    be = vae_backend_cpu_init();
    return 0;
}

/* The training checkpoint at path as a resume checks it (no data: the images are 2x2). */
static void train_checkpoint(const char *path)
{
    vae_train_checkpoint ck;
    if (vae_train_checkpoint_read(path, &ck))
        return;
    vae_train_settings ts = {.samples = 64, .checkpoint_every = 1};
    vae_run_settings_default(&ts.s);
    vae_schedule_default(&ts.schedule);
    vae_toy_default(&ts.toy);
    vae_model layout;
    if (vae_train_settings_recorded(&ck, path, &ts) == 0) {
        ts.s.cfg.input_dim = 4;
        ts.s.cfg.image_rows = 2;
        ts.s.cfg.image_cols = 2;
        if (ts.s.cfg.kind == VAE_MODEL_CVAE)
            ts.s.cfg.classes = 3;
        if (vae_model_layout(&layout, &ts.s.cfg) == 0)
            vae_train_checkpoint_check(&ck, path, &layout, 8,
                                       "epoch,train_loss,train_recon,train_kl,test_loss,test_recon,test_kl,seconds,"
                                       "images_per_second\n");
    }
    vae_train_checkpoint_free(&ck);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_input_path(data, size);
    vae_model m;
    if (vae_checkpoint_load(path, be, 1, &m) == 0) {
        if (m.n_params == 0 || !m.params)
            abort();
        vae_model_free(&m);
    }
    train_checkpoint(path);
    return 0;
}
