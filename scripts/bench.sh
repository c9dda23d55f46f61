#!/usr/bin/env bash
# bench.sh: issue 11's side-by-side training-speed benchmark (default model, one 60,000-image
# Fashion-MNIST epoch, data in memory). In one run on this machine, interleaved in rounds (round
# r of every contender before round r+1 of any; each run a fresh process, one warm-up epoch, then
# --epochs timed ones), in this order:
#   CPU, at each thread count T: cuvae bench --backends cpu --threads T; the same with
#     --gemm-only (the epoch's GEMMs alone); PyTorch on the CPU with T threads
#   GPU (when nvidia-smi lists one and cuvae can use it), at each --gpu-batch-sizes, FP32 then
#     TF32 (--tf32): cuvae on CUDA; PyTorch on CUDA eager, with the whole step in a CUDA graph,
#     and with --torch-compile also torch.compile(mode="reduce-overhead") (optional: its failure
#     is reported, not fatal); then cuvae eval --iw-samples 5000 and cuvae eval alone (its load
#     time, about) on a model trained for 1 epoch on CUDA before the first round
# then, after the rounds, cuvae bench --profile once per CPU thread count and on the GPU (each
# op's time per step), and prints the medians (min, max), issue 11's verdicts, met or not met,
# and the per-op tables (scripts/bench_report.py).
# Where there is no GPU it says so and the CPU figures stand alone. It asserts nothing about
# speed: exit status 0 when every contender ran, 1 when one failed, 2 on a usage error.
#
#   scripts/bench.sh [--rounds R] [--threads LIST] [--data DIR] [--batch-size B] [--epochs N]
#                    [--gpu-batch-sizes LIST] [--torch-compile] [--eval-batch-size N]
#                    [--out FILE] [--force] [--cuvae PROGRAM] [--python PYTHON]
#   scripts/bench.sh --report LOG      the tables of a saved output again (runs nothing)
#
# --rounds R (default 5); --threads LIST: CPU thread counts, comma-separated (default 1 to nproc);
# --data DIR (default /usr/share/datasets/fashion-mnist: scripts/install_deps.sh --data);
# --batch-size B: the CPU contenders' batch (default 128); --epochs N: timed epochs per run
# (default 1); --gpu-batch-sizes LIST (default 128,1024); --eval-batch-size N: cuvae eval's
# --batch-size, rows per launch (default: eval's own); --out FILE: the raw output and the
# tables (default bench/results/DEVICE-DATE-bench.txt, DEVICE from the GPU's or the CPU's name;
# an existing file is kept unless --force); --cuvae PROGRAM (default build/cuvae, built when
# missing); --python PYTHON: the one that imports torch (default python3, else /usr/bin/python3).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
die() { echo "bench.sh: $*" >&2; exit 2; }
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
is_count_list() { [[ "$1" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]]; }

rounds=5 threads="" data=/usr/share/datasets/fashion-mnist batch=128 epochs=1 gpu_batches=128,1024
torch_compile=0 out="" force=0 cuvae="" python="" report_log="" iw_samples=5000 eval_batch=""
args_given="$*"
while (($#)); do
  case "$1" in
    --rounds|--threads|--data|--batch-size|--epochs|--gpu-batch-sizes|--eval-batch-size|--out|--cuvae|--python|\
    --report)
      (($# >= 2)) || die "$1 needs a value"
      case "$1" in
        --rounds) is_count "$2" || die "--rounds '$2': expected a positive whole number"; rounds=$2 ;;
        --threads) is_count_list "$2" || die "--threads '$2': expected thread counts, comma-separated (e.g. 1,2)"
                   threads=$2 ;;
        --data) data=$2 ;;
        --batch-size) is_count "$2" || die "--batch-size '$2': expected a positive whole number"; batch=$2 ;;
        --epochs) is_count "$2" || die "--epochs '$2': expected a positive whole number"; epochs=$2 ;;
        --gpu-batch-sizes) is_count_list "$2" || die "--gpu-batch-sizes '$2': expected batch sizes, comma-separated"
                           gpu_batches=$2 ;;
        --eval-batch-size) is_count "$2" || die "--eval-batch-size '$2': expected a positive whole number"
                           eval_batch=$2 ;;
        --out) out=$2 ;;
        --cuvae) cuvae=$2 ;;
        --python) python=$2 ;;
        --report) report_log=$2 ;;
      esac
      shift 2 ;;
    --torch-compile) torch_compile=1; shift ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (scripts/bench.sh --help)" ;;
  esac
