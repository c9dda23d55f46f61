#!/usr/bin/env bash
# emu_mutation_check.sh: the power of the CUDA tests, measured. Applies, one at a time, small
# mutations of the kind a kernel author makes (a tail off-by-one, a missing barrier, `=` where
# the CPU accumulates, a warp reduction one step short) to a scratch copy of the tree, rebuilds
# the CUDA op tests for the emulated device (-DCUVAE_CUDA_EMU=ON) and runs them: each mutant
# must make them fail. The unmutated copy must pass first, so a failure means the mutant.
#
#   scripts/emu_mutation_check.sh      exit 0 when every mutant is caught, 1 when one survives
#
# Works in build-emu-mutants/ (removed at the end when all is well). About 3 minutes on 2 cores:
# one build, then one kernel file and one test program rebuilt per mutant.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/build-emu-mutants
src=$work/src
build=$work/build

rm -rf "$work"
mkdir -p "$src"
git ls-files -z | xargs -0 cp --parents -t "$src"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCUVAE_CUDA_EMU=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target test_cuda_ops >/dev/null

# The op tests that compare every CUDA op with the CPU's on odd shapes, on the 1-multiprocessor
# device as well (its small grids make the grid-stride and tile loops wrap).
run_tests() {
  "$build/test_cuda_ops" --filter 'cuda_ops/every_op_against_the_cpu' -j1 >"$work/log" 2>&1 &&
    CUVAE_EMU_DEVICE=small "$build/test_cuda_ops" --filter 'cuda_ops/every_op_against_the_cpu' -j1 \
      >>"$work/log" 2>&1
}

if ! run_tests; then
  echo "emu_mutation_check: the unmutated copy fails its tests; fix that first:" >&2
  tail -20 "$work/log" >&2
  exit 1
fi

# name | file | text | mutated text (python string literals, so newlines can be written \n)
mutants=(
  "tail off-by-one: Adam never updates the last parameter|kernels/adam.cu|'i < n; i += stride) {'|'i + 1 < n; i += stride) {'"
  "missing barrier: the bias gradient reads the stripe sums before they are written|kernels/activation.cu|'        stripe_sum[ty][tx] = s;\n        __syncthreads();\n'|'        stripe_sum[ty][tx] = s;\n'"
  "write where the CPU accumulates: the mean's gradient overwrites dstats|kernels/reparam.cu|'dstats[mu_at] += g;'|'dstats[mu_at] = g;'"
  "warp reduction one step short: lanes 2 apart are never added|kernels/cuda_common.cuh|'for (int off = 16; off > 0; off >>= 1)\n        v += '|'for (int off = 16; off > 1; off >>= 1)\n        v += '"
)

survivors=0
for m in "${mutants[@]}"; do
  IFS='|' read -r name file from to <<<"$m"
  cp "$src/$file" "$work/original"
  python3 - "$src/$file" "$from" "$to" <<'EOF'
import ast, sys
path, old, new = sys.argv[1], ast.literal_eval(sys.argv[2]), ast.literal_eval(sys.argv[3])
s = open(path).read()
if s.count(old) != 1:
    sys.exit("emu_mutation_check: the text to mutate is not in %s exactly once: %r" % (path, old))
open(path, "w").write(s.replace(old, new))
EOF
  start=$SECONDS
  cmake --build "$build" -j"$(nproc)" --target test_cuda_ops >/dev/null
  if run_tests; then
    echo "emu_mutation_check: SURVIVED ($((SECONDS - start)) s): $name ($file)"
    survivors=$((survivors + 1))
  else
    caught=$(grep -m 1 -E "FAIL|CRASH|Assertion Failed" "$work/log" || true)
    echo "emu_mutation_check: caught ($((SECONDS - start)) s): $name ($file): $caught"
  fi
  cp "$work/original" "$src/$file"
done
cmake --build "$build" -j"$(nproc)" --target test_cuda_ops >/dev/null # leave the copy unmutated

if ((survivors > 0)); then
  echo "emu_mutation_check: FAIL: $survivors of ${#mutants[@]} mutants survived the CUDA op tests" >&2
  exit 1
fi
echo "emu_mutation_check: all ${#mutants[@]} mutants caught"
rm -rf "$work"
