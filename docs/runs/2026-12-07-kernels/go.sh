#!/usr/bin/env bash
# The four kernel-count changes of docs/training-step.md ("Fewer kernels per step") timed again
# under the JAX engine's CPU compiler option (products only to YNNPACK, here through
# XLA_FLAGS, since those checkouts predate the option): BEFORE (01bb3cc) and FEWER
# (581483d) alternated in two rounds at batch 8 through time_step.py; then each of the five
# checkouts' host milliseconds per call and kernels (host_tree.py) and a profile of the
# two (kernel_profile.py). Checkouts of models/, utils/, benchmarks/ from `git archive`:
#   bash go.sh BEFORE C1 C2 C3 FEWER > go.log 2>&1     (C1-C3: 1ec15e8, d328a66, 8e55948)
# kernel_profile.py was named profile.py when go.log was written: a script of that name
# shadows the standard library's profile module for the other scripts in this folder.
set -u
BEFORE=$1; C1=$2; C2=$3; C3=$4; FEWER=$5
root=$(cd "$(dirname "$0")/../../.." && pwd)
export XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT
echo "# $(date '+%F %T') $(python3 -c 'import jax; print("JAX", jax.__version__)') $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc), XLA_FLAGS=$XLA_FLAGS"
for round in 1 2; do
  for tree in "$BEFORE" "$FEWER"; do
    python3 "$root/docs/runs/2026-12-07-step2/time_step.py" "$tree" jax 8 100 2>/dev/null
  done
done
for tree in "$BEFORE" "$C1" "$C2" "$C3" "$FEWER"; do
  python3 "$root/docs/runs/2026-12-07-host/host_tree.py" "$tree" 2>/dev/null
done
for tree in "$BEFORE" "$FEWER"; do
  python3 "$root/docs/runs/2026-12-07-kernels/kernel_profile.py" "$tree" 8 2>/dev/null
done
echo "# $(date '+%F %T') done"
