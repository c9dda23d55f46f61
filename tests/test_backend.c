/*
 * test_backend.c: choosing a backend, on any machine. Without a GPU the CUDA
 * backend must refuse with a reason ("no CUDA device: ...") rather than crash,
 * `--device cuda` must fail rather than fall back to the CPU, and `--device
 * auto` must give the CPU. With a GPU, auto must give CUDA.
 */
#include "backend.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <string.h>

/* ---- without a GPU: the no-device path must be real, not a crash --------------- */

Test(backend, init_without_gpu_returns_null_with_reason)
{
    if (vae_cuda_device_count() > 0)
        cr_skip_test("a CUDA device is present: the no-GPU path cannot be exercised on this machine");
    vae_set_error("%s", "");
    vae_backend *be = vae_backend_cuda_init(0);
    cr_assert_null(be, "vae_backend_cuda_init(0) returned a backend without a GPU");
    cr_assert(strstr(vae_last_error(), "no CUDA device") != NULL, "message '%s' lacks 'no CUDA device'",
              vae_last_error());
    cr_log_info("without a GPU: %s", vae_last_error());
}

Test(backend, create_cuda_without_gpu_is_an_error_and_auto_is_cpu)
{
    if (vae_cuda_device_count() > 0)
        cr_skip_test("a CUDA device is present: the no-GPU path cannot be exercised on this machine");
    vae_backend *be = vae_backend_create(VAE_DEVICE_CUDA);
    cr_assert_null(be, "--device cuda without a GPU must fail, not fall back to the CPU");
    cr_assert(strstr(vae_last_error(), "no CUDA device") != NULL, "message '%s'", vae_last_error());
    be = vae_backend_create(VAE_DEVICE_AUTO);
    cr_assert_not_null(be);
    cr_assert_eq(be->kind, VAE_BACKEND_CPU, "--device auto without a GPU must give the CPU backend");
    vae_backend_free(be);
}

/* Runs with or without a GPU. */
Test(backend, bad_ordinal_returns_null)
{
    int n = vae_cuda_device_count();
    cr_assert_geq(n, 0);
    vae_backend *be = vae_backend_cuda_init(-1);
    cr_assert_null(be, "device -1 accepted");
    cr_assert(strstr(vae_last_error(), "no CUDA device") != NULL, "message '%s'", vae_last_error());
    be = vae_backend_cuda_init(n);
    cr_assert_null(be, "device %d accepted with %d device(s)", n, n);
    cr_assert(strstr(vae_last_error(), "no CUDA device") != NULL, "message '%s'", vae_last_error());
}

Test(backend, device_names_parse)
{
    vae_device_choice c;
    cr_assert_eq(vae_device_parse("auto", &c), 0);
    cr_assert_eq(c, VAE_DEVICE_AUTO);
    cr_assert_eq(vae_device_parse("cuda", &c), 0);
    cr_assert_eq(c, VAE_DEVICE_CUDA);
    cr_assert_eq(vae_device_parse("cpu", &c), 0);
    cr_assert_eq(c, VAE_DEVICE_CPU);
    cr_assert_eq(vae_device_parse("gpu", &c), -1);
    cr_assert(strstr(vae_last_error(), "'gpu'"));
}

Test(backend, auto_takes_the_gpu_when_there_is_one)
{
    if (vae_cuda_device_count() == 0)
        cr_skip_test("no CUDA device: the GPU half of --device auto cannot run here");
    vae_backend *be = vae_backend_create(VAE_DEVICE_AUTO);
    cr_assert_not_null(be);
    cr_assert_eq(be->kind, VAE_BACKEND_CUDA);
    vae_backend_free(be);
}
