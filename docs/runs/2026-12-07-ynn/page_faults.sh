#!/bin/bash
# Minor page faults of the whole process (compilation, a first epoch and three timed epochs
# of 20 steps, KGBD shape, batch 256) on the JAX engine, one step per call against ten:
# memory the step's call takes fresh from the system and gives back. Run from the
# repository root:
#   bash docs/runs/2026-12-07-ynn/page_faults.sh > docs/runs/2026-12-07-ynn/page_faults.log 2>&1
here=$(dirname "$0")
echo "# $(date '+%F %T') $(python3 -c 'import jax; print("JAX", jax.__version__)') $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
for k in 1 10; do
  /usr/bin/time -v python3 "$here/time_options.py" products 256 20 20 128 $k 2>&1 \
    | grep -E '^\{|Minor|Maximum resident|Elapsed'
done
