#!/usr/bin/env bash
# mnist_from_scratch.sh: the practical that writes an MNIST VAE from scratch, as one command.
#
# Source: the MNIST VAE written from scratch. Its setting named here: the architecture 784-200-20
# (one hidden layer of 200, a 20-D latent), so --hidden 200 --latent 20 with ReLU and the Bernoulli
# decoder on x/255 (--binarize none). Its other settings are not recorded in this project, so the
# rest is cuvae's defaults: 10 epochs, batch 128, Adam 1e-3, seed 1.
# Figures the practical reports: none. cuvae's: the final training and test loss per image.
#
# Usage: recipes/mnist_from_scratch.sh [--steps N] [OUT]   (recipes/common.sh; OUT is the run
# directory)
# Leaves in OUT: samples.png, reconstructions.png, loss_curves.svg, latent_scatter.svg,
# traversals.png, interpolation.png, per_digit.png, posterior_cloud.svg, report.html.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "$0")/common.sh"

out=$RECIPE_OUT
recipe_length 10
"$CUVAE" train --hidden 200 --latent 20 --binarize none "${LENGTH[@]}" --out "$out"

recipe_say "final train loss $(recipe_metric "$out" last train_loss)," \
  "test loss $(recipe_metric "$out" last test_loss) nats/image (the practical reports no figure)"
