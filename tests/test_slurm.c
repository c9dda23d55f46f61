/*
 * test_slurm.c: `cuvae sweep --slurm` against a real Slurm, through scripts/slurm_sweep_check.sh
 * (a 3-run job array; one task stopped by its time-limit signal mid-training, requeued, and
 * checked bit-identical to the same run uninterrupted). It uses the Slurm of this machine when a
 * node is up; under CI (CI=true) or with CUVAE_TEST_SLURM=1, as root, it starts one first
 * (scripts/slurm_local.sh start), and a Slurm that does not start fails the test. Elsewhere, with
 * no Slurm up, it skips and says why. The data: MNIST in data/mnist (scripts/fetch_mnist.sh).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static char out[1 << 16];

static int asked(void)
{
    const char *ci = getenv("CI"), *own = getenv("CUVAE_TEST_SLURM");
    return (ci && !strcmp(ci, "true")) || (own && !strcmp(own, "1"));
}

Test(slurm, a_sweep_requeued_mid_training_ends_bit_identical, .timeout = 900)
{
    char cmd[8192];
    struct stat st;
    if (stat(CUVAE_SOURCE_DIR "/data/mnist/t10k-labels-idx1-ubyte.gz", &st) != 0 &&
        stat(CUVAE_SOURCE_DIR "/data/mnist/t10k-labels-idx1-ubyte", &st) != 0) {
        cr_expect(!asked(), "CI: no MNIST in data/mnist for the Slurm sweep");
        cr_skip_test("no MNIST in %s/data/mnist (scripts/fetch_mnist.sh data/mnist)", CUVAE_SOURCE_DIR);
    }
    int up = tu_run("sinfo -h -o %t 2>/dev/null | grep -q -E '^(idle|mix|alloc)'", out, sizeof out) == 0;
    if (!up && !asked())
        cr_skip_test("no Slurm node is up here (as root: scripts/slurm_local.sh start; or CUVAE_TEST_SLURM=1 to have "
                     "this test start one)");
    if (!up) {
        cr_assert_eq(geteuid(), 0, "CI=true: starting Slurm needs root");
        snprintf(cmd, sizeof cmd, "%s/scripts/slurm_local.sh start 2>&1", CUVAE_SOURCE_DIR);
        cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "Slurm did not start:\n%s", out);
    }
    snprintf(cmd, sizeof cmd, "%s/scripts/slurm_sweep_check.sh %s %s/data/mnist 2>&1", CUVAE_SOURCE_DIR, CUVAE_BINARY,
             CUVAE_SOURCE_DIR);
    int rc = tu_run(cmd, out, sizeof out);
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "Restarts=1") && strstr(out, "bit for bit"), "%s", out);
    fprintf(stderr, "%s", out);
}
