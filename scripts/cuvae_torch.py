#!/usr/bin/env python3
"""cuvae_torch.py: rebuild any model cuvae writes, in PyTorch, from its model.safetensors alone.

What it is: a reader of the file (it parses safetensors itself: an 8-byte little-endian header
length, a JSON header, raw little-endian float32 data; Debian has no python3-safetensors), a
validator, and an nn.Module built from the metadata's `architecture` (docs/formats.md, "The model file"):
each layer is an nn.Linear applied to torch.cat of its input blocks in order, so the saved weight
(out, in) is exactly that Linear's weight; activations; the latents, sampled from their stats
layer; the likelihood; and the named loss terms with their weights. A file without
`architecture` (written before it existed) is the plain VAE of the keys input_dim, hidden,
latent_dim, activation, beta and likelihood: plain_architecture() writes the same dict for it,
so one code path does the rest.

What it is not: a trainer, or a second copy of cuvae's evaluation code. It computes in float64
with PyTorch's own noise, from the densities themselves, so it checks cuvae independently.

Extending it is a table entry: INPUTS (how a named input comes from a batch of data), ACTS,
LATENT_KINDS (a latent's parameters from its stats layer, its sample, its KL and log-density
ratio, or `enumerated`: summed out exactly in the terms), LIKELIHOODS and TERM_OPS. Only what cuvae writes today is in the tables; a file naming
anything else is refused with a message naming it.

A mistake in a file raises ModelFileError with one plain message naming the file and the
problem; scripts print it and exit 1, never a traceback.

  python3 scripts/cuvae_torch.py MODEL   prints, as one JSON object, where the architecture came
  from ("metadata" or "plain keys"), the architecture, and the rebuilt module's parameter count.
"""
import json
import math
import re
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class ModelFileError(Exception):
    """A model file (or the data given with it) that cannot be used, with the reason in words."""


# ---------------------------------------------------------------------------------------------
# The file.

