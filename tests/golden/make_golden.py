#!/usr/bin/python3
"""Regenerates the PyTorch golden fixtures that tests/test_torch_golden.cpp checks sgp against.

Run with Debian's python3-torch:  /usr/bin/python3 tests/golden/make_golden.py
Each fixture holds, for a small network declared the same way in the test:
  state.<key>   the initial state_dict (float32, numpy arrays, PyTorch's key names)
  x, labels     one batch of NCHW input and its labels
  logits        training-mode forward output            (computed in float64)
  loss          mean softmax cross-entropy
  grad.<key>    d loss / d parameter
  after.<key>   running statistics after the training-mode forward
  eval_logits   evaluation-mode output of the initial weights
"""
import os
import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))


def net_a():
    # conv (no bias, pad) + BN + ReLU + max pool, strided conv with bias, 1x1 conv,
    # flatten of a 2x2 map into a linear layer, ReLU, linear.
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, 1, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, 2, 1, bias=True), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 5, 1, 1, 0, bias=True), nn.Flatten(), nn.Linear(20, 7), nn.ReLU(), nn.Linear(7, 3))


def net_b():
    # unpadded conv, average pool, BN after a pool, global average pool, flatten, linear.
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, 1, 0, bias=True), nn.AvgPool2d(2), nn.BatchNorm2d(3), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(3, 2))


def make(name, build, x_shape, classes, seed):
    torch.manual_seed(seed)
    net = build().float()
    # Non-trivial BN parameters and running statistics, exactly representable in float32.
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(*x_shape).float()
    labels = torch.randint(0, classes, (x_shape[0],))
    out = {"x": x.numpy(), "labels": labels.numpy().astype(np.int64)}
    for k, v in net.state_dict().items():
        out["state." + k] = v.numpy().copy()

    net64 = net.double()
    net64.eval()
    with torch.no_grad():
        out["eval_logits"] = net64(x.double()).numpy()
    net64.train()
    logits = net64(x.double())
    loss = nn.functional.cross_entropy(logits, labels)
    loss.backward()
    out["logits"] = logits.detach().numpy()
    out["loss"] = np.array(loss.item())
    for k, p in net64.named_parameters():
        out["grad." + k] = p.grad.numpy()
    for k, v in net64.state_dict().items():
        if "running" in k:
            out["after." + k] = v.numpy()
    np.savez(os.path.join(HERE, name + ".npz"), **out)
    print("wrote", name, "loss", loss.item())


if __name__ == "__main__":
    make("net_a", net_a, (5, 2, 9, 9), 3, 1)
    make("net_b", net_b, (4, 1, 6, 6), 2, 2)
    # A deflate-compressed archive, to check sgp reads numpy.savez_compressed too.
    np.savez_compressed(os.path.join(HERE, "compressed.npz"), values=np.arange(1000, dtype=np.float32) * 0.5)
