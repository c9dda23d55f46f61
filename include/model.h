/*
 * model.h: the VAE, written once against the backend table (backend.h).
 *
 *   encoder  x (B, D) -> [Linear + act] x n_hidden -> Linear "head" -> stats (B, 2Z) = [mu | logvar]
 *   sample   z = mu + eps * exp(logvar / 2),  eps ~ N(0, I)               z (B, Z)
 *   decoder  z -> [Linear + act] x n_hidden (mirrored sizes) -> Linear -> logits (B, D)
 *   loss     per image: recon + beta * KL, recon = BCE(sigmoid(logits), x) summed over pixels,
 *            KL(q(z|x) || N(0, I)) in closed form; the objective is the mean over the batch.
 *
 * Parameters, gradients and both Adam moments each live in ONE backend buffer
 * of n_params floats with the same layout: for every Linear in order, its
 * weight (out, in) in PyTorch's Linear layout, then its bias (out). The head's
 * weight is [W_mu ; W_logvar] (2Z, in) and its bias [b_mu ; b_logvar], so mu
 * and logvar come out of one GEMM and are saved as two tensors.
 *
 * Tensor names in model.safetensors:
 *   encoder.fc{1..n}.{weight,bias}, encoder.mu.{weight,bias}, encoder.logvar.{weight,bias},
 *   decoder.fc{1..n}.{weight,bias}, decoder.out.{weight,bias}
 */
#ifndef VAE_MODEL_H
#define VAE_MODEL_H

#include "backend.h"

#include <stdio.h>

#define VAE_MAX_HIDDEN 8
#define VAE_MAX_LINEAR (2 * VAE_MAX_HIDDEN + 2)

typedef struct {
    int input_dim;              /* D: pixels per image (784 for MNIST) */
    int image_rows, image_cols; /* how D is drawn in grids (28 x 28); both 0: not an image, no pictures */
    int latent_dim;             /* Z */
    int n_hidden;               /* hidden layers in the encoder; the decoder mirrors them */
    int hidden[VAE_MAX_HIDDEN]; /* encoder widths from the input side */
    vae_act act;                /* activation of every hidden layer */
    float beta;                 /* weight of the KL term (1 = the plain VAE) */
} vae_config;

typedef struct {
    char name[32];   /* "encoder.fc1", "encoder.head", "decoder.out", ... */
    int in, out;
    size_t w_off;    /* weight (out, in) at params + w_off */
    size_t b_off;    /* bias (out) at params + b_off */
    vae_act act;
} vae_linear;

typedef struct {
    vae_config cfg;
    vae_backend *be;

    int n_linear;                   /* 2 * n_hidden + 2 */
    vae_linear lin[VAE_MAX_LINEAR]; /* encoder hidden..., head, decoder hidden..., output */
    int head;                       /* index of the encoder head in lin[] */

    size_t n_params;
    float *params;  /* (n_params) */
    float *grads;   /* (n_params), same layout */
    float *adam_m;  /* (n_params), same layout */
    float *adam_v;  /* (n_params), same layout */
    int *adam_step; /* (1) Adam's t, in backend memory */
    int *diverged;    /* (1) vae_diverged_quantity of the first non-finite step, 0 while all is finite;
                       * while set, Adam skips every step (backend memory, read by the ops) */
    float *grad_scale; /* (1) gradient clipping factor of the current step (backend memory) */

    /* Activations for batches of up to batch_cap rows (backend memory). */
    int batch_cap;
    float *x;                       /* (Bc, D) input batch in [0, 1] */
    float *out[VAE_MAX_LINEAR];     /* (Bc, lin[l].out) each Linear's output after its activation */
    float *dout[VAE_MAX_LINEAR];    /* (Bc, lin[l].out) loss gradient w.r.t. out[l] */
    float *eps;                     /* (Bc * Z, rounded up to even) reparameterization noise */
    float *z, *dz;                  /* (Bc, Z); z rounded up to even like eps */
    float *row_loss;                /* (Bc, 2) per image [recon, kl] */
} vae_model;

