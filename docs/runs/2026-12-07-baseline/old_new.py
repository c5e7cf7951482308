"""Milliseconds per pre-training step of one checkout on the JAX engine at the KGBD shape
(20 joints, LSTM 128, f = 6), epochs run as that checkout's training runs them: the code
before the state stayed on the device (one Pretrainer.step per batch, its losses fetched
after each) or after (Pretrainer.epoch, with its default steps per call). Synthetic data,
N(0, 0.3). One process per measurement, one JSON line; go.sh alternates two checkouts:

    python3 old_new.py TREE BATCH STEPS EPOCHS"""
import json
import os
import sys
import time

tree, batch, steps, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, tree)
os.chdir(tree)

import numpy as np  # noqa: E402

from benchmarks.benchmark import make_model  # noqa: E402
from models.training import Pretrainer  # noqa: E402

rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(2048, 6, 20, 3)).astype(np.float32)
order = [rng.choice(2048, batch, replace=False) for _ in range(steps)]
trainer = Pretrainer(make_model(20, 128), 0.0005, 6, jit=True, rng=np.random.default_rng(0))
new = hasattr(trainer, "epoch")


def run(batches):
    if new:
        trainer.epoch(data, batches)
    else:
        for i in batches:
            trainer.step(data[i])


run(order[:20])          # compiled before the timing
per_step = []
for _ in range(epochs):
    t0 = time.perf_counter()
    run(order)
    per_step.append(1000 * (time.perf_counter() - t0) / steps)
print(json.dumps(dict(tree=tree, new=new, batch=batch, ms=[round(x, 2) for x in per_step],
                      median=round(float(np.median(per_step)), 2))), flush=True)
