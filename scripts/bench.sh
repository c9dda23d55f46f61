#!/usr/bin/env bash
# bench.sh: the training-speed benchmark. In one run, on this machine, with the
# same model, data (in memory), batch size and float32 precision: `cuvae bench`
# on the CPU and, when a GPU is present, on CUDA; the same model in PyTorch on
# the same devices where PyTorch is importable; then a table of median seconds
# per epoch, images/s, and cuvae's speed-up over PyTorch on each device.
#   scripts/bench.sh [--data DIR] [--epochs N] [--batch-size B] [--out FILE] [--cuvae PROGRAM]
# --cuvae: the cuvae program to time (default build/cuvae, built when missing).
# A benchmark, not a test: it asserts nothing about speed.
set -euo pipefail
cd "$(dirname "$0")/.."

data=data/mnist epochs=5 batch=128 out="" cuvae=""
while (($#)); do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --batch-size) batch="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --cuvae) cuvae="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

if [[ -z "$cuvae" ]]; then
  cuvae=build/cuvae
  [[ -x build/cuvae ]] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null; }
fi
[[ -x "$cuvae" ]] || { echo "bench.sh: $cuvae is not an executable" >&2; exit 2; }
python=python3
[[ -x /usr/bin/python3 ]] && ! python3 -c "import torch" 2>/dev/null && python=/usr/bin/python3

log=$(mktemp)
trap 'rm -f "$log"' EXIT
{
  echo "# cuvae bench $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname): data $data, batch $batch, $epochs timed epochs after 1 warm-up"
  echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | sed 's/^/# gpu: /'
  "$cuvae" bench --data "$data" --epochs "$epochs" --batch-size "$batch"
  if "$python" -c "import torch" 2>/dev/null; then
    "$python" scripts/pytorch_vae.py bench --data "$data" --epochs "$epochs" --batch-size "$batch" --device cpu
    if "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
      "$python" scripts/pytorch_vae.py bench --data "$data" --epochs "$epochs" --batch-size "$batch" --device cuda
    fi
  else
    echo "# PyTorch is not importable here: no reference timings (apt-get install python3-torch)"
  fi
} 2>&1 | tee "$log"

echo
printf '%-8s %-8s %14s %12s %10s\n' impl backend s/epoch images/s vs_pytorch
awk '
  /^bench / {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    key = f["impl"] "/" f["backend"]; sec[key] = f["median_s_per_epoch"]; ips[key] = f["images_per_s"]
    order[++n] = key
  }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]; split(k, p, "/"); ratio = "";
      if (p[1] == "cuvae" && (("pytorch/" p[2]) in sec)) ratio = sprintf("%.2fx", sec["pytorch/" p[2]] / sec[k])
      printf "%-8s %-8s %14.4f %12.0f %10s\n", p[1], p[2], sec[k], ips[k], ratio
    }
  }' "$log"
if [[ -n "$out" ]]; then
  mkdir -p "$(dirname "$out")"
  cp "$log" "$out"
  echo "raw output saved to $out"
fi
