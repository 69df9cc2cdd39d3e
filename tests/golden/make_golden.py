#!/usr/bin/python3
"""Regenerates the PyTorch golden fixtures that tests/test_torch_golden.cpp checks sgp against.

Run with Debian's python3-torch:  /usr/bin/python3 tests/golden/make_golden.py [--counts] [NAME...]
  no argument    writes every fixture (net_a, net_b, compressed and the model families below)
  NAME...        writes only those fixtures (every fixture is deterministic: fixed seeds, and
                 numpy 1.24's savez dates every member 1980-01-01, so a rewrite gives the same
                 bytes; naming fixtures only saves time and leaves the others untouched)
  --counts       prints the full-size parameter counts of the model families and writes them
                 to param_counts.txt (cross-checked against torchvision where it is installed);
                 writes no fixture unless NAMEs are given too
  --list         prints the fixture names

Each fixture holds, for a small network declared the same way in the test:
  state.<key>   the initial state_dict (float32, numpy arrays, PyTorch's key names;
                num_batches_tracked as int64)
  x, labels     one batch of NCHW input (float32) and its labels (int64)
  logits        training-mode forward output            (computed in float64)
  loss          mean softmax cross-entropy
  grad.<key>    d loss / d parameter
  after.<key>   running statistics after the training-mode forward
  eval_logits   evaluation-mode output of the initial weights

The model-family fixtures (resnet20, resnet56, resnet18, resnet8b, mobilenet_v1, mobilenet_v2)
hold all of the above and also:
  sgd_steps         int64 scalar, 3: the number of SGD steps (and of training-mode forwards)
  sgd.<key>         every parameter after those steps (float64)
  sgd_after.<key>   running_mean / running_var after those steps (float64)
  sgd_losses        float64 [3]: the loss of each step's forward (sgd_losses[0] == loss)
  sgd_lr, sgd_momentum, sgd_weight_decay   float64 scalars: the learning rate (0.05 unless
                    no seed conditions the steps at 0.05: see "Conditioning"), 0.9, 5e-4
  sgd_conditioned   int64 scalar: 1 if the sgd.*, sgd_after.* and sgd_losses arrays are
                    well-conditioned (every family's fixture, as written today), 0 if no seed
                    and learning rate conditioned them (the C++ test should then check only
                    their finiteness and sgd_losses[0]); the other arrays are always conditioned
  seed              int64 scalar: the seed of the fixture's candidate (see "Conditioning")
  conditioning.<kind>  float64 scalars, kind as for f32_error: the worst relative change of that
                    kind of array under the perturbations of "Conditioning", measured as the
                    C++ test measures errors; all <= COND_LIMIT (3.36e-5) where conditioned
  param_count       int64 scalar: the number of trainable parameter values (buffers excluded)
  keys              1-d array of the state_dict keys in order, as fixed-width byte strings
                    (numpy '|S<n>', one byte per character, NUL-padded; sgp's .npy reader
                    sizes items by the digits of the descr, which '<U<n>' would get wrong)
  f32_error.<kind>  float64 scalars, kind = eval_logits, logits, loss, grad, after, sgd,
                    sgd_after, sgd_losses: the worst relative error that float32 PyTorch
                    reaches against this reference, measured as the C++ test measures
                    (||a - b|| / ||b||; gradients against max(||b||, 1e-2 of the largest
                    gradient norm)). It tells what float32 can be held to (<= 3.5e-6 in every
                    fixture written today).
Inputs: 3 x 16 x 16, 10 classes, batch 2, except mobilenet_v1 (batch 16) and mobilenet_v2
(batch 8): see FAMILIES for why. The C++ side should read the batch from x's shape.
How the steps are counted: starting from state.*, in training mode, on the same x / labels,
each step is one training forward, the cross-entropy, a backward from zeroed gradients and
one torch.optim.SGD step (lr sgd_lr, momentum 0.9, weight decay 5e-4 on every parameter, BN
and biases included, dampening 0, nesterov False). Step 1's forward IS the reference forward:
logits, loss, grad.* and after.* are its values, taken before step 1's update. So:
  forwards (training mode) before after.*      1
  forwards (training mode) before sgd_after.*  3 (= sgd_steps; no forward after the last update)
  updates before sgd.*                         3
The evaluation-mode forward (eval_logits) runs on the initial weights, changes no statistic,
and counts for neither.

Conditioning. A float32 implementation can only match a float64 reference to 1e-4 if the
reference is well-conditioned: if the results barely move when the inputs move by float32's
rounding. Two things break that. (1) Kinks: a ReLU / ReLU6 input within rounding distance of 0
(or 6) takes the other branch in float32, which changes the gradients by a finite amount (one
such flip put sgp 1.9e-4 off on a former mobilenet_v2 fixture). (2) Amplification: in training
mode, each BN layer of a deep plain network amplifies relative perturbations (by ~1.3 per block
in the MobileNets at the former initialization: 40-100 at the logits, hundreds to a thousand
in the gradients), which brings many kinks within reach and makes the 3 SGD steps chaotic.
So a family fixture is one of its candidates (a seed gives the weights, the BN parameters and
statistics, x and labels) that passes this test:
  - run the float64 reference (forward, gradients, 3 SGD steps) on COND_SAMPLES (32) random
    perturbations of every floating-point state_dict entry (every element times 1 +- 1e-6,
    random signs) and, separately, on as many of x;
  - measure, per kind of array (as f32_error), the worst relative change against the
    unperturbed reference, exactly as the C++ test measures errors (gradients with the floor);
  - accept if every change is <= COND_LIMIT = 2e-6 * 1e-6 / 2^-24 = 3.36e-5.
COND_LIMIT keeps a float32-sized perturbation (2^-24 = 6e-8 relative) 50x below the C++
tolerance of 1e-4 (2e-6), where the change is linear in the perturbation; the perturbation is
17x larger than float32's rounding so that kinks a little farther away are found too. A limit
of 2e-6 at 1e-6 itself is unreachable: moving every weight by 1e-6 moves eval_logits by
1.2e-6..3e-6 and the gradients by >= 4e-6 (amplification 10-70, smooth: the same at 1e-9) in
every family at every seed tried. 32 samples, not 4: candidates accepted with 4 or 16 samples
showed kink flips (changes of 2e-4..2e-3 in sgd.*) in 16 or 32 fresh ones; those accepted with
32 showed none in 64 fresh ones (their worst there: 7e-5, linear in the perturbation, on a
mobilenet_v1 gradient). On the fixtures written today, float32 PyTorch's errors are <= 3.5e-6
and sgp's <= 5.2e-6 (SGD arrays included, at the fixture's sgd_lr).
Seeds are searched from FAMILIES' first seed upward, SEED_SEARCH (50) of them, at each
learning rate of SGD_LRS (0.05, 0.01, 0.002) in turn; a seed whose forward arrays fail is
not retried at a lower rate. Without an accepted candidate, the first seed whose forward arrays
pass is written at lr 0.05 with sgd_conditioned = 0.
BN initialization (BN_INIT): weights U(0.5, 1.5), running means U(-0.2, 0.2), running
variances U(0.5, 2); biases U(1, 2) for the BN layers that feed a rectifier inside a branch
(the stem's, a BasicBlock's bn1, every MobileNet BN but MobileNetV2's linear projections) and
U(-0.5, 0.5) for those summed into a residual stream (BasicBlock bn2 and shortcut BNs,
MobileNetV2's projections). With U(-0.5, 0.5) everywhere, as before, no MobileNet seed came
near (gradient changes 0.06..0.23 at 10 mobilenet_v2 seeds, 0.004..0.07 at 4 mobilenet_v1
ones; logits 1e-4..2.4e-4): the positive biases keep 92% of the MobileNets' rectifier inputs
positive (ResNets: 79..89%), which cuts the amplification (logits then 2e-6..1.1e-5). The
residual-stream biases stay centred because positive ones add up along the stream (resnet56's
loss was 32 with every bias in U(1, 2)). Both kinks stay exercised: 8..21% of the rectifier
inputs are negative, and 58 of mobilenet_v2's ReLU6 inputs are above 6. The search then
accepts a candidate at lr 0.05 for every family but mobilenet_v2 (0.01: at 0.05, 23 of its 50
seeds failed on the forward arrays and the other 27 on the SGD arrays, mostly kink flips).

Dropout: the reference is deterministic. mobilenet_v2's classifier.0 (Dropout(0.2)) is kept
in evaluation mode (identity) even when the rest of the network trains; the C++ test must run
its dropout as identity for the comparison as well (evaluation mode, or p = 0).
Global average pooling is the mean over the whole remaining H x W (AdaptiveAvgPool2d(1)).
"""
import os
import sys
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

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


