/*
 * model.h: the VAE, written once against the backend table (backend.h), as a
 * composition of parts chosen by configuration:
 *
 *   layers   Linears, each reading a list of input blocks (column blocks of its one
 *            weight): out = act(sum_k in_k @ W[:, block k]^T + b). A block's source
 *            is the input x, the one-hot label y (a conditional model's), a latent's
 *            sample, or an earlier layer's output.
 *   latents  ops between the encoder's stats layer and the decoder: the Gaussian one,
 *            z = mu + eps * exp(logvar / 2) from stats (B, 2Z) = [mu | logvar], and the
 *            categorical one of the joint model (compose_joint.c), a Gumbel-softmax sample
 *            of its logits in training, their one-hot argmax otherwise.
 *   terms    named per-image loss terms, one column each of row_loss (B, T): a
 *            likelihood term (Bernoulli on logits, or Gaussian with fixed sigma) on
 *            the output layer, a KL term per latent. The objective is the batch mean
 *            of sum_t weight_t * term_t, or for a controlled-capacity term
 *            gamma |batch mean - C|; the reported loss uses each term's
 *            configured weight (beta for the KL), the ELBO weight 1 everywhere.
 *   scalars  values that change during training (learning rate, KL weight, temperature,
 *            capacities and the capacity terms' weights), one float
 *            each in backend memory, read by the ops through pointers, so a captured
 *            graph follows a schedule (vae_model_set_scalar).
 *
 * The plain VAE of vae_config_default:
 *   encoder  x (B, D) -> [Linear + act] x n_hidden -> Linear "head" -> stats (B, 2Z)
 *   sample   z = mu + eps * exp(logvar / 2),  eps ~ N(0, I)               z (B, Z)
 *   decoder  z -> [Linear + act] x n_hidden (mirrored sizes) -> Linear -> logits (B, D)
 *   terms    recon = -log p(x|z) summed over pixels, kl = KL(q(z|x) || N(0, I)).
 *
 * That composition is one member of the family (src/compose_vae.c); each member composes
 * its own, in its own file, and is described by the registry (variant.h): the conditional
 * VAE reads [x | y] in the encoder, [z | y] in the decoder. What reads a model asks its parts
 * (vae_model_reads_label, vae_model_gaussian, vae_model_categorical), not its variant.
 *
 * Parameters, gradients and both Adam moments each live in ONE backend buffer
 * of n_params floats with the same layout: for every Linear in order, its
 * weight (out, in) in PyTorch's Linear layout (a layer with several input
 * blocks is PyTorch's Linear applied to torch.cat of the blocks in order),
 * then its bias (out). The head's weight is [W_mu ; W_logvar] (2Z, in) and its
 * bias [b_mu ; b_logvar], so mu and logvar come out of one GEMM and are saved
 * as two tensors.
 *
 * Tensor names in model.safetensors: <layer>.{weight,bias} for each Linear in running order,
 * a layer saved in parts as <part>.{weight,bias} each (the head's encoder.mu and encoder.logvar);
 * the file's "architecture" metadata (architecture.h) lists them with each layer's input blocks.
 * The plain VAE's: encoder.fc{1..n}, encoder.mu, encoder.logvar, decoder.fc{1..n}, decoder.out;
 * the joint model adds encoder.alpha (the logits of q(c|x)); the conditional VAE's are the plain
 * VAE's, wider by the label's columns.
 */
#ifndef VAE_MODEL_H
#define VAE_MODEL_H

#include "backend.h"
#include "config.h"

#include <stdio.h>

#define VAE_MAX_LINEAR (2 * VAE_MAX_HIDDEN + 2)
#define VAE_MAX_BLOCKS 4  /* input blocks of one Linear */
#define VAE_MAX_PARTS 4   /* named row blocks of one Linear in the file */
#define VAE_MAX_LATENTS 2
#define VAE_MAX_TERMS 8
#define VAE_TERM_NAME_MAX 16


