#!/bin/bash
# The JAX engine's CPU compiler options against XLA's defaults, alternated in two rounds, at
# the KGBD shape (batch 8 and 256; batch 8 also with ten steps per call) and the KS20 shape
# (batch 64, 25 joints, LSTM 256). Run on an idle machine from the repository root:
#   bash docs/runs/2026-12-07-ynn/go.sh > docs/runs/2026-12-07-ynn/go.log 2>&1
here=$(dirname "$0")
echo "# $(date '+%F %T') $(python3 -c 'import jax; print("JAX", jax.__version__)') $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
for round in 1 2; do
  for shape in "8 100" "8 100 20 128 10" "256 12" "64 10 25 256 1"; do
    for mode in library products; do
      python3 "$here/time_options.py" $mode $shape 2>&1 | grep '^{'
    done
  done
done
echo "# $(date '+%F %T') done"
