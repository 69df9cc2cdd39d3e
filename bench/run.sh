#!/usr/bin/env bash
# Training throughput of sgp and PyTorch 1.13 on the same network, in one invocation,
# alternating the two so that machine noise hits both alike. Writes docs/results/bench_train_<model>_<threads>t.json.
#   bench/run.sh [model] [threads]      (model: vgg13bn, vgg13bn-source, demo)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-vgg13bn}
threads=${2:-2}
cmake --preset default >/dev/null
cmake --build build/default --target bench_train_throughput -j 2 >/dev/null
out=docs/results/bench_train_${model}_${threads}t.json
tmp=$(mktemp -d)
./build/default/bench/bench_train_throughput --model "$model" --threads "$threads" --json "$tmp/sgp.json"
/usr/bin/python3 bench/reference/torch_train.py --model "$model" --threads "$threads" --json "$tmp/torch.json"
/usr/bin/python3 - "$tmp/sgp.json" "$tmp/torch.json" "$out" <<'PY'
import json, sys
s, t = (json.load(open(p)) for p in sys.argv[1:3])
ratio = s["images_per_second_median"] / t["images_per_second_median"]
json.dump({"sgp": s, "pytorch": t, "ratio_sgp_over_pytorch": ratio}, open(sys.argv[3], "w"), indent=1)
print(f"ratio sgp / PyTorch: {ratio:.2f}  -> {sys.argv[3]}")
PY
rm -rf "$tmp"
