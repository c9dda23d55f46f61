#!/usr/bin/env python3
"""pytorch_model_fixture.py: model files for tests/test_pytorch_model.c, and the checks that need
Python. Not a tool for users.

  write DIR        hand-made model files whose layers read several input blocks (a skip from x
                   into the second encoder layer, [encoder.fc2 | encoder.fc1] into the head, [z |
                   decoder.fc1] into the output), one with a Bernoulli and one with a Gaussian
                   likelihood; the test split of a 3x4-pixel data set beside them (IDX); the
                   expected numbers (expected.json, computed here with NumPy from the arrays the
                   files were written from, not from the files); and bad files, listed in bad.txt
                   as "FILE<TAB>what the message must say".
  check DIR        rebuild each hand-made file with scripts/cuvae_torch.py and compare its terms
                   and importance weights, at the same noise, with a forward pass written
                   directly in NumPy (float64 both: 1e-10 relative); check that the plain VAE's
                   keys give the architecture of README's example. Exit 0 when all agree.
  add-arch SRC DST the cuvae file SRC with its plain architecture written into the metadata as
                   JSON: today's files read through the `architecture` path.
  mutate DIR N     N seeded mutations of the Bernoulli file's architecture (a value replaced by
                   one of another type, name or size): each must load and evaluate, or be refused
                   with ModelFileError; anything else (a traceback) fails. Prints the two counts.
"""
import json
import math
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import cuvae_torch  # noqa: E402

D, H1, H2, Z, N = 12, 7, 5, 3, 20
SIGMA = 0.5


def write_safetensors(path, tensors, meta):
    """tensors: list of (name, float32 array); meta: str -> str. The layout cuvae writes."""
    header, off, blobs = {"__metadata__": meta}, 0, []
    for name, a in tensors:
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_idx(path, arr):
    dims = arr.shape
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 8, len(dims)) + struct.pack(">" + "I" * len(dims), *dims))
        f.write(arr.astype(np.uint8).tobytes())


def architecture(likelihood, kl_weight):
    return {"inputs": {"x": D},
            "layers": [
                {"name": "encoder.fc1", "in": [["x", D]], "out": H1, "act": "relu"},
                {"name": "encoder.fc2", "in": [["x", D], ["encoder.fc1", H1]], "out": H2, "act": "tanh"},
                {"name": "encoder.head", "in": [["encoder.fc2", H2], ["encoder.fc1", H1]], "out": 2 * Z,
                 "act": "none", "tensors": [["encoder.mu", Z], ["encoder.logvar", Z]]},
                {"name": "decoder.fc1", "in": [["z", Z]], "out": H1, "act": "relu"},
                {"name": "decoder.out", "in": [["z", Z], ["decoder.fc1", H1]], "out": D, "act": "none"}],
            "latents": [{"name": "z", "kind": "gaussian", "dim": Z, "stats": "encoder.head"}],
            "likelihood": {"kind": likelihood, "layer": "decoder.out"},
            "terms": [{"name": "recon", "op": likelihood, "weight": 1},
                      {"name": "kl", "op": "kl_gaussian", "latent": "z", "weight": kl_weight}]}


def weights(seed):
    """Seeded float32 weights of architecture()'s layers: name -> (W (out, in), b (out))."""
    rng = np.random.default_rng(seed)
    shapes = {"encoder.fc1": (H1, D), "encoder.fc2": (H2, D + H1), "encoder.head": (2 * Z, H2 + H1),
              "decoder.fc1": (H1, Z), "decoder.out": (D, Z + H1)}
    return {k: ((rng.standard_normal(s) * 0.6).astype(np.float32), (rng.standard_normal(s[0]) * 0.3).astype(np.float32))
            for k, s in shapes.items()}


def tensors_of(w):
    out = []
    for name, (W, b) in w.items():
        if name == "encoder.head":
            out += [("encoder.mu.weight", W[:Z]), ("encoder.mu.bias", b[:Z]),
                    ("encoder.logvar.weight", W[Z:]), ("encoder.logvar.bias", b[Z:])]
        else:
            out += [(name + ".weight", W), (name + ".bias", b)]
    return out


def meta_of(arch, likelihood):
    m = {"format": "cuvae", "format_version": "1", "input_dim": str(D), "image_rows": "3", "image_cols": "4",
         "latent_dim": str(Z), "hidden": f"{H1}", "activation": "relu", "beta": "1", "likelihood": likelihood,
         "architecture": json.dumps(arch)}
    if likelihood == "gaussian":
        m["sigma"] = repr(SIGMA)
    return m


def images():
    rng = np.random.default_rng(5)
    return rng.integers(0, 256, size=(N, 3, 4)), np.arange(N) % 3


