/*
 * cmd_bench.c: `cuvae bench`: time the training loop, epoch by epoch, on each
 * backend asked for, and print images/s and seconds per epoch (median over the
 * timed epochs, after one warm-up epoch) and the memory in use after each epoch.
 * With --profile, the same epochs once more through the timing wrapper of
 * profile_backend.h, and a table of each op's time per step (the headline figure
 * comes from the unwrapped run). With --gemm-only, the warm-up epoch trains through
 * the GEMM recorder of gemm_record.h and each timed epoch replays its GEMMs alone:
 * the floor the step is compared with. scripts/bench.sh runs it beside the same
 * model in PyTorch and prints the ratios. A benchmark, not a test.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "gemm_record.h"
#include "profile_backend.h"
#include "train.h"
#include "vae_util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OPT_BACKENDS = VAE_OPT_FIRST_PRIVATE, OPT_PROFILE, OPT_GEMM_ONLY };

static void help(void)
{
    printf("usage: cuvae bench [options]\n\n"
           "Time training epochs (no evaluation) after one warm-up epoch; print one line per\n"
           "backend: images/s and the median seconds per epoch, and one line per epoch with\n"
           "the host memory (resident and peak) and the GPU memory in use.\n\n"
           "%s%s"
           "  --backends LIST     cpu, cuda, cuda:N (GPU N), or cpu with one of those, comma-separated\n"
           "                      (default: cpu, plus cuda:0 when a GPU is present)\n"
           "  --profile           then run the epochs again with every op timed (no CUDA graph; the\n"
           "                      CPU synchronized, the GPU by CUDA events) and print each op's\n"
           "                      calls and ms per step\n"
           "  --gemm-only         time the GEMMs alone: the warm-up epoch records every GEMM call\n"
           "                      it makes, and each timed epoch replays them back to back (a line\n"
           "                      with impl=gemms; the floor the training step is compared with)\n%s%s"
           "  -h, --help          this help\n",
           vae_cli_help_training, vae_cli_help_model, vae_cli_help_threads, vae_cli_help_tf32);
}

/* --backends: "cpu", a CUDA device ("cuda", "cuda:N"), or one of each, comma-separated. */
static int parse_backends(const char *arg, int *want_cpu, int *want_cuda, vae_device_choice *gpu)
{
    *want_cpu = *want_cuda = 0;
    const char *p = arg;
    for (;;) {
        size_t len = strcspn(p, ",");
        char item[64];
        vae_device_choice c;
        snprintf(item, sizeof item, "%.*s", (int)(len < 60 ? len : 60), p);
        int *count = NULL; /* of this item's kind: each may come once */
        if (len < 60 && vae_device_parse(item, &c) == 0 && c != VAE_DEVICE_AUTO)
            count = c == VAE_DEVICE_CPU ? want_cpu : want_cuda;
        if (!count || *count)
            return vae_set_error("--backends '%s': expected cpu, cuda, cuda:N or cpu with one of those", arg);
        *count = 1;
        if (vae_device_is_cuda(c))
            *gpu = c;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Host memory in MiB, resident now and the process's peak: VmRSS and VmHWM of /proc/self/status,
 * which the kernel reports together (the peak counts the current size; getrusage's ru_maxrss is
 * updated lazily and can read below it). -1 for what cannot be read. */
static void host_memory(double *rss_mib, double *peak_mib)
{
    *rss_mib = *peak_mib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return;
    char line[256];
    long kib;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            *rss_mib = (double)kib / 1024.0;
        else if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            *peak_mib = (double)kib / 1024.0;
    }
    fclose(f);
}

/* One line of memory after an epoch (0: the warm-up); GPU memory in use on a CUDA backend. */
static void print_memory(vae_backend *be, int epoch)
{
    double rss, peak;
    host_memory(&rss, &peak);
    char dev[64] = "-";
    size_t free_b = 0, total_b = 0;
    if (be->kind == VAE_BACKEND_CUDA && vae_backend_memory_info(be, &free_b, &total_b) == 0)
        snprintf(dev, sizeof dev, "%.1f", (double)(total_b - free_b) / (1024.0 * 1024.0));
    printf("memory backend=%s epoch=%d host_rss_mib=%.1f host_peak_mib=%.1f device_used_mib=%s\n", be->name, epoch,
           rss, peak, dev);
}

/* A model and trainer on run_be, one warm-up epoch, then s->epochs timed ones into sec.
 * mem_be (the unwrapped backend) answers the memory lines, printed when print_mem is set;
 * prof, when not NULL, is run_be's profile, reset after the warm-up; rec, when not NULL,
 * is run_be's GEMM recorder, and the timed epochs replay the warm-up's GEMMs instead. nodes,
 * when not NULL, gets the node counts of the captured step (all 0 when the backend has no graph). */
static int run_epochs(vae_backend *run_be, vae_backend *mem_be, const vae_run_settings *s, const vae_dataset *train,
                      int print_mem, vae_backend *prof, vae_backend *rec, double *sec, vae_epoch_metrics *e,
                      vae_graph_nodes *nodes)
{
    vae_model m;
    if (vae_model_init(&m, &s->cfg, run_be, s->batch_size))
        return -1;
    vae_model_init_params(&m, s->seed);
    vae_device_data d;
    vae_device_data_init(&d, run_be, train);
    vae_train_options topt;
    vae_train_options_default(&topt, s->epochs + 1, s->batch_size, s->lr, s->seed);
    vae_trainer *t = vae_trainer_init(&m, &topt);
    vae_trainer_epoch(t, &d, NULL, 0, e); /* warm-up: graph capture, caches, clocks */
    if (nodes) {
        const vae_graph *g = vae_trainer_step_graph(t);
        if (g)
            vae_graph_count_nodes(g, nodes);
        else
            *nodes = (vae_graph_nodes){0};
    }
    if (print_mem)
        print_memory(mem_be, 0);
    if (prof)
        vae_backend_profile_reset(prof);
    if (rec)
        vae_gemm_record_set(rec, 0);
    for (int i = 0; i < s->epochs; i++) {
        if (rec) {
            sec[i] = vae_gemm_record_replay(rec);
        } else {
            vae_trainer_epoch(t, &d, NULL, i + 1, e);
            sec[i] = e->seconds;
        }
        if (print_mem)
            print_memory(mem_be, i + 1);
    }
    vae_trainer_free(t);
    vae_device_data_free(&d, run_be);
    vae_model_free(&m);
    return 0;
}

static int cmp_entry_seconds(const void *a, const void *b)
{
    double x = ((const vae_profile_entry *)a)->seconds, y = ((const vae_profile_entry *)b)->seconds;
    return (x < y) - (x > y); /* longest first */
}

/* The timed epochs through the profiling wrapper, and the table of ops per step. */
static int profile_one(vae_backend *be, const vae_run_settings *s, const vae_dataset *train)
{
    vae_backend *prof = vae_backend_profile_wrap(be);
    double *sec = vae_calloc((size_t)s->epochs, sizeof(double));
    vae_epoch_metrics e;
    int rc = run_epochs(prof, be, s, train, 0, prof, NULL, sec, &e, NULL);
    if (rc == 0) {
        vae_profile_entry ent[VAE_PROFILE_MAX_OPS];
        int n = vae_backend_profile_read(prof, ent, VAE_PROFILE_MAX_OPS);
        qsort(ent, (size_t)n, sizeof ent[0], cmp_entry_seconds);
        const double steps = (double)s->epochs * (double)((train->n + s->batch_size - 1) / s->batch_size);
        double total = 0, ops = 0;
        for (int i = 0; i < s->epochs; i++)
            total += sec[i];
        for (int i = 0; i < n; i++)
            ops += ent[i].seconds;
        printf("profile backend=%s device=\"%s\" epochs=%d steps=%.0f ms_per_step=%.4f (%s; no CUDA graph)\n",
               be->name, be->device_name, s->epochs, steps, 1e3 * total / steps, vae_backend_profile_clock(prof));
        printf("  %-24s %10s %10s %7s\n", "op", "calls/step", "ms/step", "share");
        for (int i = 0; i < n; i++)
            printf("  %-24s %10.2f %10.4f %6.1f%%\n", ent[i].name, ent[i].calls / steps,
                   1e3 * ent[i].seconds / steps, 100.0 * ent[i].seconds / total);
        printf("  %-24s %10s %10.4f %6.1f%%\n", "other (host)", "", 1e3 * (total - ops) / steps,
               100.0 * (total - ops) / total);
        fflush(stdout);
    }
    vae_free(sec);
    vae_backend_free(prof);
    return rc;
}

/* The bench line's start: implementation, backend, device, the threads of a CPU backend and
 * the GEMMs' precision on a CUDA one. */
static void print_bench_head(const char *impl, const vae_backend *be, const vae_run_settings *s)
{
    printf("bench impl=%s backend=%s device=\"%s\"", impl, be->name, be->device_name);
    if (be->kind == VAE_BACKEND_CPU)
        printf(" threads=%d", vae_cpu_threads());
    else
        printf(" math=%s", s->tf32 ? "tf32" : "fp32");
}

static double median(double *sec, int n)
{
    qsort(sec, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? sec[n / 2] : 0.5 * (sec[n / 2 - 1] + sec[n / 2]);
}

static int bench_one(vae_backend *be, const vae_run_settings *s, const vae_dataset *train, int profile)
{
    double *sec = vae_calloc((size_t)s->epochs, sizeof(double));
    vae_epoch_metrics e;
    vae_graph_nodes nodes;
    if (run_epochs(be, be, s, train, 1, NULL, NULL, sec, &e, &nodes)) {
        vae_free(sec);
        return -1;
    }
    const double med = median(sec, s->epochs);
    print_bench_head("cuvae", be, s);
    if (nodes.nodes > 0) /* the captured step's kernels */
        printf(" kernels_per_step=%d graph_nodes=%d", nodes.kernels, nodes.nodes);
    printf(" images=%d batch=%d epochs=%d median_s_per_epoch=%.6f images_per_s=%.1f final_train_loss=%.4f\n",
           train->n, s->batch_size, s->epochs, med, train->n / med, e.train.loss);
    fflush(stdout);
    vae_free(sec);
    return profile ? profile_one(be, s, train) : 0;
}

/* --gemm-only: one epoch's GEMMs, recorded in the warm-up and replayed s->epochs times. */
static int bench_gemms(vae_backend *be, const vae_run_settings *s, const vae_dataset *train)
{
    vae_backend *rec = vae_backend_gemm_record_wrap(be);
    double *sec = vae_calloc((size_t)s->epochs, sizeof(double));
    vae_epoch_metrics e;
    int rc = run_epochs(rec, be, s, train, 1, NULL, rec, sec, &e, NULL);
    if (rc == 0) {
        const double med = median(sec, s->epochs), flops = vae_gemm_record_flops(rec);
        print_bench_head("gemms", be, s);
        printf(" images=%d batch=%d epochs=%d median_s_per_epoch=%.6f images_per_s=%.1f gemm_calls_per_epoch=%ld "
               "gflop_per_epoch=%.2f gflops=%.1f\n",
               train->n, s->batch_size, s->epochs, med, train->n / med, vae_gemm_record_count(rec), flops / 1e9,
               flops / 1e9 / med);
        fflush(stdout);
    }
    vae_free(sec);
    vae_backend_free(rec);
    return rc;
}

/* bench's own flags. */
typedef struct {
    int want_cpu, want_cuda, backends_given; /* --backends */
    vae_device_choice gpu;
    int profile, gemm_only;
} bench_args;

static int bench_option(void *ctx, int c, const char *arg)
{
    bench_args *a = ctx;
    if (c == OPT_BACKENDS && parse_backends(arg, &a->want_cpu, &a->want_cuda, &a->gpu))
        return vae_cli_usage_error("bench", "%s", vae_last_error());
    a->backends_given |= c == OPT_BACKENDS;
    a->profile |= c == OPT_PROFILE;
    a->gemm_only |= c == OPT_GEMM_ONLY;
    return 0;
}

int vae_cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        VAE_CLI_TRAINING_OPTIONS, VAE_CLI_MODEL_OPTIONS, VAE_CLI_THREADS_OPTION,
        {"backends", required_argument, 0, OPT_BACKENDS},
        {"profile", no_argument, 0, OPT_PROFILE},
        {"gemm-only", no_argument, 0, OPT_GEMM_ONLY},
        VAE_CLI_TF32_OPTION,
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    vae_run_settings s;
    vae_run_settings_default(&s);
    s.epochs = 3;
    bench_args a = {.want_cpu = 1, .want_cuda = vae_cuda_device_count() > 0, .gpu = VAE_DEVICE_CUDA};
    int rc = vae_cli_parse("bench", argc, argv, opts, help, &s, bench_option, &a);
    if (rc >= 0)
        return rc;
    const int want_cpu = a.want_cpu, want_cuda = a.want_cuda, profile = a.profile, gemm_only = a.gemm_only;
    const vae_device_choice gpu = a.gpu;
    if (profile && gemm_only)
        return vae_cli_usage_error("bench", "--profile and --gemm-only: choose one (the profile times every op "
                                            "of the step; --gemm-only replays its GEMMs alone)");
    if (s.tf32 && !want_cuda)
        return vae_cli_refuse_tf32("bench",
                                   a.backends_given ? "--backends cpu" : "the default --backends (no GPU found)");
    if (s.threads > 0)
        vae_cpu_set_threads(s.threads);
    vae_dataset train;
    if (vae_dataset_load(s.data_dir, VAE_SPLIT_TRAIN, &train))
        return vae_cli_fail();
    s.cfg.input_dim = train.dim;
    s.cfg.image_rows = train.rows;
    s.cfg.image_cols = train.cols;
    rc = 0;
    if (want_cpu) {
        vae_backend *be = vae_backend_cpu_init();
        if (gemm_only ? bench_gemms(be, &s, &train) : bench_one(be, &s, &train, profile))
            rc = vae_cli_fail();
        vae_backend_free(be);
    }
    if (!rc && want_cuda) {
        vae_backend *be = vae_backend_cuda_init(vae_device_ordinal(gpu));
        if (!be) {
            char why[512];
            snprintf(why, sizeof why, "%s", vae_last_error());
            char dev[16];
            vae_set_error("--backends %s: %s", vae_device_text(gpu, dev), why);
        }
        if (be && s.tf32)
            vae_cuda_set_tf32(be, 1);
        if (!be || (gemm_only ? bench_gemms(be, &s, &train) : bench_one(be, &s, &train, profile)))
            rc = vae_cli_fail();
        vae_backend_free(be);
    }
    vae_dataset_free(&train);
    return rc;
}