/* Backend scalars read by the ops through pointers (vae_model.scalars). */
typedef enum {
    VAE_SCALAR_LR = 0,        /* Adam's learning rate of the step */
    VAE_SCALAR_KL_WEIGHT = 1, /* the KL terms' weight in the gradient: beta x warm-up factor */
    VAE_SCALAR_TEMPERATURE = 2, /* the Gumbel-softmax temperature tau */
    VAE_SCALAR_CAPACITY_Z = 3,  /* the capacities C of the joint model's KL terms, nats */
    VAE_SCALAR_CAPACITY_C = 4,
    VAE_SCALAR_CAP_WEIGHT_Z = 5, /* gamma * sign(KL - C) of the step, written by capacity_weight */
    VAE_SCALAR_CAP_WEIGHT_C = 6,
    VAE_SCALAR_COUNT
} vae_scalar;

/* Scalars [0, VAE_SCALAR_SCHEDULED) are written by the trainer before a step (schedule.h), the
 * rest by the step's own ops. */
#define VAE_SCALAR_SCHEDULED (VAE_SCALAR_CAPACITY_C + 1)

/* Where an input block of a Linear comes from. */
typedef enum {
    VAE_SOURCE_INPUT = 0,  /* the data batch x (B, D) */
    VAE_SOURCE_LATENT = 1, /* latent `index`'s sample */
    VAE_SOURCE_LAYER = 2,  /* Linear `index`'s output (after its activation) */
    VAE_SOURCE_LABEL = 3,  /* the one-hot label y (B, classes) of the batch; 0 for the index */
} vae_source_kind;

typedef struct {
    vae_source_kind kind;
    int index; /* latent or layer index; 0 for the input */
    int col;   /* first column of the block in the weight (out, in) */
    int width; /* columns of the block = width of the source */
} vae_block;

static inline vae_block vae_block_of(vae_source_kind kind, int index, int width)
{
    return (vae_block){.kind = kind, .index = index, .col = 0, .width = width};
}

typedef struct {
    char name[32];   /* "encoder.fc1", "encoder.head", "decoder.out", ... */
    int in, out;     /* in = sum of the blocks' widths */
    size_t w_off;    /* weight (out, in) at params + w_off */
    size_t b_off;    /* bias (out) at params + b_off */
    vae_act act;
    int n_blocks;
    vae_block block[VAE_MAX_BLOCKS]; /* in column order */
    /* n_parts > 0: the layer is saved as row blocks of its weight and bias, part k's
     * rows following part k-1's, as tensors <part[k].name>.{weight,bias} (the head's
     * encoder.mu and encoder.logvar); 0: as <name>.{weight,bias}. */
    int n_parts;
    struct {
        char name[32];
        int rows;
    } part[VAE_MAX_PARTS];
} vae_linear;

/* The kinds of latent, listed once: X(ID, value, name), the name the architecture metadata gives
 * (architecture.c). The enum (VAE_LATENT_GAUSSIAN = 0, ...) and the names come from it. */
#define VAE_LATENT_KINDS(X)                                                                        \
    /* z = mu + eps * exp(logvar / 2), stats (B, 2Z) = [mu | logvar] */                           \
    X(GAUSSIAN, 0, "gaussian")                                                                   \
    /* c = gumbel_softmax(alpha, u, tau) in training, one-hot argmax alpha without gradients;    \
     * stats (B, K) = the logits alpha of q(c|x), noise (B, K) uniforms */                       \
    X(CATEGORICAL, 1, "categorical")                                                             \
    /* z = stats (B, Z): the autoencoder's code, no noise and no prior; its sample and its       \
     * gradient are its stats layer's output and gradient themselves (no op runs for it) */      \
    X(DETERMINISTIC, 2, "deterministic")

typedef enum {
#define VAE_LATENT_ENUM(id, value, name) VAE_LATENT_##id = value,
    VAE_LATENT_KINDS(VAE_LATENT_ENUM)
#undef VAE_LATENT_ENUM
} vae_latent_kind;

typedef struct {
    char name[8];        /* "z": the source name in the architecture metadata */
    vae_latent_kind kind;
    int dim;             /* Z */
    int stats_layer;     /* the Linear whose output holds the latent's statistics */
} vae_latent;

/* The ops of a loss term, listed once: X(ID, value, name), the name the architecture metadata
 * gives (architecture.c). The enum (VAE_TERM_LIK_BERNOULLI = 0, ...) and the names come from it. */
