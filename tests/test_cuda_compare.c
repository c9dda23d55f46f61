/*
 * test_cuda_compare.c: `cuvae compare` for 20 steps of every model that train
 * trains (testutil's tu_compare_models: the plain VAE with either likelihood,
 * the cvae, the joint model plain and with controlled capacity, both
 * binarizations, clipping with the schedules, the 1-D toy) between the CPU
 * backend and the CUDA backend, run as the command a GPU check runs: each must
 * exit 0 with every tensor within compare's tolerances. In the emulated build
 * (-DCUVAE_CUDA_EMU=ON) the CUDA backend is the emulated device; without a GPU
 * the case is skipped with the reason (tu_need_gpu), never passed. The verdicts
 * themselves, and the same models against a perturbed CPU, are test_compare.c's.
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <string.h>

TestSuite(cuda_compare);

Test(cuda_compare, every_model_agrees_with_the_cpu_for_20_steps)
{
    tu_need_gpu();
    static char out[1 << 17];
    for (int k = 0; k < tu_compare_model_count; k++) {
        const tu_compare_model *m = &tu_compare_models[k];
        int rc = tu_cuvae(out, sizeof out, "compare --candidate cuda --steps 20 %s 2>&1", m->flags);
        cr_expect_eq(rc, 0, "%s (compare --steps 20 %s): exit %d\n%s", m->name, m->flags, rc, out);
        cr_expect(strstr(out, "compare: cuda (") == out, "%s: the candidate is not the CUDA backend:\n%s", m->name,
                  out);
        cr_expect(strstr(out, m->shows) != NULL, "%s: the setup lines lack '%s':\n%s", m->name, m->shows, out);
        cr_expect(strstr(out, "PASS: 0 tensors beyond tolerance") != NULL, "%s:\n%s", m->name, out);
    }
}
