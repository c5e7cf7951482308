"""Tried: the four losses' gradients in two stages without vmap (as
docs/runs/2026-12-07-ynn/two_stage.py) with the four scales' LSTMs run as one recurrence
batched over a scale axis (their sizes and draws are the same, so each step's recurrent
product is one batched product; the weights stacked at call time). KGBD shape, batch 8
(or BATCH), under the engine's compiler options. Prints the largest difference from the engine's way
(one jax.grad per loss) on each optimiser's own variables, then per way the kernels
(optimised HLO) and the median time of the gradients in two rounds. Run from the
repository root:
    python3 docs/runs/2026-12-07-kernels/batched_two_stage.py [BATCH]"""
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
from models.layers import add_n, split_sizes  # noqa: E402
from models.sm_sge import reconstruct_all, slot_error  # noqa: E402
from models.training import Pretrainer  # noqa: E402

rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(2048, 6, 20, 3)).astype(np.float32)
trainer = Pretrainer(make_model(20, 128), 0.0005, 6, jit=True, rng=np.random.default_rng(0))
batch_size = int(sys.argv[1]) if len(sys.argv) > 1 else 8
x, frames = data[:batch_size], trainer._frame_indices
step, model = trainer._step, trainer.model
values, frozen, _ = step.state()
variables = step.trained + step.frozen
keys = [key for _, key in step.updates]


def recur(projected, w_h):
    """projected: per step [S, n_t, 4H]; w_h [S, H, 4H] -> per step h [S, n_t, H]."""
    h = c = None
    outputs = []
    for t, z in enumerate(projected):
        n = z.shape[1]
        if t > 0:
            h, c = h[:, :n], c[:, :n]
            z = z + jnp.einsum("snh,shg->sng", h, w_h)
        i, j, f, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(i) * jnp.tanh(j) if t == 0 else (
            jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(j))
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        outputs.append(h)
    return outputs


def batched_losses(feats, x, frame_indices, loss="l1", margin=0):
    """SMSGE.pretext_losses from given frame features, the scales' LSTMs batched."""
    draws = trainer.ragged
    batch = x.shape[0]
    sizes = [n * batch for n in draws.rows_per_step]
    coords = model.scale_coordinates(x)

    def by_slot(t, shift=0):
        return jnp.take(jnp.transpose(t, [1, 0, 2]), frame_indices + shift, axis=0)

    targets = {s: by_slot(t, margin) for s, t in model._targets(coords).items()}
    weight = draws.weight.astype(np.float32)
    scales = model.scales
    lstms = [model.lstms[s] for s in scales]
    hidden = model.lstm_size
    proj = jnp.stack([jnp.reshape(by_slot(lstm.project_input(feats[s])), [-1, 4 * hidden])
                      for s, lstm in zip(scales, lstms)])                      # [S, rows, 4H]
    for layer in range(len(lstms[0].kernels)):
        below = [lstm.input_dim if layer == 0 else hidden for lstm in lstms]
        w_h = jnp.stack([lstm.kernels[layer][d:] for lstm, d in zip(lstms, below)])
        out = recur(split_sizes(proj, sizes, axis=1), w_h)
        if layer + 1 < len(lstms[0].kernels):
            w_x = jnp.stack([lstm.kernels[layer + 1][:hidden] for lstm in lstms])
            b = jnp.stack([lstm.biases[layer + 1] for lstm in lstms])
            proj = jnp.einsum("srh,shg->srg", jnp.concatenate(out, 1), w_x) + b[:, None]
    out = jnp.concatenate(out, 1)                                              # [S, rows, H]
    losses = {}
    for i, s in enumerate(scales):
        preds = reconstruct_all(model.heads[s], out[i])
        losses[s] = add_n([jnp.sum(slot_error(jnp.reshape(p, [-1, batch, p.shape[-1]]),
                                              targets[t], loss, 1) * weight)
                           for t, p in preds.items()])
    return losses


whole = _bind(lambda x, *f: trainer.losses(x, *f), variables)
first = _bind(lambda x: model.frame_features(model.scale_coordinates(x)), variables)
second = _bind(lambda feats, x, f: batched_losses(feats, x, f), variables)


def per_loss(v, x, *f):
    return [jax.grad(lambda w: whole(list(w) + list(frozen), x, *f)[k])(list(v)) for k in keys]


def two_stages_batched(v, x, *f):
    feats, backward = jax.vjp(lambda w: first(list(w) + list(frozen), x), list(v))

    def rest(feats, w):
        losses = second(list(w) + list(frozen), feats, x, f[0])
        return sum(losses.values()), losses
    (to_feats, own), _ = jax.grad(rest, (0, 1), has_aux=True)(feats, list(v))
    out = []
    for k in keys:
        (shared,) = backward({n: g if n == k else jnp.zeros_like(g) for n, g in to_feats.items()})
        out.append([a + b for a, b in zip(shared, own)])
    return out


ways = {"one jax.grad per loss": _jit(per_loss),
        "two stages, no vmap, batched LSTMs": _jit(two_stages_batched)}
results = [way(values, x, *frames) for way in ways.values()]
index = {id(v): i for i, v in enumerate(step.trained)}
worst = max(float(np.max(np.abs(np.asarray(a[index[id(w)]]) - np.asarray(b[index[id(w)]])))
                  / (float(np.max(np.abs(np.asarray(a[index[id(w)]])))) + 1e-30))
            for (opt, _), a, b in zip(step.updates, *results) for w in opt.variables_)
print(f"batch {batch_size}: largest relative difference on each optimiser's own variables: {worst:.3g}")
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
    print(f"{name}: {kernels} kernels, {rounds} ms", flush=True)
