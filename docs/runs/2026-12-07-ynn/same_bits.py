"""The JAX engine's weights, optimiser states and losses after twelve pre-training steps at
batch 8 (KGBD shape), one step per call against ten (a block of ten, then a padded block
of two): the same bit for bit? Run from the repository root:
    python3 docs/runs/2026-12-07-ynn/same_bits.py"""
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.getcwd())

import numpy as np  # noqa: E402

from benchmarks.benchmark import make_model  # noqa: E402
from models.training import Pretrainer  # noqa: E402

rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(256, 6, 20, 3)).astype(np.float32)
order = [rng.choice(256, 8, replace=False) for _ in range(12)]
state = {}
for k in (1, 10):
    trainer = Pretrainer(make_model(20, 128), 0.0005, 6, jit=True, steps_per_call=k,
                         rng=np.random.default_rng(0))
    losses = trainer.epoch(data, order)
    state[k] = ([np.asarray(v.value) for v in trainer.model.trainable_variables]
                + [np.asarray(v.value) for v in trainer.optimiser_variables()],
                np.array([[step[s] for s in sorted(step)] for step in losses]))
(w1, l1), (w10, l10) = state[1], state[10]
print(f"weights and optimiser states ({len(w1)} arrays) the same bit for bit: "
      f"{all(np.array_equal(a, b) for a, b in zip(w1, w10))}; losses the same: "
      f"{np.array_equal(l1, l10)} (largest difference {np.max(np.abs(l1 - l10)):.3g})")