def numpy_forward(w, x, eps, likelihood):
    """The terms (recon, kl) per row and log p(x|z) + log p(z) - log q(z|x), written out by hand.
    x (B, D), eps (B, Z): z = mu + eps * exp(logvar / 2)."""
    W = {k: (a.astype(np.float64), b.astype(np.float64)) for k, (a, b) in w.items()}
    lin = lambda k, h: h @ W[k][0].T + W[k][1]  # noqa: E731
    h1 = np.maximum(lin("encoder.fc1", x), 0)
    h2 = np.tanh(lin("encoder.fc2", np.concatenate([x, h1], 1)))
    st = lin("encoder.head", np.concatenate([h2, h1], 1))
    mu, lv = st[:, :Z], st[:, Z:]
    z = mu + eps * np.exp(lv / 2)
    d1 = np.maximum(lin("decoder.fc1", z), 0)
    out = lin("decoder.out", np.concatenate([z, d1], 1))
    if likelihood == "bernoulli":
        recon = (np.maximum(out, 0) - out * x + np.log1p(np.exp(-np.abs(out)))).sum(1)
    else:
        recon = ((x - out) ** 2 / (2 * SIGMA ** 2) + math.log(SIGMA) + 0.5 * math.log(2 * math.pi)).sum(1)
    kl = -0.5 * (1 + lv - mu ** 2 - np.exp(lv)).sum(1)
    log_pz = -0.5 * (z ** 2 + math.log(2 * math.pi)).sum(1)
    log_qz = -0.5 * (eps ** 2 + lv + math.log(2 * math.pi)).sum(1)
    return recon, kl, -recon + log_pz - log_qz


GOOD = {"blocks_bernoulli.safetensors": ("bernoulli", 1, 11), "blocks_gaussian.safetensors": ("gaussian", 0.5, 12)}


def write(d):
    os.makedirs(d, exist_ok=True)
    imgs, labels = images()
    write_idx(os.path.join(d, "t10k-images-idx3-ubyte"), imgs)
    write_idx(os.path.join(d, "t10k-labels-idx1-ubyte"), labels)
    x = imgs.reshape(N, D) / 255.0
    expected = {}
    for name, (lik, kl_w, seed) in GOOD.items():
        w, arch = weights(seed), architecture(lik, kl_w)
        write_safetensors(os.path.join(d, name), tensors_of(w), meta_of(arch, lik))
        _, kl, _ = numpy_forward(w, x, np.zeros((N, Z)), lik)
        expected[name] = {"kl": kl.mean(), "kl_weight": kl_w}
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f)

    w, bad = weights(11), []

    def bad_file(fname, why, tensors=None, arch=None, meta=None):
        a = arch or architecture("bernoulli", 1)
        m = meta_of(a, "bernoulli")
        m.update(meta or {})
        write_safetensors(os.path.join(d, fname), tensors if tensors is not None else tensors_of(w), m)
        bad.append(f"{fname}\t{why}")

    bad_file("missing_tensor.safetensors", "tensor 'decoder.out.bias' is missing",
             tensors=[t for t in tensors_of(w) if t[0] != "decoder.out.bias"])
    bad_file("wrong_shape.safetensors", "tensor 'encoder.fc2.weight' has shape [5, 12], layer 'encoder.fc2' needs [5, 19]",
             tensors=[(n, a[:, :D] if n == "encoder.fc2.weight" else a) for n, a in tensors_of(w)])
    a = architecture("bernoulli", 1)
    a["layers"][3]["in"] = [["q", Z]]
    bad_file("unknown_source.safetensors", "layer 'decoder.fc1' reads 'q', which is not an input, a latent or an earlier layer", arch=a)
    a = architecture("bernoulli", 1)
    a["layers"][3], a["layers"][4] = a["layers"][4], a["layers"][3]
    bad_file("source_after_use.safetensors", "layer 'decoder.out' reads 'decoder.fc1', which is not an input", arch=a)
    a = architecture("bernoulli", 1)
    a["terms"][1]["op"] = "kl_laplace"
    bad_file("unknown_op.safetensors", "term 'kl' has op 'kl_laplace', not one this loader knows", arch=a)
    a = architecture("bernoulli", 1)
    a["layers"][1]["in"][1][1] = 6
    bad_file("block_width.safetensors", "layer 'encoder.fc2' reads 'encoder.fc1' as 6 columns, but 'encoder.fc1' is 7 wide", arch=a)
    bad_file("extra_tensor.safetensors", "tensor 'decoder.fc9.bias' is not part of the model",
             tensors=tensors_of(w) + [("decoder.fc9.bias", np.zeros(3, np.float32))])
    bad_file("bad_json.safetensors", "metadata 'architecture' is not valid JSON", meta={"architecture": "{\"inputs\": "})
    bad_file("no_sigma.safetensors", "a gaussian likelihood needs a positive metadata 'sigma'",
             arch=architecture("gaussian", 1))
    with open(os.path.join(d, "truncated.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", 4000) + b"{}")
    bad.append("truncated.safetensors\ttruncated: its header claims 4000 bytes")
    with open(os.path.join(d, "bad.txt"), "w") as f:
        f.write("\n".join(bad) + "\n")


