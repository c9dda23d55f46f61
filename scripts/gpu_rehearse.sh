#!/usr/bin/env bash
# gpu_rehearse.sh: the GPU check's one call rehearsed HERE, on a machine without a GPU, with
# the emulated device (tests/cuda_emu) standing in for the GPU. It does what the device tool
# and the GPU machine would do:
#   1. scripts/gpu_prepare.sh fills .gpu/ (timed; done here, not on the GPU machine)
#   2. what travels (tracked and untracked-not-ignored files, plus .gpu) is copied into a
#      scratch folder, as the device tool copies it; its size is checked against 64 MiB
#   3. in that copy, with a fresh build-gpu/ as a fresh machine has, the README's call:
#        scripts/gpu_check.sh --emulated window $OUT
#      which is the GPU machine's command but for what --emulated stubs, said here and in
#      its summary: nvidia-smi is not run (this machine has no GPU), nvcc is not used (the
#      kernels are compiled as host C++ against tests/cuda_emu, -DCUVAE_CUDA_EMU=ON), and the
#      CUDA backend runs on the emulated device
#   4. with --extra, then the optional second call, scripts/gpu_check.sh --emulated extra $OUT,
#      on the same copy (a warm machine: it must find the setup done); compute-sanitizer and
#      the benchmark's GPU rows are skipped there, saying so. Its budget here is
#      GPU_REHEARSE_EXTRA_BUDGET_S (default 900 s), not the GPU machine's 400: on 2 cores each
#      CPU contender of the benchmark takes about 50 s (60,000 images), so this rehearses
#      that the call works, not its time
# and prints PASS/FAIL for: the size; each call's exit status and summary (0 failed); the
# output folder within what the tool brings back (8 files, 16 MiB each, plain names, 2
# folders deep); the window call finishing within GPU_REHEARSE_LIMIT_S (default 300) s; the
# build's prefix checks (the window's setup ran them: headers and libraries from the prefix,
# though /usr has them all here); the Python unpacker (for a GPU image without dpkg) giving
# what dpkg -x gives. Then the seconds of every phase, as the summary's closing line gives them.
#
#   scripts/gpu_rehearse.sh [--extra] [--keep]     --keep: leave the scratch folder for a look
#
# Exit status 0 when every PASS/FAIL line says PASS. On this 2-core machine the emulated device
# is far slower than an H100, so a window that fits here fits there (docs/gpu-check.md).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
keep=0 extra=0
for a in "$@"; do
  case "$a" in
    --keep) keep=1 ;;
    --extra) extra=1 ;;
    *) echo "gpu_rehearse: unknown argument '$a' (--extra, --keep)" >&2; exit 2 ;;
  esac
done
limit=${GPU_REHEARSE_LIMIT_S:-300}
fails=0
verdict() { # verdict PASS|FAIL TEXT
  echo "rehearse: $1 $2"
  [[ "$1" == PASS ]] || fails=$((fails + 1))
}
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }

echo "rehearse: stubbed here: nvidia-smi (not run: no GPU on this machine); nvcc (not used: kernels/*.cu compiled as host C++ against tests/cuda_emu, -DCUVAE_CUDA_EMU=ON); the GPU (the emulated device, $(nproc) cores)"
t0=$SECONDS
scripts/gpu_prepare.sh || { echo "rehearse: FAIL gpu_prepare.sh"; exit 1; }
echo "rehearse: gpu_prepare.sh took $((SECONDS - t0)) s (here, before the call)"

scratch=$(mktemp -d /tmp/cuvae-rehearse.XXXXXX)
((keep)) || trap 'rm -rf "$scratch"' EXIT
tree=$scratch/tree
mkdir -p "$tree"
t0=$SECONDS
# The device tool's copy: tracked and untracked files git does not ignore, and the carried .gpu.
git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do [[ -e "$f" || -L "$f" ]] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -xf - -C "$tree"
cp -a .gpu "$tree/.gpu"
size=$(du -sb "$tree" | cut -f1)
if ((size <= 64 * 1024 * 1024)); then
  verdict PASS "what travels is $(mib "$size") (limit 64 MiB), copied in $((SECONDS - t0)) s"
else
  verdict FAIL "what travels is $(mib "$size"), over 64 MiB"
fi
[[ -e "$tree/data" ]] && verdict FAIL "data/ travelled with the tree (it is ignored, so the device gets none)"

