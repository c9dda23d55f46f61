#!/usr/bin/env bash
# toy_1d.sh: the 1-D Gaussian-mixture practical as one command.
#
# Source: the 1-D Gaussian-mixture VAE practical. Its settings: 40,000 iterations at batch 256,
# 200,000 samples, inverse variance 500. Here: --data toy with --toy-n 200000,5000 (200,000
# training values, cuvae's 5,000 test values), --batch-size 256 --steps 40000, and the inverse
# variance read as the Gaussian decoder's fixed precision 1/sigma^2 = 500, so --sigma 0.0447214.
# The mixture and the model (1-D latent, 100-100 tanh) are cuvae's toy defaults.
# Figures the practical reports: none. cuvae's: the test loss and the total variation distance
# between generated values and the true mixture (printed by train, recorded as train.toy_tv).
#
# Usage: recipes/toy_1d.sh [--steps N] [OUT]   (recipes/common.sh; OUT is the run directory)
# Leaves in OUT: toy_density.svg (data), toy_latent.svg (encoding), toy_decoded.svg (decoding),
# toy_generated.svg (generation), toy_snapshot_<step>.svg (the three panels while it trained),
# loss_curves.svg (with a row every 100 steps), report.html.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "$0")/common.sh"

out=$RECIPE_OUT
"$CUVAE" train --data toy --toy-n 200000,5000 --batch-size 256 --sigma 0.0447214 \
  --steps "${RECIPE_STEPS:-40000}" --log-every 100 --out "$out"

recipe_say "final test loss $(recipe_metric "$out" last test_loss) nats/value;" \
  "total variation to the true mixture: $("$CUVAE" info --model "$out" | awk '$1 == "train.toy_tv" {print $2}')" \
  "(the practical reports no figure)"
