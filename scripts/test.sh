#!/usr/bin/env bash
# test.sh: build cuvae and run every test (Criterion, through ctest), on a
# fresh Debian machine: installs what is missing, fetches MNIST for the test
# that trains on it, builds in build/ (or $CUVAE_BUILD_DIR), runs ctest. CUDA tests
# report as skipped on machines without a GPU, and in a build without the CUDA toolkit
# (configure then says so; docs/building.md). --no-tests=error: a build that made no tests
# (Criterion missing) fails instead of passing with nothing run. PyTorch (role
# torch) is installed too, so the checks against it (test_eval, test_pytorch_model)
# run rather than skip: on a machine without it, about 85 s and 600 MiB (Debian's
# python3-torch and its 166 packages, measured on the 2-core build machine).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh --torch
if ! scripts/fetch_mnist.sh data/mnist; then
  echo "test.sh: MNIST could not be fetched; the test that trains on it will report as skipped" >&2
fi
build=${CUVAE_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure --no-tests=error
