#!/usr/bin/env python3
"""The cnn preset in PyTorch: conv3x3x32, ReLU, maxpool 2, conv3x3x64, ReLU, maxpool 2,
dense 128, ReLU, dense 10 (valid convolutions, as scratchnet's --net cnn), cross-entropy,
He-normal init (fan in), Adam, cosine learning rate, 50k/10k split. Only training passes
are timed. Images are NCHW here (PyTorch's native layout on CPU)."""
import numpy as np
import torch

import mnist_io

a = mnist_io.args(__doc__)
torch.manual_seed(a.seed)
torch.set_num_threads(a.threads)
rng = np.random.default_rng(a.seed)
x_all, y_all = mnist_io.load(a.data, "train")
x_test, y_test = mnist_io.load(a.data, "t10k")
x_train = torch.from_numpy(x_all[:50000].copy()).reshape(-1, 1, 28, 28)
y_train = torch.from_numpy(y_all[:50000].astype(np.int64))
x_val = torch.from_numpy(x_all[50000:].copy()).reshape(-1, 1, 28, 28).float() / 255.0
y_val = torch.from_numpy(y_all[50000:].astype(np.int64))
nn = torch.nn
net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
for m in net:
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        nn.init.zeros_(m.bias)
opt = torch.optim.Adam(net.parameters(), lr=a.lr)
loss_fn = nn.CrossEntropyLoss()


def batched(x, y):
    """(mean loss, accuracy) over x in chunks of 1000 (a whole set at once is ~1 GB)."""
    loss, correct = 0.0, 0
    for s in range(0, len(x), 1000):
        z = net(x[s:s + 1000])
        loss += loss_fn(z, y[s:s + 1000]).item() * len(z)
        correct += (z.argmax(1) == y[s:s + 1000]).sum().item()
    return loss / len(x), correct / len(x)


def report(epoch, train_s):
    """--report-epochs: the validation accuracy after each epoch (untimed)."""
    if not a.report_epochs:
        return
    with torch.no_grad():
        net.eval()
        _, acc = batched(x_val, y_val)
        net.train()
    print(f"epoch {epoch + 1} val_acc={acc:.4f} train_s={train_s:.3f}", flush=True)


train_loss, train_s = mnist_io.torch_train(net, opt, x_train, y_train, a, rng, report)
with torch.no_grad():
    net.eval()
    val_loss, _ = batched(x_val, y_val)
    xt = torch.from_numpy(x_test.copy()).reshape(-1, 1, 28, 28).float() / 255.0
    _, test_acc = batched(xt, torch.from_numpy(y_test.astype(np.int64)))
mnist_io.result(a.name or "pytorch-cnn", a, train_loss, val_loss, test_acc, train_s)
