#!/usr/bin/env bash
# theano_binarized.sh: the Theano VAE on binarized MNIST, as one command.
#
# Source: the Theano VAE practical. Its settings: a 2-D latent, batch 20, 10 epochs, Adam, dynamic
# binarization (--binarize dynamic) with the test set's binarization drawn anew each epoch
# (--binarize-test redraw), the decoder 2-64-128-784 with ReLU and a matching encoder 784-128-64-2
# (--hidden 128,64). Its learning rate is not recorded in this project: cuvae's default Adam 1e-3.
# The practical sets a deterministic autoencoder's latent space beside the VAE's,
# so the recipe also trains --model ae with the same settings.
# Figures the practical reports (on the full 70,000-image MNIST): ELBO about -100 at the end, from
# about -150 at the start. The recipe prints cuvae's ELBO (minus the loss per image) of the first
# and the last epoch, training (fresh draws) and test (that epoch's draw of the test set).
#
# Usage: recipes/theano_binarized.sh [--steps N] [OUT]   (recipes/common.sh)
# Leaves OUT/vae and OUT/ae, each with latent_scatter.svg (test codes by digit), reconstructions.png,
# loss_curves.svg, traversals.png, interpolation.png, report.html; OUT/vae also with samples.png,
# manifold.png, per_digit.png, posterior_cloud.svg, posterior_3.png (the first 8 test images of
# digit 3, each with 8 decodes of z ~ q(z|x)) and samples_bernoulli.png (64 samples with each
# pixel drawn from the decoder's Bernoulli, as binarized MNIST is); OUT/vae-draws the VAE's
# pictures again with latent_scatter.svg of one draw z ~ q(z|x) per test image, not the means.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "$0")/common.sh"

out=$RECIPE_OUT
recipe_length 10
for model in vae ae; do
  "$CUVAE" train --model "$model" --hidden 128,64 --latent 2 --batch-size 20 --lr 1e-3 \
    --binarize dynamic --binarize-test redraw "${LENGTH[@]}" --out "$out/$model"
done
"$CUVAE" reconstruct --model "$out/vae" --digit 3 --n 8 --posterior-samples 8 \
  --out "$out/vae/posterior_3.png"
"$CUVAE" sample --model "$out/vae" --bernoulli --n 64 --out "$out/vae/samples_bernoulli.png"
"$CUVAE" plot --model "$out/vae" --scatter samples --out "$out/vae-draws"

elbo() { # elbo RUN EPOCH COLUMN: minus the loss in that column
  awk -v loss="$(recipe_metric "$1" "$2" "$3")" 'BEGIN { print (loss == "-") ? "-" : -loss }'
}
recipe_say "VAE ELBO per image, epoch 1: train $(elbo "$out/vae" 1 train_loss)," \
  "test $(elbo "$out/vae" 1 test_loss); last epoch: train $(elbo "$out/vae" last train_loss)," \
  "test $(elbo "$out/vae" last test_loss) (the practical: about -150 at the start, -100 at the end,"\
  "on the full MNIST)"
recipe_say "autoencoder's last test reconstruction loss: $(recipe_metric "$out/ae" last test_loss) nats/image"
