#!/usr/bin/env python3
"""Re-creates tests/data/mnist-subset from the full MNIST files in data/mnist."""
import gzip
import struct
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "data/mnist/"
dst = "tests/data/mnist-subset/"


def subset(name, n, images):
    data = open(src + name, "rb").read()
    if images:
        head, body = struct.pack(">IIII", 2051, n, 28, 28), data[16:16 + n * 784]
    else:
        head, body = struct.pack(">II", 2049, n), data[8:8 + n]
    with gzip.GzipFile(dst + name + ".gz", "wb", mtime=0) as f:
        f.write(head + body)


subset("train-images-idx3-ubyte", 3000, True)
subset("train-labels-idx1-ubyte", 3000, False)
subset("t10k-images-idx3-ubyte", 1000, True)
subset("t10k-labels-idx1-ubyte", 1000, False)
