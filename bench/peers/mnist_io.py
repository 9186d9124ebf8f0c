"""MNIST IDX reading for the peer scripts (raw or .gz), and the shared command line."""
import argparse
import gzip
import os
import struct

import numpy as np


def _open(path):
    if os.path.exists(path):
        return open(path, "rb")
    return gzip.open(path + ".gz", "rb")


def load(directory, split):
    """Returns (images uint8 [n, 784], labels uint8 [n]) for split 'train' or 't10k'."""
    with _open(os.path.join(directory, f"{split}-images-idx3-ubyte")) as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 2051 and rows == 28 and cols == 28
        images = np.frombuffer(f.read(n * 784), dtype=np.uint8).reshape(n, 784)
    with _open(os.path.join(directory, f"{split}-labels-idx1-ubyte")) as f:
        magic, m = struct.unpack(">II", f.read(8))
        assert magic == 2049 and m == n
        labels = np.frombuffer(f.read(m), dtype=np.uint8)
    return images, labels


def args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--report-epochs", action="store_true",
                   help="print the validation accuracy after each epoch (not timed)")
    return p.parse_args()


def result(name, a, train_loss, val_loss, test_acc, train_s):
    print(f"result name={name} epochs={a.epochs} batch={a.batch} threads={a.threads} "
          f"train_loss={train_loss:.6f} val_loss={val_loss:.6f} test_acc={test_acc:.6f} "
          f"train_s={train_s:.6f} samples_per_s={50000 * a.epochs / train_s:.0f}", flush=True)
