#!/usr/bin/env bash
# gpu_check.sh: what a machine with an NVIDIA GPU must show, as ONE device-tool call of at
# most about 300 s on a fresh, bare machine (the "window"), plus an optional second call
# ("extra": the deferred tests, compute-sanitizer and the benchmark). Needs the working tree
# plus .gpu/ from scripts/gpu_prepare.sh (carried); installs nothing. Not for CI (no GPU there).
#
#   scripts/gpu_check.sh [--emulated] window OUTDIR    the one call (OUTDIR: the tool's $OUT)
#   scripts/gpu_check.sh [--emulated] extra OUTDIR     the optional second call
#   scripts/gpu_check.sh [--emulated] PHASE[,PHASE...] OUTDIR    phases of either, by name
#
# Every call first records the machine (nvidia-smi, nvcc --version, the host: env.txt), then
# does the setup, which a warm machine skips where done: unpack .gpu/debs into build-gpu/prefix
# (never over /), check those libraries load, configure against the prefix with
# -DCMAKE_CUDA_ARCHITECTURES=90-real (the H100 and H200 are sm_90; nothing else is compiled),
# build only cuvae and the test_cuda_* programs, check the build used the prefix.
# window phases (GPU_CHECK_BUDGET_S, default 285 s, for the whole call):
#   test      ctest -R ^test_cuda_ (test_cuda_compare, every model of tu_compare_models on
#             synthetic data, included): up to 8 programs at once, each with OMP_NUM_THREADS =
#             cores / programs at once (at least 1); the cases of window_defers (below) are
#             left to `rest`. No test that needs PyTorch is among them.
#   compare   `cuvae compare --candidate cuda`: the default model for 20 steps on synthetic data
#             and on MNIST at batch 128, FP32 and --tf32; every image model of
#             tests/testutil.c's tu_compare_models for 10 steps on MNIST (the toy's data is
#             drawn: test compares it); up to 8 runs at once, OpenMP threads shared as in test
#   train     `cuvae train` of the default model, 2 epochs on the first 2,000 MNIST training
#             images (1,000 test images), --device cuda and --device cpu at once: both exit 0,
#             and the final test losses agree within 1% (test_cuda_train's bound)
# extra phases (GPU_CHECK_BUDGET_S, default 400 s):
#   rest      the window's deferred cases (window_defers), minutes on the emulated device
#   sanitize  compute-sanitizer memcheck over test_cuda_ops's cuda_ops cases and the training
#             steps of test_cuda_train, racecheck over the op table's CUDA-against-CPU test
#             for the kernels with shared memory (GPU_CHECK_RACECHECK_OPS, _FILTER override);
#             UNAVAILABLE (skipped) where the tool is missing or refuses the device
#   bench     scripts/bench.sh on Fashion-MNIST, 1 round at all cores (GPU_CHECK_BENCH_ARGS
#             replaces those arguments); raw output and tables in bench-results.txt
#   sweep     `cuvae sweep` of 8 runs (the default model, 2 epochs on the first 2,000 MNIST
#             images, --device cuda) at --per-gpu 1, 2, 4 and 8: the seconds of each, the
#             measure that sweep's --per-gpu default (4, unmeasured until then) waits for
#
# --emulated: the rehearsal here (scripts/gpu_rehearse.sh). The emulated device of
# tests/cuda_emu stands in for the GPU: the build is -DCUVAE_CUDA_EMU=ON (the same kernels
# compiled as host C++; nvcc is not used), nvidia-smi is not run (this machine has none),
# compute-sanitizer is skipped, and env.txt and the summary say so. The rest runs as on the
# GPU machine.
#
# OUTDIR gets summary.txt (the machine, the setup's checks, one PASS/FAIL/SKIP line per check,
# and last the one-line summary with each phase's seconds: `gpu_check window: N passed, M
# failed, K skipped in S s of 285 (env A, setup B, test C, compare D, train E)`), env.txt and
# PHASE.log per phase (setup included); where that would make more than the 8 files the tool
# brings back, the logs come packed in logs.tar.gz. Where nvidia-smi sees a GPU, or with
# --emulated, a CUDA check that skipped counts as failed. Each step runs under a timeout: the
# budget (counted from this script's start) less the shares of the phases still to come
# (share, below), so that the summary is written before the call's limit; a phase cut off
# fails, saying so.
# Exit status: 0 when no check failed, 1 otherwise, 2 on a usage error.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$PWD
start=$SECONDS

