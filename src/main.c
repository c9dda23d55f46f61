/*
 * main.c: the cuvae program: dispatch to a subcommand, then make sure that
 * what it printed reached stdout and stderr (a full disk or a closed pipe is
 * an error, not a silent success).
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} commands[] = {
    {"train", vae_cmd_train, "train a VAE on an IDX data set; writes the model, metrics and grids"},
    {"sample", vae_cmd_sample, "decode samples from the prior of a saved model into a PNG grid"},
    {"reconstruct", vae_cmd_reconstruct, "test images beside their reconstructions, as a PNG grid"},
    {"eval", vae_cmd_eval, "negative ELBO and its terms, active units, importance-weighted -log p(x)"},
    {"plot", vae_cmd_plot, "pictures of a saved model: latent scatter, manifold, traversals, curves"},
    {"info", vae_cmd_info, "model summary: layers, shapes, parameter counts"},
    {"compare", vae_cmd_compare, "run N training steps on the CPU and the GPU and compare every tensor"},
    {"sweep", vae_cmd_sweep, "many training runs from value lists of train's flags, on this machine or Slurm"},
    {"report", vae_cmd_report, "write a run directory's report.html: settings, metrics, curves, pictures"},
    {"bench", vae_cmd_bench, "images/s and seconds per epoch of the training loop on each backend"},
    {"encode", vae_cmd_encode, "each image's posterior mean and log-variance, with its label, to safetensors"},
    {"devices", vae_cmd_devices, "the GPUs (memory, compute capability) and the CPU backend"},
    {"version", vae_cmd_version, "version, commit, CUDA, cuBLAS, GPU architectures and BLAS (also --version)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: cuvae <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nRun 'cuvae <command> --help' or 'cuvae help <command>' for a command's options.\n");
}

/* `cuvae help [COMMAND]`: the usage, or COMMAND --help. */
static int help(int argc, char **argv)
{
    if (argc < 3) {
        usage(stdout);
        return 0;
    }
    if (argc > 3) {
        fprintf(stderr, "cuvae help: one command at a time (got '%s' after '%s')\n", argv[3], argv[2]);
        return 2;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[2], commands[i].name) == 0) {
            char *args[] = {argv[2], "--help", NULL};
            return commands[i].run(2, args);
        }
    fprintf(stderr, "cuvae help: unknown command '%s'\n", argv[2]);
    usage(stderr);
    return 2;
}

static int run(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0)
        return help(argc, argv);
    if (strcmp(argv[1], "--version") == 0)
        return vae_cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "cuvae: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

/* Results went to stdout: if any of it was lost, the run failed. Returns the exit code. */
static int check_output_streams(int rc)
{
    errno = 0;
    int failed = fflush(stdout) != 0 || ferror(stdout);
    int err = errno;
    if (fclose(stdout) != 0 && !failed) {
        failed = 1;
        err = errno;
    }
    if (failed) {
        fprintf(stderr, "cuvae: writing the results to standard output failed: %s\n",
                err ? strerror(err) : "write error");
        rc = rc ? rc : 1;
    }
    /* A failing stderr cannot report itself; the exit code says it. */
    if (fflush(stderr) != 0 || ferror(stderr))
        rc = rc ? rc : 1;
    return rc;
}

int main(int argc, char **argv)
{
    /* Results to a file or pipe (help texts, tables) are written at the end, in one flush that
     * check_output_streams checks: stdio's default buffer (4 KiB there) would flush mid-way on a
     * long text and lose the cause (errno) of a failed write. A terminal keeps its line buffer. */
    static char out_buf[1 << 16];
    if (!isatty(STDOUT_FILENO))
        setvbuf(stdout, out_buf, _IOFBF, sizeof out_buf);
    return check_output_streams(run(argc, argv));
}