#define VAE_TERM_OPS(X)                                                                        \
    X(LIK_BERNOULLI, 0, "bernoulli")       /* backend lik_bernoulli on `layer`'s logits */     \
    X(LIK_GAUSSIAN, 1, "gaussian")         /* backend lik_gaussian on `layer`'s mean */        \
    X(KL_GAUSSIAN, 2, "kl_gaussian")       /* backend kl_gaussian on `latent`'s statistics */  \
    X(KL_CATEGORICAL, 3, "kl_categorical") /* backend kl_categorical on `latent`'s logits */

typedef enum {
#define VAE_TERM_ENUM(id, value, name) VAE_TERM_##id = value,
    VAE_TERM_OPS(VAE_TERM_ENUM)
#undef VAE_TERM_ENUM
} vae_term_op;

/* A likelihood term (-log p(x|z)), as opposed to a latent's KL term. */
static inline int vae_term_is_likelihood(vae_term_op op)
{
    return op == VAE_TERM_LIK_BERNOULLI || op == VAE_TERM_LIK_GAUSSIAN;
}

typedef struct {
    char name[VAE_TERM_NAME_MAX]; /* "recon", "kl": metrics columns are <split>_<name> */
    vae_term_op op;
    int layer;          /* likelihood terms: the Linear giving logits or the mean */
    int latent;         /* latent terms: the latent */
    int scalar;         /* the vae_scalar weighting its gradient, or -1 for weight 1 */
    float weight;       /* its weight in the reported objective (beta for the KL) */
    int capacity;       /* >= 0: a controlled-capacity term gamma |mean KL - C|, C the backend scalar
                         * `capacity`; capacity_weight writes gamma sign(mean KL - C) into `scalar`
                         * each step before the gradient. -1: a plain term */
    float gamma;
} vae_loss_term;

typedef struct {
    vae_config cfg;
    vae_backend *be;

    int n_linear;                   /* 2 * n_hidden + 2 for the plain VAE */
    vae_linear lin[VAE_MAX_LINEAR]; /* encoder layers, then decoder layers, in the order they run */
    int n_encoder;                  /* lin[0 .. n_encoder) run before the latents are sampled */
    int output;                     /* the layer the likelihood reads (logits or mean) */
    int n_latents;
    vae_latent latent[VAE_MAX_LATENTS];
    int n_terms;                    /* T */
    vae_loss_term term[VAE_MAX_TERMS];

    size_t n_params;
    float *params;  /* (n_params) */
    float *grads;   /* (n_params), same layout */
    float *adam_m;  /* (n_params), same layout */
    float *adam_v;  /* (n_params), same layout */
    int *adam_step; /* (1) Adam's t, in backend memory */
    int *diverged;    /* (1) vae_diverged_quantity of the first non-finite step, 0 while all is finite;
                       * while set, Adam skips every step (backend memory, read by the ops) */
    float *grad_scale; /* (1) gradient clipping factor of the current step (backend memory) */
    float *scalars;    /* (VAE_SCALAR_COUNT) backend memory, indexed by vae_scalar */

    /* Activations for batches of up to batch_cap rows (backend memory). */
    int batch_cap;
    float *x;                       /* (Bc, D) input batch */
    float *y;                       /* (Bc, classes) one-hot labels of the batch, when a layer reads the
                                     * label (vae_model_reads_label), else NULL */
    float *out[VAE_MAX_LINEAR];     /* (Bc, lin[l].out) each Linear's output after its activation */
    float *dout[VAE_MAX_LINEAR];    /* (Bc, lin[l].out) loss gradient w.r.t. out[l] */
    float *sample[VAE_MAX_LATENTS]; /* (Bc, dim, rounded up to even) each latent's sample; a
                                     * deterministic latent's is its stats layer's out[] (Bc, dim),
                                     * not rounded up: nothing draws into it */
    float *dsample[VAE_MAX_LATENTS];/* (Bc, dim) loss gradient w.r.t. the sample; a deterministic
                                     * latent's is its stats layer's dout[] */
    float *noise[VAE_MAX_LATENTS];  /* (Bc * dim, rounded up to even) each latent's noise; NULL for
                                     * a deterministic latent */
    float *row_loss;                /* (Bc, T) per example, one column per term */

    /* Which gradients the current backward pass has written (the first writer of a
     * tensor's gradient writes, later ones accumulate); host bookkeeping only. */
    unsigned char grad_written_layer[VAE_MAX_LINEAR];
    unsigned char grad_written_latent[VAE_MAX_LATENTS];
} vae_model;

