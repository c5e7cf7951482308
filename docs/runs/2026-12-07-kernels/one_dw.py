"""Tried: the LSTMs' recurrent weight gradient as one product per layer instead of one per
step. A jax.custom_vjp over a layer's whole ragged recurrence runs its backward pass step
by step for the states (the gates' derivatives from jax.vjp of the cell, so the same
formulas as autodiff) and then takes dW = concat(h_{t-1})^T concat(dz_t) in one product.
Patched into StackedLSTM._recur for the JAX engine; prints the single step's kernels and
products, the weights' largest relative difference after three steps (summation order
only), and ms per step over epochs of 100 steps, the two alternated in four rounds.
KGBD shape, batch 8. Run from the repository root:
    python3 docs/runs/2026-12-07-kernels/one_dw.py"""
import os
import re
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.getcwd())

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.benchmark import make_model  # noqa: E402
from models import layers  # noqa: E402
from models.training import Pretrainer  # noqa: E402

def cell(z, c_prev):
    i, j, f, o = jnp.split(z, 4, axis=-1)
    if c_prev is None:
        c = jax.nn.sigmoid(i) * jnp.tanh(j)
    else:
        c = jax.nn.sigmoid(f + 1.0) * c_prev + jax.nn.sigmoid(i) * jnp.tanh(j)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c

def _forward(projected, w_h):
    h = c = None
    hs, cs, zs = [], [], []
    for t, z in enumerate(projected):
        n = z.shape[0]
        if t > 0:
            h, c = h[:n], c[:n]
            z = z + h @ w_h
        cs.append(c)          # c_prev (None at t = 0)
        zs.append(z)
        h, c = cell(z, c)
        hs.append(h)
    return hs, zs, cs

@jax.custom_vjp
def recur(projected, w_h):
    return tuple(_forward(projected, w_h)[0])

def recur_fwd(projected, w_h):
    hs, zs, cs = _forward(projected, w_h)
    return tuple(hs), (hs, zs, cs, w_h)

def recur_bwd(res, dhs):
    hs, zs, cs, w_h = res
    T = len(zs)
    dzs = [None] * T
    dh_carry = dc_carry = None
    for t in range(T - 1, -1, -1):
        n = zs[t].shape[0]
        dh = dhs[t]
        dc = jnp.zeros_like(dh)
        if dh_carry is not None:
            m = dh_carry.shape[0]
            dh = dh.at[:m].add(dh_carry) if m < n else dh + dh_carry
            dc = dc.at[:m].add(dc_carry) if m < n else dc + dc_carry
        if t == 0:
            _, vjp = jax.vjp(lambda z: cell(z, None), zs[t])
            (dz,) = vjp((dh, dc))
        else:
            _, vjp = jax.vjp(cell, zs[t], cs[t])
            dz, dc_prev = vjp((dh, dc))
            dh_carry = dz @ w_h.T
            dc_carry = dc_prev
        dzs[t] = dz
    prev = jnp.concatenate([hs[t - 1][:zs[t].shape[0]] for t in range(1, T)], 0)
    dw = prev.T @ jnp.concatenate(dzs[1:], 0) if T > 1 else jnp.zeros_like(w_h)
    return tuple(dzs), dw

recur.defvjp(recur_fwd, recur_bwd)

orig = layers.StackedLSTM._recur
def patched(self, projected, w_h):
    return list(recur(tuple(projected), w_h))

batch = int(sys.argv[1]) if len(sys.argv) > 1 else 8
rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(2048, 6, 20, 3)).astype(np.float32)
order = [rng.choice(2048, batch, replace=False) for _ in range(100 if batch == 8 else 10)]
trainers = {}
for name in ("autodiff", "one dW"):
    layers.StackedLSTM._recur = orig if name == "autodiff" else patched
    tr = Pretrainer(make_model(20, 128), 0.0005, 6, jit=True, steps_per_call=1, rng=np.random.default_rng(0))
    tr.epoch(data, order[:3]); tr.sync()
    trainers[name] = tr
    step = tr._step
    text = step.compiled.lower(*step.state(), data[order[0]], *tr._frame_indices).compile().as_text()
    entry = [c for c in re.split(r"\n(?=\S)", text) if c.startswith("ENTRY")][0]
    kern = len(re.findall(r"= \S+ (fusion|dot|copy|concatenate)\(", entry))
    print(name, "kernels", kern, "dots", len(re.findall(r"= \S+ dot\(", entry)), flush=True)
# same start: compare the weights after the same steps
a = [np.asarray(v.value) for v in trainers["autodiff"].model.trainable_variables]
b = [np.asarray(v.value) for v in trainers["one dW"].model.trainable_variables]
print("max rel diff of weights after 3 steps", max(float(np.max(np.abs(x - y)) / (np.max(np.abs(x)) + 1e-30)) for x, y in zip(a, b)))
ms = {k: [] for k in trainers}
for _ in range(4):
    for k, tr in trainers.items():
        t0 = time.perf_counter(); tr.epoch(data, order); ms[k].append(round(1000 * (time.perf_counter() - t0) / len(order), 2))
print(ms)
