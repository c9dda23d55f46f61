# shellcheck shell=bash
# recipes/common.sh: what every recipe in this folder shares, sourced by each (not run alone).
#
# A recipe is called as   recipes/NAME.sh [--steps N] [OUT]
#   OUT         where its runs go (default models/NAME-YYYYmmdd-HHMMSS-PID under the current
#               directory, always new). A single-run recipe trains into OUT itself, one with several
#               runs into OUT/<run>. `cuvae train` refuses a directory that holds a run, so a recipe
#               never overwrites one: it stops at the first run that is there.
#   --steps N   the shortened form (CI): every `cuvae train` of the recipe runs N steps instead of
#               the practical's length.
# The binary is $CUVAE, else build/cuvae of this checkout; the data is cuvae's default
# ($CUVAE_DATA, else data/mnist: `cuvae train --help`).
#
# Sets: CUVAE, RECIPE_OUT, RECIPE_STEPS (empty for the full length).
# Functions: recipe_length, recipe_metric, recipe_say.

recipe_name=$(basename "$0" .sh)
CUVAE=${CUVAE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/cuvae}
RECIPE_STEPS=
RECIPE_OUT=

recipe_die() {
  echo "$recipe_name: $*" >&2
  exit 2
}

while (($#)); do
  case $1 in
    --steps)
      (($# >= 2)) || recipe_die "--steps needs a number of steps"
      [[ $2 =~ ^[1-9][0-9]*$ ]] || recipe_die "--steps $2: not a positive whole number"
      RECIPE_STEPS=$2
      shift 2
      ;;
    -h | --help)
      awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" # the header
      exit 0
      ;;
    -*) recipe_die "unknown option $1 (usage: $0 [--steps N] [OUT])" ;;
    *)
      [[ -z $RECIPE_OUT ]] || recipe_die "one output directory only, not $RECIPE_OUT and $1"
      RECIPE_OUT=$1
      shift
      ;;
  esac
done
RECIPE_OUT=${RECIPE_OUT:-models/$recipe_name-$(date +%Y%m%d-%H%M%S)-$$}
[[ -x $CUVAE ]] || recipe_die "no cuvae binary at $CUVAE: build it (cmake --build build) or set CUVAE"

# recipe_length EPOCHS: sets LENGTH to the flags of a run's length: --epochs EPOCHS, or --steps N
# in the shortened form.
# shellcheck disable=SC2034 # LENGTH is read by the recipe that sourced this file
recipe_length() {
  if [[ -n $RECIPE_STEPS ]]; then
    LENGTH=(--steps "$RECIPE_STEPS")
  else
    LENGTH=(--epochs "$1")
  fi
}

# recipe_metric RUN EPOCH COLUMN: the value of COLUMN (a header of RUN/metrics.csv) in EPOCH's row
# (a number, or "last"); "-" when the run has no such row.
recipe_metric() {
  awk -F, -v epoch="$2" -v name="$3" '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) col = i; next }
    epoch == "last" || $1 == epoch { value = $col }
    END { print (col && value != "") ? value : "-" }' "$1/metrics.csv"
}

# recipe_say TEXT...: a line of the recipe's own summary, set apart from cuvae's output.
recipe_say() {
  echo "[$recipe_name] $*"
}
