#!/usr/bin/env bash
# Installs what is missing, builds and runs every test: the optimised build, then the same
# tests under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
for preset in default sanitize; do
  echo "== $preset build"
  # Explicit: a build folder configured by demo.sh has the tests switched off.
  cmake --preset "$preset" -DSGP_BUILD_TESTS=ON -DSGP_BUILD_EXAMPLES=ON >/dev/null
  cmake --build --preset "$preset" -j 2
  ctest --preset "$preset"
done
