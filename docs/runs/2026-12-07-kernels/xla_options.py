"""One JAX pre-training step per call at the KGBD shape, batch 8, with the engine's CPU
compiler options plus EXTRA (a JSON object of XLA options; a jaxlib that rejects one
compiles with none, as the engine does: the printed options are those in force). ms per
step over three epochs of 100 steps. Run from the repository root, alternated with '{}':
    python3 docs/runs/2026-12-07-kernels/xla_options.py [EXTRA]"""
import json
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.getcwd())

import numpy as np  # noqa: E402

from benchmarks.benchmark import make_model  # noqa: E402
from models import engine_jax  # noqa: E402
from models.training import Pretrainer  # noqa: E402

extra = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
engine_jax.CPU_COMPILER_OPTIONS = dict(engine_jax.CPU_COMPILER_OPTIONS, **extra)
rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(2048, 6, 20, 3)).astype(np.float32)
order = [rng.choice(2048, 8, replace=False) for _ in range(100)]
tr = Pretrainer(make_model(20, 128), 0.0005, 6, jit=True, steps_per_call=1, rng=np.random.default_rng(0))
t0 = time.perf_counter(); tr.epoch(data, order[:2]); c = time.perf_counter() - t0
ms = []
for _ in range(3):
    t0 = time.perf_counter(); tr.epoch(data, order); ms.append(round(1000 * (time.perf_counter() - t0) / 100, 2))
print(extra, "options", engine_jax.compiler_options(), "compile", round(c, 1), "ms", ms, flush=True)
