#!/usr/bin/env bash
# gpu_prepare.sh: run HERE (Debian 12, root for apt-get), before a GPU check. Fills
# the ignored folder .gpu/ with everything the bare GPU machine lacks, so that
# scripts/gpu_check.sh can build and run there with only the working tree and .gpu:
#
#   .gpu/debs/          the 'build' packages of scripts/deps/debian.txt and every package
#                       they depend on, recursively, as .deb files (apt-get download),
#                       stopping at the 'base' packages (C library, GCC runtime)
#   .gpu/data/mnist     MNIST as scripts/fetch_mnist.sh fetched it
#   .gpu/data/fashion-mnist   the full Fashion-MNIST (Debian's dataset-fashion-mnist)
#   .gpu/manifest.txt   the packages and versions, the alternatives links the .debs lack
#                       (where a carried package has any), the newest glibc
#                       symbol version each carried library needs, the commit
#
# It prints the size of what travels (the tree plus .gpu) and fails above 64 MiB.
# Not for the GPU machine: it needs apt-get. Idempotent: a second run downloads only
# what changed.
#   scripts/gpu_prepare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
gpu=$root/.gpu
limit=$((64 * 1024 * 1024))

say() { printf 'gpu_prepare: %s\n' "$*"; }
die() { printf 'gpu_prepare: error: %s\n' "$*" >&2; exit 1; }

scripts/install_deps.sh --data
scripts/fetch_mnist.sh data/mnist >/dev/null || die "scripts/fetch_mnist.sh failed: MNIST is needed on the GPU machine"
mkdir -p "$gpu/debs" "$gpu/data"

# ---- what to carry: the 'build' packages and their dependency closure --------------------
mapfile -t roots < <(scripts/install_deps.sh --list build)
mapfile -t base < <(scripts/install_deps.sh --list base)
declare -A is_base=() seen=() provider=()
for p in "${base[@]}"; do is_base[$p]=1; done
# Virtual packages (libc-dev, ...) are satisfied by whichever installed package provides them.
while read -r pkg provides; do
  IFS=',' read -ra virtuals <<< "$provides"
  for v in "${virtuals[@]}"; do
    v=$(sed 's/([^)]*)//; s/ //g' <<< "$v")
    [[ -n "$v" && -z "${provider[$v]:-}" ]] && provider[$v]=$pkg
  done
done < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Provides}\n' | awk '$1 == "ii" {$1 = ""; print}')