def read_safetensors(path):
    """(tensors: name -> float64 torch tensor, metadata: str -> str) of a safetensors file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ModelFileError(f"{path}: cannot be read ({e.strerror})") from None
    if len(data) < 8:
        raise ModelFileError(f"{path}: not a safetensors file ({len(data)} bytes, shorter than its 8-byte header length)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ModelFileError(f"{path}: truncated: its header claims {n} bytes, the file holds {len(data) - 8} after the length")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path}: the safetensors header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: the safetensors header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError(f"{path}: __metadata__ is not an object of strings")
    base, size = 8 + n, len(data) - 8 - n
    tensors = {}
    for name, t in header.items():
        try:
            dtype, shape, (a, b) = t["dtype"], [int(s) for s in t["shape"]], t["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise ModelFileError(f"{path}: tensor '{name}' has no valid dtype, shape and data_offsets") from None
        if dtype != "F32":
            raise ModelFileError(f"{path}: tensor '{name}' is {dtype}, cuvae writes F32")
        count = int(np.prod(shape)) if shape else 1
        if not (isinstance(a, int) and isinstance(b, int) and 0 <= a <= b <= size and b - a == 4 * count):
            raise ModelFileError(f"{path}: tensor '{name}': data_offsets {a}..{b} do not hold shape {shape} "
                                 f"within the {size} data bytes")
        arr = np.frombuffer(data[base + a:base + b], dtype="<f4").reshape(shape)
        tensors[name] = torch.from_numpy(arr.astype(np.float64))
    return tensors, meta


# ---------------------------------------------------------------------------------------------
# The architecture: the metadata's JSON, or the plain VAE's keys written as the same dict.

def _meta_int(path, meta, key):
    v = meta.get(key)
    if v is None:
        raise ModelFileError(f"{path}: not a cuvae model: metadata '{key}' is missing")
    if not re.fullmatch(r"[0-9]{1,10}", v) or int(v) > 1 << 30:
        raise ModelFileError(f"{path}: metadata {key} = '{v}' is not a valid size")
    return int(v)


def _meta_float(path, meta, key):
    v = meta.get(key)
    if v is None:
        raise ModelFileError(f"{path}: metadata '{key}' is missing")
    try:
        x = float(v)
    except ValueError:
        raise ModelFileError(f"{path}: metadata {key} = '{v}' is not a number") from None
    if not math.isfinite(x):
        raise ModelFileError(f"{path}: metadata {key} = '{v}' is not finite")
    return x


def plain_architecture(path, meta):
    """The architecture dict of a file written before `architecture` existed: the plain VAE
    input_dim - hidden... - 2 x latent_dim (head: mu, logvar) and back, decoder hidden sizes
    mirrored, the KL weighted by beta."""
    d, z = _meta_int(path, meta, "input_dim"), _meta_int(path, meta, "latent_dim")
    hidden_s, act = meta.get("hidden"), meta.get("activation")
    lik = meta.get("likelihood")
    if hidden_s is None or act is None or lik is None or "beta" not in meta:
        raise ModelFileError(f"{path}: not a cuvae model: metadata hidden/activation/beta/likelihood missing")
    beta = _meta_float(path, meta, "beta")
    try:
        hidden = [int(h) for h in hidden_s.split(",")] if hidden_s else []
    except ValueError:
        raise ModelFileError(f"{path}: metadata hidden = '{hidden_s}' is not a list of sizes") from None
    layers, prev, width = [], "x", d
    for i, h in enumerate(hidden):
        layers.append({"name": f"encoder.fc{i + 1}", "in": [[prev, width]], "out": h, "act": act})
        prev, width = f"encoder.fc{i + 1}", h
    layers.append({"name": "encoder.head", "in": [[prev, width]], "out": 2 * z, "act": "none",
                   "tensors": [["encoder.mu", z], ["encoder.logvar", z]]})
    prev, width = "z", z
    for i, h in enumerate(reversed(hidden)):
        layers.append({"name": f"decoder.fc{i + 1}", "in": [[prev, width]], "out": h, "act": act})
        prev, width = f"decoder.fc{i + 1}", h
    layers.append({"name": "decoder.out", "in": [[prev, width]], "out": d, "act": "none"})
    return {"inputs": {"x": d}, "layers": layers,
            "latents": [{"name": "z", "kind": "gaussian", "dim": z, "stats": "encoder.head"}],
            "likelihood": {"kind": lik, "layer": "decoder.out"},
            "terms": [{"name": "recon", "op": lik, "weight": 1},
                      {"name": "kl", "op": "kl_gaussian", "latent": "z", "weight": beta}]}


# ---------------------------------------------------------------------------------------------
# The tables. A new input, activation, latent kind, likelihood or term op is an entry here.

# name -> the input's values for a batch of data (a dict: "x" (B, D) float64 in [0, 1],
# "labels" (B) int64). "y" is the one-hot label of a conditional model (cuvae --model cvae), its
# width the model's classes; every label must be below it (check_labels).
INPUTS = {
    "x": lambda batch, width: batch["x"],
    "y": lambda batch, width: F.one_hot(batch["labels"], width).to(torch.float64),
}


def check_labels(path, arch, labels, source):
    """A model that reads the one-hot label "y" needs every label in 0 .. width - 1."""
    width = arch["inputs"].get("y")
    if width is None:
        return
    if labels is None:
        raise ModelFileError(f"{source}: the data has no labels, and the model {path} reads them (input 'y')")
    bad = [(i, int(v)) for i, v in enumerate(labels) if not 0 <= int(v) < width]
    if bad:
        raise ModelFileError(f"{source}: label {bad[0][1]} of row {bad[0][0]} is out of range for the model {path} "
                             f"of {width} classes (0..{width - 1})")

ACTS = {"relu": F.relu, "tanh": torch.tanh, "none": lambda h: h}


def _log_normal(z, mu, logvar):
    return (-0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / logvar.exp())).sum(-1)


class GaussianLatent:
    """z ~ N(mu, exp(logvar)) with stats [mu | logvar] (width 2 dim); prior N(0, I)."""
    stats_width = staticmethod(lambda dim: 2 * dim)

    @staticmethod
    def params(stats, dim):
        return stats[..., :dim], stats[..., dim:]

    @staticmethod
    def sample(params, k, draw):
        mu, logvar = params
        eps = draw((mu.shape[0], k, mu.shape[-1]))
        return mu + eps * (0.5 * logvar).exp()

    @staticmethod
    def kl(params):
        mu, logvar = params
        return -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(-1)

    @staticmethod
    def log_ratio(value, params):
        """log p(z) - log q(z|x), the latent's part of an importance weight."""
        mu, logvar = params
        return _log_normal(value, torch.zeros_like(value), torch.zeros_like(value)) - _log_normal(value, mu, logvar)


