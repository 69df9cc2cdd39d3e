#!/usr/bin/python3
"""PyTorch's inference figures for the same networks as bench_inference: a TorchScript model,
frozen and optimised for inference (torch.jit.optimize_for_inference: oneDNN convolutions with
BatchNorm folded; the fair baseline: eager mode and a merely frozen model run PyTorch's slow
generic convolution at batch 1, ~20x slower here), evaluation mode, random data. Batch-N time per batch: median of repeats, each the mean of enough passes
for ~50 ms. Debian's python3-torch: /usr/bin/python3."""
import argparse
import json
import time

import torch

from models import pruned_vgg13bn, vgg, FULL

PRUNED = [8, 16, 24, 24, 32, 32, 32, 32, 32, 32]

p = argparse.ArgumentParser()
p.add_argument("--widths", default="full", help="full, pruned or W0,W1,...")
p.add_argument("--batch", type=int, default=1)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--repeats", type=int, default=7)
p.add_argument("--json")
a = p.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(1)
if a.widths == "full":
    net = vgg(FULL)
else:
    net = pruned_vgg13bn(PRUNED if a.widths == "pruned" else [int(w) for w in a.widths.split(",")])
net.eval()
x = torch.randn(a.batch, 1, 32, 32)
with torch.no_grad():
    model = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(net)))
    for _ in range(3):  # warm-up: the profiling executor optimises during the first runs
        model(x)
    passes = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(passes):
            model(x)
        if time.perf_counter() - t0 > 0.05 or passes > 4096:
            break
        passes *= 2
    ms = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        for _ in range(passes):
            model(x)
        ms.append((time.perf_counter() - t0) * 1e3 / passes)
ms.sort()
median = ms[len(ms) // 2]
print(f"PyTorch {torch.__version__} TorchScript VGG13-BN {a.widths}, batch {a.batch}, {a.threads} thread(s): "
      f"{median:.4f} ms per batch (median of {len(ms)}; min {ms[0]:.4f}, max {ms[-1]:.4f}), "
      f"{1000 * a.batch / median:.1f} images/s")
if a.json:
    with open(a.json, "w") as f:
        json.dump({"framework": "pytorch " + torch.__version__ + " torchscript (frozen, optimize_for_inference)", "model": "vgg13bn",
                   "widths": a.widths, "batch": a.batch, "threads": a.threads, "ms_median": median, "ms_min": ms[0],
                   "ms_max": ms[-1], "images_per_second_median": 1000 * a.batch / median, "repeats": len(ms),
                   "passes_per_repeat": passes}, f)
