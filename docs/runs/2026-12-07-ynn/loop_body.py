"""What XLA makes of the JAX pre-training step on its own and as the body of the ten-step
loop (KGBD shape, batch 8, under the engine's compiler options): products (dot
instructions, inside fusions or not) and fusions in the optimised HLO, and milliseconds
per step over epochs, alternated in three rounds. Run from the repository root:
    python3 docs/runs/2026-12-07-ynn/loop_body.py"""
import os
import re
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.getcwd())

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.benchmark import make_model  # noqa: E402
from models.training import Pretrainer  # noqa: E402

rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(2048, 6, 20, 3)).astype(np.float32)
order = [rng.choice(2048, 8, replace=False) for _ in range(100)]
trainers = {k: Pretrainer(make_model(20, 128), 0.0005, 6, jit=True, steps_per_call=k,
                          rng=np.random.default_rng(0)) for k in (1, 10)}
for k, trainer in trainers.items():
    trainer.epoch(data, order[:10])          # compiled before the timing
    step = trainer._step
    if k == 1:
        lowered = step.compiled.lower(*step.state(), data[order[0]], *trainer._frame_indices)
    else:
        stacked = [np.stack([f] * k) for f in trainer._frame_indices]
        lowered = step.compiled_block.lower(*step.state(), trainer._resident[1],
                                            jnp.asarray(np.stack(order[:k]), jnp.int32),
                                            jnp.int32(k), *stacked)
    text = lowered.compile().as_text()
    print(f"{k} step(s) per call: {len(re.findall(r' dot[(]', text))} products, "
          f"{len(re.findall(r' fusion[(]', text))} fusions in the optimised HLO")
ms = {1: [], 10: []}
for _ in range(3):
    for k, trainer in trainers.items():
        t0 = time.perf_counter()
        trainer.epoch(data, order)
        ms[k].append(round(1000 * (time.perf_counter() - t0) / len(order), 2))
print("ms per step, one per call:", ms[1], "ten per call:", ms[10])
