#!/usr/bin/env bash
# gpu_rehearse.sh: the GPU check rehearsed HERE, as far as a machine without a GPU allows.
# It does what the device tool and the GPU machine would do:
#   1. scripts/gpu_prepare.sh fills .gpu/
#   2. what travels (tracked and untracked-not-ignored files, plus .gpu) is copied into a
#      scratch folder, as the device tool copies it; its size is printed
#   3. scripts/gpu_check.sh runs there, every phase, with a fresh build-gpu/: it unpacks the
#      .debs into build-gpu/prefix, builds against it and runs the CPU tests (the CUDA
#      checks skip here, and count as skipped, since nvidia-smi sees no GPU)
#   4. one phase runs again alone, which must find the setup done
# and prints PASS/FAIL for what must hold there: the build read the headers of OpenBLAS,
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
tree=$scratch/tree out=$scratch/out
mkdir -p "$tree" "$out"
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

echo "rehearse: scripts/gpu_check.sh all $out   (in $tree)"
t0=$SECONDS
"$tree/scripts/gpu_check.sh" all "$out"
rc=$?
echo "rehearse: gpu_check.sh all took $((SECONDS - t0)) s, exit status $rc"
for f in "$out"/*.summary.txt; do
  last=$(tail -n 1 "$f")
  if [[ "$last" =~ ^gpu_check:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]] && ((BASH_REMATCH[2] == 0)); then
    verdict PASS "$(basename "$f"): $last"
  else
    verdict FAIL "$(basename "$f"): $last"
  fi
done
((rc == 0)) && verdict PASS "gpu_check.sh all exit status 0" || verdict FAIL "gpu_check.sh all exit status $rc"

# The device tool brings back at most 8 files, 16 MiB each, 2 folders deep, plain names.
n=$(find "$out" -type f | wc -l)
odd=$(find "$out" -mindepth 1 | sed "s#^$out/##" | grep -vE '^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,2}$')
big=$(find "$out" -type f -size +16M)
if ((n <= 8)) && [[ -z "$odd$big" ]]; then
  verdict PASS "output folder: $n files ($(ls "$out" | tr '\n' ' '))"
else
  verdict FAIL "output folder: $n files; odd names: ${odd:-none}; over 16 MiB: ${big:-none}"
fi

# A phase alone, again: the setup must be found done, and its files alone written.
out2=$scratch/out2
t0=$SECONDS
"$tree/scripts/gpu_check.sh" compare "$out2" > "$scratch/again.txt" 2>&1
rc=$?
if ((rc == 0)) && grep -q 'already unpacked' "$out2/setup.log" && [[ "$(ls "$out2" | tr '\n' ' ')" == "compare.log compare.summary.txt setup.log " ]]; then
  verdict PASS "gpu_check.sh compare alone reused the setup and took $((SECONDS - t0)) s"
else
  verdict FAIL "gpu_check.sh compare alone: exit status $rc, files $(ls "$out2" | tr '\n' ' ')"
fi

# What the build used: the same checks gpu_check.sh ran in its setup, shown here.
source scripts/gpu_common.sh
echo "rehearse: header dependencies and ldd of the programs built in $tree/build-gpu/build:"
while read -r status text; do verdict "$status" "$text"; done < <(gpu_verify_build "$tree/build-gpu/build" "$tree/build-gpu/prefix")
echo "rehearse: cuvae's $(readelf -d "$tree/build-gpu/build/cuvae" | sed -nE 's/.*\((RPATH|RUNPATH)\) +Library r(un)?path: /\1 /p')"
echo "rehearse: ldd $tree/build-gpu/build/test_image (excerpt):"
ldd "$tree/build-gpu/build/test_image" | grep -E 'openblas|criterion|png|libz|gfortran|git2' | sed 's/^/  /'

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
