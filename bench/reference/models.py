"""The networks of the benchmarks, in PyTorch: the same layer lists as sgp::models."""
from torch import nn


def vgg(widths, classes=10, source_classifier=False):
    layers, c = [], 1
    for w in widths:
        if w == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
    if source_classifier:
        layers += [nn.Conv2d(c, 4096, 1), nn.BatchNorm2d(4096), nn.ReLU(), nn.Dropout(),
                   nn.Conv2d(4096, 4096, 1), nn.BatchNorm2d(4096), nn.ReLU(), nn.Dropout(),
                   nn.Conv2d(4096, classes, 1), nn.Flatten()]
    else:
        layers += [nn.Flatten(), nn.Linear(c, classes)]
    return nn.Sequential(*layers)


FULL = [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
QUARTER = [16, 16, "M", 32, 32, "M", 64, 64, "M", 128, 128, "M", 128, 128, "M"]
MODELS = {"vgg13bn": lambda: vgg(FULL), "vgg13bn-source": lambda: vgg(FULL, source_classifier=True),
          "demo": lambda: vgg(QUARTER)}


def pruned_vgg13bn(widths, classes=10):
    """VGG13-BN with each conv group narrowed to widths[i] channels."""
    cfg, it = [], iter(widths)
    for w in FULL:
        cfg.append(w if w == "M" else next(it))
    return vgg(cfg, classes)
