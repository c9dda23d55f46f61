#!/usr/bin/env bash
# run.sh: the main job on a fresh Debian machine: install what is missing,
# build, fetch MNIST, train the default model (784-400-20-400-784, 10 epochs,
# batch 128, Adam 1e-3, seed 1) on the GPU when there is one, else the CPU,
# and leave the model, metrics and both grids in models/default, replacing the
# run that is there (--force; it says so first).
# Extra arguments go to `cuvae train` (e.g. --epochs 20 --device cpu). With
# the user's own --out DIR (or --resume DIR) they go on as given, without
# --force: a run this script did not make is never removed.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh
scripts/fetch_mnist.sh data/mnist
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target cuvae # the program alone, not the test programs
# Does the user name the run directory? --out DIR, --out=DIR or an abbreviation (--o, --ou): the
# run goes there, without --force. --resume DIR (or an abbreviation): the arguments alone.
own=
for arg in "$@"; do
  case $arg in
    --o | --ou | --out | --o=* | --ou=* | --out=*) own=${own:-out} ;;
    --r | --re | --res | --resu | --resum | --resume | --r=* | --re=* | --res=* | --resu=* | --resum=* | --resume=*) own=resume ;;
    --) break ;;
  esac
done
if [[ $own == resume ]]; then
  exec ./build/cuvae train "$@"
elif [[ $own == out ]]; then
  exec ./build/cuvae train --data data/mnist --epochs 10 --batch-size 128 --lr 1e-3 --seed 1 "$@"
fi
if [[ -e models/default ]]; then
  echo "run.sh: replacing the previous run in models/default (cuvae train --force)" >&2
fi
./build/cuvae train --force --data data/mnist --epochs 10 --batch-size 128 --lr 1e-3 --seed 1 \
  --out models/default "$@"