# The window's CUDA test cases that the window leaves to `rest`: "PROGRAM SUITE/CASE". They are
# the three that take minutes on the emulated device (graph replay of every op, every op run
# twice, two MNIST epochs on each backend); the window's train phase checks what the last does.
window_defers=(
  "test_cuda_ops cuda_graph/every_op_replays_like_eager"
  "test_cuda_ops cuda_determinism/every_op_twice_is_bit_identical"
  "test_cuda_train cuda_train/mnist_test_loss_matches_cpu_within_one_percent"
)
# ctest names that are not CUDA checks of the GPU build: the emulator's own tests and the
# emulated small device's rerun exist in the emulated build alone.
emu_only_tests='^(test_cuda_emu|test_cuda_ops_small_device)$'

window_phases=(test compare train)
extra_phases=(rest sanitize bench sweep)
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
emulated=0
[[ "${1:-}" == --emulated ]] && { emulated=1; shift; }
(($# == 2)) || { usage >&2; exit 2; }
case "$1" in
  window) call=window phases=("${window_phases[@]}") default_budget=285 ;;
  extra) call=extra phases=("${extra_phases[@]}") default_budget=400 ;;
  *) call=$1 default_budget=285
     IFS=',' read -ra phases <<< "$1"
     for ph in "${phases[@]}"; do
       [[ " ${window_phases[*]} ${extra_phases[*]} " == *" $ph "* ]] ||
         { echo "gpu_check: unknown phase '$ph' (window, extra, or some of: ${window_phases[*]} ${extra_phases[*]})" >&2; exit 2; }
     done ;;
