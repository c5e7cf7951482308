"""Host milliseconds per pre-training step on the JAX engine: the time for a call to
return before its steps are done (preparing the batch or block, dispatching), one step per
call and ten (or the steps per call given as arguments), KGBD shape at batch 256 and 8;
the device's time is waited for apart. Run from the repository root:
    python3 docs/runs/2026-12-07-blocks/host_time.py [K ...]"""
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.getcwd())

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.benchmark import make_model  # noqa: E402
from models.training import Pretrainer  # noqa: E402

per_call = [int(a) for a in sys.argv[1:]] or [1, 10]
rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(2048, 6, 20, 3)).astype(np.float32)
for batch, calls in ((256, 3), (8, 30)):
    span = max(per_call)   # steps timed per call of the timing loop
    order = [rng.choice(2048, batch, replace=False) for _ in range(span * calls)]
    for k in per_call:
        trainer = Pretrainer(make_model(20, 128), 0.0005, 6, jit=True, steps_per_call=k,
                             rng=np.random.default_rng(0))
        trainer.epoch(data, order[:span])                 # compiled before the timing
        host = []
        for c in range(calls):
            block = order[c * span:(c + 1) * span]
            t0 = time.perf_counter()
            if k == 1:
                out = [trainer._queue(data[i]) for i in block]
            else:
                out = [trainer._queue_block(data, list(block[j:j + k]))[0]
                       for j in range(0, span, k)]
            host.append((time.perf_counter() - t0) / len(block))
            jax.block_until_ready(out)
        trainer.sync()
        print(f"batch {batch}, {k} step(s) per call: host {1000 * np.median(host):.2f} ms per "
              f"step (median over {calls} rounds of {span} steps)")
