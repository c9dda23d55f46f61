#!/usr/bin/env bash
# bench_gemm_libs.sh: choose the CPU GEMM library by measurement (issue 11; docs/benchmarks.md).
#
# Installs the Debian GEMM libraries (apt-get, needs root), builds bench/bench_gemm.c once per
# library with gcc directly (each linked by path and rpath to that library's own directory, so
# both OpenBLAS builds run side by side without update-alternatives), then runs them interleaved:
# round r of every library and thread count before round r+1 of any. Prints every round, then
# the median seconds and GFLOP/s of one epoch's GEMMs per library and thread count and the
# ratio to OpenBLAS pthread (time / OpenBLAS pthread's time: below 1 is faster).
#
# It does not change what cuvae links (CMakeLists.txt); it is a benchmark, not a test.
#
# usage: scripts/bench_gemm_libs.sh [ROUNDS (default 5)] [OUTFILE]
#   BUILD_DIR (default build/gemm-libs) holds the binaries. SKIP_INSTALL=1 skips apt-get.
set -euo pipefail

ROUNDS=${1:-5}
OUT=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/gemm-libs}
LIB=/usr/lib/x86_64-linux-gnu
SRC=$ROOT/bench/bench_gemm.c
PKGS=(libopenblas0-pthread libopenblas-pthread-dev libopenblas0-openmp libblis-pthread-dev libdnnl-dev libxsmm-dev)

if ! [[ $ROUNDS =~ ^[0-9]+$ ]] || ((ROUNDS < 1)); then
    echo "bench_gemm_libs.sh: ROUNDS must be a positive integer (got '$ROUNDS')" >&2
    exit 2
fi
if [[ -n $OUT ]]; then
    exec > >(tee "$OUT") 2>&1
fi

if [[ ${SKIP_INSTALL:-0} != 1 ]]; then
    missing=()
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        if ((EUID != 0)); then
            echo "bench_gemm_libs.sh: packages missing (${missing[*]}) and not root to install them" >&2
            exit 1
        fi
        apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
    fi
fi

mkdir -p "$BUILD_DIR"
CFLAGS=(-O2 -std=c11 -Wall)
build() { # name, then gcc arguments after the source
    local name=$1
    shift
    gcc "${CFLAGS[@]}" "$SRC" -o "$BUILD_DIR/$name" "$@"
}
build openblas-pthread -I/usr/include/x86_64-linux-gnu/openblas-pthread \
    -L$LIB/openblas-pthread -Wl,-rpath,$LIB/openblas-pthread -l:libopenblas.so.0 -lm
build openblas-openmp -I/usr/include/x86_64-linux-gnu/openblas-pthread \
    -L$LIB/openblas-openmp -Wl,-rpath,$LIB/openblas-openmp -l:libopenblas.so.0 -lm
build blis-pthread -Wno-unused-function -I/usr/include/x86_64-linux-gnu/blis-pthread \
    -L$LIB/blis-pthread -Wl,-rpath,$LIB/blis-pthread -l:libblis.so.4 -lm
build onednn -DGEMM_DNNL -ldnnl -lm
# libxsmm 1.17 (static only in Debian) needs a BLAS for the shapes it does not JIT: OpenBLAS pthread.
build libxsmm -DGEMM_XSMM /usr/lib/libxsmm.a \
    -L$LIB/openblas-pthread -Wl,-rpath,$LIB/openblas-pthread -l:libopenblas.so.0 -lpthread -ldl -lrt -lm

# name|binary|environment for @ threads (@ substituted)|what it is
CONTENDERS=(
    "openblas-pthread|openblas-pthread|OPENBLAS_NUM_THREADS=@|OpenBLAS 0.3.21 pthread (what cuvae linked before oneDNN)"
    "openblas-openmp|openblas-openmp|OMP_NUM_THREADS=@|OpenBLAS 0.3.21 OpenMP"
    "blis-auto|blis-pthread|BLIS_NUM_THREADS=@|BLIS 0.9.0 pthread, its own CPU detection"
    "blis-skx|blis-pthread|BLIS_NUM_THREADS=@ BLIS_ARCH_TYPE=0|BLIS 0.9.0 pthread, forced to its skx (AVX-512) kernels"
    "onednn|onednn|OMP_NUM_THREADS=@|oneDNN 2.6.3 dnnl_sgemm (OpenMP)"
    "libxsmm|libxsmm|OPENBLAS_NUM_THREADS=@|libxsmm 1.17 libxsmm_sgemm, falling back to OpenBLAS pthread"
)

echo "bench_gemm_libs: $(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs online, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench_gemm_libs: $ROUNDS rounds, interleaved; one round = one epoch's GEMMs (469 steps) after a 20-step warm-up in a fresh process"
for c in "${CONTENDERS[@]}"; do
    IFS='|' read -r name bin env what <<<"$c"
    echo "  $name: $what [$env]"
done

RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT
for ((r = 1; r <= ROUNDS; r++)); do
    for t in 1 2; do
        for c in "${CONTENDERS[@]}"; do
            IFS='|' read -r name bin env what <<<"$c"
            line=$(env ${env//@/$t} "$BUILD_DIR/$bin" "$name" "$t" 1 | grep ' median ')
            echo "round $r: $line"
            echo "$line" >>"$RAW"
        done
    done
done

echo
gflop=$(awk '{for (i = 1; i <= NF; i++) if (index($i, "epoch_gflop=") == 1) {print substr($i, 13); exit}}' "$RAW")
echo "median of $ROUNDS rounds (seconds of one 60,000-image epoch's GEMMs, $gflop GFLOP as bench_gemm counts them; ratio = time / openblas-pthread's time at the same thread count)"
printf '%-18s %8s %8s %8s %8s %8s %8s  %s\n' library "1t s" "1t GF/s" "1t ratio" "2t s" "2t GF/s" "2t ratio" "checksum (1t, last round)"
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { # name threads key
    awk -v n="$1" -v t="threads=$2" -v k="$3=" '$1==n && $2==t {for (i=3;i<=NF;i++) if (index($i,k)==1) print substr($i,length(k)+1)}' "$RAW"
}
declare -A base
for t in 1 2; do base[$t]=$(field openblas-pthread $t seconds | median); done
for c in "${CONTENDERS[@]}"; do
    IFS='|' read -r name bin env what <<<"$c"
    row=()
    for t in 1 2; do
        s=$(field "$name" $t seconds | median)
        row+=("$s" "$(awk -v s="$s" -v g="$gflop" 'BEGIN {printf "%.1f", g/s}')" "$(awk -v s="$s" -v b="${base[$t]}" 'BEGIN {printf "%.2f", s/b}')")
    done
    printf '%-18s %8s %8s %8s %8s %8s %8s  %s\n' "$name" "${row[@]}" "$(field "$name" 1 checksum | tail -1)"
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