class CategoricalLatent:
    """c ~ Cat(softmax(alpha)) with stats alpha, the logits (width dim); prior uniform over the dim
    classes. `enumerated`: the terms sum it out exactly, sum_k q(k|x) term(c = one-hot k), as cuvae's
    evaluation does (a true bound); its sample, where one is taken, is the one-hot argmax."""
    stats_width = staticmethod(lambda dim: dim)
    enumerated = True

    @staticmethod
    def params(stats, dim):
        return stats.log_softmax(-1)

    @staticmethod
    def sample(params, k, draw):
        onehot = F.one_hot(params.argmax(-1), params.shape[-1]).to(params.dtype)
        return onehot.expand(-1, k, -1)

    @staticmethod
    def kl(params):
        """KL(q || uniform) = log K - H(q)."""
        return (params.exp() * params).sum(-1) + math.log(params.shape[-1])


class DeterministicLatent:
    """z = stats (width dim): the autoencoder's code (cuvae --model ae), no noise and no prior, so
    it has no KL (no term may read it) and no log-density ratio (no importance weights)."""
    stats_width = staticmethod(lambda dim: dim)

    @staticmethod
    def params(stats, dim):
        return stats

    @staticmethod
    def sample(params, k, draw):
        return params.expand(-1, k, -1)

    @staticmethod
    def log_ratio(value, params):
        raise ModelFileError("importance weights need a prior and a posterior density, and a deterministic latent "
                             "(--model ae) has neither (cuvae eval refuses --iw-samples for it too): use --iw-samples 0")


LATENT_KINDS = {"gaussian": GaussianLatent, "categorical": CategoricalLatent, "deterministic": DeterministicLatent}


def _nll_bernoulli(out, x, meta_sigma):
    """-log p(x|z) of a Bernoulli on logits, summed over the last axis."""
    return F.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction="none").sum(-1)


def _nll_gaussian(out, x, sigma):
    """-log N(x; mean, sigma^2 I), constants included, summed over the last axis."""
    per = (x - out) ** 2 / (2 * sigma * sigma) + math.log(sigma) + 0.5 * math.log(2 * math.pi)
    return per.sum(-1)


# kind -> (negative log-likelihood, whether the top-level metadata `sigma` is needed)
LIKELIHOODS = {"bernoulli": (_nll_bernoulli, False), "gaussian": (_nll_gaussian, True)}

# op -> (what the term reads, the kind it requires): "likelihood" terms are -log p(x|z) of the
# model's likelihood, "latent" terms the KL of the latent they name, in closed form.
TERM_OPS = {"bernoulli": ("likelihood", "bernoulli"), "gaussian": ("likelihood", "gaussian"),
            "kl_gaussian": ("latent", "gaussian"), "kl_categorical": ("latent", "categorical")}


# ---------------------------------------------------------------------------------------------
# Validation: the architecture against itself and against the file's tensors.

def _fail(path, what):
    raise ModelFileError(f"{path}: {what}")


def _is_size(v):
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1 << 30


def _known(v, table):
    """v names an entry of table (a string: a list or object from the JSON is not a name)."""
    return isinstance(v, str) and v in table


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_architecture(path, arch, tensors, sigma):
    """Every name, width, kind and tensor of arch checked; the file's tensors must be exactly
    those it describes. Returns the list of (layer, weight, bias) tensors in layer order."""
    try:
        return _check_architecture(path, arch, tensors, sigma)
    except (TypeError, KeyError, AttributeError, IndexError) as e:  # a value of the wrong JSON type
        raise ModelFileError(f"{path}: architecture is malformed ({type(e).__name__}: {e})") from None


