"""Time one tree's pre-training step, as training runs it (state kept on the device, each
step waited for), for comparing two versions of the code on one machine in alternated runs:

    python3 time_step.py TREE ENGINE BATCH STEPS [JOINTS LSTM]   # prints one JSON line

TREE: a checkout of the project; ENGINE: tensorflow or jax. Synthetic data (N(0, 0.3)),
f = 6, XLA on; kernels per step from the tree's own benchmark (compiled_step_cost). Also the
Re-ID stage's step on cached encodings (164 identities, f + 1 prefixes), as it runs: each
batch synced and its loss and logits fetched."""
import json
import os
import sys
import time

tree, engine, batch, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
joints, lstm = (int(sys.argv[5]), int(sys.argv[6])) if len(sys.argv) > 6 else (20, 128)
os.environ["KERAS_BACKEND"] = engine
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, tree)
os.chdir(tree)

import numpy as np  # noqa: E402

from benchmarks.benchmark import compiled_step_cost, make_model  # noqa: E402
from models.training import Pretrainer  # noqa: E402

rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(2048, 6, joints, 3)).astype(np.float32)
order = [rng.choice(2048, batch, replace=False) for _ in range(steps + 1)]
trainer = Pretrainer(make_model(joints, lstm), 0.0005, 6, jit=True, rng=np.random.default_rng(0))
t0 = time.perf_counter()
trainer.step(data[order[0]])
compile_s = time.perf_counter() - t0
cost = compiled_step_cost(trainer, data[order[0]])
waited = []
for i in order[1:]:
    t0 = time.perf_counter()
    losses = trainer._queue(data[i])
    float(next(iter(losses.values())))
    waited.append(time.perf_counter() - t0)
trainer.sync()

from models.sm_sge import ReIDClassifier  # noqa: E402
from models.training import ReIDTrainer  # noqa: E402
emb = trainer.model.embedding_size
encodings = rng.normal(size=(batch * 8, 7, emb)).astype(np.float32)
labels = rng.integers(0, 164, size=batch * 8)
reid = ReIDTrainer(ReIDClassifier(emb, 164), 0.0025)
reid.train_batch(encodings[:batch], labels[:batch])
reid_waited = []
for r in range(max(20, steps // 2)):
    s = (r % 8) * batch
    t0 = time.perf_counter()
    reid.train_batch(encodings[s:s + batch], labels[s:s + batch])
    reid_waited.append(time.perf_counter() - t0)
kernels = cost.get("kernels") or {}
print(json.dumps(dict(tree=tree, engine=engine, batch=batch, joints=joints, lstm=lstm,
                      steps=steps, compile_s=round(compile_s, 2),
                      kernels=kernels.get("total"), fusions=kernels.get("fusions"),
                      dots=kernels.get("dots"),
                      step_ms_median=round(1000 * float(np.median(waited)), 2),
                      step_ms_p90=round(1000 * float(np.percentile(waited, 90)), 2),
                      reid_ms_median=round(1000 * float(np.median(reid_waited)), 3))))
