#!/usr/bin/env bash
# The main job: installs what is missing, builds, and trains the demo-size VGG13-BN on
# Fashion-MNIST (about 5 minutes on 2 cores). Extra arguments go to the program, e.g.
#   scripts/demo.sh --model vgg13bn --epochs 1
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset default -DSGP_BUILD_TESTS=OFF -DSGP_BUILD_BENCH=OFF >/dev/null
cmake --build build/default --target train_fashion_mnist -j 2
mkdir -p runs
./build/default/examples/train_fashion_mnist --json runs/demo.json "$@"
echo "results: runs/demo.json"
