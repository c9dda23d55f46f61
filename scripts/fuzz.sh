#!/usr/bin/env bash
# Fuzz cuvae's file readers with libFuzzer (clang, ASan + UBSan):
#   scripts/fuzz.sh [SECONDS]      each harness runs SECONDS (default 60)
# Harnesses (fuzz/): fuzz_idx (IDX files as they lie on disk, raw or gzip),
# fuzz_idx_gz (IDX content the harness gzips, in one or two members, sometimes
# with a stray byte after them), fuzz_safetensors (the safetensors reader),
# fuzz_checkpoint (a model file -> a model on the CPU).
# Seeds come from fuzz/corpus/<target>/ (checked in; fuzz/make_corpus.py wrote
# them); what the run learns goes to build-fuzz/corpus/<target>/, findings to
# build-fuzz/artifacts/<target>/. Exits non-zero when any harness finds a
# crash, a leak, a timeout (10 s per input) or an allocation over 1 GB; turn
# each finding into a regression test before fixing it (see docs/testing.md).
# Not part of CI: it needs clang-14 and libclang-rt-14-dev (installed here by
# scripts/install_deps.sh --fuzz unless CUVAE_FUZZ_CC names another clang), and time.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS]   (a positive number of seconds per harness)" >&2
  exit 2
fi
cc=${CUVAE_FUZZ_CC:-clang-14}
[[ -n "${CUVAE_FUZZ_CC:-}" ]] || scripts/install_deps.sh --fuzz
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "fuzz.sh: $cc not found (apt-get install clang-14 libclang-rt-14-dev, or set CUVAE_FUZZ_CC)" >&2
  exit 2
fi
targets=(fuzz_idx fuzz_idx_gz fuzz_safetensors fuzz_checkpoint)
CC=$cc cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCUVAE_FUZZ=ON >/dev/null
cmake --build build-fuzz -j2 --target "${targets[@]}"

export OMP_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
  seeds=fuzz/corpus/${t#fuzz_}
  work=build-fuzz/corpus/${t#fuzz_}
  artifacts=build-fuzz/artifacts/${t#fuzz_}
  mkdir -p "$work" "$artifacts"
  dict=()
  [[ -f fuzz/${t#fuzz_}.dict ]] && dict=(-dict="fuzz/${t#fuzz_}.dict")
  echo "== $t: $seconds s, seeds $seeds, corpus $work" >&2
  # -malloc_limit_mb: a small file must never make the readers ask for a lot of memory.
  if ! build-fuzz/"$t" "$work" "$seeds" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" 2>"build-fuzz/$t.log"; then
    failed+=("$t")
    tail -n 40 "build-fuzz/$t.log" >&2
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+ *DONE" "build-fuzz/$t.log" >&2 || true
done
if ((${#failed[@]})); then
  echo "fuzz.sh: findings in: ${failed[*]} (inputs under build-fuzz/artifacts/, logs build-fuzz/<target>.log)" >&2
  exit 1
fi
echo "fuzz.sh: no findings in ${#targets[@]} harnesses, $seconds s each" >&2