# ---------------------------------------------------------------------------------------------
# A. CIFAR ResNet (He et al. 2016), akamaster / kuangliu naming.

class ShortcutA(nn.Module):
    """Option A: no parameters. Subsamples by the stride and zero-pads the channels evenly."""

    def __init__(self, inp, out, stride):
        super().__init__()
        self.stride = stride
        self.pad = (out - inp) // 2

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, inp, out, stride, shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        if stride == 1 and inp == out:
            self.shortcut = nn.Sequential()  # identity, no keys
        elif shortcut == "A":
            self.shortcut = ShortcutA(inp, out, stride)
        elif shortcut == "B":
            self.shortcut = nn.Sequential(nn.Conv2d(inp, out, 1, stride, 0, bias=False), nn.BatchNorm2d(out))
        else:
            raise ValueError("shortcut must be 'A' or 'B'")

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, in_ch, classes, width, blocks_per_stage, shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        inp = width
        for s, blocks in enumerate(blocks_per_stage):
            out = width * 2 ** s
            layers = []
            for b in range(blocks):
                layers.append(BasicBlock(inp, out, 2 if (s > 0 and b == 0) else 1, shortcut))
                inp = out
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*layers))
        self.stages = len(blocks_per_stage)
        self.linear = nn.Linear(inp, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for s in range(self.stages):
            x = getattr(self, "layer%d" % (s + 1))(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.linear(x)


def resnet(in_ch, classes, width, blocks_per_stage, shortcut):
    return ResNet(in_ch, classes, width, list(blocks_per_stage), shortcut)


# ---------------------------------------------------------------------------------------------
# B. MobileNetV1, kuangliu naming. Every channel count divided by d (integer division).

MOBILENET_V1_CFG = [64, (128, 2), 128, (256, 2), 256, (512, 2), 512, 512, 512, 512, 512, (1024, 2), 1024]


class MobileBlock(nn.Module):
    """Depthwise 3x3 conv, BN, ReLU, pointwise 1x1 conv, BN, ReLU."""

    def __init__(self, inp, out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False)
        self.bn1 = nn.BatchNorm2d(inp)
        self.conv2 = nn.Conv2d(inp, out, 1, 1, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(out)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x)))