esac
mkdir -p "$2" || { echo "gpu_check: cannot create $2" >&2; exit 2; }
outdir=$(cd "$2" && pwd)
budget=${GPU_CHECK_BUDGET_S:-$default_budget}
# The seconds each phase is sure of: the steps before it may use the budget only down to the
# sum of the shares of the phases still to come.
declare -A share=([test]=45 [compare]=25 [train]=20 [rest]=30 [sanitize]=60 [bench]=150 [sweep]=40)
shares_after() { local k sum=0; for ((k = $1; k < ${#phases[@]}; k++)); do sum=$((sum + share[${phases[k]}])); done; echo "$sum"; }

source scripts/gpu_common.sh
G=$root/.gpu W=$root/build-gpu
P=$W/prefix B=$W/build
mkdir -p "$W"
rm -f "$outdir"/*.log "$outdir"/summary.txt "$outdir"/env.txt "$outdir"/logs.tar.gz "$outdir"/bench-results.txt
ncpu=$(nproc)

reserve=0   # seconds kept for the phases after the current one
left() { echo $((budget - reserve - (SECONDS - start))); }   # seconds the current step may take
# limited SECONDS CMD...: CMD under a timeout of SECONDS (at least 10); 124/137 when cut off.
limited() { local t=$1; shift; ((t < 10)) && t=10; timeout -k 5 "$t" "$@"; }
# pool J: at most J of the background jobs started since run at once (call before each start).
pool() { while (($(jobs -rp | wc -l) >= $1)); do wait -n; done; }

# ---- checks and the summary -------------------------------------------------------------
n_pass=0 n_fail=0 n_skip=0 body="" times=""
check() { # check PASS|FAIL|SKIP NAME [DETAIL]
  case "$1" in PASS) n_pass=$((n_pass + 1)) ;; FAIL) n_fail=$((n_fail + 1)) ;; SKIP) n_skip=$((n_skip + 1)) ;; esac
  body+="$1 $2${3:+: $3}"$'\n'
  echo "gpu_check: $1 $2${3:+: $3}"
}
# cuda_skip NAME WHY: a CUDA check that could not run: failed where there is a GPU (or the emulator).
cuda_skip() {
  if ((has_gpu)); then check FAIL "$1" "skipped on a machine with a GPU: $2"; else check SKIP "$1" "$2"; fi
}
note() { body+="  $*"$'\n'; echo "  $*"; }
timed() { times+="${times:+, }$1 $2"; }   # timed NAME SECONDS: one entry of the closing line

# ---- env: the machine, first ------------------------------------------------------------
has_gpu=0 gpu_line="" nvcc_line="" compare_device=""
phase_env() {
  local nvcc
  echo "# gpu_check $call: the machine ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
  if ((emulated)); then
    has_gpu=1
    gpu_line="emulated device (tests/cuda_emu), rehearsal: nvidia-smi not run, this machine has no GPU"
    echo "== nvidia-smi: NOT RUN (--emulated: the rehearsal; the emulated device stands in for the GPU)"
  else
    echo "== nvidia-smi"
    nvidia-smi 2>&1
    if nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
      has_gpu=1
      gpu_line=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n 1)
    else
      gpu_line="none: nvidia-smi sees no GPU (the CUDA checks count as skipped)"
    fi
  fi
  nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  echo "== $nvcc --version"
  "$nvcc" --version 2>&1
  nvcc_line=$("$nvcc" --version 2>/dev/null | grep -m1 -o 'release .*' || echo "none")
  ((emulated)) && nvcc_line="not used (--emulated: kernels compiled as host C++, -DCUVAE_CUDA_EMU=ON); here: $nvcc_line"
  echo "== host"
  echo "$(uname -n) $(uname -m), $ncpu cores, $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB"}')"
  ldd --version 2>&1 | head -n 1
  cmake --version 2>&1 | head -n 1
  echo "ninja $(ninja --version 2>&1)"
  cc --version 2>&1 | head -n 1
  python3 --version 2>&1
}

header() {
  local commit
  commit=$(git rev-parse HEAD 2>/dev/null) && commit+=" ($(git status --porcelain 2>/dev/null | grep -vc '^?? ') tracked files changed)" ||
    commit="no .git here; gpu_prepare ran at $(awk '$1 == "commit" {print $2}' "$G/manifest.txt" 2>/dev/null || echo "an unknown commit")"
  echo "# gpu_check $call$( ((emulated)) && echo ' --emulated (rehearsal)')"
  echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit:  $commit"
  echo "gpu:     $gpu_line"
  echo "nvcc:    $nvcc_line"
  echo "host:    $(uname -n) $(uname -m), $ncpu cores, $(ldd --version 2>&1 | head -n 1)"
  if [[ -x "$B/cuvae" ]]; then
    echo "cuvae:   $("$B/cuvae" --version 2>&1 | grep -E '^cuvae|^GPU architectures|^CUDA runtime' | paste -sd, | sed 's/,/, /g')"
    [[ -n "$compare_device" ]] && echo "device:  $compare_device"
  fi
  echo "setup:   ${setup_verdict:-not run}"
  [[ -n "${setup_checks:-}" ]] && sed 's/^/  /' <<< "$setup_checks"
  echo
}

# ---- setup: prefix, data, build -----------------------------------------------------------
setup_ok=0 setup_verdict="" setup_checks="" setup_times=""
cuda_mode_args() {
  if ((emulated)); then echo "-DCUVAE_CUDA_EMU=ON"; else echo "-DCUVAE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90-real"; fi
}
# The programs the check runs: cuvae and the test_cuda_* programs ctest knows (each ctest name
# is its program's target; the emulator's own tests left out), read from ctest after the configure.
check_targets() {
  echo cuvae
  (cd "$B" && ctest -N -R '^test_cuda_' -E "$emu_only_tests") | sed -nE 's/^ *Test +#[0-9]+: (test_cuda_[a-z0-9_]+)$/\1/p'
}
setup() {   # returns 1 when nothing can run; a build that strays from the prefix still runs
  local t0=$SECONDS t stamp mode_args targets configure_out
  echo "== setup $(date -u +%H:%M:%S)"
  [[ -f "$G/manifest.txt" ]] || { setup_verdict="FAIL: .gpu/manifest.txt missing: run scripts/gpu_prepare.sh, carry .gpu"; return 1; }
  mode_args=$(cuda_mode_args)
  stamp=$( (cat "$G/manifest.txt" "$root/scripts/gpu_common.sh"; echo "$mode_args") | sha256sum | cut -c1-16)
  t=$SECONDS
  if [[ "$(cat "$P/.cuvae/stamp" 2>/dev/null)" != "$stamp" ]]; then
    echo "unpacking $(ls "$G"/debs/*.deb | wc -l) .deb files into $P"
    gpu_unpack "$G" "$P" || { setup_verdict="FAIL: unpacking .gpu/debs failed (setup.log)"; return 1; }
    gpu_check_loadable "$P" "$G/manifest.txt" ||
      { setup_verdict="FAIL: carried libraries do not load here (setup.log)"; return 1; }
    echo "$stamp" > "$P/.cuvae/stamp"
    rm -rf "$B"
  else
    echo "prefix $P already unpacked"
  fi
  setup_times+="unpack $((SECONDS - t))"
  # MNIST for the tests and the runs: data/mnist, else the carried copy.
  if ! compgen -G "data/mnist/train-images-idx3-ubyte*" >/dev/null; then
    [[ -L data || ! -e data ]] && { rm -f data; mkdir -p data; }
    [[ -L data/mnist || ! -e data/mnist ]] && ln -sfn ../.gpu/data/mnist data/mnist
    compgen -G "data/mnist/train-images-idx3-ubyte*" >/dev/null ||
      { setup_verdict="FAIL: no MNIST in data/mnist nor .gpu/data/mnist"; return 1; }
    echo "data/mnist -> .gpu/data/mnist"
  fi
  t=$SECONDS
  if [[ ! -f "$B/CMakeCache.txt" ]]; then
    # shellcheck disable=SC2086
    configure_out=$(gpu_configure "$root" "$B" "$P" $mode_args 2>&1)
    local rc=$?
    echo "$configure_out"
    ((rc == 0)) || { rm -f "$B/CMakeCache.txt"; setup_verdict="FAIL: cmake configure failed (setup.log)"; return 1; }
    local want=toolkit
    ((emulated)) && want=emulated
    grep -q "cuvae: CUDA backend: $want" <<< "$configure_out" ||
      { rm -f "$B/CMakeCache.txt"; setup_verdict="FAIL: the configure did not choose the CUDA backend '$want': $(grep -m1 'cuvae: ' <<< "$configure_out")"; return 1; }
  fi
  setup_times+=", configure $((SECONDS - t))"
  t=$SECONDS
  mapfile -t targets < <(check_targets)
  ((${#targets[@]} > 1)) || { setup_verdict="FAIL: ctest lists no test_cuda_* program (setup.log)"; return 1; }
  echo "== cmake --build $B --target ${targets[*]}"
  limited "$(left)" cmake --build "$B" -j"$ncpu" --target "${targets[@]}" ||
    { setup_verdict="FAIL: build failed or timed out (setup.log)"; return 1; }
  setup_times+=", build $((SECONDS - t)) (${#targets[@]} programs)"
  echo "== checks that the build used the prefix"
  setup_checks=$(gpu_verify_build "$B" "$P")
  local bad=$?
  echo "$setup_checks"
  echo "cuvae's $(readelf -d "$B/cuvae" 2>/dev/null | sed -nE 's/.*\((RPATH|RUNPATH)\) +Library r(un)?path: /\1 /p')"
  if ((bad)); then
    # Run anyway, so that the GPU time is not lost, with the prefix on the library path;
    # the summary then counts the setup as one failed check.
    export LD_LIBRARY_PATH
    LD_LIBRARY_PATH=$(gpu_libdirs "$P" | paste -sd:)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    setup_verdict="FAIL: $bad checks show the build did not use the prefix alone; running with LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    return 0
  fi
  setup_verdict="PASS: prefix, build and $(grep -c '^PASS' <<< "$setup_checks") prefix checks in $((SECONDS - t0)) s ($setup_times s)"
}

# ---- phases -------------------------------------------------------------------------------
# criterion_checks FILE [--program NAME]: one check per Criterion case of FILE's output.
criterion_checks() {
  local line
  while read -r line; do
    check "${line%% *}" "$(cut -d' ' -f2- <<< "$line" | sed 's/: .*//')" "$(grep -o ': .*' <<< "$line" | cut -c3-)"
  done < <(python3 scripts/criterion_verdicts.py "$@" "${gpu_flag[@]}")
}
defer_pattern() { # defer_pattern '!' or '@': a Criterion pattern leaving out / taking the deferred cases
  local c list=""
  for c in "${window_defers[@]}"; do list+="${list:+|}${c#* }"; done
  echo "$1($list)"
}
# run_ctest NAME REGEX PATTERN: the ctest tests of REGEX, in parallel, under the Criterion pattern.
run_ctest() {
  local name=$1 regex=$2 pattern=$3 out=$W/$1.ctest.out n j rc
  n=$( (cd "$B" && ctest -N -R "$regex" -E "$emu_only_tests") | awk '/^Total Tests:/ {print $3}')
  j=$((n < 8 ? n : 8))
  ((j < 1)) && j=1
  echo "== ctest -R '$regex' -E '$emu_only_tests' -j$j, OMP_NUM_THREADS=$((ncpu / j > 0 ? ncpu / j : 1)), CRITERION_TEST_PATTERN='$pattern'"
  (cd "$B" && OMP_NUM_THREADS=$((ncpu / j > 0 ? ncpu / j : 1)) CRITERION_TEST_PATTERN=$pattern \
    limited "$(left)" ctest -V --no-tests=error -j"$j" -R "$regex" -E "$emu_only_tests") > "$out" 2>&1
  rc=$?
  cat "$out"
  criterion_checks "$out"
  ((rc == 124 || rc == 137)) && check FAIL "ctest $name" "timed out (the budget)"
  grep -q 'No tests were found' "$out" && check FAIL "ctest $name" "no tests were found"
  note "ctest exit status $rc; $(grep -m1 '% tests passed' "$out"); the slowest: $(grep -E 'Test +#' "$out" |
    sed -E 's/.*Test +#[0-9]+: ([a-z_]+) .* ([0-9.]+) sec$/\1 \2 s/' | sort -k2 -rn | head -n 3 | paste -sd, | sed 's/,/, /g')"
}

phase_test() {
  note "left to the phase rest: ${window_defers[*]#* }"
  run_ctest test '^test_cuda_' "$(defer_pattern '!')"
}

phase_rest() {
  local progs
  progs=$(printf '%s\n' "${window_defers[@]%% *}" | sort -u | paste -sd'|')
  run_ctest rest "^($progs)\$" "$(defer_pattern '@')"
}

phase_compare() {
  local runs=() name flags i n j t rc out mnist=data/mnist models
  rm -f "$W"/compare-*.out "$W"/compare-*.rc
  runs+=("default model, synthetic data|--steps 20")
  runs+=("default model, MNIST, batch 128|--steps 20 --data $mnist --batch-size 128")
  runs+=("default model, MNIST, batch 128, TF32|--steps 20 --data $mnist --batch-size 128 --tf32")
  if models=$(gpu_compare_models tests/testutil.c); then
    while IFS=$'\t' read -r name flags; do
      if [[ " $flags " == *" --data toy "* ]]; then
        note "$name: drawn data of its own, no MNIST; test_cuda_compare compares it (phase test)"
        continue
      fi
      runs+=("$name, MNIST|--steps 10 --data $mnist $flags")
    done <<< "$models"
  else
    check FAIL "compare every model" "tests/testutil.c's tu_compare_models could not be read"
  fi
  n=${#runs[@]}
  j=$((n < 8 ? n : 8))
  t=$(left)
  echo "== ${n} runs of cuvae compare --candidate cuda, $j at once, OMP_NUM_THREADS=$((ncpu / j > 0 ? ncpu / j : 1)), each under ${t} s"
  for ((i = 0; i < n; i++)); do
    pool "$j"
    # shellcheck disable=SC2086
    (OMP_NUM_THREADS=$((ncpu / j > 0 ? ncpu / j : 1)) limited "$t" "$B/cuvae" compare --candidate cuda ${runs[i]#*|} \
      > "$W/compare-$i.out" 2>&1; echo $? > "$W/compare-$i.rc") &
  done
  wait
  compare_device=$(grep -m1 '^compare: ' "$W/compare-0.out" 2>/dev/null)
  for ((i = 0; i < n; i++)); do
    name=${runs[i]%%|*} flags=${runs[i]#*|} out=$W/compare-$i.out rc=$(cat "$W/compare-$i.rc" 2>/dev/null || echo 1)
    echo "== cuvae compare --candidate cuda $flags   ($name; exit status $rc)"
    cat "$out"
    if ((rc == 0)) && grep -q '^PASS: 0 tensors beyond tolerance' "$out"; then
      check PASS "compare $name" "$(sed -n 2p "$out"); $(tail -n 1 "$out")"
    elif grep -q 'no CUDA device' "$out"; then
      cuda_skip "compare $name" "$(grep -m1 'no CUDA device' "$out")"
    elif ((rc == 124 || rc == 137)); then
      check FAIL "compare $name" "timed out after $t s (the budget)"
    else
      check FAIL "compare $name" "exit status $rc: $(tail -n 1 "$out")"
    fi
  done
}

phase_train() {
  local dev data=$W/mnist-head rc last rows loss=() out j=2 t
  rm -f "$W"/train-*.out "$W"/train-*.rc
  gpu_mnist_head data/mnist "$data" 2000 1000 || { check FAIL "train" "could not take 2,000 MNIST images"; return; }
  t=$(left)
  echo "== cuvae train --device cuda and --device cpu at once, OMP_NUM_THREADS=$((ncpu / j > 0 ? ncpu / j : 1)), each under $t s"
  for dev in cuda cpu; do
    rm -rf "$W/train-$dev"
    (OMP_NUM_THREADS=$((ncpu / j > 0 ? ncpu / j : 1)) limited "$t" "$B/cuvae" train --device "$dev" --data "$data" --epochs 2 \
      --batch-size 128 --lr 1e-3 --seed 1 --out "$W/train-$dev" --quiet > "$W/train-$dev.out" 2>&1
     echo $? > "$W/train-$dev.rc") &
  done
  wait
  for dev in cuda cpu; do
    out=$W/train-$dev.out rc=$(cat "$W/train-$dev.rc" 2>/dev/null || echo 1)
    echo "== cuvae train --device $dev --data $data --epochs 2 --batch-size 128 --lr 1e-3 --seed 1 (exit status $rc)"
    cat "$out"
    last=$(tail -n 1 "$W/train-$dev/metrics.csv" 2>/dev/null)
    rows=$(($(wc -l < "$W/train-$dev/metrics.csv" 2>/dev/null || echo 1) - 1))
    if ((rc == 0 && rows == 2)); then
      loss+=("$(cut -d, -f5 <<< "$last")")
      check PASS "train $dev" "final test loss $(cut -d, -f5 <<< "$last") nats/image; epoch 2 took $(cut -d, -f8 <<< "$last") s ($(cut -d, -f9 <<< "$last") images/s)"
    elif grep -q 'no CUDA device' "$out"; then
      cuda_skip "train $dev" "$(grep -m1 'no CUDA device' "$out")"
    elif ((rc == 124 || rc == 137)); then
      check FAIL "train $dev" "timed out after $t s (the budget)"
    else
      check FAIL "train $dev" "exit status $rc, $rows epochs: $(tail -n 1 "$out")"
    fi
  done
  if ((${#loss[@]} == 2)); then
    local diff
    diff=$(awk -v a="${loss[0]}" -v b="${loss[1]}" 'BEGIN {d = (a - b) / b * 100; printf "%+.4f", d}')
    # test_cuda_train's bound for two MNIST epochs (mnist_test_loss_matches_cpu_within_one_percent)
    if awk -v d="$diff" 'BEGIN {exit !(d <= 1 && d >= -1)}'; then
      check PASS "train cuda against cpu" "final test loss ${loss[0]} against ${loss[1]}: ${diff}% (bound 1%)"
    else
      check FAIL "train cuda against cpu" "final test loss ${loss[0]} against ${loss[1]}: ${diff}% (bound 1%)"
    fi
  fi
}

phase_sanitize() {
  local san i=0 tool prog filter name out rc t verdicts errors specs
  local racecheck_ops=${GPU_CHECK_RACECHECK_OPS-bias_act,lik_bernoulli,lik_gaussian,kl_gaussian,loss_accumulate,grad_clip_scale}
  san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -n 1)
  # memcheck: every op against the CPU, evaluation and the generator (cuda_ops), and the training
  # step of each model (the short cases of cuda_train); racecheck: the op table's kernels that
  # use shared memory. Each run gets an equal part of what the budget leaves before bench.
  specs=("memcheck test_cuda_ops cuda_ops/*"
         "memcheck test_cuda_train cuda_train/@(ten_steps_*|joint_model_*|batch_of_one|clipped_*|dynamic_*)"
         "racecheck test_cuda_ops ${GPU_CHECK_RACECHECK_FILTER-cuda_ops/every_op_against_the_cpu}")
  for spec in "${specs[@]}"; do
    read -r tool prog filter <<< "$spec"
    name="$tool $prog${filter:+ (--filter $filter)}"
    [[ "$tool" == racecheck ]] && name+=" (ops $racecheck_ops)"
    i=$((i + 1))
    if ((emulated)); then
      check SKIP "$name" "UNAVAILABLE: --emulated (compute-sanitizer needs a GPU)"
      continue
    fi
    if [[ -z "$san" ]]; then
      check SKIP "$name" "UNAVAILABLE: compute-sanitizer is not installed here"
      continue
    fi
    out=$W/sanitize-$i.out
    local opts=(--tool "$tool" --target-processes all --error-exitcode 1)
    [[ "$tool" == memcheck ]] && opts+=(--report-api-errors no)   # the tests provoke API errors on purpose
    t=$(($(left) / (${#specs[@]} - i + 1)))
    echo "== $san ${opts[*]} $prog --verbose=1 -j1 ${filter:+--filter $filter} (timeout ${t}s)"
    local ops=""
    [[ "$tool" == racecheck ]] && ops=$racecheck_ops
    OMP_NUM_THREADS=$ncpu OP_TABLE_OPS=$ops limited "$t" "$san" "${opts[@]}" "$B/$prog" --verbose=1 -j1 ${filter:+--filter "$filter"} > "$out" 2>&1
    rc=$?
    cat "$out"
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

phase_bench() {
  local data=$G/data/fashion-mnist res=$outdir/bench-results.txt out=$W/bench.out rc key file args
  if ! compgen -G "$data/train-images-idx3-ubyte*" >/dev/null; then
    check FAIL "bench" "no Fashion-MNIST in $data (scripts/gpu_prepare.sh puts it there)"
    return
  fi
  # One round at all cores (the GPU machine's CPU is not what this measures); the K = 5000
  # evaluation at 50,000 rows per launch (10 images' samples, about 2 GB of device buffers)
  read -ra args <<< "${GPU_CHECK_BENCH_ARGS:---rounds 1 --threads $ncpu --eval-batch-size 50000}"
  echo "== scripts/bench.sh --cuvae $B/cuvae --data $data ${args[*]} --out $res --force (timeout $(left) s)"
  limited "$(left)" scripts/bench.sh --cuvae "$B/cuvae" --data "$data" "${args[@]}" --out "$res" --force > "$out" 2>&1
  rc=$?
  cat "$out"
  ((rc == 124 || rc == 137)) && check FAIL "bench" "timed out (the budget)"
  file=$res
  [[ -f "$file" ]] || file=$res.part # what an interrupted run had written
  [[ -f "$res.part" && ! -f "$res" ]] && mv "$res.part" "$res" && file=$res
  for key in cuvae/cpu gemms/cpu cuvae/cuda pytorch/cuda pytorch/cpu; do
    if grep -q "^bench impl=${key%/*} backend=${key#*/} " "$file" 2>/dev/null; then
      check PASS "bench $key" "$(grep -c "^bench impl=${key%/*} backend=${key#*/} " "$file") runs"
    elif [[ "$key" == */cpu && "$key" != pytorch/cpu ]]; then
      check FAIL "bench $key" "no result line (exit status $rc)"
    elif [[ "$key" == pytorch/cpu ]]; then
      check SKIP "bench $key" "no PyTorch CPU result (is PyTorch importable?)"
    elif ((emulated)); then
      check SKIP "bench $key" "--emulated: bench.sh times a real GPU only"
    else
      cuda_skip "bench $key" "no result line"
    fi
  done
  # the verdict tables, as bench.sh printed them
  while IFS= read -r line; do note "$line"; done < <(grep -E '^(\| [0-9]|CPU verdict|GPU)' "$out")
}

phase_sweep() {
  local data=$W/mnist-head k t0 secs rc
  if ((emulated)); then
    check SKIP "sweep" "--emulated: the runs per GPU are timed on a real GPU only"
    return
  fi
  gpu_mnist_head data/mnist "$data" 2000 1000 || { check FAIL "sweep" "could not take 2,000 MNIST images"; return; }
  for k in 1 2 4 8; do
    rm -rf "$W/sweep-$k"
    t0=$(date +%s.%N)
    echo "== cuvae sweep --per-gpu $k: 8 runs, --seed 1:8, 2 epochs, --device cuda (timeout $(left) s)"
    limited "$(left)" "$B/cuvae" sweep --out "$W/sweep-$k" --per-gpu "$k" --quiet --data "$data" --epochs 2 \
      --seed 1:8 --device cuda > "$W/sweep-$k.out" 2>&1
    rc=$?
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    cat "$W/sweep-$k.out"
    if ((rc == 0)); then
      check PASS "sweep --per-gpu $k" "8 runs in $secs s"
    elif grep -q 'no CUDA device' "$W"/sweep-$k/logs/*.log 2>/dev/null; then
      cuda_skip "sweep --per-gpu $k" "$(grep -h -m1 'no CUDA device' "$W"/sweep-$k/logs/*.log | head -1)"
      return
    else
      check FAIL "sweep --per-gpu $k" "exit status $rc after $secs s: $(tail -n 1 "$W/sweep-$k.out")"
    fi
  done
}

# ---- run ----------------------------------------------------------------------------------
status=0
t=$SECONDS
phase_env > "$outdir/env.txt" 2>&1
timed env $((SECONDS - t))
gpu_flag=()   # criterion_verdicts.py --gpu: a CUDA case that skipped fails
((has_gpu)) && gpu_flag=(--gpu)
echo "gpu_check: $call: gpu: $gpu_line; nvcc: $nvcc_line"

t=$SECONDS
reserve=$(shares_after 0)
setup > "$outdir/setup.log" 2>&1 && setup_ok=1
echo "setup: $setup_verdict" >> "$outdir/setup.log"
echo "gpu_check: setup $setup_verdict"
timed setup $((SECONDS - t))
[[ "$setup_verdict" == FAIL* ]] && check FAIL "setup" "${setup_verdict#FAIL: }" > /dev/null

i=0
for ph in "${phases[@]}"; do
  i=$((i + 1))
  reserve=$(shares_after "$i")
  t=$SECONDS
  body+="## $ph"$'\n'
  if ((!setup_ok)); then
    check FAIL "$ph" "not run: the setup failed" > "$outdir/$ph.log"
  elif (($(left) < 10)); then
    check FAIL "$ph" "not run: $((SECONDS - start)) s of the $budget s budget spent" > "$outdir/$ph.log"
  else
    echo "gpu_check: phase $ph ($(left) s of the budget for it)"
    "phase_$ph" > "$outdir/$ph.log" 2>&1
  fi
  timed "$ph" $((SECONDS - t))
done
((n_fail)) && status=1
closing="gpu_check $call$( ((emulated)) && echo ' --emulated'): $n_pass passed, $n_fail failed, $n_skip skipped in $((SECONDS - start)) s of $budget ($times)"
{
  header
  printf '%s' "$body"
  echo
  echo "$closing"
} > "$outdir/summary.txt"
# The device tool brings back 8 files: pack the logs where there would be more.
if (($(find "$outdir" -maxdepth 1 -type f | wc -l) > 8)); then
  (cd "$outdir" && tar -czf logs.tar.gz -- *.log && rm -f -- *.log) || status=1
fi
echo
cat "$outdir/summary.txt"
echo
echo "gpu_check: wrote $(ls "$outdir" | paste -sd' ') in $outdir"
echo "$closing"
exit "$status"
