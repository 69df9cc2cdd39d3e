#!/usr/bin/python3
"""PyTorch's training throughput for the same networks as bench_train_throughput, eager
mode, random data, median of repeats. Debian's python3-torch: /usr/bin/python3."""
import argparse
import json
import time

import torch
from torch import nn

from models import MODELS

p = argparse.ArgumentParser()
p.add_argument("--model", default="vgg13bn", choices=MODELS)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int, default=5)
p.add_argument("--repeats", type=int, default=5)
p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
               help="bf16: torch.autocast('cpu', dtype=torch.bfloat16), fp32 master weights")
p.add_argument("--json")
a = p.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(1)
net = MODELS[a.model]()
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
x = torch.randn(a.batch, 1, 32, 32)
y = torch.randint(0, 10, (a.batch,))


def step():
    opt.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
        loss = nn.functional.cross_entropy(net(x), y)
    loss.backward()
    opt.step()


step()
rates = []
for _ in range(a.repeats):
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    rates.append(a.steps * a.batch / (time.perf_counter() - t0))
rates.sort()
median = rates[len(rates) // 2]
print(f"PyTorch {torch.__version__} {a.model} training {a.precision}, batch {a.batch}, {a.threads} threads: {median:.1f} images/s "
      f"(median of {len(rates)}; min {rates[0]:.1f}, max {rates[-1]:.1f})")
if a.json:
    with open(a.json, "w") as f:
        json.dump({"framework": "pytorch " + torch.__version__, "model": a.model, "batch": a.batch,
                   "threads": a.threads, "precision": a.precision, "images_per_second_median": median, "images_per_second_min": rates[0],
                   "images_per_second_max": rates[-1], "repeats": len(rates)}, f)