class MobileNetV1(nn.Module):
    def __init__(self, in_ch, classes, d=1):
        super().__init__()
        c0 = 32 // d
        self.conv1 = nn.Conv2d(in_ch, c0, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c0)
        blocks, inp = [], c0
        for c in MOBILENET_V1_CFG:
            out, stride = (c, 1) if isinstance(c, int) else c
            out //= d
            blocks.append(MobileBlock(inp, out, stride))
            inp = out
        self.layers = nn.Sequential(*blocks)
        self.linear = nn.Linear(inp, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.linear(x)


def mobilenet_v1(in_ch, classes, d=1):
    return MobileNetV1(in_ch, classes, d)


# ---------------------------------------------------------------------------------------------
# C. MobileNetV2, torchvision 0.14 naming, CIFAR strides (the stem and the 24-channel stage at
# stride 1). Every channel count divided by d (integer division).

MOBILENET_V2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                         (6, 160, 3, 2), (6, 320, 1, 1)]


def conv_bn_relu6(inp, out, kernel, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out), nn.ReLU6())


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, t):
        super().__init__()
        hidden = inp * t
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if t != 1:
            layers.append(conv_bn_relu6(inp, hidden, 1))
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, in_ch, classes, d=1):
        super().__init__()
        inp = 32 // d
        features = [conv_bn_relu6(in_ch, inp, 3, 1)]
        for t, c, n, s in MOBILENET_V2_SETTINGS:
            out = c // d
            for i in range(n):
                features.append(InvertedResidual(inp, out, s if i == 0 else 1, t))
                inp = out
        last = 1280 // d
        features.append(conv_bn_relu6(inp, last, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, classes))

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


def mobilenet_v2(in_ch, classes, d=1):
    return MobileNetV2(in_ch, classes, d)


# ---------------------------------------------------------------------------------------------
# The model-family fixtures: name -> (builder(in_ch, classes), input shape, classes, first seed).
# The seed actually used is the first one, counting up from "first seed", whose candidate is
# well-conditioned (see choose_candidate() and the docstring); it is stored as `seed`.

