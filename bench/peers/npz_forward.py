#!/usr/bin/env python3
"""The NumPy peer's forward pass over a model exported by `scratchnet export --format npz`:
    npz_forward.py MODEL.npz INPUT.f32 ROWS OUT.f32
INPUT.f32 holds ROWS x 784 little-endian floats (preprocessed pixels); OUT.f32 gets the
ROWS x 10 logits, computed as numpy_mlp.py computes them (x @ W + b, ReLU), in float32.
Dense networks only (the NumPy peer's); exit 3 for a net with other layers."""
import re
import sys

import numpy as np


def layers(spec):
    """[('dense', relu), ...] from a net spec: "784,50,25,10" (ReLU but the last), or
    items dense50 / dense:50 / relu / leaky:S."""
    items = spec.split(",")
    if all(i.isdigit() for i in items):
        return [("dense", True)] * (len(items) - 2) + [("dense", False)]
    out = []
    for k, item in enumerate(items):
        if k == 0 and re.fullmatch(r"\d+(x\d+x\d+)?", item):
            continue
        if re.fullmatch(r"dense\d+", item) or re.fullmatch(r"\d+", item):
            out.append(("dense", k + 1 < len(items)))
        elif re.fullmatch(r"dense:\d+", item):
            out.append(("dense", False))
        elif item == "relu":
            out.append(("relu", 0.0))
        elif item.startswith("leaky"):
            out.append(("leaky", float(item.split(":")[1]) if ":" in item else 0.01))
        else:
            print(f"npz_forward.py: layer '{item}': the NumPy peer runs dense networks only", file=sys.stderr)
            sys.exit(3)
    return out


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    model, inputs, rows, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    z = np.load(model)
    x = np.fromfile(inputs, dtype="<f4").reshape(rows, -1)
    n = 0
    for kind, arg in layers(str(z["spec"])):
        if kind == "dense":
            n += 1
            x = x @ z[f"W{n}"] + z[f"b{n}"]
            if arg:
                x = np.maximum(x, 0)
        elif kind == "relu":
            x = np.maximum(x, 0)
        else:
            x = np.where(x > 0, x, np.float32(arg) * x)
    x.astype("<f4").tofile(out)


if __name__ == "__main__":
    main()