def check(d):
    import torch
    imgs, labels = images()
    x = imgs.reshape(N, D) / 255.0
    batch = {"x": torch.from_numpy(x), "labels": torch.from_numpy(labels)}
    eps = np.random.default_rng(3).standard_normal((N, 4, Z))
    failures = []

    def close(what, got, want):
        err = np.max(np.abs(got - want) / (1e-12 + np.abs(want)))
        print(f"{what}: max relative difference {err:.3g}")
        if not err <= 1e-10:
            failures.append(what)

    for name, (lik, kl_w, seed) in GOOD.items():
        model, _ = cuvae_torch.load(os.path.join(d, name))
        draws = iter([torch.from_numpy(eps[:, :1]), torch.from_numpy(eps)])
        with torch.no_grad():
            terms = model.terms(batch, lambda shape: next(draws))
            lw = model.log_weights(batch, 4, lambda shape: next(draws)).numpy()
        recon, kl, lw1 = numpy_forward(weights(seed), x, eps[:, 0], lik)
        close(f"{name} recon", terms["recon"].numpy(), recon)
        close(f"{name} kl", terms["kl"].numpy(), kl)
        for k in range(4):
            _, _, lwk = numpy_forward(weights(seed), x, eps[:, k], lik)
            close(f"{name} log weight of sample {k}", lw[:, k], lwk)
        want_w = [t["weight"] for t in model.arch["terms"]]
        if want_w != [1, kl_w]:
            failures.append(f"{name} weights {want_w}")
    plain = cuvae_torch.plain_architecture("plain", {"input_dim": "784", "latent_dim": "20", "hidden": "400",
                                                     "activation": "relu", "beta": "1", "likelihood": "bernoulli"})
    readme = {"inputs": {"x": 784},
              "layers": [{"name": "encoder.fc1", "in": [["x", 784]], "out": 400, "act": "relu"},
                         {"name": "encoder.head", "in": [["encoder.fc1", 400]], "out": 40, "act": "none",
                          "tensors": [["encoder.mu", 20], ["encoder.logvar", 20]]},
                         {"name": "decoder.fc1", "in": [["z", 20]], "out": 400, "act": "relu"},
                         {"name": "decoder.out", "in": [["decoder.fc1", 400]], "out": 784, "act": "none"}],
              "latents": [{"name": "z", "kind": "gaussian", "dim": 20, "stats": "encoder.head"}],
              "likelihood": {"kind": "bernoulli", "layer": "decoder.out"},
              "terms": [{"name": "recon", "op": "bernoulli", "weight": 1},
                        {"name": "kl", "op": "kl_gaussian", "latent": "z", "weight": 1}]}
    print("plain VAE keys give the documented architecture:", plain == readme)
    if plain != readme:
        failures.append(f"plain architecture {json.dumps(plain)}")
    if failures:
        sys.exit("mismatch: " + "; ".join(failures))


def mutate(d, n):
    import copy
    import random

    import torch
    base, tensors = architecture("bernoulli", 1), tensors_of(weights(11))
    values = [None, [], {}, "x", "z", "q", "relu", "gaussian", "encoder.fc1", -1, 0, 1.5, 3, 7, True, 1e300,
              [["x", D]], ["a", 1], {"a": 1}]

    def paths(o, p=()):
        yield p
        items = o.items() if isinstance(o, dict) else enumerate(o) if isinstance(o, list) else []
        for k, v in items:
            yield from paths(v, p + (k,))

    where, rng, loaded, refused = list(paths(base))[1:], random.Random(7), 0, 0
    batch = {"x": torch.rand(3, D, dtype=torch.float64), "labels": torch.zeros(3, dtype=torch.int64)}
    draw = lambda shape: torch.randn(shape, dtype=torch.float64)  # noqa: E731
    path = os.path.join(d, "mutated.safetensors")
    for _ in range(int(n)):
        a = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            o, p = a, rng.choice(where)
            try:
                for k in p[:-1]:
                    o = o[k]
                o[p[-1]] = rng.choice(values)
            except (KeyError, IndexError, TypeError):
                pass  # an earlier mutation removed the path
        write_safetensors(path, tensors, meta_of(a, "bernoulli"))
        try:
            model, _ = cuvae_torch.load(path)
            with torch.no_grad():
                model.terms(batch, draw)
                model.log_weights(batch, 2, draw)
            loaded += 1
        except cuvae_torch.ModelFileError:
            refused += 1
    print(f"{loaded} mutated architectures loaded and evaluated, {refused} refused with a message")


def add_arch(src, dst):
    tensors, meta = cuvae_torch.read_safetensors(src)
    meta["architecture"] = json.dumps(cuvae_torch.plain_architecture(src, meta))
    write_safetensors(dst, [(k, v.numpy().astype(np.float32)) for k, v in tensors.items()], meta)


if __name__ == "__main__":
    try:
        {"write": write, "check": check, "add-arch": add_arch, "mutate": mutate}[sys.argv[1]](*sys.argv[2:])
    except cuvae_torch.ModelFileError as e:
        sys.exit(f"pytorch_model_fixture: {e}")