def _check_architecture(path, arch, tensors, sigma):
    if not isinstance(arch, dict):
        _fail(path, "architecture is not a JSON object")
    for key in ("inputs", "layers", "latents", "likelihood", "terms"):
        if key not in arch:
            _fail(path, f"architecture has no '{key}'")
    if not isinstance(arch["inputs"], dict) or "x" not in arch["inputs"]:
        _fail(path, "architecture 'inputs' is not an object of input widths with the data 'x'")
    width = {}
    for name, w in arch["inputs"].items():
        if name not in INPUTS:
            _fail(path, f"architecture input '{name}' is not one this loader knows ({', '.join(INPUTS)})")
        if not _is_size(w):
            _fail(path, f"architecture input '{name}' has width {w!r}, not a size")
        width[name] = w
    latents = arch["latents"]
    if not isinstance(latents, list):
        _fail(path, "architecture 'latents' is not a list")
    by_stats = {}
    for lat in latents:
        if (not isinstance(lat, dict) or not all(k in lat for k in ("name", "kind", "dim", "stats"))
                or not isinstance(lat["name"], str) or not isinstance(lat["stats"], str)):
            _fail(path, f"architecture latent {lat!r} needs a name, a kind, a dim and the name of its stats layer")
        if not _known(lat["kind"], LATENT_KINDS):
            _fail(path, f"latent '{lat['name']}' has kind '{lat['kind']}', not one this loader knows "
                        f"({', '.join(LATENT_KINDS)})")
        if not _is_size(lat["dim"]):
            _fail(path, f"latent '{lat['name']}' has dim {lat['dim']!r}, not a size")
        by_stats.setdefault(lat["stats"], []).append(lat)
    if not isinstance(arch["layers"], list) or not arch["layers"]:
        _fail(path, "architecture 'layers' is not a non-empty list")
    expected, params = set(), []
    for L in arch["layers"]:
        if not isinstance(L, dict) or not all(k in L for k in ("name", "in", "out", "act")):
            _fail(path, f"architecture layer {L!r} needs name, in, out and act")
        name = L["name"]
        if not isinstance(name, str) or name in width:
            _fail(path, f"layer name {name!r} is not a new name")
        if not _known(L["act"], ACTS):
            _fail(path, f"layer '{name}' has activation '{L['act']}', not one this loader knows ({', '.join(ACTS)})")
        if not _is_size(L["out"]):
            _fail(path, f"layer '{name}' has out {L['out']!r}, not a size")
        if not isinstance(L["in"], list) or not L["in"]:
            _fail(path, f"layer '{name}' has no input blocks")
        n_in = 0
        for block in L["in"]:
            if not (isinstance(block, list) and len(block) == 2 and isinstance(block[0], str)):
                _fail(path, f"layer '{name}' has input block {block!r}, not [source, width]")
            src, w = block
            if src not in width:
                _fail(path, f"layer '{name}' reads '{src}', which is not an input, a latent or an earlier layer")
            if w != width[src]:
                _fail(path, f"layer '{name}' reads '{src}' as {w!r} columns, but '{src}' is {width[src]} wide")
            n_in += w
        out = L["out"]
        parts = L.get("tensors", [[name, out]])
        if (not isinstance(parts, list) or not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                                                    and _is_size(p[1]) for p in parts)
                or sum(p[1] for p in parts) != out):
            _fail(path, f"layer '{name}' has tensors {parts!r}, not [name, rows] parts adding up to its {out} outputs")
        ws, bs = [], []
        for part, rows in parts:
            for suffix, shape, into in ((".weight", [rows, n_in], ws), (".bias", [rows], bs)):
                key = part + suffix
                if key not in tensors:
                    _fail(path, f"tensor '{key}' is missing (layer '{name}' needs it, shape {shape})")
                if list(tensors[key].shape) != shape:
                    _fail(path, f"tensor '{key}' has shape {list(tensors[key].shape)}, layer '{name}' needs {shape}")
                expected.add(key)
                into.append(tensors[key])
        params.append((L, torch.cat(ws, 0), torch.cat(bs, 0)))
        width[name] = out
        for lat in by_stats.pop(name, []):
            need = LATENT_KINDS[lat["kind"]].stats_width(lat["dim"])
            if out != need:
                _fail(path, f"latent '{lat['name']}' ({lat['kind']}, dim {lat['dim']}) needs {need} stats, "
                            f"layer '{name}' gives {out}")
            if lat["name"] in width:
                _fail(path, f"latent name '{lat['name']}' is not a new name")
            width[lat["name"]] = lat["dim"]
    for stats, lats in by_stats.items():
        _fail(path, f"latent '{lats[0]['name']}' reads its stats from '{stats}', which is not a layer")
    extra = sorted(set(tensors) - expected)
    if extra:
        _fail(path, f"tensor '{extra[0]}' is not part of the model its metadata describes")
    lik = arch["likelihood"]
    if not isinstance(lik, dict) or not _known(lik.get("kind"), LIKELIHOODS):
        _fail(path, f"likelihood {lik!r} is not one this loader knows ({', '.join(LIKELIHOODS)})")
    if not _known(lik.get("layer"), {L["name"] for L in arch["layers"]}):
        _fail(path, f"likelihood reads layer {lik.get('layer')!r}, which is not a layer")
    if width[lik["layer"]] != width.get("x"):
        _fail(path, f"likelihood layer '{lik['layer']}' gives {width[lik['layer']]} values, the input x is "
                    f"{width.get('x')} wide")
    if LIKELIHOODS[lik["kind"]][1] and (sigma is None or not sigma > 0):
        _fail(path, "a gaussian likelihood needs a positive metadata 'sigma'")
    if not isinstance(arch["terms"], list) or not arch["terms"]:
        _fail(path, "architecture 'terms' is not a non-empty list")
    names = set()
    for t in arch["terms"]:
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or t["name"] in names:
            _fail(path, f"term {t!r} has no name of its own")
        names.add(t["name"])
        if not _known(t.get("op"), TERM_OPS):
            _fail(path, f"term '{t['name']}' has op {t.get('op')!r}, not one this loader knows ({', '.join(TERM_OPS)})")
        if not _is_number(t.get("weight")):
            _fail(path, f"term '{t['name']}' has weight {t.get('weight')!r}, not a finite number")
        reads, kind = TERM_OPS[t["op"]]
        if reads == "likelihood" and lik["kind"] != kind:
            _fail(path, f"term '{t['name']}' ({t['op']}) does not match the {lik['kind']} likelihood")
        if reads == "latent":
            lat = next((x for x in latents if x["name"] == t.get("latent")), None)
            if lat is None or lat["kind"] != kind:
                _fail(path, f"term '{t['name']}' ({t['op']}) reads latent {t.get('latent')!r}, "
                            f"which is not a {kind} latent")
    return params


