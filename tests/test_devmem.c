/*
 * test_devmem.c: the device memory a run needs (devmem.h), computed before
 * anything is allocated: it must equal what the model really allocates (a
 * counting backend checks that), add up its parts, and a run that does not fit
 * must be refused with the numbers. Runs on the CPU; no GPU needed.
 */
#include "devmem.h"
#include "testutil.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <string.h>

static void expect_plan_matches_allocation(const vae_config *c, int batch)
{
    vae_backend *cpu = vae_backend_cpu_init();
    vae_backend be = tu_counting_backend(cpu);
    vae_model m;
    cr_assert_eq(vae_model_init(&m, c, &be, batch), 0, "%s", vae_last_error());
    vae_buffer_total t;
    cr_assert_eq(vae_model_buffer_total(c, batch, &t), 0);
    cr_expect_eq(t.bytes, tu_alloc_bytes, "computed %zu bytes, the model allocated %zu", t.bytes, tu_alloc_bytes);
    cr_expect_eq(t.count, tu_alloc_buffers, "computed %d buffers, the model allocated %d", t.count, tu_alloc_buffers);
    vae_model_free(&m);
    vae_backend_free(cpu);
}

Test(devmem, the_computed_model_memory_is_what_the_model_allocates)
{
    vae_config c;
    vae_config_default(&c);
    expect_plan_matches_allocation(&c, 128);
    c.n_hidden = 3;
    c.hidden[0] = 257;
    c.hidden[1] = 33;
    c.hidden[2] = 5;
    c.latent_dim = 7; /* odd B * Z: the noise buffers are rounded up to even */
    c.act = VAE_ACT_TANH;
    expect_plan_matches_allocation(&c, 37);
    c.n_hidden = 0;
    expect_plan_matches_allocation(&c, 1);
}

Test(devmem, the_plan_of_the_default_mnist_run_adds_up)
{
    vae_config c;
    vae_config_default(&c);
    vae_device_plan p;
    cr_assert_eq(vae_device_plan_train(&p, &c, 128, 9000, 1000, VAE_DATA_BYTES), 0);
    /* parameters, gradients and two moments of 652,824 floats, plus three ints and the seven
     * backend scalars (learning rate, KL weight, and the joint model's temperature, two
     * capacities and their two weights) */
    const size_t params = 4 * 652824 * sizeof(float) + 3 * sizeof(int) + 7 * sizeof(float);
    /* activations of 128 rows: x 784; out and dout of 400, 40, 400, 784; eps and z 20 each; dz 20; loss 2 */
    const size_t acts = 128 * sizeof(float) * (784 + 2 * (400 + 40 + 400 + 784) + 20 + 20 + 20 + 2);
    cr_expect_eq(p.model, params + acts, "model %zu, by hand %zu", p.model, params + acts);
    cr_expect_eq(p.data, (size_t)10000 * (784 + 4));
    cr_expect_eq(p.total, p.model + p.data + p.trainer + p.headroom);
    cr_expect_geq(p.headroom, VAE_DEVICE_HEADROOM_BYTES);
    cr_expect_eq(vae_device_plan_fits(&p, p.total, "a GPU"), 0, "a plan that exactly fits was refused");
}

Test(devmem, a_run_too_large_is_refused_with_the_numbers)
{
    vae_device_plan p = {.model = 100 << 20, .data = 1, .trainer = 0, .headroom = 0, .total = (100 << 20) + 1};
    cr_assert_eq(vae_device_plan_fits(&p, (99 << 20) + (1 << 19), "NVIDIA Test GPU"), -1);
    cr_expect(strstr(vae_last_error(), "not enough GPU memory: this run needs 101 MiB, 99 MiB free on NVIDIA Test GPU"),
              "%s", vae_last_error());
    cr_expect(strstr(vae_last_error(), "--batch-size") && strstr(vae_last_error(), "--device cpu"), "%s",
              vae_last_error());

    /* eight hidden layers of 65,536 and batches of 65,536 do not fit in 141 GB */
    vae_config c;
    vae_config_default(&c);
    c.n_hidden = 8;
    for (int i = 0; i < 8; i++)
        c.hidden[i] = 65536;
    cr_assert_eq(vae_device_plan_train(&p, &c, 65536, 60000, 10000, VAE_DATA_BYTES), 0);
    cr_expect_eq(vae_device_plan_fits(&p, (size_t)141 << 30, "NVIDIA H200"), -1, "a %zu MiB run fits in 141 GiB",
                 p.total >> 20);

    /* the CPU backend's memory is the host's: not checked here */
    vae_backend *be = vae_backend_cpu_init();
    cr_expect_eq(vae_device_plan_check(&p, be), 0);
    vae_backend_free(be);
}

Test(devmem, the_shortfall_message_rounds_so_that_need_and_free_never_read_equal)
{
    char buf[128];
    const size_t mib = 1 << 20;
    cr_expect_str_eq(vae_format_memory_shortfall(buf, sizeof buf, 5 * mib + 1, 5 * mib, "gpu0"),
                     "needs 6 MiB, 5 MiB free on gpu0");
    cr_expect_str_eq(vae_format_memory_shortfall(buf, sizeof buf, 2048 * mib, 3 * mib - 1, "H200"),
                     "needs 2048 MiB, 2 MiB free on H200");
}
