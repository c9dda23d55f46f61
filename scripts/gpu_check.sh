#!/usr/bin/env bash
# gpu_check.sh: what a machine with an NVIDIA GPU must show, in phases that each fit in one
# device-tool call (600 s) on a fresh, bare machine. Needs the working tree plus .gpu/
# from scripts/gpu_prepare.sh (carried); installs nothing. Not a benchmark of its own and
# not for CI (CI has no GPU).
#
#   scripts/gpu_check.sh PHASE[,PHASE...] OUTDIR        (OUTDIR: the device tool's $OUT)
#   scripts/gpu_check.sh all OUTDIR                     every phase (may not fit in 600 s)
#
# Phases (each first runs the setup, which is skipped where already done on this machine:
# unpack .gpu/debs into build-gpu/prefix, check those libraries load, configure and build
# in build-gpu/build against the prefix, check the build used it):
#   test      every ctest test, the CUDA ones included; one check per Criterion case
#   compare   `cuvae compare` on synthetic data and on MNIST (20 steps, batch 128), and on MNIST
#             with --tf32 (the GPU's GEMMs in TF32, checked with TF32's own tolerances)
#   sanitize  compute-sanitizer memcheck over test_cuda_ops and test_cuda_train, racecheck
#             over test_cuda_ops's comparison with the CPU of the ops whose kernels use shared
#             memory (bias_act, the loss terms, loss_accumulate, grad_clip_scale); UNAVAILABLE
#             (skipped) where the tool refuses the device
#   train     the default model, 10 epochs, on cuda and on cpu; both final test losses
#   bench     scripts/bench.sh on the full Fashion-MNIST, 3 rounds, CPU threads 1 and all cores
#             (raw output and tables: bench-results.txt): cuvae on cuda and cpu, PyTorch;
#             the K = 5000 evaluation at --eval-batch-size 50000
#
# OUTDIR gets, per phase, PHASE.log (everything) and PHASE.summary.txt, plus setup.log;
# with more than 3 phases the logs are packed into logs.tar.gz (the device tool brings
# back 8 files). A summary starts with the GPU, driver, nvcc, date and commit, lists one
# PASS/FAIL/SKIP line per check and ends with `gpu_check: N passed, M failed, K skipped`.
# Where nvidia-smi sees a GPU, a CUDA check that skipped counts as failed. Each step runs
# under a timeout so that the summaries are written before the call's 600 s run out
# (GPU_CHECK_BUDGET_S, default 560, counted from the start of this script; 60 s of it are
# kept for each phase still to come). The racecheck cases are chosen by
# GPU_CHECK_RACECHECK_FILTER (a Criterion --filter; empty: all cases) and the ops of the
# table-driven tests by GPU_CHECK_RACECHECK_OPS (OP_TABLE_OPS, names from tests/op_table.c;
# empty: every op).
# Exit status: 0 when no check failed, 1 otherwise, 2 on a usage error.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$SECONDS
budget=${GPU_CHECK_BUDGET_S:-560}
all_phases=(test compare sanitize train bench)

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; }
(($# == 2)) || { usage >&2; exit 2; }
if [[ "$1" == all ]]; then phases=("${all_phases[@]}"); else IFS=',' read -ra phases <<< "$1"; fi
for ph in "${phases[@]}"; do
  [[ " ${all_phases[*]} " == *" $ph "* ]] || { echo "gpu_check: unknown phase '$ph' (${all_phases[*]}, all)" >&2; exit 2; }
done
mkdir -p "$2" || { echo "gpu_check: cannot create $2" >&2; exit 2; }
outdir=$(cd "$2" && pwd)

source scripts/gpu_common.sh
G=$root/.gpu W=$root/build-gpu
P=$W/prefix B=$W/build
mkdir -p "$W"
logdir=$outdir
((${#phases[@]} > 3)) && { logdir=$W/logs; rm -rf "$logdir"; mkdir -p "$logdir"; }
jobs=$(nproc)
has_gpu=0
nvidia-smi -L 2>/dev/null | grep -q '^GPU ' && has_gpu=1

reserve=0   # seconds kept for the phases after the current one (60 each)
left() { echo $((budget - reserve - (SECONDS - start))); }   # seconds this step may take
# limited SECONDS CMD...: run CMD under a timeout of SECONDS (at least 20).
limited() { local t=$1; shift; ((t < 20)) && t=20; timeout -k 10 "$t" "$@"; }

# ---- checks and summaries ---------------------------------------------------------------
n_pass=0 n_fail=0 n_skip=0 body=""
check() { # check PASS|FAIL|SKIP NAME [DETAIL]
  case "$1" in PASS) n_pass=$((n_pass + 1)) ;; FAIL) n_fail=$((n_fail + 1)) ;; SKIP) n_skip=$((n_skip + 1)) ;; esac
  body+="$1 $2${3:+: $3}"$'\n'
  echo "gpu_check: $1 $2${3:+: $3}"
}
# cuda_skip NAME WHY: a CUDA check that could not run: failed where there is a GPU.
cuda_skip() {
  if ((has_gpu)); then check FAIL "$1" "skipped on a machine with a GPU: $2"; else check SKIP "$1" "$2"; fi
}
note() { body+="  $*"$'\n'; echo "  $*"; }

header() {
  local commit
  commit=$(git rev-parse HEAD 2>/dev/null) && commit+=" ($(git status --porcelain 2>/dev/null | grep -vc '^?? ') tracked files changed)" ||
    commit="no .git here; gpu_prepare ran at $(awk '$1 == "commit" {print $2}' "$G/manifest.txt" 2>/dev/null || echo "an unknown commit")"
  echo "# gpu_check $1"
  echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit:  $commit"
  if ((has_gpu)); then
    echo "gpu:     $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n 1)"
  else
    echo "gpu:     none (nvidia-smi sees no GPU): CUDA checks count as skipped"
  fi
  echo "nvcc:    $(nvcc_path=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc); "$nvcc_path" --version 2>/dev/null | grep -m1 -o 'release .*' || echo none)"
  echo "host:    $(uname -n) $(uname -m), $(nproc) cores, $(ldd --version 2>&1 | head -n 1), $(cmake --version 2>/dev/null | head -n 1), $(cc --version 2>/dev/null | head -n 1)"
  echo "setup:   ${setup_verdict:-not run}"
  [[ -n "${setup_checks:-}" ]] && sed 's/^/  /' <<< "$setup_checks"
  echo
}

# ---- setup: prefix, data, build -------------------------------------------------------
setup_done=0 setup_ok=0 setup_verdict="" setup_checks=""
setup() {   # returns 1 when nothing can run; a build that strays from the prefix still runs
  local t0=$SECONDS stamp
  echo "== setup $(date -u +%H:%M:%S)"
  [[ -f "$G/manifest.txt" ]] || { setup_verdict="FAIL: .gpu/manifest.txt missing: run scripts/gpu_prepare.sh, carry .gpu"; return 1; }
  stamp=$(cat "$G/manifest.txt" "$root/scripts/gpu_common.sh" | sha256sum | cut -c1-16)
  if [[ "$(cat "$P/.cuvae/stamp" 2>/dev/null)" != "$stamp" ]]; then
    echo "unpacking $(ls "$G"/debs/*.deb | wc -l) .deb files into $P"
    gpu_unpack "$G" "$P" || { setup_verdict="FAIL: unpacking .gpu/debs failed (setup.log)"; return 1; }
    gpu_check_loadable "$P" "$G/manifest.txt" ||
      { setup_verdict="FAIL: carried libraries do not load here: $(grep -m1 'not found' "$logdir/setup.log" | sed 's/^ *//')"; return 1; }
    echo "$stamp" > "$P/.cuvae/stamp"
    rm -rf "$B"
  else
    echo "prefix $P already unpacked"
  fi
  # MNIST for the tests and the runs: data/mnist, else the carried copy.
  if ! compgen -G "data/mnist/train-images-idx3-ubyte*" >/dev/null; then
    [[ -L data || ! -e data ]] && { rm -f data; mkdir -p data; }
    [[ -L data/mnist || ! -e data/mnist ]] && ln -sfn ../.gpu/data/mnist data/mnist
    compgen -G "data/mnist/train-images-idx3-ubyte*" >/dev/null ||
      { setup_verdict="FAIL: no MNIST in data/mnist nor .gpu/data/mnist"; return 1; }
    echo "data/mnist -> .gpu/data/mnist"
  fi
  if [[ ! -f "$B/CMakeCache.txt" ]]; then
    gpu_configure "$root" "$B" "$P" || { setup_verdict="FAIL: cmake configure failed (setup.log)"; return 1; }
  fi
  limited "$(left)" cmake --build "$B" -j"$jobs" || { setup_verdict="FAIL: build failed (setup.log)"; return 1; }
  echo "== checks that the build used the prefix"
  setup_checks=$(gpu_verify_build "$B" "$P")
  local bad=$?
  echo "$setup_checks"
  echo "cuvae's $(readelf -d "$B/cuvae" 2>/dev/null | sed -nE 's/.*\((RPATH|RUNPATH)\) +Library r(un)?path: /\1 /p')"
  if ((bad)); then
    # Run anyway, so that the GPU time is not lost, with the prefix on the library path;
    # every phase then counts the setup as one failed check.
    export LD_LIBRARY_PATH
    LD_LIBRARY_PATH=$(gpu_libdirs "$P" | paste -sd:)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    setup_verdict="FAIL: $bad checks show the build did not use the prefix alone; running with LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    return 0
  fi
  setup_verdict="PASS: prefix, build and $(grep -c '^PASS' <<< "$setup_checks") prefix checks in $((SECONDS - t0)) s"
}
run_setup() {
  ((setup_done)) && return $((1 - setup_ok))
  setup_done=1
  setup >> "$logdir/setup.log" 2>&1 && setup_ok=1
  echo "setup: ${setup_verdict}" >> "$logdir/setup.log"
  echo "gpu_check: setup ${setup_verdict}"
  return $((1 - setup_ok))
}

# ---- phases -----------------------------------------------------------------------------
phase_test() {
  local out=$W/ctest.out j=$((jobs < 8 ? jobs : 8)) rc line
  (cd "$B" && limited "$(left)" ctest -V --no-tests=error -j"$j") > "$out" 2>&1
  rc=$?
  cat "$out"
  local gpu_flag=()
  ((has_gpu)) && gpu_flag=(--gpu)
  while read -r line; do
    check "${line%% *}" "$(cut -d' ' -f2- <<< "$line" | sed 's/: .*//')" "$(grep -o ': .*' <<< "$line" | cut -c3-)"
  done < <(python3 scripts/criterion_verdicts.py "$out" "${gpu_flag[@]}")
  ((rc == 124 || rc == 137)) && check FAIL "ctest" "timed out"
  grep -q 'No tests were found' "$out" && check FAIL "ctest" "no tests were found"
  note "ctest exit status $rc; $(grep -m1 'tests passed' "$out")"
}

phase_compare() {
  local name args out rc
  for name in synthetic mnist mnist-tf32; do
    args=()
    [[ "$name" == mnist* ]] && args=(--data data/mnist --steps 20 --batch-size 128)
    [[ "$name" == *-tf32 ]] && args+=(--tf32) # TF32 GEMMs on the GPU against the FP32 CPU, TF32's tolerances
    out=$W/compare-$name.out
    echo "== cuvae compare ${args[*]}"
    limited $(($(left) / 2)) "$B/cuvae" compare "${args[@]}" > "$out" 2>&1
    rc=$?
    cat "$out"
    if ((rc == 0)); then
      check PASS "compare $name" "$(tail -n 1 "$out")"
    elif grep -q 'no CUDA device' "$out"; then
      cuda_skip "compare $name" "$(grep -m1 'no CUDA device' "$out")"
    else
      check FAIL "compare $name" "exit status $rc: $(tail -n 1 "$out")"
    fi
    while IFS= read -r line; do note "$line"; done < <(tail -n 4 "$out" | head -n 3)
  done
}

phase_sanitize() {
  local san runs=3 i=0 tool prog filter name out rc t verdicts errors
  local racecheck_ops=${GPU_CHECK_RACECHECK_OPS-bias_act,lik_bernoulli,lik_gaussian,kl_gaussian,loss_accumulate,grad_clip_scale}
  san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -n 1)
  for spec in "memcheck test_cuda_ops" "memcheck test_cuda_train" "racecheck test_cuda_ops ${GPU_CHECK_RACECHECK_FILTER-cuda_ops/every_op_against_the_cpu}"; do
    read -r tool prog filter <<< "$spec"
    name="$tool $prog${filter:+ (--filter $filter)}"
    [[ "$tool" == racecheck ]] && name+=" (ops $racecheck_ops)"
    i=$((i + 1))
    if [[ -z "$san" ]]; then
      check SKIP "$name" "UNAVAILABLE: compute-sanitizer is not installed here"
      continue
    fi
    out=$W/sanitize-$i.out
    local opts=(--tool "$tool" --target-processes all --error-exitcode 1)
    [[ "$tool" == memcheck ]] && opts+=(--report-api-errors no)   # the tests provoke API errors on purpose
    t=$(($(left) / (runs - i + 1)))
    echo "== $san ${opts[*]} $prog --verbose=1 -j1 ${filter:+--filter $filter} (timeout ${t}s)"
    local ops=""
    [[ "$tool" == racecheck ]] && ops=$racecheck_ops
    OP_TABLE_OPS=$ops limited "$t" "$san" "${opts[@]}" "$B/$prog" --verbose=1 -j1 ${filter:+--filter "$filter"} > "$out" 2>&1
    rc=$?
    cat "$out"
    local gpu_flag=()
    ((has_gpu)) && gpu_flag=(--gpu)
    verdicts=$(python3 scripts/criterion_verdicts.py "$out" --program "$prog" "${gpu_flag[@]}")
    errors=$(grep -m1 -o 'ERROR SUMMARY: [0-9]* error' "$out")
    if grep -qiE 'device not supported|unsupported device|not supported on this device' "$out"; then
      check SKIP "$name" "UNAVAILABLE: the tool refused the device: $(grep -m1 -iE 'not supported|unsupported' "$out" | sed 's/^=* *//')"
    elif ((rc == 124 || rc == 137)); then
      check FAIL "$name" "timed out after ${t}s"
    elif grep -q '^FAIL' <<< "$verdicts"; then
      check FAIL "$name" "$(grep -c '^FAIL' <<< "$verdicts") cases failed under the tool, e.g. $(grep -m1 '^FAIL' <<< "$verdicts" | cut -d' ' -f2-)"
    elif [[ -n "$errors" && "$errors" != "ERROR SUMMARY: 0 error" ]]; then
      check FAIL "$name" "$errors(s) (log)"
    elif ! grep -q '^PASS' <<< "$verdicts" && grep -q 'no CUDA device' <<< "$verdicts"; then
      cuda_skip "$name" "every case skipped: no CUDA device"
    elif ! grep -q '^PASS' <<< "$verdicts"; then
      check FAIL "$name" "no test case ran under the tool (exit status $rc)"
    elif ((rc != 0)); then
      check FAIL "$name" "exit status $rc"
    else
      check PASS "$name" "${errors:-no ERROR SUMMARY line}s; $(grep -c '^PASS' <<< "$verdicts") cases passed"
    fi
  done
}

phase_train() {
  local dev out rc loss=() last
  for dev in cuda cpu; do
    out=$W/train-$dev
    rm -rf "$out"
    echo "== cuvae train --device $dev"
    limited $(($(left) / 2)) "$B/cuvae" train --device "$dev" --data data/mnist --epochs 10 --batch-size 128 \
      --lr 1e-3 --seed 1 --out "$out" --quiet > "$W/train-$dev.out" 2>&1
    rc=$?
    cat "$W/train-$dev.out"
    last=$(tail -n 1 "$out/metrics.csv" 2>/dev/null)
    if ((rc == 0)) && [[ "$(wc -l < "$out/metrics.csv")" -eq 11 ]]; then
      loss+=("$dev $(cut -d, -f5 <<< "$last")")
      check PASS "train $dev" "final test loss $(cut -d, -f5 <<< "$last") nats/image, last epoch $(cut -d, -f8 <<< "$last") s"
    elif grep -q 'no CUDA device' "$W/train-$dev.out"; then
      cuda_skip "train $dev" "$(grep -m1 'no CUDA device' "$W/train-$dev.out")"
    else
      check FAIL "train $dev" "exit status $rc: $(tail -n 1 "$W/train-$dev.out")"
    fi
  done
  note "final test loss after 10 epochs (nats/image): ${loss[*]:-none}"
  if ((${#loss[@]} == 2)); then
    note "$(awk -v a="${loss[0]#* }" -v b="${loss[1]#* }" 'BEGIN {printf "cuda vs cpu: %+.3f%%", (a - b) / b * 100}')"
  fi
}

phase_bench() {
  local data=$G/data/fashion-mnist res=$logdir/bench-results.txt out=$W/bench.out rc key file
  if ! compgen -G "$data/train-images-idx3-ubyte*" >/dev/null; then
    check FAIL "bench" "no Fashion-MNIST in $data (scripts/gpu_prepare.sh puts it there)"
    return
  fi
  # 3 interleaved rounds; CPU threads 1 and all cores (not every count between: 16 of them here);
  # the K = 5000 evaluation at 50,000 rows per launch (10 images' samples, about 2 GB of device
  # buffers) instead of eval's default 4,096, which would make 20,000 launches of 4,096 rows
  limited "$(left)" scripts/bench.sh --cuvae "$B/cuvae" --data "$data" --rounds 3 --threads "1,$(nproc)" \
    --eval-batch-size 50000 --out "$res" --force > "$out" 2>&1
  rc=$?
  cat "$out"
  ((rc == 124 || rc == 137)) && check FAIL "bench" "timed out"
  file=$res
  [[ -f "$file" ]] || file=$res.part # what an interrupted run had written
  for key in cuvae/cpu gemms/cpu cuvae/cuda pytorch/cuda pytorch/cpu; do
    if grep -q "^bench impl=${key%/*} backend=${key#*/} " "$file" 2>/dev/null; then
      check PASS "bench $key" "$(grep -c "^bench impl=${key%/*} backend=${key#*/} " "$file") runs"
    elif [[ "$key" == */cpu && "$key" != pytorch/cpu ]]; then
      check FAIL "bench $key" "no result line (exit status $rc)"
    elif [[ "$key" == pytorch/cpu ]]; then
      check SKIP "bench $key" "no PyTorch CPU result (is PyTorch importable?)"
    else
      cuda_skip "bench $key" "no result line"
    fi
  done
  # the verdict tables, as bench.sh printed them
  while IFS= read -r line; do note "$line"; done < <(grep -E '^(\| [0-9]|CPU verdict|GPU)' "$out")
}

# ---- run --------------------------------------------------------------------------------
: > "$logdir/setup.log"
status=0
i=0
for ph in "${phases[@]}"; do
  n_pass=0 n_fail=0 n_skip=0 body=""
  i=$((i + 1))
  reserve=$((60 * (${#phases[@]} - i)))
  echo "gpu_check: phase $ph ($(left) s of the budget for it)"
  if run_setup; then
    [[ "$setup_verdict" == FAIL* ]] && check FAIL "setup" "${setup_verdict#FAIL: }" > /dev/null
    "phase_$ph" > "$logdir/$ph.log" 2>&1
  else
    check FAIL "setup" "${setup_verdict#FAIL: }" > "$logdir/$ph.log"
  fi
  {
    header "$ph"
    printf '%s' "$body"
    echo "gpu_check: $n_pass passed, $n_fail failed, $n_skip skipped"
  } > "$outdir/$ph.summary.txt"
  ((n_fail)) && status=1
done
if [[ "$logdir" != "$outdir" ]]; then
  tar -czf "$outdir/logs.tar.gz" -C "$logdir" . || status=1
fi
for ph in "${phases[@]}"; do
  echo
  cat "$outdir/$ph.summary.txt"
done
echo
echo "gpu_check: wrote $(ls "$outdir" | tr '\n' ' ')in $((SECONDS - start)) s"
exit "$status"
