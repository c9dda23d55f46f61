#!/usr/bin/env bash
# install_deps.sh: make sure the Debian packages cuvae builds and tests with are
# present, installing the missing ones when run as root (apt-get). The CUDA toolkit
# (nvcc, cuBLAS) is optional and never installed: where no nvcc on the PATH or in
# /usr/local/cuda/bin runs, this says in one line that cuvae will build without CUDA
# (the CPU backend only; CMakeLists.txt then does the same by itself), and goes on.
# The packages are listed, with their roles, in scripts/deps/debian.txt.
#   scripts/install_deps.sh            build, tool, fetch and browser packages
#   scripts/install_deps.sh --no-browser   without the browser (chromium, for tests/test_report.c)
#   scripts/install_deps.sh --torch    also the torch ones (the PyTorch reference)
#   scripts/install_deps.sh --data     also the data ones (Fashion-MNIST, for the GPU benchmark)
#   scripts/install_deps.sh --fuzz     also the fuzz ones (clang, libFuzzer: scripts/fuzz.sh)
#   scripts/install_deps.sh --list ROLE...   print the packages of these roles, install nothing
set -euo pipefail

list_file="$(cd "$(dirname "$0")" && pwd)/deps/debian.txt"

# packages_of ROLE...: the packages of these roles in debian.txt, in file order, leaving out
# those whose unless=COMMAND is on the PATH.
packages_of() {
  local pkg role extra
  while read -r pkg role extra; do
    [[ -z "$pkg" || "$pkg" == \#* ]] && continue
    [[ " $* " == *" $role "* ]] || continue
    if [[ "$extra" == unless=* ]] && command -v "${extra#unless=}" >/dev/null 2>&1; then
      continue
    fi
    echo "$pkg"
  done < "$list_file"
}

roles=(build tool fetch)
browser=1
while (($#)); do
  case "$1" in
    --no-browser) browser=0; shift ;;
    --torch) roles+=(torch); shift ;;
    --data) roles+=(data); shift ;;
    --fuzz) roles+=(fuzz); shift ;;
    --list) shift; (($#)) || { echo "install_deps: --list needs at least one role" >&2; exit 2; }
            packages_of "$@"; exit 0 ;;
    *) echo "install_deps: unknown argument '$1' (--torch, --data, --fuzz, --no-browser, --list ROLE...)" >&2
       exit 2 ;;
  esac
done
((browser)) && roles+=(browser)

mapfile -t packages < <(packages_of "${roles[@]}")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install_deps: missing Debian packages: ${missing[*]}" >&2
    echo "install_deps: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "install_deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The toolkit counts only where its nvcc runs (a wrapper left on the PATH over a removed or
# hidden toolkit does not).
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
if ! "$nvcc" --version >/dev/null 2>&1; then
  echo "install_deps: no CUDA toolkit (no working nvcc on the PATH or in /usr/local/cuda/bin): cuvae will build without CUDA (the CPU backend only)"
fi
