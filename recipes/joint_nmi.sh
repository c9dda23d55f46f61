#!/usr/bin/env bash
# joint_nmi.sh: the VAE / conditional VAE / Gumbel-softmax joint VAE practical, as one command.
#
# Source: the practical that trains a VAE, a conditional VAE and a joint continuous + discrete VAE
# (Gumbel-softmax) on MNIST and scores the joint model's categorical code by NMI. Its settings named
# here: the CVAE conditions the decoder alone (--condition decoder); the joint model plain, then with
# beta 20 and capacities of 100 raised over 40 epochs (--capacity-z/-c 100,ITERS,20, beta 20 being
# the weight gamma of |KL - C|; C_c stops at log 10 = 2.30 nats, the most KL_c can be). cuvae raises
# C per step, so ITERS is the practical's own count of steps: 40 epochs of 938 steps of 64 images
# on MNIST's 60,000, 37,520, the rate at which its model saw C grow. (40 epochs of this 9,000-image
# subset, 5,640 steps, raise C 6.7 times as fast; there C_c reaches log 10 at step 131 and the
# code collapses to one category: docs/practicals.md.) Every run is 40 epochs; the
# architectures and optimizers are cuvae's defaults for each model (the practical's are not recorded
# in this project).
# Figures the practical reports: qualitative only: the NMI falls with the plain Gumbel-softmax VAE
# and rises with beta 20 and the capacities. The recipe prints each joint model's NMI after the
# first and the last epoch (metrics.csv) and `cuvae eval`'s NMI and cluster accuracy on the test set.
#
# Usage: recipes/joint_nmi.sh [--steps N] [OUT]   (recipes/common.sh)
# Leaves OUT/vae, OUT/cvae, OUT/joint, OUT/joint-capacity, each with samples.png,
# reconstructions.png, loss_curves.svg, latent_scatter.svg, report.html and the other pictures of
# its model; the CVAE's samples.png is one row per digit, OUT/cvae/label_7.png 16 samples of a 7;
# each joint run's categories.png is one row per category, category_0.png 16 samples of category 0.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "$0")/common.sh"

out=$RECIPE_OUT
epochs=40
batch=64 # the joint model's default batch, in which the capacities' steps count
iters=$((epochs * ((60000 + batch - 1) / batch))) # the practical's 40 epochs of full MNIST: 37,520
recipe_length $epochs
"$CUVAE" train "${LENGTH[@]}" --out "$out/vae"
"$CUVAE" train --model cvae --condition decoder "${LENGTH[@]}" --out "$out/cvae"
"$CUVAE" sample --model "$out/cvae" --label 7 --n 16 --out "$out/cvae/label_7.png"
"$CUVAE" train --model joint --batch-size $batch "${LENGTH[@]}" --out "$out/joint"
"$CUVAE" train --model joint --batch-size $batch --capacity-z "100,$iters,20" --capacity-c "100,$iters,20" \
  "${LENGTH[@]}" --out "$out/joint-capacity"

for run in joint joint-capacity; do
  "$CUVAE" sample --model "$out/$run" --category 0 --n 16 --out "$out/$run/category_0.png"
  scores=$("$CUVAE" eval --model "$out/$run" | sed -n 's/^clustering of the test split.*: NMI \([0-9.]*\), cluster accuracy \([0-9.]*\).*/NMI \1, cluster accuracy \2/p')
  [[ -n $scores ]] || recipe_die "cuvae eval printed no NMI for $out/$run"
  recipe_say "$run: NMI after epoch 1 $(recipe_metric "$out/$run" 1 nmi), after the last" \
    "$(recipe_metric "$out/$run" last nmi); cuvae eval on the test set: $scores"
done
recipe_say "final test loss: vae $(recipe_metric "$out/vae" last test_loss)," \
  "cvae $(recipe_metric "$out/cvae" last test_loss) (a bound on -log p(x|y))," \
  "joint $(recipe_metric "$out/joint" last test_loss)," \
  "joint-capacity $(recipe_metric "$out/joint-capacity" last test_loss) nats/image"
