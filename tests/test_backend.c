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

/* The runtime says cudaErrorInsufficientDriver both without a driver and with an old one: the
 * message tells them apart by the versions. */
Test(backend, unavailable_reason_names_missing_or_old_driver)
{
    char buf[512];
    vae_cuda_describe_unavailable(buf, sizeof buf, "cudaErrorInsufficientDriver",
                                  "CUDA driver version is insufficient for CUDA runtime version", 0, 13000);
    cr_expect(strstr(buf, "no CUDA device: no NVIDIA driver is installed") == buf, "%s", buf);
    cr_expect(strstr(buf, "insufficient") == NULL, "a missing driver is not an old one: %s", buf);
    vae_cuda_describe_unavailable(buf, sizeof buf, "cudaErrorInsufficientDriver",
                                  "CUDA driver version is insufficient for CUDA runtime version", 12040, 13000);
    cr_expect(strstr(buf, "no CUDA device: the NVIDIA driver supports CUDA up to 12.4, older than the CUDA 13.0 "
                          "runtime") == buf, "%s", buf);
    cr_expect(strstr(buf, "newer driver") != NULL, "%s", buf);
    vae_cuda_describe_unavailable(buf, sizeof buf, "cudaErrorNoDevice", "no CUDA-capable device is detected", 13000,
                                  13000);
    cr_expect(strcmp(buf, "no CUDA device: no CUDA-capable device is detected (cudaErrorNoDevice)") == 0, "%s", buf);
}

