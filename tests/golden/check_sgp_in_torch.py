#!/usr/bin/python3
"""Weights trained and saved by sgp load into PyTorch (strict load_state_dict) and give the
same evaluation-mode outputs. Exit 77 (CTest: skipped) where PyTorch is not installed.

  check_sgp_in_torch.py          net_a: runs "$SGP_FIXTURE OUT.npz" (the original check)
  check_sgp_in_torch.py NAME     a model family of make_golden.py (resnet20, resnet56, resnet18,
                                 resnet8b, mobilenet_v1, mobilenet_v2): runs
                                 "$SGP_FIXTURE OUT.npz NAME", which must write that network's
                                 state_dict under PyTorch's key names (make_golden.py's modules),
                                 "input" (NCHW float32) and "sgp_eval_logits" ([N][classes]).
                                 Every other array in OUT.npz must be a key of the network
                                 (strict load), and in_ch / classes are read from their shapes."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError:
    print("PyTorch or numpy is not installed (Debian: python3-torch); skipping")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import FAMILIES, net_a  # noqa: E402

name = sys.argv[1] if len(sys.argv) > 1 else None
if name is not None and name not in FAMILIES:
    sys.exit("unknown network %s (known: %s)" % (name, ", ".join(FAMILIES)))

with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "sgp.npz")
    subprocess.run([os.environ["SGP_FIXTURE"], path] + ([name] if name else []), check=True)
    a = np.load(path)
    if name is None:
        net = net_a().float()
        state = {k: torch.from_numpy(a[k]) for k in a.files if k[0].isdigit()}
    else:
        net = FAMILIES[name][0](a["input"].shape[1], a["sgp_eval_logits"].shape[1]).float()
        state = {k: torch.from_numpy(a[k]) for k in a.files if k not in ("input", "sgp_eval_logits")}
    net.load_state_dict(state, strict=True)
    net.eval()
    with torch.no_grad():
        out = net(torch.from_numpy(a["input"])).numpy()
    ref = a["sgp_eval_logits"]
    err = np.linalg.norm(out - ref) / np.linalg.norm(out)
    print(f"relative error sgp vs PyTorch: {err:.3g} over {out.size} outputs")
    sys.exit(0 if err <= 1e-4 else 1)
