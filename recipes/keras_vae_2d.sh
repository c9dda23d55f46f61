#!/usr/bin/env bash
# keras_vae_2d.sh: the Keras VAE with a 2-D latent, as one command.
#
# Source: the Keras VAE practical. Its settings: 784-512-2 (--hidden 512 --latent 2, ReLU), batch
# 100, 50 epochs, Adam 1e-3, inputs x/255 (--binarize none) under a Bernoulli likelihood, loss
# 784 x mean BCE + KL per image (cuvae's loss: the BCE summed over the pixels, plus the KL).
# Figures the practical reports (on the full 70,000-image MNIST): parameters 403,972 (encoder),
# 403,728 (decoder), 807,700 (total); training loss about 145.8 at epoch 24. Its sampling used
# exp(log-variance) as the standard deviation, a known bug, so its losses are not exactly
# comparable with cuvae's. The recipe prints cuvae's parameter counts (from `cuvae info`) and its
# training loss at epoch 24 beside them.
#
# Usage: recipes/keras_vae_2d.sh [--steps N] [OUT]   (recipes/common.sh; OUT is the run directory)
# Leaves in OUT: latent_scatter.svg (test means by digit), manifold.png (the decoded 2-D latent
# grid at the prior's quantiles), posterior_cloud.svg, samples.png, reconstructions.png,
# loss_curves.svg, traversals.png, interpolation.png, per_digit.png, report.html; in OUT/linear
# the same pictures with manifold.png a 30 x 30 linear grid over [-4, 4]^2 (cuvae plot
# --manifold-range 4 --manifold-size 30), reaching past the quantile grid's +-1.96.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "$0")/common.sh"

out=$RECIPE_OUT
recipe_length 50
"$CUVAE" train --hidden 512 --latent 2 --batch-size 100 --lr 1e-3 --binarize none \
  "${LENGTH[@]}" --out "$out"
"$CUVAE" plot --model "$out" --manifold-range 4 --manifold-size 30 --out "$out/linear"

read -r encoder decoder total < <("$CUVAE" info --model "$out" | awk '
  $1 ~ /^encoder\./ { e += $NF }
  $1 ~ /^decoder\./ { d += $NF }
  END { print e, d, e + d }')
for part in "encoder $encoder 403972" "decoder $decoder 403728" "total $total 807700"; do
  read -r name ours theirs <<<"$part"
  if ((ours == theirs)); then verdict=same; else verdict=DIFFERENT; fi
  recipe_say "parameters, $name: cuvae $ours, the Keras practical $theirs ($verdict)"
done
recipe_say "training loss at epoch 24: cuvae $(recipe_metric "$out" 24 train_loss), the practical" \
  "about 145.8 (full MNIST); final: train $(recipe_metric "$out" last train_loss)," \
  "test $(recipe_metric "$out" last test_loss) nats/image"
