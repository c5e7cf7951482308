#!/usr/bin/env bash
# The JAX engine on a GPU machine without TensorFlow or network access, reached through a
# command runner that carries at most 64 MiB per call: run from the repository root after
# benchmarks/gpu_prepare.sh, carrying benchmarks/gpu_wheels and the fixtures' *.ckpt.npz
# exports. Writes everything under $OUT (default ./gpu_out):
#   device.txt       nvidia-smi, JAX version and devices
#   benchmark.json   size, pre-training step (KS20 and KGBD shapes), Re-ID epoch, encoding
#   parity_*.txt     tools/parity_report.py at the highest matmul precision (float32
#                    products, as on a CPU) and at JAX's GPU default (TF32 tensor cores)
#   variants.jsonl   with VARIANTS=1: the pre-training step of this code and of the two
#                    trees gpu_prepare.sh puts in benchmarks/gpu_variants/ (before and
#                    after the four kernel-count changes), one JSON line per tree and batch
#                    size from docs/runs/2026-12-07-step2/time_step.py: kernels, compile
#                    time, step median and p90 (VARIANT_BATCHES, default "256 8"); and
#                    batched_two_stage.txt (docs/runs/2026-12-07-kernels/); up
#                    to VARIANT_S seconds (default 100) per run, so pair it with a short
#                    SECTIONS (e.g. SECTIONS=size) to stay within one command
# Each part has its own time limit so that the whole stays under 8 minutes. SECTIONS
# chooses the benchmark's sections (SECTIONS=step BENCH_S=300: the training step before,
# after and in blocks of steps per compiled call, with kernels and compile times).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
DEPS=${DEPS:-/tmp/smsge_deps}
PY=${PYTHON:-python3}
"$PY" -m pip install -q --no-index --no-deps --target "$DEPS" benchmarks/gpu_wheels/*.whl \
    > "$OUT/install.log" 2>&1 || { echo "wheel install failed (see install.log)"; exit 1; }
export PYTHONPATH="$DEPS:$PWD" KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=2
{ nvidia-smi 2>&1 || echo "no nvidia-smi"
  "$PY" -c "import jax, keras; print('jax', jax.__version__, 'keras', keras.__version__); print(jax.devices())"
} > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt" | tail -2
start=$(date +%s)
timeout ${BENCH_S:-240} "$PY" benchmarks/benchmark.py --backend jax --quick \
    --sections "${SECTIONS:-size,pretrain,kgbd,reid}" --out "$OUT/benchmark.json" > "$OUT/benchmark.txt" 2>&1
echo "benchmark: exit $? after $(( $(date +%s) - start )) s"; tail -20 "$OUT/benchmark.txt"
if [ "${VARIANTS:-0}" = 1 ]; then
  for batch in ${VARIANT_BATCHES:-256 8}; do
    for tree in "$PWD" benchmarks/gpu_variants/before benchmarks/gpu_variants/fewer; do
      [ -d "$tree/models" ] || { echo "no $tree: run benchmarks/gpu_prepare.sh and carry benchmarks/gpu_variants"; continue; }
      start=$(date +%s)
      timeout ${VARIANT_S:-100} "$PY" docs/runs/2026-12-07-step2/time_step.py "$(cd "$tree" && pwd)" \
          jax "$batch" "${VARIANT_STEPS:-200}" >> "$OUT/variants.jsonl" 2>> "$OUT/variants.err"
      echo "variant $tree, batch $batch: exit $? after $(( $(date +%s) - start )) s"
    done
    # the gradients alone, as the engine takes them and in two stages with the scales' LSTMs
    # batched (the same gradients, a quarter fewer kernels; on a 2-core CPU 7 % slower at
    # batch 8 and 23 % at 256)
    timeout ${VARIANT_S:-100} "$PY" docs/runs/2026-12-07-kernels/batched_two_stage.py "$batch" \
        >> "$OUT/batched_two_stage.txt" 2>> "$OUT/variants.err"
    echo "batched_two_stage.py, batch $batch: exit $?"
  done
  cat "$OUT/variants.jsonl" "$OUT/batched_two_stage.txt"
fi
# both fixture cases at float32 products; the KS20 case again at the GPU default (TF32)
for run in highest:ks20,ias default:ks20; do
  precision=${run%%:*}; cases=${run#*:}
  start=$(date +%s)
  JAX_DEFAULT_MATMUL_PRECISION=$precision timeout ${PARITY_S:-110} "$PY" tools/parity_report.py \
      --cases "$cases" --json "$OUT/parity_$precision.json" > "$OUT/parity_$precision.txt" 2>&1
  echo "parity ($precision matmul precision): exit $? after $(( $(date +%s) - start )) s"
  grep -A 12 "must stay below 1" "$OUT/parity_$precision.txt" | head -30
done