/* What went non-finite in the first bad training step, listed once: X(ID, value, name). The enum
 * (VAE_DIVERGED_NONE = 0, ...) and vae_diverged_quantity_name come from it. */
#define VAE_DIVERGED_QUANTITIES(X)                                                   \
    X(NONE, 0, "nothing")                                                            \
    X(LOSS, 1, "loss")         /* the loss of some image in the batch */             \
    X(GRADIENT, 2, "gradient") /* some parameter gradient (with a finite loss) */

typedef enum {
#define VAE_DIVERGED_ENUM(id, value, name) VAE_DIVERGED_##id = value,
    VAE_DIVERGED_QUANTITIES(VAE_DIVERGED_ENUM)
#undef VAE_DIVERGED_ENUM
} vae_diverged_quantity;

typedef struct {
    vae_diverged_quantity quantity;
    long step;      /* the skipped step, counted from 1 over the whole run (Adam's t + 1) */
    int epoch;      /* the epoch it fell in, and its place in that epoch (from 1): */
    int epoch_step; /* filled by the trainer (train.h); 0 from vae_model_read_divergence */
} vae_divergence;

/* "loss" or "gradient". */
const char *vae_diverged_quantity_name(vae_diverged_quantity q);


/* ---- life cycle -------------------------------------------------------------------------- */
/* Lay out the parts of cfg (layers, latents, terms, n_params) and allocate nothing:
 * enough to count parameters or check a file's tensors. Buffers stay NULL; such
 * a model needs no vae_model_free. -1 with vae_set_error when cfg is invalid. */
int vae_model_layout(vae_model *m, const vae_config *cfg);
/* Lay out and allocate everything on `be` for batches up to batch_cap; parameters zero. */
int vae_model_init(vae_model *m, const vae_config *cfg, vae_backend *be, int batch_cap);

/* ---- composing a model -----------------------------------------------------------------
 * vae_model_layout has the configuration's variant (variant.h) compose its model from these
 * calls after vae_model_compose_begin: layers in running order (a latent's stats layer before
 * the latent, a layer after every source it reads), the first latent closing the encoder,
 * then the terms (the first likelihood term names the output layer). A composition that
 * breaks these rules is a programming error (vae_fatal). vae_model_alloc then allocates it. */
void vae_model_compose_begin(vae_model *m, const vae_config *cfg);
/* A Linear reading `blocks` in column order (their col is assigned here); its index. */
int vae_model_add_linear(vae_model *m, const char *name, const vae_block *blocks, int n_blocks, int out, vae_act act);
/* Save layer l as row blocks named names[k], rows[k] rows each (summing to its outputs). */
void vae_model_save_in_parts(vae_model *m, int l, const char *const *names, const int *rows, int n_parts);
/* The hidden layers of cfg named <prefix>.fc1.. (widths mirrored when `reverse`), the first
 * reading blocks[0 .. *n_blocks); the blocks become the last layer's output (*n_blocks = 1),
 * or stay as they are when cfg has no hidden layers. */
void vae_model_add_mlp(vae_model *m, const char *prefix, const vae_config *cfg, vae_block *blocks, int *n_blocks,
                       int reverse);
/* The Gaussian latent's statistics layer "encoder.head" reading src[0 .. n_src), (B, 2Z) = [mu | logvar],
 * saved as encoder.mu and encoder.logvar; its index. */
int vae_model_add_gaussian_head(vae_model *m, const vae_block *src, int n_src, int Z);
/* The likelihood term "recon" of the configuration's likelihood on layer `out`. */
void vae_model_add_recon_term(vae_model *m, int out);
/* A latent of `dim` whose statistics are layer stats_layer's output; its index. */
int vae_model_add_latent(vae_model *m, const char *name, vae_latent_kind kind, int dim, int stats_layer);
/* A loss term on `target` (a layer for likelihood ops, a latent for KL ops), its gradient
 * weighted by backend scalar `scalar` (-1: 1), reported with weight `weight`. */
