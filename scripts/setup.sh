#!/usr/bin/env bash
# Installs the Debian 12 packages sgp needs, only those missing. Idempotent.
#   scripts/setup.sh           build + main job (compiler, CMake, headers, Fashion-MNIST, protobuf
#                              for the .xmodel exporter, CLI11 for the programs' flags, matplotlib
#                              for the report's plots)
#   scripts/setup.sh --tests   also doctest and PyTorch (the golden-file checks), and clang-14 with
#                              libclang-rt-14-dev (libFuzzer, ASan, UBSan) for the fuzz targets
set -euo pipefail

packages=(g++ cmake make libxtensor-dev xtl-dev libxsimd-dev zlib1g-dev nlohmann-json3-dev dataset-fashion-mnist
          libprotobuf-dev protobuf-compiler libcli11-dev python3-matplotlib)
if [[ "${1:-}" == "--tests" ]]; then
  packages+=(doctest-dev python3 python3-numpy python3-torch g++-aarch64-linux-gnu clang-14 libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "setup: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
