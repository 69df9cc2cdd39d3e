#!/usr/bin/python3
"""Writes a Fashion-MNIST directory whose "test" files are a held-out part of the training set.

    scripts/fashion_mnist_holdout.py OUT [--holdout 10000] [--source /usr/share/datasets/fashion-mnist]

OUT gets train-* with the first 60000 - N training images and t10k-* with the last N. A program
given --data OUT takes every decision it bases on its "test" set (undoing a pruning round, early
stopping) on images held out of training, and the real test set stays unread until the report.
"""
import argparse
import gzip
import os
import struct
import sys
import tempfile


def read_idx(path, magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = 3 if magic == 2051 else 1
    head = 4 + 4 * dims
    if len(data) < head:
        sys.exit(f"{path}: truncated IDX header")
    fields = struct.unpack(">" + "I" * (1 + dims), data[:head])
    if fields[0] != magic:
        sys.exit(f"{path}: magic {fields[0]}, expected {magic}")
    size = 1
    for d in fields[2:]:
        size *= d
    if len(data) != head + fields[1] * size:
        sys.exit(f"{path}: {len(data) - head} bytes of data for {fields[1]} items of {size}")
    return fields[1:], data[head:], size


def write_idx(path, magic, dims, payload):
    # Atomic: a temporary file in the same folder, renamed over the target.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".")
    with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(struct.pack(">" + "I" * (1 + len(dims)), magic, *dims) + payload)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--holdout", type=int, default=10000)
    ap.add_argument("--source", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    (n, h, w), images, size = read_idx(os.path.join(a.source, "train-images-idx3-ubyte.gz"), 2051)
    (m,), labels, _ = read_idx(os.path.join(a.source, "train-labels-idx1-ubyte.gz"), 2049)
    if n != m:
        sys.exit(f"{a.source}: {n} images and {m} labels")
    if not 0 < a.holdout < n:
        sys.exit(f"--holdout {a.holdout}: must be between 1 and {n - 1}")
    k = n - a.holdout
    write_idx(os.path.join(a.out, "train-images-idx3-ubyte.gz"), 2051, (k, h, w), images[: k * size])
    write_idx(os.path.join(a.out, "train-labels-idx1-ubyte.gz"), 2049, (k,), labels[:k])
    write_idx(os.path.join(a.out, "t10k-images-idx3-ubyte.gz"), 2051, (a.holdout, h, w), images[k * size :])
    write_idx(os.path.join(a.out, "t10k-labels-idx1-ubyte.gz"), 2049, (a.holdout,), labels[k:])
    print(f"{a.out}: {k} training images, the last {a.holdout} held out as its test files")


if __name__ == "__main__":
    main()
