#!/usr/bin/env python3
"""The same MLP in PyTorch: 784-50-25-10, ReLU, cross-entropy, He-normal init, SGD with
momentum 0.9, cosine learning rate, 50k/10k split. Only training passes are timed."""
import numpy as np
import torch

import mnist_io

a = mnist_io.args(__doc__)
torch.manual_seed(a.seed)
torch.set_num_threads(a.threads)
rng = np.random.default_rng(a.seed)
x_all, y_all = mnist_io.load(a.data, "train")
x_test, y_test = mnist_io.load(a.data, "t10k")
x_train = torch.from_numpy(x_all[:50000].copy())
y_train = torch.from_numpy(y_all[:50000].astype(np.int64))
x_val = torch.from_numpy(x_all[50000:].copy()).float() / 255.0
y_val = torch.from_numpy(y_all[50000:].astype(np.int64))
net = torch.nn.Sequential(torch.nn.Linear(784, 50), torch.nn.ReLU(), torch.nn.Linear(50, 25), torch.nn.ReLU(),
                          torch.nn.Linear(25, 10))
for m in net:
    if isinstance(m, torch.nn.Linear):
        torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        torch.nn.init.zeros_(m.bias)
opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()
train_loss, train_s = mnist_io.torch_train(net, opt, x_train, y_train, a, rng)
with torch.no_grad():
    val_loss = loss_fn(net(x_val), y_val).item()
    xt = torch.from_numpy(x_test.copy()).float() / 255.0
    test_acc = (net(xt).argmax(1) == torch.from_numpy(y_test.astype(np.int64))).float().mean().item()
mnist_io.result("pytorch", a, train_loss, val_loss, test_acc, train_s)
