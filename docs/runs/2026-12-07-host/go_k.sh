#!/bin/bash
# The JAX engine's pre-training epoch at ten and twenty steps per compiled call, alternated
# in two rounds at the KGBD shape (batch 8 and 256) and the KS20 shape (batch 64), through
# docs/runs/2026-12-07-ynn/time_options.py (the engine's compiler options). Run on an idle
# machine from the repository root:
#   bash docs/runs/2026-12-07-host/go_k.sh > docs/runs/2026-12-07-host/go_k.log 2>&1
echo "# $(date '+%F %T') $(python3 -c 'import jax; print("JAX", jax.__version__)') $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
for round in 1 2; do
  for shape in "8 100 20 128" "256 20 20 128" "64 20 25 256"; do
    for k in 10 20; do
      python3 docs/runs/2026-12-07-ynn/time_options.py products $shape $k 2>&1 | grep '^{'
    done
  done
done
echo "# $(date '+%F %T') done"
