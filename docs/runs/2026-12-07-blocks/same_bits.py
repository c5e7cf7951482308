"""Four pre-training steps (XLA on) one per compiled call and three per call (blocks of 3
and 1, the second padded), from the same weights: are the losses, weights and optimiser
states the same bit for bit? Run from the repository root:

    python3 docs/runs/2026-12-07-blocks/same_bits.py ENGINE BATCH JOINTS LSTM
"""
import os
import sys

os.environ["KERAS_BACKEND"] = sys.argv[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.getcwd())

import numpy as np  # noqa: E402

from benchmarks.benchmark import make_model  # noqa: E402
from models.training import Pretrainer  # noqa: E402

batch, joints, lstm = (int(a) for a in sys.argv[2:5])
rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(1024, 6, joints, 3)).astype(np.float32)
order = [rng.choice(1024, batch, replace=False) for _ in range(4)]
runs = []
for k in (1, 3):
    trainer = Pretrainer(make_model(joints, lstm), 0.0005, 6, jit=True, steps_per_call=k,
                         rng=np.random.default_rng(0))
    losses = trainer.epoch(data, order)
    runs.append((np.array([[step[s] for s in sorted(step)] for step in losses]),
                 [np.asarray(v.numpy()) for v in trainer.model.trainable_variables
                  + trainer.optimiser_variables()]))
(l1, w1), (l3, w3) = runs
print(f"{sys.argv[1]} batch {batch}, {joints} joints, LSTM {lstm}: "
      f"losses {'equal' if np.array_equal(l1, l3) else 'differ'} "
      f"(largest relative difference {np.max(np.abs(l1 - l3) / np.abs(l1)):.1e}), "
      f"weights and optimiser states {'equal' if all(np.array_equal(a, b) for a, b in zip(w1, w3)) else 'differ'} "
      f"(largest difference {max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w3)):.1e})")
