#!/usr/bin/env bash
# The pre-training step before and after the kernel-count changes, alternated: each shape
# and engine timed from the two checkouts in turn, twice. BEFORE and AFTER: checkouts.
set -u
BEFORE=${1:?checkout before}; AFTER=${2:?checkout after}
T="python3 $(dirname "$0")/time_step.py"
for round in 1 2; do
  for tree in "$BEFORE" "$AFTER"; do
    $T "$tree" jax 8 300
    $T "$tree" jax 256 50
    $T "$tree" tensorflow 8 300
    $T "$tree" tensorflow 256 50
    $T "$tree" tensorflow 64 50 25 256      # the KS20 shape
  done
done
