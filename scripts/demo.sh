#!/usr/bin/env bash
# The main job: the whole pipeline on Fashion-MNIST with the demo-size VGG13-BN (1/4 width),
# on 20,000 training images (5,000 more held out for validation: every decision is taken on
# them; the 10,000 test images are read once, at the end):
#   1. baseline training, 2. sparsity training (L1 on the BatchNorm scales), 3. SGP: rounds of
#   layer-wise pruning and fine-tuning, then a final fine-tuning, and the controls at the same
#   parameter budget (Network Slimming, L1-norm filters, uniform width, SGP's architecture
#   from scratch), 4. quantization to the DPU's power-of-two INT8 and its test
#   accuracy (fast int8 path, checked against the DPU's arithmetic on every image),
#   5. export: the .xmodel for vai_c_xir and a static C++ header of the pruned network,
#   6. the layer-wise report of the network before and after pruning (workload, memory, CPU
#      time, int8 error, DPU estimate; docs/analysis.md) and its plots.
# Everything lands in runs/pipeline/; a rerun resumes the training stages where they stopped.
# Extra arguments go to the SGP stage, e.g.  scripts/demo.sh --limit 0   (all 60,000 images).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset default -DSGP_BUILD_TESTS=OFF -DSGP_BUILD_BENCH=OFF >/dev/null
cmake --build build/default --target sgp_experiment quantize sgp_xmodel_info sgp_report -j 2
bin=build/default/examples
run=runs/pipeline
mkdir -p "$run"

echo "== 1-3. train, sparsity-train, prune (SGP) and fine-tune; the controls"
"$bin/sgp_experiment" --model demo --limit 20000 --baseline-epochs 2 --sparse-epochs 2 --rounds 3 --lambda 5e-4 \
  --finetune-epochs 1 --final-epochs 1 --dir "$run/train" --json "$run/sgp.json" "$@"

echo "== 4-5. quantize to INT8, int8 accuracy, export .xmodel and header"
"$bin/quantize" --model demo --weights "$run/train/sgp.npz" --search-images 500 --json "$run/quant.json" \
  --xmodel "$run/model.xmodel" --header "$run/model.hpp"
"$bin/sgp-xmodel-info" "$run/model.xmodel" > "$run/model_info.txt"  # ops, shapes, fix points
head -n 1 "$run/model_info.txt"

echo "== 6. layer-wise report, before and after pruning"
mkdir -p "$run/report"
"$bin/sgp-report" --model demo --weights "$run/train/baseline.npz" --out "$run/report/before"
"$bin/sgp-report" --model demo --weights "$run/train/sgp.npz" --out "$run/report/after"
/usr/bin/python3 scripts/plot_report.py --report "$run/report/after.json" --before "$run/report/before.json" \
  --experiment "$run/sgp.json" --out "$run/report" --title "demo VGG13-BN (1/4 width), Fashion-MNIST"

echo "results: $run/sgp.json (pruning), $run/quant.json (int8), $run/model.xmodel ($run/model_info.txt), $run/model.hpp,"
echo "         $run/report/ (after.md: the layer-wise table; *.png: its plots)"
