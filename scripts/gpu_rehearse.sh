#!/usr/bin/env bash
# gpu_rehearse.sh: the GPU check rehearsed HERE, as far as a machine without a GPU allows.
# It does what the device tool and the GPU machine would do:
#   1. scripts/gpu_prepare.sh fills .gpu/
#   2. what travels (tracked and untracked-not-ignored files, plus .gpu) is copied into a
#      scratch folder, as the device tool copies it; its size is printed
#   3. scripts/gpu_check.sh runs there as the README's three device calls say
#      (test,compare,train, then sanitize, then bench), with a fresh build-gpu/ for the first:
#      it unpacks the .debs into build-gpu/prefix, builds against it and runs the CPU
#      tests (the CUDA checks skip here, and count as skipped: nvidia-smi sees no GPU)
#   4. then `all`; the later calls must find the setup done
# and prints PASS/FAIL for what must hold there: the build read the headers of oneDNN,
# Criterion, libpng and zlib from the prefix (the compiler's dependency records) and its
# programs load those libraries from the prefix (ldd), although /usr has them all here;
# the Python unpacker (for a machine without dpkg) gives what dpkg -x gives; the output
# folder stays within what the device tool brings back; no check failed.
#   scripts/gpu_rehearse.sh [--keep]     --keep: leave the scratch folder for a look
# Exit status 0 when every PASS/FAIL line says PASS.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
keep=0
[[ "${1:-}" == --keep ]] && keep=1
fails=0
verdict() { # verdict PASS|FAIL TEXT
  echo "rehearse: $1 $2"
  [[ "$1" == PASS ]] || fails=$((fails + 1))
}

scripts/gpu_prepare.sh || { echo "rehearse: FAIL gpu_prepare.sh"; exit 1; }

scratch=$(mktemp -d /tmp/cuvae-rehearse.XXXXXX)
((keep)) || trap 'rm -rf "$scratch"' EXIT
tree=$scratch/tree
mkdir -p "$tree"
# The device tool's copy: tracked and untracked files git does not ignore, and the carried .gpu.
git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do [[ -e "$f" || -L "$f" ]] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -xf - -C "$tree"
cp -a .gpu "$tree/.gpu"
size=$(du -sb "$tree" | cut -f1)
if ((size <= 64 * 1024 * 1024)); then
  verdict PASS "what travels is $(awk -v b="$size" 'BEGIN {printf "%.1f MiB", b / 1048576}') (limit 64 MiB)"
else
  verdict FAIL "what travels is $(awk -v b="$size" 'BEGIN {printf "%.1f MiB", b / 1048576}'), over 64 MiB"
fi
[[ -e "$tree/data" ]] && verdict FAIL "data/ travelled with the tree (it is ignored, so the device gets none)"

# check_out DIR RC WHAT: the summaries say 0 failed, and DIR fits what the device tool
# brings back (at most 8 files, 16 MiB each, 2 folders deep, plain names).
check_out() {
  local dir=$1 rc=$2 what=$3 f last n odd big
  for f in "$dir"/*.summary.txt; do
    last=$(tail -n 1 "$f")
    if [[ "$last" =~ ^gpu_check:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]] && ((BASH_REMATCH[2] == 0)); then
      verdict PASS "$what: $(basename "$f"): $last"
    else
      verdict FAIL "$what: $(basename "$f"): $last"
    fi
  done
  ((rc == 0)) && verdict PASS "$what: exit status 0" || verdict FAIL "$what: exit status $rc"
  n=$(find "$dir" -type f | wc -l)
  odd=$(find "$dir" -mindepth 1 | sed "s#^$dir/##" | grep -vE '^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,2}$')
  big=$(find "$dir" -type f -size +16M)
  if ((n <= 8)) && [[ -z "$odd$big" ]]; then
    verdict PASS "$what: $n files come back ($(ls "$dir" | tr '\n' ' '))"
  else
    verdict FAIL "$what: $n files; odd names: ${odd:-none}; over 16 MiB: ${big:-none}"
  fi
}

# The README's three device calls, the first on a fresh build-gpu/, then `all`.
n=0
for phases in test,compare,train sanitize bench all; do
  n=$((n + 1))
  echo "rehearse: call $n: scripts/gpu_check.sh $phases \$OUT   (in $tree)"
  t0=$SECONDS
  "$tree/scripts/gpu_check.sh" "$phases" "$scratch/out$n" > "$scratch/call$n.txt" 2>&1
  rc=$?
  echo "rehearse: call $n took $((SECONDS - t0)) s"
  check_out "$scratch/out$n" "$rc" "call $n ($phases)"
  if ((n > 1)); then
    if [[ -f "$scratch/out$n/setup.log" ]]; then setup_log=$(cat "$scratch/out$n/setup.log")
    else setup_log=$(tar -xzOf "$scratch/out$n/logs.tar.gz" ./setup.log 2>/dev/null); fi
    if grep -q 'already unpacked' <<< "$setup_log"; then
      verdict PASS "call $n ($phases) found the setup done"
    else
      verdict FAIL "call $n ($phases) did not reuse the setup"
    fi
  fi
done

# What the build used: the same checks gpu_check.sh ran in its setup, shown here.
source scripts/gpu_common.sh
echo "rehearse: header dependencies and ldd of the programs built in $tree/build-gpu/build:"
while read -r status text; do verdict "$status" "$text"; done < <(gpu_verify_build "$tree/build-gpu/build" "$tree/build-gpu/prefix")
echo "rehearse: cuvae's $(readelf -d "$tree/build-gpu/build/cuvae" | sed -nE 's/.*\((RPATH|RUNPATH)\) +Library r(un)?path: /\1 /p')"
echo "rehearse: ldd $tree/build-gpu/build/test_image (excerpt):"
ldd "$tree/build-gpu/build/test_image" | grep -E 'dnnl|criterion|png|libz|OpenCL|git2' | sed 's/^/  /'

# The Python unpacker, for a GPU image without dpkg, must give what dpkg -x gives.
listing() { (cd "$1" && find . -printf '%p %y %l %s\n' | sort); }
gpu_extract_debs "$scratch/by-dpkg" .gpu/debs/*.deb
GPU_UNPACK_WITH_PYTHON=1 gpu_extract_debs "$scratch/by-python" .gpu/debs/*.deb
if diff <(listing "$scratch/by-dpkg") <(listing "$scratch/by-python") > "$scratch/unpack.diff"; then
  verdict PASS "the Python unpacker gives what dpkg -x gives ($(listing "$scratch/by-dpkg" | wc -l) entries)"
else
  verdict FAIL "the Python unpacker differs from dpkg -x: $(head -n 4 "$scratch/unpack.diff" | tr '\n' ' ')"
fi

((keep)) && echo "rehearse: scratch folder kept: $scratch"
echo "rehearse: $([[ $fails -eq 0 ]] && echo "every check PASSED" || echo "$fails checks FAILED")"
exit $((fails > 0))
