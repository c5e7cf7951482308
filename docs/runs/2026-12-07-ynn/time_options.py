"""The JAX engine's pre-training epoch under its CPU compiler options and under XLA's
defaults (models/engine_jax.py CPU_COMPILER_OPTIONS emptied), milliseconds per step over
epochs as training runs them, plus the step's kernels (optimised HLO) and how many of them
YNNPACK runs. One process per measurement; go.sh alternates the two:

    python3 docs/runs/2026-12-07-ynn/time_options.py MODE BATCH STEPS [JOINTS LSTM K]

MODE: "products" (the engine's options) or "library" (XLA's defaults). Prints one JSON line."""
import json
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.getcwd())

import numpy as np  # noqa: E402

from benchmarks.benchmark import compiled_step_cost, make_model  # noqa: E402
from models import engine_jax  # noqa: E402
from models.training import Pretrainer  # noqa: E402

mode, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
joints, lstm, k = (int(a) for a in (sys.argv[4:7] if len(sys.argv) > 6 else (20, 128, 1)))
if mode == "library":
    engine_jax.CPU_COMPILER_OPTIONS = {}
rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(2048, 6, joints, 3)).astype(np.float32)
order = [rng.choice(2048, batch, replace=False) for _ in range(steps)]
trainer = Pretrainer(make_model(joints, lstm), 0.0005, 6, jit=True, steps_per_call=k,
                     rng=np.random.default_rng(0))
t0 = time.perf_counter()
trainer.epoch(data, order[:k])
compile_s = time.perf_counter() - t0
ms = []
for _ in range(3):
    t0 = time.perf_counter()
    trainer.epoch(data, order)
    ms.append(round(1000 * (time.perf_counter() - t0) / steps, 2))
step = trainer._step
text = step.compiled.lower(*step.state(), data[order[0]], *trainer._frame_indices).compile().as_text()
cost = compiled_step_cost(trainer, data[order[0]])
print(json.dumps(dict(mode=mode, options=engine_jax.compiler_options(), batch=batch,
                      joints=joints, lstm=lstm, steps_per_call=k, steps=steps,
                      compile_s=round(compile_s, 1), ms_per_step=ms,
                      ms_median=float(np.median(ms)), kernels=cost["kernels"]["total"],
                      ynn_fusions=text.count('"kind":"__ynn_fusion"'))), flush=True)
