/*
 * test_cuda_graph.c: the kernel count of the captured training step: the default
 * model's step (784-400-20-400-784, batch 128) captured as a CUDA graph has kernel
 * nodes, the same number in two captures, and node counts that add up; the bench's
 * CUDA line reports them (kernels_per_step=, graph_nodes=). Every case reports as
 * skipped without a GPU.
 */
#include "dataset.h"
#include "testutil.h"
#include "train.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* The node counts of the full-batch step of the default model on 256 stroke images (28x28). */
static vae_graph_nodes capture_default_step(vae_backend *be, const vae_dataset *train)
{
    vae_config c;
    vae_config_default(&c);
    c.input_dim = train->dim;
    c.image_rows = train->rows;
    c.image_cols = train->cols;
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 128), 0, "%s", vae_last_error());
    vae_model_init_params(&m, 1);
    vae_device_data d;
    vae_device_data_init(&d, be, train);
    vae_train_options o = {.epochs = 1, .batch_size = 128,
                           .adam = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
                           .seed = 1, .progress = -1, .log = stderr};
    vae_trainer *t = vae_trainer_init(&m, &o);
    cr_assert_null(vae_trainer_step_graph(t), "a graph before any step");
    vae_epoch_metrics e;
    vae_trainer_epoch(t, &d, NULL, 1, &e);
    const vae_graph *g = vae_trainer_step_graph(t);
    cr_assert_not_null(g, "no captured step after an epoch on the GPU");
    vae_graph_nodes n;
    vae_graph_count_nodes(g, &n);
    vae_trainer_free(t);
    vae_device_data_free(&d, be);
    vae_model_free(&m);
    return n;
}

Test(cuda_graph, the_default_step_has_kernels_and_the_same_count_twice)
{
    vae_backend *be = tu_cuda_backend();
    const char *dir = tu_tmpdir();
    tu_write_stroke_idx(dir, 256, 10, 28);
    vae_dataset train;
    cr_assert_eq(vae_dataset_load(dir, VAE_SPLIT_TRAIN, &train), 0, "%s", vae_last_error());
    vae_graph_nodes a = capture_default_step(be, &train), b = capture_default_step(be, &train);
    cr_expect_gt(a.kernels, 0, "no kernel node in the captured step");
    /* at least the model's own launches: 4 forward and 7 backward GEMMs, Adam */
    cr_expect_geq(a.kernels, 12, "%d kernels", a.kernels);
    cr_expect_leq(a.kernels + a.memsets + a.memcpys, a.nodes, "%d kernels + %d memsets + %d memcpys > %d nodes",
                  a.kernels, a.memsets, a.memcpys, a.nodes);
    cr_expect_eq(a.kernels, b.kernels, "kernels: %d, then %d", a.kernels, b.kernels);
    cr_expect_eq(a.nodes, b.nodes, "nodes: %d, then %d", a.nodes, b.nodes);
    cr_expect_eq(a.memsets, b.memsets);
    cr_expect_eq(a.memcpys, b.memcpys);
    fprintf(stderr, "default step: %d nodes, %d kernels, %d memsets, %d memcpys\n", a.nodes, a.kernels, a.memsets,
            a.memcpys);
    vae_dataset_free(&train);
    vae_backend_free(be);
}

Test(cuda_graph, bench_reports_the_kernels_per_step)
{
    tu_need_gpu();
    static char out[1 << 16];
    const char *data = tu_tmpdir();
    tu_write_patterns_idx(data, 300, 20, 3);
    cr_assert_eq(tu_cuvae(out, sizeof out, "bench --backends cuda --data %s --epochs 1 --batch-size 100", data), 0,
                 "%s", out);
    const char *line = strstr(out, "bench impl=cuvae backend=cuda ");
    cr_assert_not_null(line, "%s", out);
    const char *k = strstr(line, " kernels_per_step="), *n = strstr(line, " graph_nodes=");
    cr_assert(k && n, "%s", line);
    int kernels = 0, nodes = 0;
    cr_expect_eq(sscanf(k, " kernels_per_step=%d", &kernels), 1);
    cr_expect_eq(sscanf(n, " graph_nodes=%d", &nodes), 1);
    cr_expect_gt(kernels, 0, "%s", line);
    cr_expect_geq(nodes, kernels, "%s", line);
}
