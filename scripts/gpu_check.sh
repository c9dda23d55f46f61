#!/usr/bin/env bash
# gpu_check.sh: everything a machine with an NVIDIA GPU must show, in one run:
# build, the whole test suite (CUDA tests included), `cuvae compare` (default
# and real data), compute-sanitizer memcheck over the CUDA tests, the default
# training run on the GPU, and the benchmark against PyTorch. The raw output
# goes to bench/results/<gpu>-<date>.txt (or to $1 when given).
#   scripts/gpu_check.sh [OUTPUT_FILE]
set -uo pipefail
cd "$(dirname "$0")/.."

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 | tr ' ' '-')
[[ -n "$gpu" ]] || { echo "gpu_check.sh: no NVIDIA GPU visible (nvidia-smi)" >&2; exit 1; }
out=${1:-bench/results/${gpu}-$(date -u +%Y-%m-%d).txt}
mkdir -p "$(dirname "$out")"
status=0
step() { # step NAME COMMAND...: run, log, remember failure
  echo "=== $1: ${*:2}"
  "${@:2}" || { echo "=== $1 FAILED (exit $?)"; status=1; }
}
{
  echo "# gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  nvcc --version | tail -n 2
  step build bash -c 'cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$(nproc)"'
  [[ -d data/mnist ]] || step fetch scripts/fetch_mnist.sh data/mnist
  step ctest bash -c 'cd build && ctest --output-on-failure'
  step compare ./build/cuvae compare
  step compare-mnist ./build/cuvae compare --data data/mnist --steps 20 --batch-size 128
  for t in test_cuda_ops test_cuda_train; do
    step "sanitizer-$t" compute-sanitizer --tool memcheck --error-exitcode 1 "./build/$t" -j1
  done
  step train-cuda ./build/cuvae train --device cuda --data data/mnist --epochs 10 --out models/gpu-check --force --quiet
  step train-cpu ./build/cuvae train --device cpu --data data/mnist --epochs 10 --out models/cpu-check --force --quiet
  echo "final test loss: cuda $(tail -n 1 models/gpu-check/metrics.csv | cut -d, -f5), cpu $(tail -n 1 models/cpu-check/metrics.csv | cut -d, -f5)"
  step bench scripts/bench.sh --data data/mnist
  echo "# gpu_check done: $([[ $status -eq 0 ]] && echo all steps passed || echo SOME STEPS FAILED)"
  exit $status
} 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
echo "raw output: $out"
exit "$rc"
