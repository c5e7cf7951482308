"""Where the JAX engine's pre-training step spends its time on this CPU, KGBD shape (20
joints, LSTM 128, f = 6) at batch 8: the parts compiled on their own under the engine's
options (forward; one gradient of the losses' sum; the four losses' own gradients, as the
step takes them; the four Adams), the whole step as training runs it, and XLA's FLOP count
of each part; the parts and the step alternated in three rounds (medians per round). Run
from the repository root:
    python3 docs/runs/2026-12-07-ynn/parts.py [BATCH]"""
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.getcwd())

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.benchmark import make_model  # noqa: E402
from models.engine_jax import _bind, _jit, compiler_options  # noqa: E402
from models.layers import adam_update  # noqa: E402
from models.training import Pretrainer  # noqa: E402

batch = int(sys.argv[1]) if len(sys.argv) > 1 else 8
rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(2048, 6, 20, 3)).astype(np.float32)
trainer = Pretrainer(make_model(20, 128), 0.0005, 6, jit=True, rng=np.random.default_rng(0))
x, frames = data[:batch], trainer._frame_indices
step = trainer._step
# copies: the epochs timed below donate the step's own buffers
values, frozen, states = jax.tree.map(lambda a: jax.numpy.array(a, copy=True), step.state())
bound = _bind(lambda x, *f: trainer.losses(x, *f), step.trained + step.frozen)
keys = [key for _, key in step.updates]
index = {id(v): i for i, v in enumerate(step.trained)}


def forward(vals, x, *f):
    return bound(list(vals) + list(frozen), x, *f)


def four_adams(values, states, grads):
    values, out = list(values), []
    for (opt, _), (s, m, v) in zip(step.updates, states):
        idx = [index[id(w)] for w in opt.variables_]
        s, new, m, v = adam_update(opt, s, [values[i] for i in idx], [grads[i] for i in idx], m, v)
        for i, value in zip(idx, new):
            values[i] = value
        out.append((s, m, v))
    return values, out


parts = {
    "forward (four losses)": (forward, (values, x, *frames)),
    "one gradient, of the losses' sum": (
        jax.grad(lambda v, x, *f: sum(forward(v, x, *f).values())), (values, x, *frames)),
    "four gradients, each loss its own": (
        lambda v, x, *f: [jax.grad(lambda w: forward(w, x, *f)[k])(v) for k in keys],
        (values, x, *frames)),
    "four Adams": (four_adams, (values, states, values)),
}


def median_ms(fn, *args, n=50):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(ts)), 2)


print(f"# JAX {jax.__version__}, batch {batch}, options {compiler_options()}")
compiled, gflop = {}, {}
for name, (fn, args) in parts.items():
    compiled[name] = _jit(fn)
    cost = compiled[name].lower(*args).compile().cost_analysis()
    gflop[name] = (cost[0] if isinstance(cost, list) else cost)["flops"] / 1e9
    jax.block_until_ready(compiled[name](*args))
order = [rng.choice(2048, batch, replace=False) for _ in range(50)]
trainer.epoch(data, order[:5])
rounds = {name: [] for name in list(parts) + ["the step, as training runs it"]}
for _ in range(3):
    for name, (_, args) in parts.items():
        rounds[name].append(median_ms(compiled[name], *args))
    t0 = time.perf_counter()
    trainer.epoch(data, order)
    rounds["the step, as training runs it"].append(round(1000 * (time.perf_counter() - t0) / len(order), 2))
for name, ms in rounds.items():
    flops = f"{gflop[name]:5.2f} GFLOP" if name in gflop else ""
    print(f"{name:36s} {ms} ms  {flops}")
