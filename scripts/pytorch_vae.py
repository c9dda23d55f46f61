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

  train: python3 scripts/pytorch_vae.py train --data data/mnist --epochs 10
  bench: python3 scripts/pytorch_vae.py bench --data data/mnist --device cpu
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


def train_epoch(model, opt, x_all, batch, beta, gen):
    n = x_all.shape[0]
    perm = torch.randperm(n, generator=gen).to(x_all.device)
    tot = torch.zeros(2, dtype=torch.float64, device=x_all.device)
    for i in range(0, n, batch):
        x = x_all[perm[i:i + batch]].float().div_(255.0)
        logits, mu, logvar = model(x)
        recon, kl = losses(logits, x, mu, logvar)
        loss = (recon + beta * kl) / x.shape[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        tot += torch.stack([recon.detach(), kl.detach()]).double()
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["train", "bench"])
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(args.seed)
    x_train = torch.from_numpy(load_split(args.data, "train").copy()).to(device)
    x_test = torch.from_numpy(load_split(args.data, "t10k").copy()).to(device)
    model = VAE(d=x_train.shape[1]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)

    if args.mode == "train":
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
        return

    epochs = args.epochs or 3
    train_epoch(model, opt, x_train, args.batch_size, args.beta, gen)  # warm-up
    sync(device)
    secs = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        r, k = train_epoch(model, opt, x_train, args.batch_size, args.beta, gen)
        sync(device)
        secs.append(time.perf_counter() - t0)
    med = float(np.median(secs))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f'bench impl=pytorch backend={device.type} device="{name}" images={x_train.shape[0]} '
          f"batch={args.batch_size} epochs={epochs} median_s_per_epoch={med:.6f} "
          f"images_per_s={x_train.shape[0] / med:.1f} final_train_loss={r + args.beta * k:.4f} torch={torch.__version__}",
          flush=True)


if __name__ == "__main__":
    main()