FAMILIES = {
    "resnet20": (lambda i, k: resnet(i, k, 4, [3, 3, 3], "A"), (2, 3, 16, 16), 10, 20),
    "resnet56": (lambda i, k: resnet(i, k, 2, [9, 9, 9], "A"), (2, 3, 16, 16), 10, 56),
    "resnet18": (lambda i, k: resnet(i, k, 4, [2, 2, 2, 2], "B"), (2, 3, 16, 16), 10, 18),
    "resnet8b": (lambda i, k: resnet(i, k, 4, [1, 1, 1], "B"), (2, 3, 16, 16), 10, 8),
    # The MobileNets take larger batches: with 2 images, the BN layers of MobileNetV1's last
    # blocks (1x1 maps) normalize 2 values per channel, and narrow depthwise channels of both
    # leave single-value channels, whose gradients cancel to eps-sized terms that float32 cannot
    # resolve (float32 PyTorch reaches 3e-3 / 1.2e-4 relative error on the gradients at batch 2).
    "mobilenet_v1": (lambda i, k: mobilenet_v1(i, k, 8), (16, 3, 16, 16), 10, 101),
    "mobilenet_v2": (lambda i, k: mobilenet_v2(i, k, 8), (8, 3, 16, 16), 10, 102),
}

SGD_STEPS = 3
SGD_OPTIONS = dict(momentum=0.9, weight_decay=5e-4, nesterov=False)
# Learning rates tried in this order: a lower one only when no seed makes the 3 SGD steps
# well-conditioned at the higher one.
SGD_LRS = (0.05, 0.01, 0.002)

# BN initialization of the family fixtures: uniform in these ranges. The biases of the BN
# layers that feed a rectifier inside a branch are drawn from BN_BIAS_BRANCH instead (see the
# docstring, "Conditioning").
BN_INIT = dict(weight=(0.5, 1.5), bias=(-0.5, 0.5), running_mean=(-0.2, 0.2), running_var=(0.5, 2.0))
BN_BIAS_BRANCH = (1.0, 2.0)

# Conditioning (see the docstring).
COND_SIZE = 1e-6           # relative size of each perturbation
COND_SAMPLES = 32          # random perturbations of the state, and as many of x
FLOAT32_UNIT = 2.0 ** -24  # float32's unit roundoff
COND_LIMIT = 2e-6 * COND_SIZE / FLOAT32_UNIT  # 3.36e-5: 2e-6 (1e-4 / 50) per float32 unit
SEED_SEARCH = 50           # seeds tried per learning rate
FORWARD_KINDS = ("eval_logits", "logits", "loss", "grad", "after")
SGD_KINDS = ("sgd", "sgd_after", "sgd_losses")


def train_mode(net):
    """Training mode everywhere except dropout, which stays the identity (see the docstring)."""
    net.train()
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    return net


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


def residual_bns(net):
    """The BN layers whose output is summed into a residual stream: a BasicBlock's bn2 and its
    projection shortcut's BN, an InvertedResidual's last (linear projection) BN."""
    out = set()
    for m in net.modules():
        if isinstance(m, BasicBlock):
            out.add(m.bn2)
            out.update(b for b in m.shortcut.modules() if isinstance(b, nn.BatchNorm2d))
        elif isinstance(m, InvertedResidual):
            out.add(m.conv[-1])
    return out


def initial_state(build, x_shape, classes, seed):
    """A candidate: the float32 network (PyTorch's default initialization of the convolutions
    and linear layers; BN parameters and statistics drawn from BN_INIT, the biases of the BN
    layers not in residual_bns() from BN_BIAS_BRANCH), x and labels."""
    torch.manual_seed(seed)
    net = build().float()
    residual = residual_bns(net)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                for name, (lo, hi) in BN_INIT.items():
                    if name == "bias" and m not in residual:
                        lo, hi = BN_BIAS_BRANCH
                    getattr(m, name).uniform_(lo, hi)
    x = torch.randn(*x_shape).float()
    labels = torch.randint(0, classes, (x_shape[0],))
    return net, x, labels


