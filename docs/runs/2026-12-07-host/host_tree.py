"""Host milliseconds per call of one checkout's JAX pre-training step, one step per call,
the device idle before each call (as host_idle.py), with the step's kernels: for the table
of the four kernel-count changes in docs/training-step.md ("Fewer kernels per step"). KGBD shape
at batch 8 and 256. One process per checkout:
    python3 docs/runs/2026-12-07-host/host_tree.py TREE          # prints one JSON line"""
import json
import os
import sys
import time

tree = os.path.abspath(sys.argv[1])
os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, tree)
os.chdir(tree)

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.benchmark import compiled_step_cost, make_model  # noqa: E402
from models.training import Pretrainer  # noqa: E402

rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(2048, 6, 20, 3)).astype(np.float32)
out = dict(tree=sys.argv[1])
for batch, calls in ((8, 40), (256, 5)):
    order = [rng.choice(2048, batch, replace=False) for _ in range(calls + 1)]
    kwargs = {"steps_per_call": 1} if "steps_per_call" in Pretrainer.__init__.__code__.co_varnames else {}
    trainer = Pretrainer(make_model(20, 128), 0.0005, 6, jit=True, rng=np.random.default_rng(0), **kwargs)
    jax.block_until_ready(trainer._queue(data[order[0]]))      # compiled before the timing
    host = []
    for i in order[1:]:
        t0 = time.perf_counter()
        losses = trainer._queue(data[i])
        host.append(time.perf_counter() - t0)
        jax.block_until_ready(losses)
    out[f"host_ms_b{batch}"] = round(1000 * float(np.median(host)), 2)
    if batch == 8:
        out["kernels"] = (compiled_step_cost(trainer, data[order[0]]).get("kernels") or {}).get("total")
    trainer.sync()
print(json.dumps(out), flush=True)
