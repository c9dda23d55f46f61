#!/usr/bin/env bash
# reference.sh: the accuracy check against PyTorch. Trains the default model
# with the same data and settings in cuvae and in PyTorch (scripts/pytorch_vae.py)
# and compares the final test losses; exits 1 when they differ by more than 2%.
#   scripts/reference.sh [--device cpu|cuda] [--epochs N] [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/.."

device=cpu epochs=10 out=""
while (($#)); do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "reference.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
python=python3
python3 -c "import torch" 2>/dev/null || python=/usr/bin/python3
"$python" -c "import torch" 2>/dev/null || { echo "reference.sh: PyTorch is not importable (apt-get install python3-torch)" >&2; exit 1; }
[[ -x build/cuvae ]] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null; }

run=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$run" "$log"' EXIT
settings="--data data/mnist --epochs $epochs --batch-size 128 --lr 1e-3 --seed 1"
{
  echo "# reference $(date -u +%Y-%m-%dT%H:%M:%SZ): $settings, device $device"
  echo "## cuvae"
  ./build/cuvae train $settings --device "$device" --out "$run" --quiet 2>&1
  cat "$run/metrics.csv"
  echo "## pytorch"
  "$python" scripts/pytorch_vae.py train $settings --device "$device"
} | tee "$log"

ours=$(tail -n 1 "$run/metrics.csv" | cut -d, -f5)
theirs=$(awk '/^## pytorch/ {p = 1; next} p && /^[0-9]/ {last = $0} END {split(last, f, ","); print f[5]}' "$log")
verdict=$(awk -v a="$ours" -v b="$theirs" 'BEGIN {
  d = (a - b) / b * 100; printf "test loss: cuvae %.4f, pytorch %.4f, difference %+.2f%%", a, b, d
  exit (d > 2 || d < -2) ? 1 : 0 }') && rc=0 || rc=$?
echo "$verdict" | tee -a "$log"
[[ -n "$out" ]] && { mkdir -p "$(dirname "$out")"; cp "$log" "$out"; echo "saved to $out"; }
exit $rc
