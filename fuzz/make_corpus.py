#!/usr/bin/env python3
"""make_corpus.py: writes the seed corpus of the fuzz harnesses into
fuzz/corpus/<target>/ (idx, safetensors, checkpoint): a few small valid files
of each kind (for checkpoint: models and a training checkpoint) and a few near misses. Deterministic; standard library only.
The files are checked in; run this again only to change them."""
import gzip
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def idx(dims, data):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", x) for x in dims) + bytes(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def safetensors(tensors, meta=None):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, blob = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def cuvae_model(D=4, rows=2, cols=2, Z=1, hidden=(3,)):
    tensors, width, k = [], D, 0

    def lin(name, n_in, n_out):
        nonlocal k
        tensors.append((name + ".weight", "F32", [n_out, n_in], f32([0.01 * (k + i) for i in range(n_out * n_in)])))
        tensors.append((name + ".bias", "F32", [n_out], f32([-0.5] * n_out)))
        k += 1

    for i, h in enumerate(hidden):
        lin("encoder.fc%d" % (i + 1), width, h)
        width = h
    lin("encoder.mu", width, Z)
    lin("encoder.logvar", width, Z)
    width = Z
    for i, h in enumerate(reversed(hidden)):
        lin("decoder.fc%d" % (i + 1), width, h)
        width = h
    lin("decoder.out", width, D)
    meta = {"format": "cuvae", "format_version": "1", "input_dim": str(D), "image_rows": str(rows),
            "image_cols": str(cols), "latent_dim": str(Z), "hidden": ",".join(map(str, hidden)),
            "activation": "relu", "beta": "1", "likelihood": "bernoulli"}
    return safetensors(tensors, meta)


def main():
    images = idx([3, 4, 5], range(60))
    labels = idx([3], [7, 0, 9])
    put("idx", "images-raw", images)
    put("idx", "labels-raw", labels)
    put("idx", "images.gz", gz(images))
    put("idx", "labels.gz", gz(labels))
    put("idx", "rank4.gz", gz(idx([1, 2, 2, 2], range(8))))
    put("idx", "two-members.gz", gz(images[:9]) + gz(images[9:]))
    put("idx", "truncated", images[:30])
    # fuzz_idx_gz: a control byte (0x85: two members split at byte 5), then the IDX content
    put("idx_gz", "images-one-member", b"\x00" + images)
    put("idx_gz", "images-two-members", b"\x85" + images)
    put("idx_gz", "labels", b"\x00" + labels)
    put("idx_gz", "rank4", b"\x00" + idx([1, 2, 2, 2], range(8)))

    put("safetensors", "empty", safetensors([]))
    put("safetensors", "meta-only", safetensors([], {"k": "v", "note": "caf\u00e9"}))
    put("safetensors", "dtypes", safetensors([
        ("a", "F32", [2], f32([0.5, -1.0])), ("b", "I64", [1, 1], struct.pack("<q", -3)),
        ("c", "BF16", [], b"\x80\x3f"), ("d", "BOOL", [4], b"\x01\x00\x01\x01"),
        ("e", "U8", [0, 3], b"")], {"format": "pt"}))
    put("safetensors", "unaligned", safetensors([("u", "U8", [1], b"\x09"), ("f", "F32", [2], f32([3.5, -7.25]))]))

    put("checkpoint", "tiny-1-hidden", cuvae_model())
    put("checkpoint", "tiny-0-hidden", cuvae_model(D=3, rows=1, cols=3, Z=2, hidden=()))
    put("checkpoint", "tiny-2-hidden", cuvae_model(D=6, rows=2, cols=3, Z=1, hidden=(3, 2)))
    put("checkpoint", "meta-only-large", safetensors([], {
        "format": "cuvae", "format_version": "1", "input_dim": "784", "image_rows": "28", "image_cols": "28",
        "latent_dim": "4096", "hidden": "65536", "activation": "relu", "beta": "1", "likelihood": "bernoulli"}))
    put("checkpoint", "train-state", train_checkpoint())


def train_checkpoint():
    """A training checkpoint (train_state.h) of a 4-3-1 VAE (45 parameters) after 2 epochs of 8 steps."""
    n = 45
    header = "epoch,train_loss,train_recon,train_kl,test_loss,test_recon,test_kl,seconds,images_per_second\n"
    rows = "".join("%d,1.5,1.25,0.25,1.5,1.25,0.25,0.1,1000.0\n" % e for e in (1, 2))
    meta = {"format": "cuvae-checkpoint", "format_version": "1", "state.epochs_done": "2", "state.step": "0",
            "state.noise_offset": "64", "state.order_rng": ",".join(["0123456789abcdef"] * 4),
            "state.acc": "0000000000000000,0000000000000000", "state.seconds": "0", "state.adam_step": "16",
            "state.best_val": "7ff8000000000000", "state.best_epoch": "0", "metrics": header + rows,
            "state.noise_generator": "philox4x32-10", "train.data": "/data", "train.batch_size": "16",
            "train.lr": "0.001", "train.seed": "1", "train.hidden": "3", "train.latent": "1",
            "train.activation": "relu", "train.beta": "1", "train.samples": "64", "train.val_fraction": "0",
            "train.checkpoint_every": "1", "train.clip_grad_norm": "0", "train.epochs": "3"}
    return safetensors([(name, "F32", [n], f32([0.01 * i for i in range(n)])) for name in ("params", "adam.m", "adam.v")],
                       meta)


if __name__ == "__main__":
    main()