# check_out DIR RC WHAT: the summary says 0 failed, and DIR fits what the device tool brings
# back (at most 8 files, 16 MiB each, 2 folders deep, plain names).
check_out() {
  local dir=$1 rc=$2 what=$3 last n odd big
  last=$(tail -n 1 "$dir/summary.txt" 2>/dev/null)
  if [[ "$last" =~ ^gpu_check\ [a-z,]+\ --emulated:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped ]] &&
    ((BASH_REMATCH[2] == 0 && BASH_REMATCH[1] > 0)); then
    verdict PASS "$what: summary.txt: $last"
  else
    verdict FAIL "$what: summary.txt: ${last:-missing}"
    grep -E '^FAIL' "$dir/summary.txt" 2>/dev/null | head -n 20 | sed 's/^/rehearse:   /'
  fi
  ((rc == 0)) && verdict PASS "$what: exit status 0" || verdict FAIL "$what: exit status $rc"
  n=$(find "$dir" -type f | wc -l)
  odd=$(find "$dir" -mindepth 1 | sed "s#^$dir/##" | grep -vE '^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,2}$')
  big=$(find "$dir" -type f -size +16M)
  if ((n <= 8)) && [[ -z "$odd$big" ]]; then
    verdict PASS "$what: $n files come back ($(ls "$dir" | paste -sd' '))"
  else
    verdict FAIL "$what: $n files; odd names: ${odd:-none}; over 16 MiB: ${big:-none}"
  fi
}

# phase_times DIR: the per-phase seconds of the closing line, and the setup's parts.
phase_times() {
  echo "rehearse: phases: $(tail -n 1 "$1/summary.txt" | sed -nE 's/.* in ([0-9]+ s of [0-9]+) \((.*)\)$/\2; total \1 s budget/p')"
  echo "rehearse: setup:  $(grep -m1 '^setup: ' "$1/summary.txt" | sed -E 's/^setup: +//')"
}

calls=(window)
((extra)) && calls+=(extra)
for call in "${calls[@]}"; do
  out=$scratch/out-$call
  echo "rehearse: call: scripts/gpu_check.sh --emulated $call \$OUT   (in $tree)"
  t0=$SECONDS
  if [[ "$call" == extra ]]; then
    echo "rehearse: (its budget here: GPU_CHECK_BUDGET_S=${GPU_REHEARSE_EXTRA_BUDGET_S:-900}, for the benchmark's CPU runs on $(nproc) cores)"
    GPU_CHECK_BUDGET_S=${GPU_REHEARSE_EXTRA_BUDGET_S:-900} "$tree/scripts/gpu_check.sh" --emulated "$call" "$out" > "$scratch/$call.txt" 2>&1
  else
    "$tree/scripts/gpu_check.sh" --emulated "$call" "$out" > "$scratch/$call.txt" 2>&1
  fi
  rc=$?
  took=$((SECONDS - t0))
  check_out "$out" "$rc" "$call"
  phase_times "$out"
  if [[ "$call" == window ]]; then
    if ((took <= limit)); then
      verdict PASS "the window call took $took s (limit $limit s)"
    else
      verdict FAIL "the window call took $took s, over $limit s"
    fi
    # The setup's checks that the build used the prefix alone (headers, libraries).
    while read -r status text; do
      [[ "$status" == PASS || "$status" == FAIL ]] && verdict "$status" "prefix: $text"
    done < <(sed -n 's/^  \(PASS\|FAIL\) /\1 /p' "$out/summary.txt")
  else
    echo "rehearse: the $call call took $took s"
    if grep -q 'already unpacked' "$out/setup.log" 2>/dev/null ||
      tar -xzOf "$out/logs.tar.gz" setup.log 2>/dev/null | grep -q 'already unpacked'; then
      verdict PASS "$call found the setup done (a warm machine)"
    else
      verdict FAIL "$call did not reuse the setup"
    fi
  fi
  ((keep)) && echo "rehearse: $call's output: $out and $scratch/$call.txt"
done

# The Python unpacker, for a GPU image without dpkg, must give what dpkg -x gives.
source scripts/gpu_common.sh
listing() { (cd "$1" && find . -printf '%p %y %l %s\n' | sort); }
gpu_extract_debs "$scratch/by-dpkg" .gpu/debs/*.deb
GPU_UNPACK_WITH_PYTHON=1 gpu_extract_debs "$scratch/by-python" .gpu/debs/*.deb
if diff <(listing "$scratch/by-dpkg") <(listing "$scratch/by-python") > "$scratch/unpack.diff"; then
  verdict PASS "the Python unpacker gives what dpkg -x gives ($(listing "$scratch/by-dpkg" | wc -l) entries)"
else
  verdict FAIL "the Python unpacker differs from dpkg -x: $(head -n 4 "$scratch/unpack.diff" | tr '\n' ' ')"
fi
rm -rf "$scratch/by-dpkg" "$scratch/by-python"

((keep)) && echo "rehearse: scratch folder kept: $scratch"
echo "rehearse: $([[ $fails -eq 0 ]] && echo "every check PASSED" || echo "$fails checks FAILED")"
exit $((fails > 0))
