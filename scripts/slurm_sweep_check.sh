#!/usr/bin/env bash
# slurm_sweep_check.sh: a cuvae sweep through a real Slurm (scripts/slurm_local.sh start makes
# one on this machine). A 3-run sweep is submitted as the job array of `cuvae sweep --slurm`;
# while task 1 trains, it gets the signal Slurm sends a task at its time limit (SIGTERM to the
# batch shell, which exec'd cuvae: `scancel --batch --signal=TERM`); it checkpoints, requeues
# itself, and continues from the checkpoint when Slurm starts it again. Checked: the checkpoint
# was partway (fewer epochs in metrics.csv than the run's total when the signal came), Slurm
# records the restart (Restarts=1), every run finishes, and the requeued run's metrics (less the
# timing columns) and parameters are bit-identical to the same plan line trained uninterrupted.
#   scripts/slurm_sweep_check.sh [CUVAE [DATA]]   (default build/cuvae, data/mnist)
# Exit 0 passed, 1 failed (the reason on stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
cuvae=$(realpath "${1:-build/cuvae}")
data=$(realpath "${2:-data/mnist}")
epochs=40
work=$(mktemp -d /tmp/cuvae-slurm-XXXXXX)
fail() { echo "slurm_sweep_check: $*" >&2; exit 1; }
command -v sbatch >/dev/null || fail "no sbatch: install Slurm (scripts/slurm_local.sh start)"
sinfo -h -o %t | grep -q -E '^(idle|mix|alloc)' || fail "no Slurm node is up (scripts/slurm_local.sh start)"

# wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds
wait_for() {
  local limit=$1 what=$2
  shift 2
  for _ in $(seq $((limit * 5))); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  fail "waited ${limit} s for $what; squeue: $(squeue 2>&1 | tail -3)"
}

"$cuvae" sweep --out "$work/sweep" --slurm --jobs 2 --data "$data" --epochs $epochs --hidden 64 --seed 1:3 \
  >"$work/plan.log" 2>&1 || fail "sweep --slurm: $(cat "$work/plan.log")"
job=$(sbatch --parsable "$work/sweep/slurm.sh") || fail "sbatch refused the script"
echo "slurm_sweep_check: submitted $work/sweep/slurm.sh as job $job (3 tasks)"
run=$work/sweep/runs/seed=2
epochs_done() { [[ -f $run/metrics.csv ]] && echo $(($(wc -l <"$run/metrics.csv") - 1)) || echo 0; }
two_epochs() { [[ -f $run/checkpoint.safetensors ]] && (($(epochs_done) >= 2)); }
finished() { ! squeue -h -j "$job" 2>/dev/null | grep -q .; }
# task 1 trained two epochs; a job that left the queue before that failed: its tasks' logs say why
task1_trained() {
  two_epochs && return 0
  if finished; then
    fail "job $job left the queue before task 1 trained two epochs; its log: $(tail -3 "$work/sweep/logs/slurm-${job}_1.out" 2>&1)"
  fi
  return 1
}
wait_for 300 "task 1 to train two epochs" task1_trained
scancel --batch --signal=TERM "${job}_1"
at_signal=$(epochs_done)
restarted() { scontrol show job "${job}_1" 2>/dev/null | grep -q -E 'Restarts=[1-9]'; }
wait_for 120 "task 1 to be requeued (Restarts=1)" restarted
((at_signal < epochs)) || fail "task 1 had finished ($at_signal of $epochs epochs) before the signal"
[[ ! -f $run/model.safetensors ]] || fail "task 1 wrote its model although it was stopped"
echo "slurm_sweep_check: task 1 stopped by SIGTERM after $at_signal of $epochs epochs, checkpointed, requeued itself"
wait_for 600 "every task to finish" finished
for seed in 1 2 3; do
  [[ -f $work/sweep/runs/seed=$seed/model.safetensors ]] ||
    fail "run seed=$seed did not finish: $(tail -3 "$work/sweep/logs/seed=$seed.log" 2>&1)"
done
grep -q '^resumed' "$run/provenance.txt" || fail "task 1's run was not resumed (provenance.txt)"
echo "slurm_sweep_check: all 3 runs finished; $(scontrol show job "${job}_1" | grep -o 'Restarts=[0-9]*') for task 1"

# The same plan line, uninterrupted, and the comparison.
python3 - "$work/sweep/plan.jsonl" "$work/alone" >"$work/alone.args" <<'EOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
argv = json.loads(lines[2])["argv"]  # run 1 (line 0 is the header)
argv[argv.index("--out") + 1] = sys.argv[2]
print("\0".join(argv), end="")
EOF
xargs -0 "$cuvae" <"$work/alone.args" >"$work/alone.log" 2>&1 || fail "the uninterrupted run failed: $(tail -3 "$work/alone.log")"
python3 - "$run" "$work/alone" <<'EOF' || fail "the requeued run differs from the uninterrupted one (above)"
import csv, json, struct, sys
def losses(d):
    rows = list(csv.reader(open(d + "/metrics.csv")))
    keep = [i for i, n in enumerate(rows[0]) if n not in ("seconds", "images_per_second")]
    return [[r[i] for i in keep] for r in rows]
def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in head.items() if k != "__metadata__"}
a, b = sys.argv[1], sys.argv[2]
if losses(a) != losses(b):
    sys.exit("metrics.csv differs")
ta, tb = tensors(a + "/model.safetensors"), tensors(b + "/model.safetensors")
if ta.keys() != tb.keys() or any(ta[k] != tb[k] for k in ta):
    sys.exit("the parameters differ")
print("slurm_sweep_check: the requeued run's metrics and %d tensors equal the uninterrupted run's bit for bit" % len(ta))
EOF
rm -rf "$work"
