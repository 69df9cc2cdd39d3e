#!/usr/bin/python3
"""Weights trained and saved by sgp load into PyTorch (strict load_state_dict) and give the
same evaluation-mode outputs. Exit 77 (CTest: skipped) where PyTorch is not installed."""
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
from make_golden import net_a  # noqa: E402

with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "sgp.npz")
    subprocess.run([os.environ["SGP_FIXTURE"], path], check=True)
    a = np.load(path)
    net = net_a().float()
    state = {k: torch.from_numpy(a[k]) for k in a.files if k[0].isdigit()}
    net.load_state_dict(state, strict=True)
    net.eval()
    with torch.no_grad():
        out = net(torch.from_numpy(a["input"])).numpy()
    ref = a["sgp_eval_logits"]
    err = np.linalg.norm(out - ref) / np.linalg.norm(out)
    print(f"relative error sgp vs PyTorch: {err:.3g} over {out.size} outputs")
    sys.exit(0 if err <= 1e-4 else 1)
