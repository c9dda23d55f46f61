/*
 * test_fuzz_regressions.c: every input the fuzz harnesses (fuzz/, scripts/fuzz.sh)
 * start from or found, read back through its reader under ctest, and so under
 * ASan + UBSan in CI.
 *
 *   fuzz/corpus/<target>/      the seeds: each reads or is refused, never crashes
 *   tests/data/fuzz/<target>/  findings: each must be refused with a message
 *                              naming the file
 *
 * with <target> one of idx, safetensors, checkpoint. A model file, read or
 * refused, must never make the loader ask its backend for more than a small
 * multiple of the file's own size. Not here: the fuzzing itself.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "idx.h"
#include "safetensors.h"
#include "testutil.h"
#include "vae_util.h"

/* Read path with the reader of target; 0 or -1 as the reader returns. */
static int read_one(const char *target, const char *path, size_t size, vae_backend *be)
{
    int rc;
    if (strcmp(target, "idx") == 0) {
        vae_idx a;
        rc = vae_idx_read(path, &a);
        vae_idx_free(&a);
    } else if (strcmp(target, "safetensors") == 0) {
        vae_safetensors st;
        rc = vae_safetensors_read(path, &st);
        vae_safetensors_free(&st);
    } else {
        vae_model m;
        tu_alloc_bytes = 0;
        rc = vae_checkpoint_load(path, be, 1, &m);
        /* parameters, gradients, two Adam moments (16 bytes per 4-byte value in
         * the file) plus batch-1 activations, well under 64 bytes per file byte */
        cr_assert_leq(tu_alloc_bytes, 64 * size + 4096, "%s: %zu bytes of the model file made the loader "
                      "allocate %zu bytes", path, size, tu_alloc_bytes);
        if (rc == 0)
            vae_model_free(&m);
    }
    return rc;
}

/* Every file of dir/target; returns how many there were. */
static int read_all(const char *dir, const char *target, int must_fail)
{
    char d[512];
    snprintf(d, sizeof d, "%s/%s/%s", CUVAE_SOURCE_DIR, dir, target);
    DIR *h = opendir(d);
    cr_assert_not_null(h, "cannot open %s", d);
    vae_backend *cpu = vae_backend_cpu_init();
    vae_backend be = tu_counting_backend(cpu);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(h))) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", d, e->d_name);
        struct stat sb;
        cr_assert_eq(stat(path, &sb), 0, "%s", path);
        int rc = read_one(target, path, (size_t)sb.st_size, &be);
        if (rc != 0)
            cr_assert(strstr(vae_last_error(), path), "%s: the message does not name the file: %s", path,
                      vae_last_error());
        else
            cr_assert(!must_fail, "%s: a fuzz finding was accepted", path);
        n++;
    }
    closedir(h);
    vae_backend_free(cpu);
    return n;
}

Test(fuzz_regressions, seeds_read_or_are_refused)
{
    static const char *targets[] = {"idx", "safetensors", "checkpoint"};
    for (size_t k = 0; k < 3; k++)
        cr_assert_gt(read_all("fuzz/corpus", targets[k], 0), 0, "no seeds for %s", targets[k]);
}

Test(fuzz_regressions, findings_are_refused)
{
    /* meta-only-hidden65536-latent4096: 216 bytes that once made the loader
     * allocate 14 GB; gzip-then-garbage: bytes after the gzip member were
     * ignored; shape-product-wraps: 65536 x 65537 pixels per image. */
    cr_assert_gt(read_all("tests/data/fuzz", "checkpoint", 1), 0);
    cr_assert_gt(read_all("tests/data/fuzz", "idx", 1), 0);
}
