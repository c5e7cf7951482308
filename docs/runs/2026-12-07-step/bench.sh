#!/usr/bin/env bash
# The training step before and after, both engines, on this machine (background runs paused).
# The TensorFlow half was run again alone with the same command (its first run overlapped
# another benchmark): benchmark_tensorflow.log and bench_step_tf.json are that rerun.
cd /work/main
git rev-parse --short HEAD; date; lscpu | grep "Model name"
python3 benchmarks/benchmark.py --sections step --backend jax --out /root/bench_step_jax.json 2>&1 | grep -v -i "warn"
date
python3 benchmarks/benchmark.py --sections step --backend tensorflow --out /root/bench_step_tf.json 2>&1 | grep -v -i "warn"
date
