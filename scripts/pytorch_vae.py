#!/usr/bin/env python3
"""pytorch_vae.py: the same VAE as cuvae's default model, in PyTorch, as the
reference for accuracy (scripts/reference.sh) and speed (scripts/bench.sh).

Same model (784-400-20-400-784, ReLU, Gaussian posterior, Bernoulli decoder on
logits), same objective (per-image BCE summed over pixels + beta * KL, mean
over the batch), same optimizer (Adam, lr 1e-3, betas 0.9/0.999, eps 1e-8),
same init family (PyTorch's default Linear init, which cuvae reproduces), same
data and split, a fresh shuffle every epoch, the last batch kept even when
short, test loss with one posterior sample per image. The random streams are
PyTorch's own, so numbers match cuvae's in distribution, not bit for bit.

The bench mode times training epochs for scripts/bench.sh, with the training set
in one float32 tensor on the device, indexed there: --mode eager (plain PyTorch),
graph (the whole step captured in a CUDA graph and replayed) or compile
(torch.compile, mode reduce-overhead; PyTorch 2); --tf32 allows TF32 matrix
products on the GPU (FP32 otherwise). It prints one `bench impl=pytorch ...` line,
the median over the timed epochs after one warm-up epoch.

  train: python3 scripts/pytorch_vae.py train --data data/mnist --epochs 10
  bench: python3 scripts/pytorch_vae.py bench --data data/mnist --device cpu --threads 1
         python3 scripts/pytorch_vae.py bench --data DIR --device cuda --mode graph --epochs 1
"""
import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        sys.exit(f"{path}: truncated or has trailing bytes")
    return arr.reshape(dims)


def load_split(data_dir, prefix, with_labels=False):
    """The split's images (N, rows*cols) uint8, and with with_labels its labels (N) too."""
    out = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        base = os.path.join(data_dir, f"{prefix}-{kind}")
        path = base if os.path.exists(base) else base + ".gz"
        out.append(read_idx(path))
    images, labels = out
    if labels.shape[0] != images.shape[0]:
        sys.exit(f"{data_dir}: {prefix} has {images.shape[0]} images but {labels.shape[0]} labels")
    images = images.reshape(images.shape[0], -1)
    return (images, labels) if with_labels else images


class VAE(nn.Module):
    def __init__(self, d=784, h=400, z=20):
        super().__init__()
        self.fc1 = nn.Linear(d, h)
        self.fc21 = nn.Linear(h, z)
        self.fc22 = nn.Linear(h, z)
        self.fc3 = nn.Linear(z, h)
        self.fc4 = nn.Linear(h, d)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.fc4(F.relu(self.fc3(z))), mu, logvar


def losses(logits, x, mu, logvar):
    """Per-batch sums of the reconstruction and KL terms, in nats."""
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return recon, kl


def train_step(model, opt, x, beta):
    """One Adam step on the batch x; the batch's summed (recon, kl), detached, as one tensor."""
    logits, mu, logvar = model(x)
    recon, kl = losses(logits, x, mu, logvar)
    loss = (recon + beta * kl) / x.shape[0]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return torch.stack([recon.detach(), kl.detach()]).double()


def train_epoch(model, opt, x_all, batch, beta, gen):
    n = x_all.shape[0]
    perm = torch.randperm(n, generator=gen).to(x_all.device)
    tot = torch.zeros(2, dtype=torch.float64, device=x_all.device)
    for i in range(0, n, batch):
        tot += train_step(model, opt, x_all[perm[i:i + batch]].float().div_(255.0), beta)
    return (tot / n).tolist()


@torch.no_grad()
def evaluate(model, x_all, batch):
    tot = torch.zeros(2, dtype=torch.float64, device=x_all.device)
    for i in range(0, x_all.shape[0], batch):
        x = x_all[i:i + batch].float().div_(255.0)
        logits, mu, logvar = model(x)
        recon, kl = losses(logits, x, mu, logvar)
        tot += torch.stack([recon, kl]).double()
    return (tot / x_all.shape[0]).tolist()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