done

if [[ -n "$report_log" ]]; then
  [[ -r "$report_log" ]] || die "--report $report_log: no such readable file"
  exec python3 scripts/bench_report.py "$report_log"
fi

# ---- what can run here ------------------------------------------------------------------
if [[ -z "$cuvae" ]]; then
  cuvae=build/cuvae
  if [[ ! -x build/cuvae ]]; then
    echo "bench.sh: building build/cuvae" >&2
    { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j"$(nproc)" --target cuvae; } >/dev/null ||
      die "building build/cuvae failed (cmake -S . -B build && cmake --build build)"
  fi
fi
[[ -x "$cuvae" ]] || die "--cuvae $cuvae: not an executable"
compgen -G "$data/train-images-idx3-ubyte*" >/dev/null ||
  die "--data $data: no train-images-idx3-ubyte[.gz] there (Fashion-MNIST: scripts/install_deps.sh --data installs Debian's dataset-fashion-mnist into /usr/share/datasets/fashion-mnist)"
[[ -n "$threads" ]] || threads=$(seq -s, 1 "$(nproc)")
IFS=',' read -ra thread_list <<< "$threads"
IFS=',' read -ra gpu_batch_list <<< "$gpu_batches"

if [[ -n "$python" ]]; then
  "$python" -c "import torch" 2>/dev/null || die "--python $python: cannot import torch"
else
  for p in python3 /usr/bin/python3; do
    if "$p" -c "import torch" 2>/dev/null; then python=$p; break; fi
  done
fi

cuvae_help=$("$cuvae" bench --help 2>&1) || die "$cuvae bench --help failed: $cuvae_help"
has_gemm_only=0 has_tf32=0
grep -q -- '--gemm-only' <<< "$cuvae_help" && has_gemm_only=1
grep -q -- '--tf32' <<< "$cuvae_help" && has_tf32=1

# gpu: yes (measured), none (no GPU listed) or unusable (listed, but cuvae cannot use it)
gpu=none gpu_reason="no GPU is present (nvidia-smi -L lists none)"
command -v nvidia-smi >/dev/null 2>&1 || gpu_reason="no GPU is present (no nvidia-smi on this machine)"
if nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  gpu_name=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)
  devices=$("$cuvae" devices 2>&1)
  if grep -q '^  cuda:0 ' <<< "$devices"; then
    gpu=yes
  else
    gpu=unusable
    gpu_reason="nvidia-smi lists ${gpu_name:-a GPU}, but $cuvae cannot use it: $(grep -m1 'none listed' <<< "$devices" | sed 's/^ *//')"
  fi
fi
torch_cuda=0
[[ -n "$python" && "$gpu" == yes ]] &&
  "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null && torch_cuda=1

slug() { tr '[:upper:]' '[:lower:]' | sed 's/[^a-z0-9]\{1,\}/-/g; s/^-//; s/-$//' | cut -c1-40 | sed 's/-$//'; }
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' | tr -d '"')
if [[ -z "$out" ]]; then
  if [[ "$gpu" == yes ]]; then device="gpu-$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | slug)"
  else device="cpu-$(slug <<< "${cpu_model:-unknown}")"; fi
  out="bench/results/$device-$(date -u +%Y-%m-%d)-bench.txt"