def run_reference(net, x, labels, lr):
    """Evaluation forward, then SGD_STEPS training steps at learning rate lr (step 1's forward
    is the reference forward). Runs in net's own dtype; returns a dict of numpy arrays
    (fixture names)."""
    out = {}
    net.eval()
    with torch.no_grad():
        out["eval_logits"] = net(x).numpy().copy()
    train_mode(net)
    opt = torch.optim.SGD(net.parameters(), lr=lr, **SGD_OPTIONS)
    losses = []
    for step in range(SGD_STEPS):
        opt.zero_grad(set_to_none=False)
        logits = net(x)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            out["logits"] = logits.detach().numpy().copy()
            out["loss"] = np.array(loss.item())
            for k, p in net.named_parameters():
                out["grad." + k] = p.grad.numpy().copy()
            for k, v in net.state_dict().items():
                if "running" in k:
                    out["after." + k] = v.numpy().copy()
        opt.step()
    for k, p in net.named_parameters():
        out["sgd." + k] = p.detach().numpy().copy()
    for k, v in net.state_dict().items():
        if "running" in k:
            out["sgd_after." + k] = v.numpy().copy()
    out["sgd_losses"] = np.array(losses)
    return out


def reference64(build, state, x, labels, lr):
    """run_reference in float64 on a fresh network loaded with state (a state_dict)."""
    net = build().double()
    net.load_state_dict(state)
    return run_reference(net, x.double(), labels, lr)


