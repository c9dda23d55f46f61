#!/usr/bin/env python3
"""pytorch_eval.py: an independent evaluation of a cuvae model.safetensors in PyTorch, the
check of `cuvae eval`: the negative ELBO (recon with one posterior sample, KL in closed form)
and the importance-weighted estimate of -log p(x) (Burda et al. 2015) on the test split.

Independent of cuvae's code: it reads the safetensors file itself (header, then raw
little-endian float32 tensors), builds the MLP from the tensor names (encoder.fc*, encoder.mu,
encoder.logvar, decoder.fc*, decoder.out; activation from the metadata), computes in float64,
and writes the weights from the densities themselves:
  log w = log p(x|z) + log N(z; 0, I) - log N(z; mu, exp(logvar)),  z ~ q(z|x) from torch's RNG.
Its noise is not cuvae's, so the two agree within sampling noise; to state that noise it runs
the IW estimate twice with independent samples and reports the standard error of one run's
mean over the images (iw_nll_se), from the per-image differences of the two runs.

  python3 scripts/pytorch_eval.py --model M --data data/mnist --iw-samples 100
prints one JSON object: loss, recon, kl, iw_nll, iw_nll_se, iw_samples, images.
Grey levels x/255 only (cuvae eval --binarize none).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_vae import load_split  # noqa: E402  (the same IDX reader as the reference trainer)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name} is {t['dtype']}, expected F32")
        a, b = t["data_offsets"]
        arr = np.frombuffer(data[base + a:base + b], dtype="<f4").reshape(t["shape"])
        tensors[name] = torch.from_numpy(arr.astype(np.float64))
    return tensors, meta


class Model:
    def __init__(self, tensors, meta):
        self.t = tensors
        self.act = {"relu": F.relu, "tanh": torch.tanh}[meta.get("activation", "relu")]
        self.n_hidden = sum(1 for k in tensors if k.startswith("encoder.fc") and k.endswith(".weight"))

    def lin(self, name, x):
        return x @ self.t[name + ".weight"].T + self.t[name + ".bias"]

    def encode(self, x):
        h = x
        for i in range(1, self.n_hidden + 1):
            h = self.act(self.lin(f"encoder.fc{i}", h))
        return self.lin("encoder.mu", h), self.lin("encoder.logvar", h)

    def decode(self, z):
        h = z
        for i in range(1, self.n_hidden + 1):
            h = self.act(self.lin(f"decoder.fc{i}", h))
        return self.lin("decoder.out", h)


def log_normal(z, mu, logvar):
    return (-0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / logvar.exp())).sum(-1)


def iw_per_image(model, x, mu, logvar, k, gen, chunk):
    """-log (1/K sum_k w_k) for each image of x (B, D), samples in chunks of `chunk`."""
    lws = []
    std = (0.5 * logvar).exp()
    for done in range(0, k, chunk):
        kc = min(chunk, k - done)
        eps = torch.randn((x.shape[0], kc, mu.shape[1]), generator=gen, dtype=torch.float64)
        z = mu[:, None, :] + eps * std[:, None, :]
        logits = model.decode(z)
        log_px_z = -F.binary_cross_entropy_with_logits(logits, x[:, None, :].expand_as(logits),
                                                       reduction="none").sum(-1)
        log_pz = log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        log_qz = log_normal(z, mu[:, None, :], logvar[:, None, :])
        lws.append(log_px_z + log_pz - log_qz)
    lw = torch.cat(lws, dim=1)
    return -(torch.logsumexp(lw, dim=1) - math.log(k))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--iw-samples", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=100, help="images per pass")
    args = ap.parse_args()

    tensors, meta = read_safetensors(args.model)
    model = Model(tensors, meta)
    x_all = torch.from_numpy(load_split(args.data, "t10k").astype(np.float64) / 255.0)
    gen = torch.Generator().manual_seed(args.seed)
    n = x_all.shape[0]
    recon = kl = 0.0
    iw_a, iw_b = [], []
    chunk = max(1, 4096 // args.batch)
    with torch.no_grad():
        for i in range(0, n, args.batch):
            x = x_all[i:i + args.batch]
            mu, logvar = model.encode(x)
            z = mu + torch.randn(mu.shape, generator=gen, dtype=torch.float64) * (0.5 * logvar).exp()
            recon += F.binary_cross_entropy_with_logits(model.decode(z), x, reduction="sum").item()
            kl += (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum()).item()
            iw_a.append(iw_per_image(model, x, mu, logvar, args.iw_samples, gen, chunk))
            iw_b.append(iw_per_image(model, x, mu, logvar, args.iw_samples, gen, chunk))
    a, b = torch.cat(iw_a), torch.cat(iw_b)
    se = math.sqrt(((a - b) ** 2 / 2).sum().item()) / n
    print(json.dumps({"images": n, "loss": (recon + kl) / n, "recon": recon / n, "kl": kl / n,
                      "iw_nll": a.mean().item(), "iw_nll_se": se, "iw_samples": args.iw_samples}))


if __name__ == "__main__":
    main()
