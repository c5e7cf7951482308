#!/bin/bash
# The benchmark's step section on both engines, one after the other, on an idle machine:
# the pre-training step before / with its state kept on the device / ten steps per compiled
# call, at the KGBD shape (batch 256 and 8) and the KS20 shape (batch 64).
# Run from the repository root: bash docs/runs/2026-12-07-blocks/go.sh > go.log 2>&1
here=$(dirname "$0")
for engine in tensorflow jax; do
  echo "== $(date '+%F %T') $engine"
  /usr/bin/time -v python3 benchmarks/benchmark.py --sections step --backend $engine \
      --out "$here/step_$engine.json" 2>&1 | grep -v -i "warn\|onednn\|absl\|I0000\|W0000"
done
echo "== $(date '+%F %T') done"
