#!/usr/bin/env bash
# All benchmarks in one invocation, sgp next to PyTorch 1.13 (Debian's python3-torch) on the
# same machine, each pair run back to back so that machine noise hits both alike:
#   kernels    FMA peak and the 3x3 convolutions of VGG13-BN, 1 and 2 threads; every
#              full and pruned conv shape at batch 1 and 64 by each algorithm (GEMM, direct,
#              few-pixel), 1 thread
#   inference  VGG13-BN batch 1 (1 thread) and batch 64 (2 threads), full and pruned widths,
#              against a frozen, inference-optimised TorchScript model
#   training   VGG13-BN batch 64, 1 and 2 threads, against eager PyTorch, in fp32 and in bf16
#              mixed precision (against torch.autocast); the bf16 per-convolution figures too
#   int8       the pruned source VGG13BN (docs/results weights) at batch 1, 1 thread: float
#              against the fast int8 path (and the scalar int8 reference)
#   compile    time to compile examples/train_fashion_mnist.cpp at -O2
# Writes docs/results/bench.json (or $1) with every figure and the ratios sgp / PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/results/bench.json}
# Explicit: a build folder configured by scripts/demo.sh has the benchmarks switched off.
cmake --preset default -DSGP_BUILD_BENCH=ON >/dev/null
cmake --build build/default --target bench_train_throughput bench_inference bench_kernels bench_int8 -j 2 >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
b=./build/default/bench
py=/usr/bin/python3
ref=bench/reference

for t in 1 2; do $b/bench_kernels --threads $t --json "$tmp/kernels_${t}t.json"; done
$b/bench_kernels --methods --threads 1 --json "$tmp/methods_1t.json"
for w in full pruned; do
  $b/bench_inference --widths $w --batch 1 --threads 1 --json "$tmp/sgp_infer_${w}_b1.json"
  $py $ref/torch_infer.py --widths $w --batch 1 --threads 1 --json "$tmp/torch_infer_${w}_b1.json"
  $b/bench_inference --widths $w --batch 64 --threads 2 --json "$tmp/sgp_infer_${w}_b64.json"
  $py $ref/torch_infer.py --widths $w --batch 64 --threads 2 --json "$tmp/torch_infer_${w}_b64.json"
done
$b/bench_int8 --weights docs/results/sgp_vgg13bn_source_pruned.npz --json "$tmp/int8.json"
for t in 1 2; do
  $b/bench_train_throughput --model vgg13bn --threads $t --json "$tmp/sgp_train_${t}t.json"
  $py $ref/torch_train.py --model vgg13bn --threads $t --json "$tmp/torch_train_${t}t.json"
  # bf16 mixed precision against torch.autocast; the kernel is the CPU's best (AMX, AVX512-BF16,
  # or the portable one), named in the JSON.
  $b/bench_train_throughput --model vgg13bn --threads $t --precision bf16 --json "$tmp/sgp_train_bf16_${t}t.json"
  $py $ref/torch_train.py --model vgg13bn --threads $t --precision bf16 --json "$tmp/torch_train_bf16_${t}t.json"
done
for t in 1 2; do $b/bench_kernels --threads $t --precision bf16 --json "$tmp/kernels_bf16_${t}t.json"; done
touch examples/train_fashion_mnist.cpp
start=$(date +%s%N)
cmake --build build/default --target train_fashion_mnist -j 1 >/dev/null
compile=$(( ($(date +%s%N) - start) / 1000000 ))

$py - "$tmp" "$out" "$compile" <<'PY'
import json, os, platform, sys
tmp, out, compile_s = sys.argv[1], sys.argv[2], float(sys.argv[3]) / 1000
def load(name):
    return json.load(open(os.path.join(tmp, name + ".json")))
r = {"machine": {"cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
                 "cores": os.cpu_count(), "kernel": platform.release()},
     "kernels": {f"{t}t": load(f"kernels_{t}t") for t in (1, 2)},
     "kernels_bf16": {f"{t}t": load(f"kernels_bf16_{t}t") for t in (1, 2)},
     "conv_methods_1t": load("methods_1t"),
     "inference": {}, "training": {}, "int8_pruned_b1": load("int8"),
     "compile_seconds_train_fashion_mnist": compile_s}
for w in ("full", "pruned"):
    for b in ("b1", "b64"):
        s, t = load(f"sgp_infer_{w}_{b}"), load(f"torch_infer_{w}_{b}")
        r["inference"][f"{w}_{b}"] = {"sgp": s, "pytorch": t, "speedup_sgp_over_pytorch": t["ms_median"] / s["ms_median"]}
for th in (1, 2):
    for prec, suffix in (("", ""), ("bf16_", "_bf16")):
        s, t = load(f"sgp_train_{prec}{th}t"), load(f"torch_train_{prec}{th}t")
        r["training"][f"{th}t{suffix}"] = {"sgp": s, "pytorch": t,
                                           "ratio_sgp_over_pytorch": s["images_per_second_median"] / t["images_per_second_median"]}
conv = next(k for k in r["kernels"]["2t"]["kernels"] if k["name"].startswith("conv3x3 forward 64->64"))
r["floors"] = {
    "training_b64_2t_ratio": r["training"]["2t"]["ratio_sgp_over_pytorch"],
    "training_b64_1t_ratio": r["training"]["1t"]["ratio_sgp_over_pytorch"],
    "training_bf16_b64_1t_ratio": r["training"]["1t_bf16"]["ratio_sgp_over_pytorch"],
    "training_bf16_b64_2t_ratio": r["training"]["2t_bf16"]["ratio_sgp_over_pytorch"],
    "inference_full_b1_speedup": r["inference"]["full_b1"]["speedup_sgp_over_pytorch"],
    "inference_pruned_b1_speedup": r["inference"]["pruned_b1"]["speedup_sgp_over_pytorch"],
    "conv64_fwd_2t_fraction_of_peak": conv["fraction_of_peak"],
    "int8_pruned_b1_speedup_over_float": r["int8_pruned_b1"]["int8_speedup_over_float"],
    "compile_seconds": compile_s}
# Issue 17's kernel floors (>= 0.75 forward, >= 0.65 backward, every 3x3 convolution of VGG13-BN,
# 1 and 2 threads): the lowest fraction of the FMA peak per direction, and which shape it is.
for t in ("1t", "2t"):
    for d in ("forward", "backward"):
        ks = [k for k in r["kernels"][t]["kernels"] if k["name"].startswith("conv3x3 " + d)]
        low = min(ks, key=lambda k: k["fraction_of_peak"])
        r["floors"][f"conv_{d}_{t}_lowest_fraction_of_peak"] = low["fraction_of_peak"]
        r["floors"][f"conv_{d}_{t}_lowest_shape"] = low["name"]
tmpout = out + ".tmp"
json.dump(r, open(tmpout, "w"), indent=1)
os.replace(tmpout, out)
for k, v in r["floors"].items():
    print(f"{k:44s} {v:.3f}" if isinstance(v, float) else f"{k:44s} {v}")
print("->", out)
PY
