#!/usr/bin/env python3
"""pytorch_eval.py: an independent evaluation of any cuvae model.safetensors in PyTorch, the
check of `cuvae eval`: each named loss term with one posterior sample per image (KL terms in
closed form), the negative ELBO (every term with weight 1), the training objective (each term
with its weight), and the importance-weighted estimate of -log p(x) (Burda et al. 2015) on the
test split.

Independent of cuvae's code: scripts/cuvae_torch.py reads the file itself and rebuilds the
network from its metadata alone (the `architecture` JSON, or the plain VAE's keys in files
written before it), computes in float64, and the weights come from the densities themselves:
  log w = log p(x|z) + sum over latents of log p(z) - log q(z|x),  z ~ q(z|x) from torch's RNG.
Its noise is not cuvae's, so the two agree within sampling noise; to state that noise it draws
every estimate twice with independent samples and reports the standard error of one draw's mean
over the images (iw_nll_se, loss_se, terms_se), from the per-image differences of the two.

  python3 scripts/pytorch_eval.py --model M --data data/mnist --iw-samples 100
prints one JSON object: images, loss (negative ELBO), loss_se, objective (weighted terms),
each term by name (recon, kl for the plain VAE and the cvae, whose "y" input is the one-hot
test label: its loss then bounds -log p(x|y)) and all of them under terms, weights and
terms_se, iw_nll, iw_nll_se, iw_samples. Grey levels x/255 only (cuvae eval --binarize none).
A file or data set it cannot use: one message on stderr, exit 1.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cuvae_torch import ModelFileError, check_labels, load  # noqa: E402
from pytorch_vae import load_split  # noqa: E402  (the same IDX reader as the reference trainer)

RESERVED = {"images", "loss", "loss_se", "objective", "terms", "weights", "terms_se", "iw_nll", "iw_nll_se",
            "iw_samples"}


def iw_per_image(model, batch, k, draw, chunk):
    """-log (1/K sum_k w_k) for each image of the batch, samples in chunks of `chunk`."""
    lw = torch.cat([model.log_weights(batch, min(chunk, k - done), draw) for done in range(0, k, chunk)], dim=1)
    return -(torch.logsumexp(lw, dim=1) - math.log(k))


def evaluate(model, x_all, labels, iw_samples, seed, batch_size):
    gen = torch.Generator().manual_seed(seed)
    draw = lambda shape: torch.randn(shape, generator=gen, dtype=torch.float64)  # noqa: E731
    n = x_all.shape[0]
    terms = [t["name"] for t in model.arch["terms"]]
    weights = {t["name"]: float(t["weight"]) for t in model.arch["terms"]}
    sums = dict.fromkeys(terms, 0.0)
    sq = dict.fromkeys(terms + ["loss"], 0.0)  # sums of squared differences of two independent draws
    iw_a, iw_b = [], []
    chunk = max(1, 4096 // batch_size)
    with torch.no_grad():
        for i in range(0, n, batch_size):
            batch = {"x": x_all[i:i + batch_size], "labels": labels[i:i + batch_size]}
            a, b = model.terms(batch, draw), model.terms(batch, draw)
            for name in terms:
                sums[name] += a[name].sum().item()
                sq[name] += ((a[name] - b[name]) ** 2).sum().item()
            sq["loss"] += ((sum(a.values()) - sum(b.values())) ** 2).sum().item()
            if iw_samples:
                iw_a.append(iw_per_image(model, batch, iw_samples, draw, chunk))
                iw_b.append(iw_per_image(model, batch, iw_samples, draw, chunk))
    se = {name: math.sqrt(v / 2) / n for name, v in sq.items()}
    res = {"images": n, "loss": sum(sums.values()) / n, "loss_se": se.pop("loss"),
           "objective": sum(weights[t] * sums[t] for t in terms) / n}
    res.update({t: sums[t] / n for t in terms if t not in RESERVED})
    res.update({"terms": {t: sums[t] / n for t in terms}, "weights": weights, "terms_se": se})
    if iw_samples:
        a, b = torch.cat(iw_a), torch.cat(iw_b)
        res.update({"iw_nll": a.mean().item(), "iw_nll_se": math.sqrt(((a - b) ** 2 / 2).sum().item()) / n,
                    "iw_samples": iw_samples})
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--iw-samples", type=int, default=100, help="K per image (0: no importance-weighted bound)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=100, help="images per pass")
    args = ap.parse_args()
    if args.iw_samples < 0 or args.batch < 1:
        ap.error("--iw-samples must be 0 or more and --batch at least 1")
    try:
        model, _meta = load(args.model)
        images, labels = load_split(args.data, "t10k", with_labels=True)
    except ModelFileError as e:
        sys.exit(f"pytorch_eval: {e}")
    except OSError as e:
        sys.exit(f"pytorch_eval: {e.filename or args.data}: cannot be read ({e.strerror or e})")
    except (ValueError, struct.error) as e:
        sys.exit(f"pytorch_eval: {args.data}: the test split is not a valid IDX data set ({e})")
    width = model.arch["inputs"]["x"]
    if images.shape[1] != width:
        sys.exit(f"pytorch_eval: {args.data}: test images have {images.shape[1]} pixels, "
                 f"the model {args.model} reads {width}")
    try:
        check_labels(args.model, model.arch, labels, os.path.join(args.data, "t10k-labels"))
    except ModelFileError as e:
        sys.exit(f"pytorch_eval: {e}")
    if args.iw_samples and model.enumerated():
        sys.exit(f"pytorch_eval: {args.model}: a categorical latent (--model joint): its terms sum it out exactly; "
                 "importance weights over it are not supported: use --iw-samples 0")
    x_all = torch.from_numpy(images.astype(np.float64) / 255.0)
    try:  # a latent without a density (--model ae's deterministic code) refuses importance weights
        res = evaluate(model, x_all, torch.from_numpy(labels.astype(np.int64)), args.iw_samples, args.seed, args.batch)
    except ModelFileError as e:
        sys.exit(f"pytorch_eval: {args.model}: {e}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