void vae_model_add_term(vae_model *m, const char *name, vae_term_op op, int target, int scalar, float weight);
/* Make the last term added a controlled-capacity term gamma * |mean KL - C| with C the backend
 * scalar `capacity`; its gradient weight scalar gets gamma * sign(mean KL - C) each step. */
void vae_model_term_capacity(vae_model *m, int capacity, float gamma);
/* Allocate a composed model on `be` for batches up to batch_cap (what vae_model_init does
 * after vae_model_layout). 0, or -1 with vae_set_error for a bad batch_cap. */
int vae_model_alloc(vae_model *m, vae_backend *be, int batch_cap);
void vae_model_free(vae_model *m);

/* What vae_model_init(cfg, batch_cap) allocates on a backend, without allocating it. */
typedef struct {
    size_t bytes; /* sum of the buffers' sizes */
    int count;    /* number of buffers */
} vae_buffer_total;
int vae_model_buffer_total(const vae_config *cfg, int batch_cap, vae_buffer_total *total); /* -1: bad cfg */
/* PyTorch's default Linear init, U(-1/sqrt(in), 1/sqrt(in)) for weights and biases,
 * from a host generator seeded with `seed`; Adam state reset. */
void vae_model_init_params(vae_model *m, uint64_t seed);

/* Write one backend scalar (an upload, in stream order: a graph launched after it
 * reads the new value). vae_model_init sets the learning rate to 0 and the KL
 * weight to cfg.beta. */
void vae_model_set_scalar(vae_model *m, vae_scalar which, float value);
/* Scalars first .. first + n - 1 from values (n floats), in one upload. */
void vae_model_set_scalars(vae_model *m, vae_scalar first, int n, const float *values);

/* Whether some layer reads the label (a VAE_SOURCE_LABEL block): the model then has m->y and
 * every batch needs its labels (vae_model_set_labels, or vae_device_data_gather_model). */
int vae_model_reads_label(const vae_model *m);
/* y = one_hot(labels[i]) for the B rows, from host labels (B), each < cfg.classes (checked:
 * vae_fatal otherwise). Nothing for a model that does not read the label (labels may be NULL). */
void vae_model_set_labels(vae_model *m, const uint8_t *labels, int B);

/* What the negative ELBO bounds: "-log p(x|y)" for a model that reads the label, else "-log p(x)". */
const char *vae_model_nll_name(const vae_model *m);

/* Index of the term called `name`, or -1. */
int vae_model_term_index(const vae_model *m, const char *name);

/* The index of the model's Gaussian latent, whose statistics [mu | logvar], noise eps and sample z
 * are what the evaluation, the pictures and `encode` read. Internal error (vae_fatal) for a model
 * without one: every variant of the registry composes one (test_variants checks it). */
int vae_model_gaussian(const vae_model *m);
/* The index of the model's categorical latent, or -1. */
int vae_model_categorical(const vae_model *m);
/* The index of the latent whose code the pictures, the evaluation and `encode` read: the Gaussian
 * latent, or else a deterministic one (the autoencoder's). Internal error (vae_fatal) for a model
 * with neither: every variant of the registry composes one (test_variants checks it). Its
 * statistics begin with the code's mean, mu (B, Z) of [mu | logvar] or z itself. */
int vae_model_code(const vae_model *m);
/* Whether the code latent has a prior to draw from (N(0, I) for a Gaussian latent) and a posterior
 * with noise; 0 for a deterministic code, which has neither: pictures drawn from the prior or from
 * q(z|x) (samples, the manifold of the prior's quantiles, posterior samples) do not apply to it,
 * nor does a density (the importance-weighted estimate). */
int vae_model_has_prior(const vae_model *m);
/* Latent k's statistics, its stats layer's output: (Bc, 2 dim) [mu | logvar] for a Gaussian latent,
 * (Bc, dim) the logits for a categorical one. */
static inline float *vae_model_latent_stats(const vae_model *m, int k)
{
    return m->out[m->latent[k].stats_layer];
}