installed() { dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^ii'; }

carried=()
queue=("${roots[@]}")
while ((${#queue[@]})); do
  p=${queue[0]}
  queue=("${queue[@]:1}")
  [[ -n "${seen[$p]:-}" ]] && continue
  seen[$p]=1
  [[ -n "${is_base[$p]:-}" ]] && continue
  installed "$p" || die "$p is needed but not installed (scripts/install_deps.sh should have installed it)"
  carried+=("$p")
  deps=$(dpkg-query -W -f='${Depends}, ${Pre-Depends}' "$p")
  IFS=',' read -ra groups <<< "$deps"
  for g in "${groups[@]}"; do
    g=$(sed 's/([^)]*)//g; s/:any//g; s/ //g' <<< "$g")
    [[ -z "$g" ]] && continue
    chosen=""
    IFS='|' read -ra alts <<< "$g"
    for a in "${alts[@]}"; do          # the alternative that is installed here, else a provider
      if installed "$a"; then chosen=$a; break; fi
      if [[ -n "${provider[$a]:-}" ]]; then chosen=${provider[$a]}; break; fi
    done
    [[ -n "$chosen" ]] || die "$p depends on '$g', which nothing installed here satisfies"
    queue+=("$chosen")
  done
done
mapfile -t carried < <(printf '%s\n' "${carried[@]}" | sort)
say "${#carried[@]} packages to carry: ${carried[*]}"

# ---- download the .debs, keep only those ----------------------------------------------
# apt's candidate versions, not the installed ones: the archive keeps only the newest of
# each suite, and the candidates agree with one another (libpng-dev = libpng16-16, ...).
declare -A candidate=()
while read -r pkg ver; do candidate[$pkg]=$ver; done < <(apt-cache policy "${carried[@]}" |
  awk '/^[^ ].*:$/ {p = substr($1, 1, length($1) - 1)} /^  Candidate:/ {print p, $2}')
declare -A have=()
for f in "$gpu"/debs/*.deb; do
  [[ -e "$f" ]] || continue
  have["$(dpkg-deb -f "$f" Package)=$(dpkg-deb -f "$f" Version)"]=$f
done
want=()
declare -A keep=()
for p in "${carried[@]}"; do
  [[ -n "${candidate[$p]:-}" && "${candidate[$p]}" != "(none)" ]] ||
    die "$p has no version apt can download (apt-get update, then run again)"
  key="$p=${candidate[$p]}"
  if [[ -n "${have[$key]:-}" ]]; then keep[${have[$key]}]=1; else want+=("$key"); fi
done
if ((${#want[@]})); then
  say "downloading ${#want[@]} .deb files"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  chmod 777 "$tmp"   # apt-get download drops to the _apt user where it can
  (cd "$tmp" && apt-get download -q "${want[@]}" >"$tmp/log" 2>&1) ||
    { cat "$tmp/log" >&2; die "apt-get download failed (apt-get update, then run again)"; }
  for f in "$tmp"/*.deb; do mv "$f" "$gpu/debs/"; keep["$gpu/debs/$(basename "$f")"]=1; done
fi
for f in "$gpu"/debs/*.deb; do
  [[ -n "${keep[$f]:-}" ]] || { say "removing stale $(basename "$f")"; rm -f "$f"; }
done

# ---- the manifest ----------------------------------------------------------------------
# Files of the carried packages, with merged-/usr paths (/lib/x -> /usr/lib/x), as in the prefix.
files=$(mktemp)
dpkg -L "${carried[@]}" | sed -E 's#^/(lib|lib64|bin|sbin)/#/usr/\1/#' | sort -u > "$files"
{
  echo "# written by scripts/gpu_prepare.sh; read by scripts/gpu_common.sh on the GPU machine"
  echo "prepared $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit $(git rev-parse HEAD 2>/dev/null || echo unknown) $(git status --porcelain 2>/dev/null | wc -l) files changed since"
  for f in "$gpu"/debs/*.deb; do
    echo "deb $(basename "$f") $(dpkg-deb -f "$f" Package) $(dpkg-deb -f "$f" Version)"
  done
  # Debian's alternatives links (/etc/alternatives) are in no .deb (libblas.so.3 and
  # friends, for a BLAS package). Record those whose target a carried package holds.
  find /usr/lib /usr/include /usr/share -lname '/etc/alternatives/*' 2>/dev/null | sort | while read -r link; do
    target=$(readlink -f "$link")
    if grep -qxF "$target" "$files"; then echo "alt $link $target"; fi
  done
  # The newest glibc symbol version each carried ELF file needs.
  grep -E '\.so(\.[0-9]+)*$|/bin/' "$files" | while read -r f; do
    [[ -f "$f" && ! -L "$f" ]] || continue
    [[ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" == '177ELF' ]] || continue
    v=$(objdump -T "$f" 2>/dev/null | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sort -uV | tail -n 1)
    [[ -n "$v" ]] && echo "glibc $v $f"
  done
} > "$gpu/manifest.txt.tmp"
rm -f "$files"
mv "$gpu/manifest.txt.tmp" "$gpu/manifest.txt"
need=$(awk '$1 == "glibc" {print $2}' "$gpu/manifest.txt" | sort -V | tail -n 1)
say "$(grep -c '^alt ' "$gpu/manifest.txt") alternatives links recorded; the carried libraries need glibc >= ${need#GLIBC_}"

# ---- the data ----------------------------------------------------------------------------
copy_data() { # SRC DEST: the IDX files (and SOURCE.txt) as plain files, never links
  mkdir -p "$2"
  local f n=0
  for f in "$1"/*-ubyte.gz "$1"/SOURCE.txt; do
    [[ -e "$f" ]] || continue
    cmp -s "$f" "$2/$(basename "$f")" || cp -L "$f" "$2/"
    n=$((n + 1))
  done
  ((n >= 4)) || die "$1 does not hold the four IDX files"
}
copy_data data/mnist "$gpu/data/mnist"
copy_data /usr/share/datasets/fashion-mnist "$gpu/data/fashion-mnist"

# ---- what travels ------------------------------------------------------------------------
tree=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- 2>/dev/null | tail -n 1 | cut -f1)
debs=$(du -cb "$gpu"/debs/*.deb | tail -n 1 | cut -f1)
data=$(du -sb "$gpu/data" | cut -f1)
all=$(du -sb "$gpu" | cut -f1)
total=$((tree + all))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
say "travels: tree $(mib "$tree") + .gpu $(mib "$all") (debs $(mib "$debs"), data $(mib "$data")) = $(mib "$total") of 64 MiB"
((total <= limit)) || die "what travels is $(mib "$total"), over the 64 MiB the device tool takes"
say "ready: call the device tool with carry [\".gpu\"] (docs/gpu-check.md)"
