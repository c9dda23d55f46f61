#!/usr/bin/env bash
# stress_runs.sh: the long version of tests/test_stress_runs.c (issue 19):
# hundreds of SIGINT/SIGTERM at random moments of CPU training on 1 and 2
# threads, each ending in 130/143 with a checkpoint that resumes bit for bit,
# and hundreds of rounds of concurrent trains, --force trains and resumes on
# one run directory, never two writers. The CI runs the same test with small
# counts. Usage: scripts/stress_runs.sh [BUILD_DIR] (default build); the
# counts come from SIGNALS (per thread count, default 200), ROUNDS (default
# 200) and SEED (default 19).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
test_bin="$build/test_stress_runs"
if [[ ! -x $test_bin ]]; then
  echo "stress_runs.sh: $test_bin is missing; build first (cmake --build $build)" >&2
  exit 1
fi
export CUVAE_STRESS_SIGNALS=${SIGNALS:-200} CUVAE_STRESS_ROUNDS=${ROUNDS:-200} CUVAE_STRESS_SEED=${SEED:-19}
echo "stress_runs.sh: $CUVAE_STRESS_SIGNALS signals per thread count, $CUVAE_STRESS_ROUNDS lock rounds, seed $CUVAE_STRESS_SEED" >&2
"$test_bin" --verbose=1 -j1 2>&1 | grep -E '^(signals|locks)|\[(PASS|FAIL|SKIP)\]|Assertion|Synthesis|^\[----\]   [^ s]'
exit "${PIPESTATUS[0]}"