/* ---- compute (B <= batch_cap; all asynchronous on the CUDA backend) ---------- */
/* Each latent's noise for B rows from rng, latent by latent: a Gaussian latent's normals eps, and
 * a categorical one's uniforms u for its Gumbel-softmax sample when `training` (without, its
 * sample is the argmax of its logits, and nothing is drawn for it). */
void vae_model_draw_noise(vae_model *m, vae_rng *rng, int B, int training);
/* m->x and each latent's noise filled -> every out[], every sample, and row_loss (B, T);
 * with grad, also the gradient of the batch-mean objective that each term writes
 * (the likelihood's into dout[output], a KL's into its latent's stats layer's dout,
 * weighted by the backend scalars). */
void vae_model_forward(vae_model *m, int B, int with_grad);
/* The encoder alone: m->x (and m->y) -> the encoder layers' outputs, each latent's
 * statistics among them (vae_model_latent_stats). For what
 * reads the posterior alone (encode, clustering, latent pictures): no noise, no decoder. */
void vae_model_encode(vae_model *m, int B);
/* The rest of vae_model_forward(m, B, 0) after vae_model_encode, from statistics a caller may
 * have put in place itself: the importance-weighted pass encodes each image once and repeats
 * its statistics over the image's samples. m->x (and m->y) and the noise must hold the B rows
 * the terms read. Internal error (vae_fatal) if a decoder layer reads the input or an encoder
 * layer, which the statistics alone would leave stale. */
void vae_model_forward_from_stats(vae_model *m, int B);
/* Backward from the gradients the terms wrote; every parameter's gradient is written into
 * m->grads (not accumulated: each weight block and bias once). */
void vae_model_backward(vae_model *m, int B);
/* Forward, backward (which writes every parameter's gradient: nothing is cleared first),
 * one Adam step at the learning rate of the scalar VAE_SCALAR_LR (adam->lr is not read).
 * The step guards itself on the backend: if a loss or a gradient is not finite it sets
 * m->diverged and Adam
 * skips the update (this step's and every later one's, until the flag is cleared),
 * so the parameters stay those of the last good step. clip_grad_norm > 0 scales
 * the gradients to at most that global L2 norm first (PyTorch's clip_grad_norm_);
 * 0 leaves them as they are. Nothing here waits for the backend. */
void vae_model_train_step(vae_model *m, int B, const vae_adam_config *adam, float clip_grad_norm);
/* Read the divergence flag (waits for the backend): 1 and *d filled when a step
 * went non-finite, else 0. Clear it with vae_model_clear_divergence. */
int vae_model_read_divergence(vae_model *m, vae_divergence *d);
void vae_model_clear_divergence(vae_model *m);
/* Forward for evaluation: what vae_model_forward(m, B, 0) leaves, except that for a model with
 * a categorical latent each likelihood term is replaced by its exact expectation over c,
 *     sum_k q(c = k|x) * term(x | z, c = one-hot k),
 * (K decoder passes, after the encoder and the KL terms, then one at argmax q(c|x) that leaves
 * the outputs as vae_model_forward's; q from the logits, in double on the host), so the
 * objective is a true bound. Synchronizes on the CUDA backend: not for captured steps. */
void vae_model_forward_eval(vae_model *m, int B);
/* Set the categorical latent's sample to one-hot rows: row i of class cats[i] (host, B), or
 * class i % K when cats is NULL. Nothing for a model without one. */
void vae_model_set_categories(vae_model *m, int B, const int *cats);
/* argmax q(c|x) of B rows whose encoder has run (m->out filled) into host cats (B). */
void vae_model_download_categories(vae_model *m, int B, int *cats);
/* Decoder only: the latents' samples (the Gaussian one's z (B, Z), a categorical one's one-hot rows)
 * and m->y for a model that reads the label -> the output layer's values in m->out[output]. */
void vae_model_decode(vae_model *m, int B);
/* The decoder's mean for B rows, downloaded to host: sigmoid(logits) for the
 * Bernoulli likelihood, the output itself for the Gaussian. */
void vae_model_download_mean(vae_model *m, int B, float *host_mean /* (B, D) */);

/* ---- description ------------------------------------------------------------- */
void vae_model_print_summary(const vae_model *m, FILE *f);

#endif /* VAE_MODEL_H */
