"""What one compiled kernel costs on this CPU when it has almost nothing to do: a chain of
N steps x = tanh(x W), W 8 x 8 (two kernels each: the product, the tanh), timed as one
jitted call, its kernels counted as the benchmark counts them; the time per call divided
by the kernels is what a kernel costs with next to no work. JAX on the CPU, under the JAX
engine's compiler options. Run from the repository root:
    python3 docs/runs/2026-12-07-ynn/launch_cost.py"""
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.getcwd())

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.benchmark import hlo_kernels  # noqa: E402
from models.engine_jax import _jit  # noqa: E402


def chain(n):
    def f(x, w):
        for _ in range(n):
            x = jnp.tanh(x @ w)
        return x
    return _jit(f)


x = jnp.ones((8, 8), jnp.float32)
w = jnp.eye(8, dtype=jnp.float32)
ms, kernels = {}, {}
for n in (250, 500, 1000, 1500, 2000):
    f = chain(n)
    f(x, w).block_until_ready()
    ts = []
    for _ in range(30):
        t0 = time.perf_counter()
        f(x, w).block_until_ready()
        ts.append(time.perf_counter() - t0)
    ms[n] = 1000 * float(np.median(ts))
    kernels[n] = hlo_kernels(f.lower(x, w).compile().as_text())["total"]
    print(f"{n} steps: {kernels[n]} kernels, {ms[n]:.3f} ms per call, "
          f"{1000 * ms[n] / kernels[n]:.2f} us per kernel")
