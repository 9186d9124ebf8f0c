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
    p.add_argument("--name", default=None, help="the row's name in bench's table (default: the script's)")
    return p.parse_args()


def result(name, a, train_loss, val_loss, test_acc, train_s):
    print(f"result name={name} epochs={a.epochs} batch={a.batch} threads={a.threads} "
          f"train_loss={train_loss:.6f} val_loss={val_loss:.6f} test_acc={test_acc:.6f} "
          f"train_s={train_s:.6f} samples_per_s={50000 * a.epochs / train_s:.0f}", flush=True)


def torch_train(net, opt, x_train, y_train, a, rng, after_epoch=None):
    """Trains net (PyTorch) for a.epochs on uint8 images x_train (scaled to [0, 1] per
    batch), shuffled by rng, with a cosine learning rate over all steps. Only the
    training passes are timed. after_epoch(epoch, train_s), if given, runs untimed after
    each epoch. Returns (last epoch's mean loss, training seconds)."""
    import math
    import time

    import torch

    n = len(x_train)
    steps = ((n + a.batch - 1) // a.batch) * a.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    loss_fn = torch.nn.CrossEntropyLoss()
    train_s, train_loss = 0.0, 0.0
    for epoch in range(a.epochs):
        order = torch.from_numpy(rng.permutation(n))
        loss_sum = 0.0
        t0 = time.perf_counter()
        for s in range(0, n, a.batch):
            idx = order[s:s + a.batch]
            x = x_train[idx].float() / 255.0
            y = y_train[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
        train_s += time.perf_counter() - t0
        train_loss = loss_sum / n
        if after_epoch:
            after_epoch(epoch, train_s)
    return train_loss, train_s
