#!/usr/bin/env bash
# emu_race_check.sh: shared-memory races of the CUDA kernels, found by ThreadSanitizer on
# the emulated device (docs/emulated-device.md). The kernels alone are compiled with
# -fsanitize=thread (-DCUVAE_EMU_TSAN=ON) and every thread of a block is a TSan fiber whose
# only synchronization is what CUDA gives: __syncthreads(), the warp shuffles, the launch
# boundaries. Two threads of a block that touch the same memory, one writing, with no barrier
# between them are reported. `cuvae compare` then runs one step of every kind of model on the
# 1-multiprocessor device with small layers, which launches every kernel the training uses.
#
#   scripts/emu_race_check.sh            today's kernels: exit 0 when no race is reported
#   scripts/emu_race_check.sh --plant    the same on a scratch copy whose block_sum
#                                        (kernels/cuda_common.cuh) lacks its second
#                                        __syncthreads(): exit 0 only when the race IS reported,
#                                        so the check is shown able to see one
# Build directories: build-emu-tsan (and build-emu-race-plant/ for the copy). About 3 minutes
# on 2 cores, the builds included.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

plant=0
case "${1:-}" in
  "") ;;
  --plant) plant=1 ;;
  *) echo "emu_race_check: unknown argument '$1' (--plant or nothing)" >&2; exit 2 ;;
esac

src=$root
build=$root/build-emu-tsan
if ((plant)); then
  src=$root/build-emu-race-plant/src
  build=$root/build-emu-race-plant/build
  rm -rf "$src"
  mkdir -p "$src"
  git ls-files -z | xargs -0 cp --parents -t "$src"
  # block_sum's second barrier: between lane 0's write of its warp's sum and every lane's read.
  python3 - "$src/kernels/cuda_common.cuh" <<'EOF'
import sys
path = sys.argv[1]
s = open(path).read()
old = "        scratch[warp] = v;\n    __syncthreads();\n"
if old not in s:
    sys.exit("emu_race_check: block_sum's second __syncthreads() not found; update the plant")
open(path, "w").write(s.replace(old, "        scratch[warp] = v;\n", 1))
EOF
fi

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCUVAE_CUDA_EMU=ON -DCUVAE_EMU_TSAN=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target cuvae >/dev/null

# One step of each kind of model: every kernel of a training step, with and without clipping.
models=(
  "--hidden 40 --latent 5 --clip-grad-norm 1"
  "--hidden 40,33 --latent 7 --activation tanh --likelihood gaussian --sigma 0.5"
  "--model cvae --hidden 40 --latent 5"
  "--model joint --hidden 40 --latent 5 --disc 7 --capacity-z 5,8,30 --capacity-c 2,8,30"
  "--binarize dynamic --hidden 40 --latent 5"
  "--data toy --toy-n 500,100"
)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
races=0
for flags in "${models[@]}"; do
  # exitcode=66: a report fails the run; halt_on_error=0: every race of the run is listed.
  set +e
  # shellcheck disable=SC2086
  CUVAE_EMU_DEVICE=small TSAN_OPTIONS="halt_on_error=0 exitcode=66 report_signal_unsafe=0" \
    "$build/cuvae" compare --steps 1 $flags >"$log" 2>&1
  rc=$?
  set -e
  n=$(grep -c "WARNING: ThreadSanitizer: data race" "$log" || true)
  echo "emu_race_check: compare $flags: exit $rc, $n race report(s)"
  if ((n > 0)); then
    grep -m 1 -A 12 "WARNING: ThreadSanitizer: data race" "$log" | sed 's/^/    /'
    races=$((races + n))
  elif ((rc != 0)); then
    echo "emu_race_check: compare failed without a race report:" >&2
    tail -20 "$log" >&2
    exit 1
  fi
done

if ((plant)); then
  if ((races == 0)); then
    echo "emu_race_check: FAIL: block_sum without its second __syncthreads() raced, and no race was reported" >&2
    exit 1
  fi
  echo "emu_race_check: the planted race was reported ($races reports)"
  rm -rf "$root/build-emu-race-plant"
else
  if ((races > 0)); then
    echo "emu_race_check: FAIL: $races race report(s) in today's kernels" >&2
    exit 1
  fi
  echo "emu_race_check: no race in today's kernels"
fi
