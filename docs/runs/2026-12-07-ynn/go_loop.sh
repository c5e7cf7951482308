#!/bin/bash
# The JAX engine's pre-training epoch with one step per call and ten, once each loss is
# read from its own gradient's forward pass (the loop's body no longer runs every LSTM
# forward twice), alternated in two rounds at the KGBD shape (batch 8 and 256) and the KS20
# shape (batch 64). Run on an idle machine from the repository root:
#   bash docs/runs/2026-12-07-ynn/go_loop.sh > docs/runs/2026-12-07-ynn/go_loop.log 2>&1
here=$(dirname "$0")
echo "# $(date '+%F %T') $(python3 -c 'import jax; print("JAX", jax.__version__)') $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
for round in 1 2; do
  for shape in "8 100 20 128" "256 20 20 128" "64 20 25 256"; do
    for k in 1 10; do
      python3 "$here/time_options.py" products $shape $k 2>&1 | grep '^{'
    done
  done
done
echo "# $(date '+%F %T') done"
