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
  sgd_lr, sgd_momentum, sgd_weight_decay   float64 scalars: 0.05, 0.9, 5e-4
  param_count       int64 scalar: the number of trainable parameter values (buffers excluded)
  keys              1-d array of the state_dict keys in order, as fixed-width byte strings
                    (numpy '|S<n>', one byte per character, NUL-padded; sgp's .npy reader
                    sizes items by the digits of the descr, which '<U<n>' would get wrong)
  f32_error.<kind>  float64 scalars, kind = eval_logits, logits, loss, grad, after, sgd,
                    sgd_after, sgd_losses: the worst relative error that float32 PyTorch
                    reaches against this reference, measured as the C++ test measures
                    (||a - b|| / ||b||; gradients against max(||b||, 1e-2 of the largest
                    gradient norm)). It tells what float32 can be held to. The 3-step SGD
                    results of the MobileNets are chaotic: training one batch at lr 0.05, a
                    relative perturbation of 1e-12 of the weights grows to 3e-5 in 3 steps even
                    in float64, so float32 (PyTorch's or sgp's) cannot match their sgd.* and
                    sgd_after.* (f32_error.sgd is O(0.1..1) there; the ResNets' is <= 1.2e-5).
Inputs: 3 x 16 x 16, 10 classes, batch 2, except mobilenet_v1 (batch 16) and mobilenet_v2
(batch 8): see FAMILIES for why. The C++ side should read the batch from x's shape.
How the steps are counted: starting from state.*, in training mode, on the same x / labels,
each step is one training forward, the cross-entropy, a backward from zeroed gradients and
one torch.optim.SGD step (lr 0.05, momentum 0.9, weight decay 5e-4 on every parameter, BN
and biases included, dampening 0, nesterov False). Step 1's forward IS the reference forward:
logits, loss, grad.* and after.* are its values, taken before step 1's update. So:
  forwards (training mode) before after.*      1
  forwards (training mode) before sgd_after.*  3 (= sgd_steps; no forward after the last update)
  updates before sgd.*                         3
The evaluation-mode forward (eval_logits) runs on the initial weights, changes no statistic,
and counts for neither.

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
# The model-family fixtures: name -> (builder(in_ch, classes), input shape, classes, seed).

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
SGD_OPTIONS = dict(lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=False)


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


def initial_state(build, x_shape, classes, seed):
    """The float32 network (BN parameters and statistics set as make() sets them), x, labels."""
    torch.manual_seed(seed)
    net = build().float()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(*x_shape).float()
    labels = torch.randint(0, classes, (x_shape[0],))
    return net, x, labels


def run_reference(net, x, labels):
    """Evaluation forward, then SGD_STEPS training steps (step 1's forward is the reference
    forward). Runs in net's own dtype; returns a dict of numpy arrays (fixture names)."""
    out = {}
    net.eval()
    with torch.no_grad():
        out["eval_logits"] = net(x).numpy().copy()
    train_mode(net)
    opt = torch.optim.SGD(net.parameters(), **SGD_OPTIONS)
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


def relative_error(a, b, floor=0.0):
    """tests/helpers.hpp's relative_error: ||a - b|| / max(||b||, floor)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    den = max(np.linalg.norm(b), floor)
    num = np.linalg.norm(a - b)
    return num if den == 0 else num / den


def float32_errors(ref, got):
    """The worst relative error, per kind of array, of a float32 run against the reference,
    measured as the C++ test does (gradients with a floor of 1e-2 of the largest gradient norm)."""
    largest = max(np.linalg.norm(v) for k, v in ref.items() if k.startswith("grad."))
    worst = {}
    for k, v in ref.items():
        kind = k.split(".")[0]
        e = relative_error(got[k], v, 1e-2 * largest if kind == "grad" else 0.0)
        if e > worst.get(kind, (-1, ""))[0]:
            worst[kind] = (e, k)
    return worst


def make_family(name):
    build, x_shape, classes, seed = FAMILIES[name]
    net, x, labels = initial_state(lambda: build(x_shape[1], classes), x_shape, classes, seed)
    state = net.state_dict()
    out = {"x": x.numpy(), "labels": labels.numpy().astype(np.int64)}
    for k, v in state.items():
        out["state." + k] = v.numpy().copy()
    # Independent copies of the initial state: the float64 reference, and a float32 run that
    # shows what a float32 implementation can reach. (Not channels_last: PyTorch 1.13's float32
    # channels_last CPU kernels lose far more, 3e-2 on mobilenet_v2's gradients.)
    net64 = build(x_shape[1], classes).double()
    net64.load_state_dict(state)
    ref = run_reference(net64, x.double(), labels)
    net32 = build(x_shape[1], classes).float()
    net32.load_state_dict(state)
    runs = [run_reference(net32, x, labels)]
    out.update(ref)
    out["sgd_steps"] = np.array(SGD_STEPS, dtype=np.int64)
    out["sgd_lr"] = np.array(SGD_OPTIONS["lr"])
    out["sgd_momentum"] = np.array(SGD_OPTIONS["momentum"])
    out["sgd_weight_decay"] = np.array(SGD_OPTIONS["weight_decay"])
    out["param_count"] = np.array(sum(p.numel() for p in net.parameters()), dtype=np.int64)
    out["keys"] = np.array([k.encode("ascii") for k in state.keys()], dtype=np.bytes_)
    worst = {}
    for got in runs:
        for kind, (e, k) in float32_errors(ref, got).items():
            if e > worst.get(kind, (-1, ""))[0]:
                worst[kind] = (e, k)
    for kind, (e, k) in worst.items():
        out["f32_error." + kind] = np.array(e)
    path = os.path.join(HERE, name + ".npz")
    np.savez(path, **out)
    print("wrote %s: %d bytes, %d parameters, %d keys, batch %d, loss %.6f" %
          (name, os.path.getsize(path), out["param_count"], len(state), x_shape[0], ref["loss"]))
    print("  float32 PyTorch vs the float64 reference, worst relative error per kind: " +
          ", ".join("%s %.2g (%s)" % (kind, e, k) for kind, (e, k) in sorted(worst.items())))


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
