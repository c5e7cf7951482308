#!/usr/bin/env bash
# The JAX pre-training step of two checkouts, alternated: OLD (bde3acf, the code the
# training-step work started from) and NEW, at batch 8 (three rounds of 3 epochs of 200
# steps) and 256 (two rounds of 3 epochs of 20 steps). Checkouts from `git archive`:
#   bash go.sh OLD NEW > go.log 2>&1
set -u
OLD=${1:?checkout before}; NEW=${2:?checkout after}
here=$(cd "$(dirname "$0")" && pwd)
echo "# $(date '+%F %T') $(python3 -c 'import jax; print("JAX", jax.__version__)') $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
for round in 1 2 3; do
  for tree in "$OLD" "$NEW"; do python3 "$here/old_new.py" "$tree" 8 200 3 2>/dev/null; done
done
for round in 1 2; do
  for tree in "$OLD" "$NEW"; do python3 "$here/old_new.py" "$tree" 256 20 3 2>/dev/null; done
done
echo "# $(date '+%F %T') done"
