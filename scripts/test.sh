#!/usr/bin/env bash
# test.sh: build cuvae and run every test (Criterion, through ctest), on a
# fresh Debian machine: installs what is missing, fetches MNIST for the test
# that trains on it, builds in build/, runs ctest. CUDA tests report as skipped
# on machines without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh
if ! scripts/fetch_mnist.sh data/mnist; then
  echo "test.sh: MNIST could not be fetched; the test that trains on it will report as skipped" >&2
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure --no-tests=error