def relative_error(a, b, floor=0.0):
    """tests/helpers.hpp's relative_error: ||a - b|| / max(||b||, floor)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    den = max(np.linalg.norm(b), floor)
    num = np.linalg.norm(a - b)
    return num if den == 0 else num / den


def worst_errors(ref, got):
    """The worst relative error, per kind of array (the part of the name before the first '.'),
    of got against the reference ref, measured as the C++ test does (gradients with a floor of
    1e-2 of the largest gradient norm): kind -> (error, array name)."""
    largest = max(np.linalg.norm(v) for k, v in ref.items() if k.startswith("grad."))
    worst = {}
    for k, v in ref.items():
        kind = k.split(".")[0]
        e = relative_error(got[k], v, 1e-2 * largest if kind == "grad" else 0.0)
        if e > worst.get(kind, (-1, ""))[0]:
            worst[kind] = (e, k)
    return worst


def conditioning(build, state, x, labels, lr, seed, stop_kinds=()):
    """The worst relative change of each kind of reference array under COND_SAMPLES random
    relative perturbations of size COND_SIZE (every element times 1 +- COND_SIZE, random signs)
    of every floating-point state_dict entry (parameters and running statistics) together,
    and separately as many of x: (base, worst), base the unperturbed float64 reference, worst
    kind -> (change, array name, "x" or "state"). Stops early, leaving worst incomplete, as soon
    as a kind in stop_kinds exceeds COND_LIMIT (worst then holds that kind)."""
    state = {k: v.double() if v.is_floating_point() else v for k, v in state.items()}
    x = x.double()
    base = reference64(build, state, x, labels, lr)
    rng = np.random.default_rng(seed)

    def perturbed(v):
        return v * (1 + COND_SIZE * torch.from_numpy(rng.integers(0, 2, tuple(v.shape)) * 2.0 - 1.0))

    worst = {}
    for what in ("state", "x"):  # the state first: it moves the results more, so rejects sooner
        for _ in range(COND_SAMPLES):
            if what == "x":
                got = reference64(build, state, perturbed(x), labels, lr)
            else:
                got = reference64(build, {k: perturbed(v) if v.is_floating_point() else v for k, v in state.items()},
                                  x, labels, lr)
            for kind, (e, k) in worst_errors(base, got).items():
                if e > worst.get(kind, (-1,))[0]:
                    worst[kind] = (e, k, what)
            if any(worst[kind][0] > COND_LIMIT for kind in stop_kinds):
                return base, worst
    return base, worst


def conditioned(worst, kinds):
    return all(worst[kind][0] <= COND_LIMIT for kind in kinds)


def choose_candidate(name):
    """Searches seeds first_seed, first_seed + 1, ... (SEED_SEARCH of them) at each learning
    rate of SGD_LRS in turn for a candidate whose every kind is conditioned. Seeds whose forward
    kinds are not conditioned are rejected at every rate. Without such a candidate, takes the
    first seed whose forward kinds are conditioned, at SGD_LRS[0], as sgd_conditioned = 0.
    Returns (seed, lr, sgd_conditioned, (net, x, labels), base, worst)."""
    build, x_shape, classes, first = FAMILIES[name]
    b = lambda: build(x_shape[1], classes)  # noqa: E731
    forward_bad = set()
    for lr in SGD_LRS:
        sgd_bad = 0
        for seed in range(first, first + SEED_SEARCH):
            if seed in forward_bad:
                continue
            cand = initial_state(b, x_shape, classes, seed)
            base, worst = conditioning(b, cand[0].state_dict(), cand[1], cand[2], lr, seed,
                                       FORWARD_KINDS + SGD_KINDS)
            if not conditioned(worst, FORWARD_KINDS):
                forward_bad.add(seed)
            elif conditioned(worst, SGD_KINDS):
                return seed, lr, 1, cand, base, worst
            else:
                sgd_bad += 1
        print("  %s at lr %g: no seed in %d..%d accepted (%d rejected for the forward arrays, %d for the SGD "
              "arrays only)" % (name, lr, first, first + SEED_SEARCH - 1, len(forward_bad), sgd_bad), flush=True)
    lr = SGD_LRS[0]
    for seed in range(first, first + SEED_SEARCH):
        if seed in forward_bad:
            continue
        cand = initial_state(b, x_shape, classes, seed)
        base, worst = conditioning(b, cand[0].state_dict(), cand[1], cand[2], lr, seed, FORWARD_KINDS)
        if conditioned(worst, FORWARD_KINDS):
            return seed, lr, 0, cand, base, worst
    raise SystemExit("%s: no seed in %d..%d is conditioned even for the forward arrays" %
                     (name, first, first + SEED_SEARCH - 1))


def make_family(name):
    build, x_shape, classes, _ = FAMILIES[name]
    seed, lr, sgd_conditioned, (net, x, labels), ref, cond = choose_candidate(name)
    state = net.state_dict()
    out = {"x": x.numpy(), "labels": labels.numpy().astype(np.int64)}
    for k, v in state.items():
        out["state." + k] = v.numpy().copy()
    # A float32 run on an independent copy of the initial state shows what a float32
    # implementation can reach. (Not channels_last: PyTorch 1.13's float32 channels_last CPU
    # kernels lose far more, 3e-2 on mobilenet_v2's gradients at the former fixture.)
    net32 = build(x_shape[1], classes).float()
    net32.load_state_dict(state)
    f32 = worst_errors(ref, run_reference(net32, x, labels, lr))
    out.update(ref)
    out["sgd_steps"] = np.array(SGD_STEPS, dtype=np.int64)
    out["sgd_lr"] = np.array(lr)
    out["sgd_momentum"] = np.array(SGD_OPTIONS["momentum"])
    out["sgd_weight_decay"] = np.array(SGD_OPTIONS["weight_decay"])
    out["sgd_conditioned"] = np.array(sgd_conditioned, dtype=np.int64)
    out["seed"] = np.array(seed, dtype=np.int64)
    out["param_count"] = np.array(sum(p.numel() for p in net.parameters()), dtype=np.int64)
    out["keys"] = np.array([k.encode("ascii") for k in state.keys()], dtype=np.bytes_)
    for kind, (e, k) in f32.items():
        out["f32_error." + kind] = np.array(e)
    for kind, (e, k, what) in cond.items():
        out["conditioning." + kind] = np.array(e)
    path = os.path.join(HERE, name + ".npz")
    np.savez(path, **out)
    print("wrote %s: %d bytes, seed %d, sgd_lr %g, sgd_conditioned %d, %d parameters, %d keys, batch %d, "
          "loss %.6f" % (name, os.path.getsize(path), seed, lr, sgd_conditioned, out["param_count"], len(state),
                         x_shape[0], ref["loss"]))
    print("  worst relative change under perturbations of %g (limit %.3g): " % (COND_SIZE, COND_LIMIT) +
          ", ".join("%s %.2g (%s, %s)" % (kind, e, k, what) for kind, (e, k, what) in sorted(cond.items())))
    print("  float32 PyTorch vs the float64 reference, worst relative error per kind: " +
          ", ".join("%s %.2g (%s)" % (kind, e, k) for kind, (e, k) in sorted(f32.items())), flush=True)


def write_compressed():
    # A deflate-compressed archive, to check sgp reads numpy.savez_compressed too.
    np.savez_compressed(os.path.join(HERE, "compressed.npz"), values=np.arange(1000, dtype=np.float32) * 0.5)


FIXTURES = {
    "net_a": lambda: make("net_a", net_a, (5, 2, 9, 9), 3, 1),
    "net_b": lambda: make("net_b", net_b, (4, 1, 6, 6), 2, 2),
    "compressed": write_compressed,
}
FIXTURES.update({name: (lambda name=name: make_family(name)) for name in FAMILIES})


# ---------------------------------------------------------------------------------------------
# Full-size parameter counts (--counts).

def parameters(net):
    return sum(p.numel() for p in net.parameters())


def counts():
    full = [
        ("resnet20 (width 16, blocks [3,3,3], shortcut A)", lambda i, k: resnet(i, k, 16, [3, 3, 3], "A"), [10]),
        ("resnet56 (width 16, blocks [9,9,9], shortcut A)", lambda i, k: resnet(i, k, 16, [9, 9, 9], "A"), [10]),
        ("resnet18 (width 64, blocks [2,2,2,2], shortcut B)", lambda i, k: resnet(i, k, 64, [2, 2, 2, 2], "B"),
         [10]),
        ("mobilenet_v1 (d=1)", lambda i, k: mobilenet_v1(i, k, 1), [10, 1000]),
        ("mobilenet_v2 (d=1)", lambda i, k: mobilenet_v2(i, k, 1), [10, 1000]),
    ]
    lines = ["# Full-size parameter counts of make_golden.py's model families (trainable parameters;",
             "# BN running statistics and num_batches_tracked excluded). Written by",
             "# /usr/bin/python3 tests/golden/make_golden.py --counts (PyTorch %s)." % torch.__version__,
             "# model | in_ch | classes | parameters"]
    mine = {}
    for title, build, class_list in full:
        for classes in class_list:
            for in_ch in (1, 3):
                n = parameters(build(in_ch, classes))
                mine[(title, in_ch, classes)] = n
                lines.append("%s | %d | %d | %d" % (title, in_ch, classes, n))
    lines.append("")
    lines.append("# Cross-check against torchvision")
    try:
        import torchvision
        lines.append("# torchvision %s is installed (Debian's python3-torchvision, installed by hand for this"
                     % torchvision.__version__)
        lines.append("# check: no test needs it).")
        for classes in (1000, 10):
            tv = torchvision.models.mobilenet_v2(num_classes=classes)
            ours = mobilenet_v2(3, classes, 1)
            n_tv, n_ours = parameters(tv), parameters(ours)
            same_keys = list(tv.state_dict().keys()) == list(ours.state_dict().keys())
            same_shapes = same_keys and all(
                a.shape == b.shape for a, b in zip(tv.state_dict().values(), ours.state_dict().values()))
            lines.append("torchvision.models.mobilenet_v2(num_classes=%d): %d parameters; ours (in_ch 3): %d: %s; "
                         "state_dict keys %s, shapes %s" %
                         (classes, n_tv, n_ours, "equal" if n_tv == n_ours else "DIFFERENT",
                          "identical and in the same order" if same_keys else "DIFFERENT",
                          "identical" if same_shapes else "DIFFERENT"))
        lines.append("# (only the strides differ: ours keep stride 1 in the stem and the 24-channel stage for")
        lines.append("# CIFAR; strides have no parameters)")
        lines.append("# torchvision has no CIFAR ResNet or MobileNetV1; its ImageNet resnet18 (7x7 stem, 'fc',")
        lines.append("# 'downsample' keys) is a different network: %d parameters at 1000 classes." %
                     parameters(torchvision.models.resnet18(num_classes=1000)))
    except ImportError:
        lines.append("# torchvision is not installed: no cross-check made (Debian: python3-torchvision).")
    lines.append("# Published: kuangliu's CIFAR ResNet18 11,173,962 (classes 10, in_ch 3); akamaster's resnet20")
    lines.append("# 0.27M and resnet56 0.85M; torchvision's mobilenet_v2 3,504,872 (classes 1000).")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with open(os.path.join(HERE, "param_counts.txt"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    torch.set_num_threads(1)  # reproducible float32 errors; the machine is shared
    args = sys.argv[1:]
    if "--list" in args:
        print("\n".join(FIXTURES))
        sys.exit(0)
    names = [a for a in args if not a.startswith("--")]
    unknown = [a for a in names if a not in FIXTURES] + [a for a in args if a.startswith("--") and a != "--counts"]
    if unknown:
        sys.exit("unknown fixture or option: %s (fixtures: %s)" % (", ".join(unknown), ", ".join(FIXTURES)))
    if "--counts" in args:
        counts()
    if not names and "--counts" not in args:
        names = list(FIXTURES)
    for name in names:
        FIXTURES[name]()
