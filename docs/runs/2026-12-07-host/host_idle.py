"""Host milliseconds per pre-training step on the JAX engine with the device idle: each
call is timed from its start until it returns, after the previous call's steps are done,
so the host's own work (preparing the block, passing the state in, dispatching) is not
slowed by the steps running on the same cores, as it is on a 2-core CPU when calls queue
up (docs/runs/2026-12-07-blocks/host_time.py). KGBD shape at batch 256 and 8. Run from the
repository root:
    python3 docs/runs/2026-12-07-host/host_idle.py [K ...]     (default: 1 10 20)"""
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.getcwd())

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.benchmark import make_model  # noqa: E402
from models.training import Pretrainer  # noqa: E402

per_call = [int(a) for a in sys.argv[1:]] or [1, 10, 20]
rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(2048, 6, 20, 3)).astype(np.float32)
for batch, calls in ((256, 5), (8, 40)):
    for k in per_call:
        order = [rng.choice(2048, batch, replace=False) for _ in range(k * calls)]
        trainer = Pretrainer(make_model(20, 128), 0.0005, 6, jit=True, steps_per_call=k,
                             rng=np.random.default_rng(0))
        trainer.epoch(data, order[:k])                     # compiled before the timing
        host = []
        for c in range(calls):
            block = order[c * k:(c + 1) * k]
            t0 = time.perf_counter()
            out = trainer._queue(data[block[0]]) if k == 1 else trainer._queue_block(data, block)[0]
            host.append(time.perf_counter() - t0)
            jax.block_until_ready(out)                     # the device idle before the next call
        trainer.sync()
        print(f"batch {batch}, {k} step(s) per call: host {1000 * np.median(host):.2f} ms per call, "
              f"{1000 * np.median(host) / k:.3f} ms per step (median over {calls} calls)", flush=True)
