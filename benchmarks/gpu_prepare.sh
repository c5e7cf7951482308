#!/usr/bin/env bash
# Prepare, on a machine with network and TensorFlow, what benchmarks/gpu_check.sh needs on a
# GPU machine that has neither (JAX with CUDA, Python 3.12, no network access, reached
# through a command runner that carries at most 64 MiB per call):
#   - wheels of the pure-Python packages it lacks, for Python 3.12 (keras and its two small
#     dependencies, scikit-learn for the metrics, tqdm, pytest), in benchmarks/gpu_wheels/;
#   - NumPy exports of the parity fixtures' TF1 checkpoints (<prefix>.npz beside each);
#   - in benchmarks/gpu_variants/, the code (models, utils, benchmarks) of two commits from
#     the history for gpu_check.sh's VARIANTS part: `before` (01bb3cc) and `fewer`
#     (581483d, the four kernel-count changes of docs/training-step.md, "Fewer kernels per step").
# All three are git-ignored: send them along with the command that runs gpu_check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
rm -rf benchmarks/gpu_wheels && mkdir -p benchmarks/gpu_wheels
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any \
    -d benchmarks/gpu_wheels keras==3.15.1 namex optree scikit-learn joblib threadpoolctl \
    tqdm pytest pluggy iniconfig packaging pygments typing-extensions
"$PY" tools/export_checkpoint.py $(ls tests/fixtures/parity/*/*/model.ckpt.index | sed "s/\.index$//")
rm -rf benchmarks/gpu_variants
for variant in before:01bb3cc fewer:581483d; do
    mkdir -p "benchmarks/gpu_variants/${variant%%:*}"
    git archive "${variant#*:}" models utils benchmarks | tar -x -C "benchmarks/gpu_variants/${variant%%:*}"
done
du -sh benchmarks/gpu_wheels tests/fixtures/parity benchmarks/gpu_variants
