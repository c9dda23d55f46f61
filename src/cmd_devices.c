/*
 * cmd_devices.c: the commands that describe the program and the machine:
 * `cuvae version` (also `cuvae --version`): cuvae's version and commit, the
 * CUDA runtime, driver and cuBLAS versions, the GPU architectures compiled in,
 * and the BLAS library with its threads; `cuvae devices`: each GPU with its
 * memory, compute capability and multiprocessors, and the CPU backend.
 *
 * Not here: the CUDA queries themselves (kernels/cuda_backend.cu) or oneDNN's
 * (src/cpu_backend.c); neither command needs a GPU, and both exit 0 without one.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "vae_util.h"
#include "version.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Only --help: returns -1 to go on, or the exit code. */
static int parse_no_options(const char *cmd, int argc, char **argv, void (*help)(void))
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    return vae_cli_parse(cmd, argc, argv, opts, help, NULL, NULL, NULL); /* no options but --help */
}

static void help_version(void)
{
    printf("usage: cuvae version   (or cuvae --version)\n\n"
           "Print cuvae's version and git commit, the CUDA runtime it was built with, the NVIDIA\n"
           "driver's CUDA version, cuBLAS's version, the GPU architectures its kernels were\n"
           "compiled for, and the BLAS library of the CPU backend with its threads.\n\n"
           "  -h, --help          this help\n");
}

int vae_cmd_version(int argc, char **argv)
{
    int rc = parse_no_options("version", argc, argv, help_version);
    if (rc >= 0)
        return rc;
    char cuda[512], blas[512];
    vae_cuda_describe_versions(cuda, sizeof cuda);
    vae_cpu_describe(blas, sizeof blas);
    printf("cuvae %s\n"
           "commit: %s\n"
           "%s"
           "GPU architectures: %s\n"
           "BLAS: %s\n",
           CUVAE_VERSION, CUVAE_COMMIT, cuda, CUVAE_CUDA_ARCHITECTURES, blas);
    return 0;
}

static void help_devices(void)
{
    printf("usage: cuvae devices\n\n"
           "List the GPUs (as --device cuda:N names them) with their memory, compute capability\n"
           "and multiprocessors, then the CPU backend. Without a GPU it says why none is listed.\n\n"
           "  -h, --help          this help\n");
}

/* The "model name" line of /proc/cpuinfo into buf; 0, or -1 when it cannot be read. */
static int cpu_model(char *buf, size_t len)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return -1;
    char line[512];
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *colon = strchr(line, ':');
        if (!colon)
            continue;
        colon += strspn(colon + 1, " \t") + 1;
        snprintf(buf, len, "%.*s", (int)strcspn(colon, "\n"), colon);
        rc = 0;
        break;
    }
    fclose(f);
    return rc;
}

int vae_cmd_devices(int argc, char **argv)
{
    int rc = parse_no_options("devices", argc, argv, help_devices);
    if (rc >= 0)
        return rc;
    char gpus[8192], blas[512], model[256];
    int n = vae_cuda_describe_devices(gpus, sizeof gpus);
    printf("GPUs (--device cuda:N):\n");
    if (n > 0) {
        for (const char *p = gpus; *p;) {
            size_t len = strcspn(p, "\n");
            printf("  %.*s\n", (int)len, p);
            p += len + (p[len] == '\n');
        }
    } else {
        printf("  none listed: %s\n", gpus);
    }
    vae_cpu_describe(blas, sizeof blas);
    printf("CPU backend (--device cpu):\n  cpu  %s\n", blas);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpu_model(model, sizeof model) == 0)
        printf("  processor: %s, %ld logical cores online\n", model, cores);
    else
        printf("  processor: unknown (/proc/cpuinfo unreadable), %ld logical cores online\n", cores);
    return 0;
}