/* What went non-finite in the first bad training step. */
typedef enum {
    VAE_DIVERGED_NONE = 0,
    VAE_DIVERGED_LOSS = 1,     /* the loss of some image in the batch */
    VAE_DIVERGED_GRADIENT = 2, /* some parameter gradient (with a finite loss) */
} vae_diverged_quantity;

typedef struct {
    vae_diverged_quantity quantity;
    long step;      /* the skipped step, counted from 1 over the whole run (Adam's t + 1) */
    int epoch;      /* the epoch it fell in, and its place in that epoch (from 1): */
    int epoch_step; /* filled by the trainer (train.h); 0 from vae_model_read_divergence */
} vae_divergence;

/* "loss" or "gradient". */
const char *vae_diverged_quantity_name(vae_diverged_quantity q);

/* ---- configuration ---------------------------------------------------------- */
void vae_config_default(vae_config *c); /* 784-400-20-400-784, relu, beta 1 */
int vae_config_validate(const vae_config *c);                /* -1 with vae_set_error */
int vae_config_parse_hidden(const char *s, vae_config *c);   /* "400" or "512,256" */
int vae_act_parse(const char *s, vae_act *out);               /* "relu" | "tanh" */
const char *vae_act_name(vae_act a);

/* ---- life cycle -------------------------------------------------------------------------- */
/* Lay out the Linears of cfg (lin, n_linear, head, n_params) and allocate nothing:
 * enough to count parameters or check a file's tensors. Buffers stay NULL; such
 * a model needs no vae_model_free. -1 with vae_set_error when cfg is invalid. */
int vae_model_layout(vae_model *m, const vae_config *cfg);
/* Lay out and allocate everything on `be` for batches up to batch_cap; parameters zero. */
int vae_model_init(vae_model *m, const vae_config *cfg, vae_backend *be, int batch_cap);
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
/* Input of Linear l: x, the previous output, or z for the decoder's first layer. */
const float *vae_model_layer_input(const vae_model *m, int l);

/* ---- compute (B <= batch_cap; all asynchronous on the CUDA backend) ---------- */
/* m->x and m->eps filled -> every out[], z, and row_loss; with grad, also dout of the
 * logits and the head (loss gradient scaled by 1/B). */
void vae_model_forward(vae_model *m, int B, int with_grad);
/* Backward from the gradients the loss wrote; parameter gradients accumulate into m->grads. */
void vae_model_backward(vae_model *m, int B);
/* Zero the gradients, forward, backward, one Adam step. The step guards itself on
 * the backend: if a loss or a gradient is not finite it sets m->diverged and Adam
 * skips the update (this step's and every later one's, until the flag is cleared),
 * so the parameters stay those of the last good step. clip_grad_norm > 0 scales
 * the gradients to at most that global L2 norm first (PyTorch's clip_grad_norm_);
 * 0 leaves them as they are. Nothing here waits for the backend. */
void vae_model_train_step(vae_model *m, int B, const vae_adam_config *adam, float clip_grad_norm);
/* Read the divergence flag (waits for the backend): 1 and *d filled when a step
 * went non-finite, else 0. Clear it with vae_model_clear_divergence. */
int vae_model_read_divergence(vae_model *m, vae_divergence *d);
void vae_model_clear_divergence(vae_model *m);
/* Decoder only: m->z (B, Z) -> logits in m->out[n_linear - 1]. */
void vae_model_decode(vae_model *m, int B);
/* Mean of the Bernoulli decoder, sigmoid(logits), for B rows, downloaded to host. */
void vae_model_download_probs(vae_model *m, int B, float *host_probs /* (B, D) */);

/* ---- description ------------------------------------------------------------- */
void vae_model_print_summary(const vae_model *m, FILE *f);

#endif /* VAE_MODEL_H */
