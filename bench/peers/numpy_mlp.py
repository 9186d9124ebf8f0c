#!/usr/bin/env python3
"""The same MLP in NumPy: 784-50-25-10, ReLU, softmax + cross-entropy (p - y),
He-normal init, SGD with momentum 0.9, cosine learning rate, 50k/10k split.
Only the training passes are timed, as in scratchnet."""
import math
import time

import numpy as np

import mnist_io

a = mnist_io.args(__doc__)
rng = np.random.default_rng(a.seed)
x_all, y_all = mnist_io.load(a.data, "train")
x_test, y_test = mnist_io.load(a.data, "t10k")
x_train, y_train = x_all[:50000], y_all[:50000]
x_val, y_val = x_all[50000:], y_all[50000:]
sizes = [784, 50, 25, 10]
W = [(rng.standard_normal((sizes[i + 1], sizes[i])) * math.sqrt(2.0 / sizes[i])).astype(np.float32)
     for i in range(3)]
b = [np.zeros(sizes[i + 1], np.float32) for i in range(3)]
vW = [np.zeros_like(w) for w in W]
vb = [np.zeros_like(v) for v in b]


def forward(x):
    acts = [x]
    for i in range(3):
        z = acts[-1] @ W[i].T + b[i]
        acts.append(np.maximum(z, 0) if i < 2 else z)
    return acts


def loss_acc(x, y):
    z = forward(x.astype(np.float32) / 255.0)[-1]
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean()), float((z.argmax(axis=1) == y).mean())


steps_per_epoch = (50000 + a.batch - 1) // a.batch
total = steps_per_epoch * a.epochs
step, train_s, train_loss = 0, 0.0, 0.0
for epoch in range(a.epochs):
    order = rng.permutation(50000)
    loss_sum = 0.0
    t0 = time.perf_counter()
    for s in range(0, 50000, a.batch):
        idx = order[s:s + a.batch]
        x = x_train[idx].astype(np.float32) / 255.0
        y = y_train[idx]
        n = len(idx)
        acts = forward(x)
        z = acts[-1] - acts[-1].max(axis=1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        loss_sum += float(-np.log(p[np.arange(n), y]).sum())
        d = p
        d[np.arange(n), y] -= 1.0
        d /= n
        lr = 0.5 * a.lr * (1 + math.cos(math.pi * step / total))
        for i in (2, 1, 0):
            gW = d.T @ acts[i]
            gb = d.sum(axis=0)
            if i > 0:
                d = (d @ W[i]) * (acts[i] > 0)
            vW[i] = 0.9 * vW[i] + gW
            vb[i] = 0.9 * vb[i] + gb
            W[i] -= lr * vW[i]
            b[i] -= lr * vb[i]
        step += 1
    train_s += time.perf_counter() - t0
    train_loss = loss_sum / 50000
val_loss, _ = loss_acc(x_val, y_val)
_, test_acc = loss_acc(x_test, y_test)
mnist_io.result("numpy", a, train_loss, val_loss, test_acc, train_s)
