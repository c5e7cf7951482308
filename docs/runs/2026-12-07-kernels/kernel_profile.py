"""Where one checkout's JAX pre-training step spends its kernel time on the CPU: ten steps
(one per call) under jax.profiler, the kernels' durations summed by kind (the name
without its number), per step. Kernels run on two threads, so their sum can exceed the
step's wall time. python3 profile.py TREE BATCH"""
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time

tree, batch = os.path.abspath(sys.argv[1]), int(sys.argv[2])
os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, tree)
os.chdir(tree)

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.benchmark import make_model  # noqa: E402
from models.training import Pretrainer  # noqa: E402

rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(512, 6, 20, 3)).astype(np.float32)
order = [rng.choice(512, batch, replace=False) for _ in range(12)]
kwargs = {"steps_per_call": 1} if "steps_per_call" in Pretrainer.__init__.__code__.co_varnames else {}
trainer = Pretrainer(make_model(20, 128), 0.0005, 6, jit=True, rng=np.random.default_rng(0), **kwargs)
for i in order[:2]:
    jax.block_until_ready(trainer._queue(data[i]))      # compiled before the trace
folder = tempfile.mkdtemp()
with jax.profiler.trace(folder, create_perfetto_trace=True):
    t0 = time.perf_counter()
    losses = [trainer._queue(data[i]) for i in order[2:]]
    jax.block_until_ready(losses)
    wall = (time.perf_counter() - t0) / 10
trace = glob.glob(f"{folder}/**/*.trace.json.gz", recursive=True)[0]
time_by, count_by = collections.Counter(), collections.Counter()
for event in json.load(gzip.open(trace))["traceEvents"]:
    name = event.get("name", "")
    if event.get("ph") != "X" or "dur" not in event or name.startswith("$") or "::" in name \
            or "Pjit" in name or "asarray" in name:
        continue                                           # Python frames, runtime, transfers
    kind = re.sub(r"\.\d+$", "", name)
    time_by[kind] += event["dur"] / 10 / 1000
    count_by[kind] += 1 / 10
print(f"# {sys.argv[1]}: {1000 * wall:.1f} ms per step wall, kernels {sum(count_by.values()):.0f} "
      f"per step taking {sum(time_by.values()):.1f} ms")
for kind, ms in time_by.most_common(8):
    print(f"#   {ms:6.2f} ms  {count_by[kind]:6.1f} per step  {kind}")