# ---- bench: one training epoch per call, in one of three ways ---------------------------
# Each maker returns run(): one epoch over x_all (float32 in [0,1], already on the device, one
# tensor), indexed on the device by a fresh permutation; run() returns the epoch's summed
# (recon, kl) as a device tensor, so that timing it costs no synchronization of its own.

def eager_epoch(model, opt, x_all, batch, beta, gen):
    """Plain PyTorch: every step's kernels launched from Python."""
    n = x_all.shape[0]

    def run():
        perm = torch.randperm(n, generator=gen, device=x_all.device)
        tot = torch.zeros(2, dtype=torch.float64, device=x_all.device)
        for i in range(0, n, batch):
            tot += train_step(model, opt, x_all.index_select(0, perm[i:i + batch]), beta)
        return tot
    return run


def graph_epoch(model, opt, x_all, batch, beta, gen):
    """The whole step (batch gather, forward, backward, Adam, loss sums) captured in a CUDA
    graph, following PyTorch's "CUDA Graphs" notes: warm-up on a side stream, gradients set to
    None before capture, Adam with capturable=True. The batch's rows come from a static
    permutation at a device-side offset that the graph itself advances, so a step is one
    replay. A short last batch gets its own graph (its own private memory pool)."""
    dev, n = x_all.device, x_all.shape[0]
    perm = torch.randperm(n, generator=gen, device=dev)
    offset = torch.zeros(1, dtype=torch.long, device=dev)
    tot = torch.zeros(2, dtype=torch.float64, device=dev)
    full, tail = divmod(n, batch)
    sizes = [batch] + ([tail] if tail else [])

    def make_step(b):
        rows = torch.arange(b, device=dev)

        def step():
            x = x_all.index_select(0, perm.index_select(0, rows + offset))
            logits, mu, logvar = model(x)
            recon, kl = losses(logits, x, mu, logvar)
            ((recon + beta * kl) / b).backward()
            opt.step()
            tot.add_(torch.stack([recon.detach(), kl.detach()]).double())
            offset.add_(b)
        return step

    steps = {b: make_step(b) for b in sizes}
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for b in sizes:
            for _ in range(3):
                offset.zero_()
                opt.zero_grad(set_to_none=True)
                steps[b]()
    torch.cuda.current_stream().wait_stream(side)
    graphs = {}
    for b in sizes:
        opt.zero_grad(set_to_none=True)
        graphs[b] = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graphs[b], stream=side):  # the warm-up's stream: its handles exist
            steps[b]()

    def run():
        perm.copy_(torch.randperm(n, generator=gen, device=dev))
        offset.zero_()
        tot.zero_()
        for _ in range(full):
            graphs[batch].replay()
        if tail:
            graphs[tail].replay()
        return tot.clone()
    return run


