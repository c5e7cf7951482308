"""The JAX engine's pre-training epoch (100 steps, KGBD shape, batch 8) with one step per
call and with ten (a loop on the device), alternated in two rounds, under the XLA_FLAGS of
the environment: milliseconds per step. Run from the repository root:

    for f in "" --xla_cpu_copy_insertion_use_region_analysis=true \
             --xla_cpu_enable_concurrency_optimized_scheduler=true \
             --xla_cpu_multi_thread_eigen=false; do
        XLA_FLAGS="$f" python3 docs/runs/2026-12-07-blocks/jax_flags.py; done
"""
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.getcwd())

import numpy as np  # noqa: E402

from benchmarks.benchmark import make_model  # noqa: E402
from models.training import Pretrainer  # noqa: E402

rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(2048, 6, 20, 3)).astype(np.float32)
order = [rng.choice(2048, 8, replace=False) for _ in range(100)]
trainers = {k: Pretrainer(make_model(20, 128), 0.0005, 6, jit=True, steps_per_call=k,
                          rng=np.random.default_rng(0)) for k in (1, 10)}
for trainer in trainers.values():
    trainer.epoch(data, order[:10])          # compiled before the timing
ms = {1: [], 10: []}
for _ in range(2):
    for k, trainer in trainers.items():
        t0 = time.perf_counter()
        trainer.epoch(data, order)
        ms[k].append(round(1000 * (time.perf_counter() - t0) / len(order), 1))
print(repr(os.environ.get("XLA_FLAGS", "")), "ms per step, one per call:", ms[1], "ten per call:", ms[10])
