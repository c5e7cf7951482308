"""The four losses' gradients of the JAX pre-training step taken two ways, KGBD shape at
batch 8, under the engine's compiler options: as the engine takes them (one jax.grad per
loss, compiled together), and in two stages without vmap (one backward pass of the LSTMs
and heads for the losses' sum, then the MGRN's backward pass once per loss, from that
loss's cotangent of its own scale's features). Prints the largest difference between the
two on each optimiser's own variables, and per way the kernels (optimised HLO) and the
median time, in two rounds. Run from the repository root:
    python3 docs/runs/2026-12-07-ynn/two_stage.py"""
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.getcwd())

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.benchmark import hlo_kernels, make_model  # noqa: E402
from models.engine_jax import _bind, _jit  # noqa: E402
from models.training import Pretrainer  # noqa: E402

rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(2048, 6, 20, 3)).astype(np.float32)
trainer = Pretrainer(make_model(20, 128), 0.0005, 6, jit=True, rng=np.random.default_rng(0))
x, frames = data[:8], trainer._frame_indices
step, model = trainer._step, trainer.model
values, frozen, _ = step.state()
variables = step.trained + step.frozen
keys = [key for _, key in step.updates]
whole = _bind(lambda x, *f: trainer.losses(x, *f), variables)
first = _bind(lambda x: model.frame_features(model.scale_coordinates(x)), variables)


def _second(feats, x, *f):
    """The losses from given frame features (the model's own MGRN call replaced)."""
    model.frame_features = lambda coords: feats
    try:
        return trainer.losses(x, *f)
    finally:
        del model.frame_features


second = _bind(_second, variables)


def per_loss(v, x, *f):
    return [jax.grad(lambda w: whole(list(w) + list(frozen), x, *f)[k])(list(v)) for k in keys]


def two_stages(v, x, *f):
    feats, backward = jax.vjp(lambda w: first(list(w) + list(frozen), x), list(v))

    def rest(feats, w):
        losses = second(list(w) + list(frozen), feats, x, *f)
        return sum(losses.values()), losses
    (to_feats, own), _ = jax.grad(rest, (0, 1), has_aux=True)(feats, list(v))
    out = []
    for k in keys:   # loss k reaches only its own scale's features and its own LSTM and heads
        (shared,) = backward({n: g if n == k else jnp.zeros_like(g) for n, g in to_feats.items()})
        out.append([a + b for a, b in zip(shared, own)])
    return out


ways = {"one jax.grad per loss": _jit(per_loss), "two stages, no vmap": _jit(two_stages)}
results = [way(values, x, *frames) for way in ways.values()]
index = {id(v): i for i, v in enumerate(step.trained)}
worst = max(float(np.max(np.abs(np.asarray(a[index[id(w)]]) - np.asarray(b[index[id(w)]]))))
            for (opt, _), a, b in zip(step.updates, *results) for w in opt.variables_)
print(f"largest difference on each optimiser's own variables: {worst}")
for name, way in ways.items():
    kernels = hlo_kernels(way.lower(values, x, *frames).compile().as_text())["total"]
    rounds = []
    for _ in range(2):
        times = []
        for _ in range(60):
            t0 = time.perf_counter()
            jax.block_until_ready(way(values, x, *frames))
            times.append(time.perf_counter() - t0)
        rounds.append(round(1000 * float(np.median(times)), 2))
    print(f"{name}: {kernels} kernels, {rounds} ms")
