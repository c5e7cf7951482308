"""How fast this CPU multiplies matrices of the shapes in the KGBD pre-training step at batch
8 (rows 168: all of a step's slots, as the heads and the second LSTM layer's input see
them; 48 and 8: one recurrent step's most and fewest rows), and a large product, on JAX
(under the engine's compiler options) or TensorFlow with XLA. Each product is followed by
a tanh and feeds the next round, 20 rounds in one compiled call, so none is hoisted out.
Run from the repository root:
    python3 docs/runs/2026-12-07-ynn/products.py jax|tensorflow"""
import os
import sys
import time

import numpy as np

engine = sys.argv[1]
os.environ["KERAS_BACKEND"] = engine
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.getcwd())
ROUNDS = 20
SHAPES = [(168, 128, 512), (48, 256, 512), (8, 256, 512), (2048, 256, 512)]


def compiled(m, n):
    """rounds of acc += tanh(a @ (b + tiny * acc[0, 0])) as one compiled function."""
    if engine == "jax":
        import jax
        import jax.numpy as jnp

        from models.engine_jax import _jit

        def f(a, b):
            def body(_, acc):
                return acc + jnp.tanh(a @ (b + acc[0, 0] * 1e-9))
            return jax.lax.fori_loop(0, ROUNDS, body, jnp.zeros((m, n)))
        return _jit(f), jnp.asarray
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def g(a, b):
        acc = tf.zeros((m, n))
        for _ in range(ROUNDS):
            acc = acc + tf.tanh(a @ (b + acc[0, 0] * 1e-9))
        return acc
    return g, tf.constant


def wait(result):
    return result.block_until_ready() if hasattr(result, "block_until_ready") else result.numpy()


rng = np.random.default_rng(0)
for m, k, n in SHAPES:
    fn, convert = compiled(m, n)
    a = convert(rng.random((m, k), dtype=np.float32))
    b = convert(rng.random((k, n), dtype=np.float32))
    for _ in range(5):
        wait(fn(a, b))
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        wait(fn(a, b))
        times.append(time.perf_counter() - t0)
    per_product = float(np.median(times)) / ROUNDS
    print(f"{engine} {m}x{k} @ {k}x{n}: {1e6 * per_product:8.1f} us per product, "
          f"{2 * m * k * n / per_product / 1e9:6.1f} GFLOP/s")