/* This machine's own reason, whatever it is, is one of those words and never a hint about a flag. */
Test(backend, init_reason_on_this_machine_names_the_problem)
{
    if (vae_cuda_device_count() > 0)
        cr_skip_test("a CUDA device is present: the no-GPU path cannot be exercised on this machine");
    cr_assert_null(vae_backend_cuda_init(0));
    const char *e = vae_last_error();
    cr_expect(strstr(e, "no NVIDIA driver is installed") || strstr(e, "older than the CUDA") ||
                  strstr(e, "cudaErrorNoDevice") || strstr(e, "this build of cuvae has no CUDA backend"),
              "reason does not name the problem: %s", e);
    cr_expect(strstr(e, "--device") == NULL, "the backend's reason must not name a flag: %s", e);
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

Test(backend, auto_takes_the_gpu_when_there_is_one_and_never_the_emulated_device)
{
    if (vae_cuda_device_count() == 0)
        cr_skip_test("no CUDA device: the GPU half of --device auto cannot run here");
    vae_backend *be = vae_backend_create(VAE_DEVICE_AUTO);
    cr_assert_not_null(be);
    if (vae_cuda_is_emulated()) /* the emulated device is asked for by name only */
        cr_expect_eq(be->kind, VAE_BACKEND_CPU, "--device auto picked the emulated device %s", be->device_name);
    else
        cr_expect_eq(be->kind, VAE_BACKEND_CUDA);
    vae_backend_free(be);
}

/* ---- --device cuda:N and the descriptions of `cuvae version` and `cuvae devices` ---- */

Test(backend, cuda_ordinals_parse)
{
    vae_device_choice c;
    char text[16];
    cr_assert_eq(vae_device_parse("cuda:0", &c), 0, "%s", vae_last_error());
    cr_expect(vae_device_is_cuda(c) && vae_device_ordinal(c) == 0);
    cr_expect_eq(c, VAE_DEVICE_CUDA, "cuda:0 is the same choice as cuda");
    cr_assert_eq(vae_device_parse("cuda:12", &c), 0, "%s", vae_last_error());
    cr_expect(vae_device_is_cuda(c) && vae_device_ordinal(c) == 12);
    cr_expect_str_eq(vae_device_text(c, text), "cuda:12");
    cr_assert_eq(vae_device_parse("cuda:1023", &c), 0, "%s", vae_last_error());
    cr_expect_eq(vae_device_ordinal(c), 1023);
    cr_expect(!vae_device_is_cuda(VAE_DEVICE_CPU) && !vae_device_is_cuda(VAE_DEVICE_AUTO));
    cr_expect_str_eq(vae_device_text(VAE_DEVICE_CUDA, text), "cuda");
    cr_expect_str_eq(vae_device_text(VAE_DEVICE_CPU, text), "cpu");
    const char *bad[] = {"cuda:", "cuda:-1", "cuda:x", "cuda:+1", "cuda: 1", "cuda:1 ", "cuda:1x", "cuda:0:1",
                         "cuda:1024", "cuda:99999999999999999999", "CUDA:0", "cpu:0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = VAE_DEVICE_CPU;
        cr_expect_eq(vae_device_parse(bad[i], &c), -1, "'%s' accepted", bad[i]);
        cr_expect_eq(c, VAE_DEVICE_CPU, "'%s' changed the choice though refused", bad[i]);
        cr_expect(strstr(vae_last_error(), bad[i]) != NULL, "'%s': message '%s' does not quote it", bad[i],
                  vae_last_error());
    }
}

/* Runs with or without a GPU: a GPU past the last one is refused with the count. */
Test(backend, create_names_a_missing_gpu_and_the_count)
{
    int n = vae_cuda_device_count();
    vae_backend *be = vae_backend_create(vae_device_cuda(n + 3));
    cr_assert_null(be, "cuda:%d accepted with %d device(s)", n + 3, n);
    char want[64];
    if (n > 0)
        snprintf(want, sizeof want, "no CUDA device %d: %d device(s) present", n + 3, n);
    else
        snprintf(want, sizeof want, "no CUDA device: ");
    cr_expect(strstr(vae_last_error(), want) != NULL, "message '%s' lacks '%s'", vae_last_error(), want);
}

Test(backend, versions_and_devices_are_described_without_a_gpu_too)
{
    char v[512], d[8192];
    vae_cuda_describe_versions(v, sizeof v);
#ifdef CUVAE_CUDA_NONE
    cr_expect(strstr(v, "CUDA runtime: none (this build has no CUDA backend") != NULL, "%s", v);
    cr_expect(strstr(v, "cuBLAS: none\n") != NULL, "%s", v);
#else
    cr_expect(strstr(v, "CUDA runtime: 1") != NULL, "%s", v);
    cr_expect(strstr(v, "cuBLAS: 1") != NULL, "cuBLAS's version is missing: %s", v);
#endif
    int n = vae_cuda_describe_devices(d, sizeof d);
    cr_assert_eq(n, vae_cuda_device_count());
    if (n == 0) {
        cr_expect(strncmp(d, "no CUDA device: ", 16) == 0, "no reason given for the empty list: %s", d);
        /* without a driver both say so, in their own words (a build without CUDA asks no driver) */
        cr_expect_eq(strstr(d, "no NVIDIA driver") != NULL, strstr(v, "CUDA driver: no NVIDIA driver") != NULL,
                     "devices says '%s' but versions say '%s'", d, v);
        return;
    }
    cr_expect(strstr(v, "CUDA driver: no NVIDIA driver") == NULL, "%s", v);
    for (int i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof want, "cuda:%d  ", i);
        cr_expect(strstr(d, want) != NULL, "%s missing from:\n%s", want, d);
    }
    cr_expect(strstr(d, "compute capability ") && strstr(d, " MiB free)") && strstr(d, " multiprocessors"), "%s", d);
}

Test(backend, cpu_threads_are_set_and_described)
{
    char buf[512];
    vae_cpu_set_threads(1);
    vae_cpu_describe(buf, sizeof buf);
    cr_expect(strstr(buf, "oneDNN") && strstr(buf, ", 1 thread") && !strstr(buf, "1 threads"), "%s", buf);
    vae_backend *be = vae_backend_cpu_init();
    cr_expect(strstr(be->device_name, "1 thread") && !strstr(be->device_name, "1 threads"), "%s", be->device_name);
    vae_backend_free(be);
    vae_cpu_set_threads(2);
    vae_cpu_describe(buf, sizeof buf);
    cr_expect(strstr(buf, ", 2 threads") != NULL, "%s", buf);
}