def compile_epoch(model, opt, x_all, batch, beta, gen):
    """torch.compile(mode="reduce-overhead"): forward and loss compiled and replayed from CUDA
    graphs (the backward with them), Adam's step compiled; the gather stays eager."""
    if not hasattr(torch, "compile"):
        raise RuntimeError(f"torch.compile needs PyTorch 2; this is {torch.__version__}")
    n = x_all.shape[0]

    def forward_loss(x):
        logits, mu, logvar = model(x)
        recon, kl = losses(logits, x, mu, logvar)
        return (recon + beta * kl) / x.shape[0], torch.stack([recon.detach(), kl.detach()])

    fwd = torch.compile(forward_loss, mode="reduce-overhead")
    opt_step = torch.compile(opt.step)

    def run():
        perm = torch.randperm(n, generator=gen, device=x_all.device)
        tot = torch.zeros(2, dtype=torch.float64, device=x_all.device)
        for i in range(0, n, batch):
            torch.compiler.cudagraph_mark_step_begin()
            x = x_all.index_select(0, perm[i:i + batch])
            loss, sums = fwd(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt_step()
            tot += sums.double()
        return tot
    return run


EPOCH_MAKERS = {"eager": eager_epoch, "graph": graph_epoch, "compile": compile_epoch}


def bench_device(args):
    """The torch.device for the bench, or exit with one message naming the flag and the cause."""
    device = torch.device(args.device)
    if args.mode != "eager" and device.type != "cuda":
        what = "captures the training step in a CUDA graph" if args.mode == "graph" else \
               "uses torch.compile's CUDA graphs (reduce-overhead)"
        sys.exit(f"pytorch_vae.py: --mode {args.mode} {what}: it needs --device cuda, not {args.device}")
    if device.type == "cuda" and not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
        sys.exit(f"pytorch_vae.py: --device {args.device}: CUDA is not available to PyTorch "
                 f"{torch.__version__} here ({built}; no usable GPU)")
    if args.tf32 and device.type != "cuda":
        sys.exit("pytorch_vae.py: --tf32 selects TF32 matrix products on the GPU: it needs --device cuda")
    return device


def bench(args):
    """Time --epochs epochs after one warm-up epoch; print one `bench` line (the median)."""
    device = bench_device(args)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    torch.manual_seed(args.seed)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    x_all = torch.from_numpy(load_split(args.data, "train").copy()).to(device).float().div_(255.0)
    n = x_all.shape[0]
    model = VAE(d=x_all.shape[1]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8,
                           **({"capturable": True} if args.mode == "graph" else {}))
    try:
        run = EPOCH_MAKERS[args.mode](model, opt, x_all, args.batch_size, args.beta, gen)
        run()  # warm-up
        sync(device)
        secs = []
        for _ in range(args.epochs or 3):
            t0 = time.perf_counter()
            tot = run()
            sync(device)
            secs.append(time.perf_counter() - t0)
    except Exception as e:  # only torch.compile's failures are reported rather than raised
        if args.mode != "compile":
            raise
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:300].replace('"', "'")
        print(f'bench-failed impl=pytorch backend={device.type} mode=compile reason="{reason}"', flush=True)
        sys.exit(3)
    recon, kl = (tot / n).tolist()
    med = float(np.median(secs))
    if device.type == "cuda":
        name, threads = torch.cuda.get_device_name(device), ""
    else:
        name, threads = f"CPU ({torch.get_num_threads()} threads)", f"threads={torch.get_num_threads()} "
    print(f'bench impl=pytorch backend={device.type} device="{name}" {threads}mode={args.mode} '
          f'math={"tf32" if args.tf32 else "fp32"} images={n} batch={args.batch_size} epochs={len(secs)} '
          f"median_s_per_epoch={med:.6f} images_per_s={n / med:.1f} final_train_loss={recon + args.beta * kl:.4f} "
          f"torch={torch.__version__}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["train", "bench"])
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--epochs", type=int, default=None,
                    help="train: epochs (default 10); bench: timed epochs after one warm-up (default 3)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    ap.add_argument("--mode", dest="step_mode", choices=sorted(EPOCH_MAKERS), default="eager",
                    help="bench: eager (default); graph: the whole step in a CUDA graph; "
                         "compile: torch.compile(mode='reduce-overhead') (both --device cuda)")
    ap.add_argument("--tf32", action="store_true", help="bench on cuda: TF32 matrix products (default FP32)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mode == "bench":
        args.mode = args.step_mode
        bench(args)
        return
    if args.step_mode != "eager" or args.tf32:
        sys.exit("pytorch_vae.py: --mode and --tf32 are options of bench, not of train")

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(args.seed)
    x_train = torch.from_numpy(load_split(args.data, "train").copy()).to(device)
    x_test = torch.from_numpy(load_split(args.data, "t10k").copy()).to(device)
    model = VAE(d=x_train.shape[1]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    epochs = args.epochs or 10
    print("epoch,train_loss,train_recon,train_kl,test_loss,test_recon,test_kl,seconds", flush=True)
    for ep in range(1, epochs + 1):
        t0 = time.perf_counter()
        r, k = train_epoch(model, opt, x_train, args.batch_size, args.beta, gen)
        sync(device)
        sec = time.perf_counter() - t0
        tr, tk = evaluate(model, x_test, args.batch_size)
        print(f"{ep},{r + args.beta * k:.6f},{r:.6f},{k:.6f},{tr + args.beta * tk:.6f},{tr:.6f},{tk:.6f},{sec:.4f}",
              flush=True)


if __name__ == "__main__":
    main()