fi
[[ -e "$out" && $force -eq 0 ]] && die "--out $out exists: pass --force to replace it, or another --out FILE"
mkdir -p "$(dirname "$out")" || die "--out $out: cannot create its directory"
log="$out.part"
: > "$log" || die "--out $out: cannot write $log"
tmp=$(mktemp -d) || die "mktemp -d failed"
trap 'rm -rf "$tmp"' EXIT

# ---- the log ------------------------------------------------------------------------------
clean() { tr -d '"\n' <<< "$1"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
{
  echo "@meta date=$(date -u +%Y-%m-%dT%H:%M:%SZ) host=$(hostname) commit=\"$(clean "$(git describe --always --dirty --tags 2>/dev/null || echo unknown)")\""
  echo "@meta command=\"$(clean "scripts/bench.sh $args_given")\""
  echo "@meta cpu=\"$(clean "${cpu_model:-unknown}")\" nproc=$(nproc) load_start=\"$(loadavg)\""
  echo "@meta cpu_backend=\"$(clean "$("$cuvae" devices 2>&1 | sed -n 's/^  cpu  //p' | head -n 1)")\""
  echo "@meta data=\"$(clean "$data")\" batch=$batch rounds=$rounds epochs=$epochs threads=$threads gpu_batches=$gpu_batches iw_samples=$iw_samples eval_batch=${eval_batch:-default}"
  echo "@meta python=\"$(clean "${python:-none}")\" torch=\"$(clean "$([[ -n "$python" ]] && "$python" -c 'import torch; print(torch.__version__)' 2>&1)")\""
  if [[ "$gpu" == yes ]]; then echo "@meta gpu=\"$(clean "$gpu_name")\""
  else echo "@meta gpu=$gpu gpu_reason=\"$(clean "$gpu_reason")\""; fi
  ((has_gemm_only)) || echo "@skip part=cpu what=\"the GEMMs alone\" reason=\"$cuvae bench --help has no --gemm-only\""
  [[ -n "$python" ]] || echo "@skip part=cpu what=\"PyTorch\" reason=\"neither python3 nor /usr/bin/python3 imports torch (scripts/install_deps.sh --torch)\""
  if [[ "$gpu" == yes ]]; then
    ((has_tf32)) || echo "@skip part=gpu what=\"the TF32 rows\" reason=\"$cuvae bench --help has no --tf32\""
    if [[ -z "$python" ]]; then
      echo "@skip part=gpu what=\"PyTorch on CUDA\" reason=\"neither python3 nor /usr/bin/python3 imports torch\""
    elif ((!torch_cuda)); then
      echo "@skip part=gpu what=\"PyTorch on CUDA\" reason=\"$python has no usable CUDA (torch.cuda.is_available() is False)\""
    fi
    ((torch_cuda && !torch_compile)) && echo "@skip part=gpu what=\"torch.compile\" reason=\"not asked for (--torch-compile)\""
  fi
} >> "$log"

# run_one ROUND CONTENDER KEYS CMD...: run CMD as a fresh process into the log between @run and
# @end lines, and print a line of progress.
runs_total=0 runs_failed=0 runs_failed_optional=0
run_one() {
  local round=$1 contender=$2 keys=$3 t0 t1 rc wall fig failed=FAILED
  shift 3
  echo "@run round=$round contender=$contender $keys" >> "$log"
  t0=$(date +%s.%N)
  "$@" > "$tmp/run.out" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  cat "$tmp/run.out" >> "$log"
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  echo "@end rc=$rc wall_s=$wall" >> "$log"
  fig=$(grep -m1 '^bench ' "$tmp/run.out" | grep -o 'median_s_per_epoch=[^ ]*')
  runs_total=$((runs_total + 1))
  if ((rc != 0)); then
    runs_failed=$((runs_failed + 1))
    if [[ " $keys " == *" optional=1 "* ]]; then
      runs_failed_optional=$((runs_failed_optional + 1)) failed="failed (optional)"
    fi
  fi
  printf 'bench.sh: round %s %-16s %-24s %s\n' "$round" "$contender" "$keys" \
    "$( ((rc == 0)) && echo "${fig:-wall_s=$wall}" || echo "$failed (exit status $rc): $(tail -n 1 "$tmp/run.out")")"
}

common=(--data "$data" --epochs "$epochs")
maths=(fp32)
((has_tf32)) && maths+=(tf32)
eval_ready=0 eval_opts=()
[[ -n "$eval_batch" ]] && eval_opts=(--batch-size "$eval_batch")
if [[ "$gpu" == yes ]]; then
  run_one 0 eval-train "" "$cuvae" train --data "$data" --epochs 1 --device cuda:0 --out "$tmp/run"
  if [[ -f "$tmp/run/model.safetensors" ]]; then eval_ready=1
  else echo "@skip part=eval what=\"cuvae eval\" reason=\"the 1-epoch training run on CUDA failed\"" >> "$log"; fi
fi

for ((r = 1; r <= rounds; r++)); do
  for t in "${thread_list[@]}"; do
    run_one "$r" cuvae-cpu "threads=$t batch=$batch" \
      "$cuvae" bench --backends cpu --threads "$t" --batch-size "$batch" "${common[@]}"
    ((has_gemm_only)) && run_one "$r" gemms-cpu "threads=$t batch=$batch" \
      "$cuvae" bench --backends cpu --threads "$t" --batch-size "$batch" --gemm-only "${common[@]}"
    [[ -n "$python" ]] && run_one "$r" pytorch-cpu "threads=$t batch=$batch" \
      "$python" scripts/pytorch_vae.py bench --device cpu --threads "$t" --batch-size "$batch" "${common[@]}"
  done
  [[ "$gpu" == yes ]] || continue
  for b in "${gpu_batch_list[@]}"; do
    for m in "${maths[@]}"; do
      tf=()
      [[ "$m" == tf32 ]] && tf=(--tf32)
      run_one "$r" cuvae-cuda "batch=$b math=$m" \
        "$cuvae" bench --backends cuda:0 --batch-size "$b" "${tf[@]}" "${common[@]}"
      ((torch_cuda)) || continue
      for mode in eager graph; do
        run_one "$r" "pytorch-$mode" "batch=$b math=$m" \
          "$python" scripts/pytorch_vae.py bench --device cuda --mode "$mode" --batch-size "$b" "${tf[@]}" "${common[@]}"
      done
      ((torch_compile)) && run_one "$r" pytorch-compile "batch=$b math=$m optional=1" \
        "$python" scripts/pytorch_vae.py bench --device cuda --mode compile --batch-size "$b" "${tf[@]}" "${common[@]}"
    done
  done
  if ((eval_ready)); then
    run_one "$r" eval-load "" "$cuvae" eval --model "$tmp/run/model.safetensors" --data "$data" --device cuda:0 \
      "${eval_opts[@]}"
    run_one "$r" eval-iw "iw_samples=$iw_samples" "$cuvae" eval --model "$tmp/run/model.safetensors" --data "$data" \
      --device cuda:0 "${eval_opts[@]}" --iw-samples "$iw_samples"
  fi
done
# where the time goes: each op per step, once per CPU thread count and on the GPU
for t in "${thread_list[@]}"; do
  run_one P profile-cpu "threads=$t batch=$batch" \
    "$cuvae" bench --backends cpu --threads "$t" --batch-size "$batch" --profile "${common[@]}"
done
[[ "$gpu" == yes ]] && run_one P profile-cuda "batch=${gpu_batch_list[0]}" \
  "$cuvae" bench --backends cuda:0 --batch-size "${gpu_batch_list[0]}" --profile "${common[@]}"
echo "@meta load_end=\"$(loadavg)\"" >> "$log"

python3 scripts/bench_report.py "$log" > "$tmp/report.txt"
status=$?
{ echo; cat "$tmp/report.txt"; } | tee -a "$log"
mv "$log" "$out" || die "cannot rename $log to $out"
echo "bench.sh: $runs_total runs, $runs_failed failed ($runs_failed_optional of them optional); raw output and tables in $out"
exit "$status"
