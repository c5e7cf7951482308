#!/usr/bin/env bash
# TF pre-training step before (9c31562) and after the Keras 3 change, and the JAX step,
# timed alternately in one run on one machine (two rounds).
OLD=/tmp/oldcode2; NEW=/work/main
snippet='
import sys, json
sys.path.insert(0, sys.argv[1])
from benchmarks.benchmark import time_pretrain
ks = time_pretrain(64, 6, "ragged", True, 15)
kg = time_pretrain(256, 6, "ragged", True, 8, joints=20, lstm=128)
ref = time_pretrain(64, 6, "per_draw", False, 8) if "tf" in sys.argv[2] else dict(step_s=None)
print(json.dumps(dict(tree=sys.argv[2], ks20_step_s=ks["step_s"], kgbd_step_s=kg["step_s"],
                      ks20_reference_structure_step_s=ref["step_s"])))
'
for round in 1 2; do
  KERAS_BACKEND=tensorflow python3 -c "$snippet" $OLD "old-tf" 2>/dev/null | tail -1
  KERAS_BACKEND=tensorflow python3 -c "$snippet" $NEW "new-tf" 2>/dev/null | tail -1
  KERAS_BACKEND=jax python3 -c "$snippet" $NEW "new-jax" 2>/dev/null | tail -1
done