# ---------------------------------------------------------------------------------------------
# The model.

class CuvaeModel(nn.Module):
    """The network of an architecture dict, float64. Layers are nn.Linear in a ModuleList, in the
    architecture's order (names with dots cannot key a ModuleDict); self.arch keeps the rest."""

    def __init__(self, arch, params, sigma):
        super().__init__()
        self.arch, self.sigma = arch, sigma
        self.linears = nn.ModuleList()
        for L, w, b in params:
            lin = nn.Linear(w.shape[1], w.shape[0], dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(w)
                lin.bias.copy_(b)
            self.linears.append(lin)
        self.latents_at = {}
        for lat in arch["latents"]:
            self.latents_at.setdefault(lat["stats"], []).append(lat)

    def forward(self, batch, k, draw, fixed=None):
        """Every value of the graph for a batch, with k latent samples per row: values[name] is
        (B, 1, w) until it depends on a sample, then (B, k, w); blocks are broadcast to a common
        k before torch.cat. fixed: latent name -> its value, instead of a sample (an enumerated
        latent's class). Returns (values, latents: name -> (kind, params, sample))."""
        vals = {name: INPUTS[name](batch, w)[:, None, :] for name, w in self.arch["inputs"].items()}
        lats = {}
        for lin, L in zip(self.linears, self.arch["layers"]):
            blocks = [vals[src] for src, _ in L["in"]]
            kk = max(b.shape[1] for b in blocks)
            h = torch.cat([b.expand(-1, kk, -1) for b in blocks], dim=-1)
            vals[L["name"]] = out = ACTS[L["act"]](lin(h))
            for lat in self.latents_at.get(L["name"], []):
                kind = LATENT_KINDS[lat["kind"]]
                p = kind.params(out, lat["dim"])
                if fixed and lat["name"] in fixed:
                    vals[lat["name"]] = s = fixed[lat["name"]]
                else:
                    vals[lat["name"]] = s = kind.sample(p, k, draw)
                lats[lat["name"]] = (kind, p, s)
        return vals, lats

    def enumerated(self):
        """The latents the terms sum out exactly (their kind's `enumerated`)."""
        return [lat for lat in self.arch["latents"] if getattr(LATENT_KINDS[lat["kind"]], "enumerated", False)]

    def _likelihood_term(self, batch, draw):
        """-log p(x|z) per row with one sample per row of the sampled latents; an enumerated latent
        summed out: sum_k q(k|x) (-log p(x|z, c = one-hot k)), the other latents' noise drawn once."""
        nll, _ = LIKELIHOODS[self.arch["likelihood"]["kind"]]
        layer, x = self.arch["likelihood"]["layer"], batch["x"][:, None, :]
        enum = self.enumerated()
        if not enum:
            vals, lats = self.forward(batch, 1, draw)
            return nll(vals[layer], x, self.sigma)[:, 0], lats
        if len(enum) > 1:
            raise ModelFileError("more than one categorical latent: the loader sums out one")
        drawn = []

        def record(shape):
            drawn.append(draw(shape))
            return drawn[-1]
        vals, lats = self.forward(batch, 1, record)
        name, dim = enum[0]["name"], enum[0]["dim"]
        _, logq, _ = lats[name]
        total = 0
        for c in range(dim):
            replay = iter(drawn)
            onehot = torch.zeros(x.shape[0], 1, dim, dtype=torch.float64)
            onehot[..., c] = 1
            vals_c, _ = self.forward(batch, 1, lambda shape: next(replay), fixed={name: onehot})
            total = total + logq[:, 0, c].exp() * nll(vals_c[layer], x, self.sigma)[:, 0]
        return total, lats

    def terms(self, batch, draw):
        """Each term per row (B), one latent sample per row (an enumerated latent summed out): name -> tensor."""
        lik, lats = self._likelihood_term(batch, draw)
        out = {}
        for t in self.arch["terms"]:
            reads, _ = TERM_OPS[t["op"]]
            if reads == "likelihood":
                out[t["name"]] = lik
            else:
                kind, p, _ = lats[t["latent"]]
                out[t["name"]] = kind.kl(p)[:, 0]
        return out

    def log_weights(self, batch, k, draw):
        """(B, k) importance weights log p(x|z) + sum over latents of log p(z) - log q(z|x)."""
        if self.enumerated():
            raise ModelFileError("importance weights over a categorical latent are not supported (cuvae eval "
                                 "refuses --iw-samples for it too): use --iw-samples 0")
        vals, lats = self.forward(batch, k, draw)
        nll, _ = LIKELIHOODS[self.arch["likelihood"]["kind"]]
        lw = -nll(vals[self.arch["likelihood"]["layer"]], batch["x"][:, None, :], self.sigma)
        for kind, p, s in lats.values():
            lw = lw + kind.log_ratio(s, p)
        return lw


def load(path):
    """(CuvaeModel, metadata) of a cuvae model.safetensors; ModelFileError when it cannot be used."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") != "cuvae":
        _fail(path, f"not a cuvae model (metadata 'format' is {meta.get('format')!r})")
    if meta.get("format_version") != "1":
        _fail(path, f"unsupported cuvae format_version {meta.get('format_version')!r} (this loader reads '1')")
    if "architecture" in meta:
        try:
            arch = json.loads(meta["architecture"])
        except json.JSONDecodeError as e:
            _fail(path, f"metadata 'architecture' is not valid JSON ({e})")
    else:
        arch = plain_architecture(path, meta)
    sigma = _meta_float(path, meta, "sigma") if "sigma" in meta else None
    params = check_architecture(path, arch, tensors, sigma)
    return CuvaeModel(arch, params, sigma), meta


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: cuvae_torch.py MODEL (prints the architecture PyTorch rebuilt from MODEL's metadata)")
    try:
        model, meta = load(sys.argv[1])
    except ModelFileError as e:
        sys.exit(f"cuvae_torch: {e}")
    print(json.dumps({"model": sys.argv[1], "source": "metadata" if "architecture" in meta else "plain keys",
                      "architecture": model.arch, "parameters": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
