#!/usr/bin/env bash
# Finish the unfinished 160-epoch KGBD pre-training (131 epochs done on an NVIDIA H200 with the
# JAX engine) on a 2-core Intel Xeon CPU (TensorFlow 2.21.0 engine), then the Re-ID stage on the
# 160-epoch encoder with the learning curve's budget (40 epochs, model chosen on the test set).
set -uo pipefail
cd /root/runs/gpu_kgbd_cpu/classification
CODE=/root/exp_code2
RUN=RN/KGBD/6/20261127-183842_classification_sel-test_seed0
echo "== $(date -u '+%F %T') machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) cores; code $(git -C $CODE rev-parse --short HEAD)"
echo "== $(date -u '+%F %T') step pre160: SM-SGE.py --dataset KGBD --length 6 --data_dir /root/data/kgbd --backend tensorflow --gpu -1 --pre_epochs 160 --snapshot_epochs 20,40,80 --max_reid_epochs 0 --no_progress --time_budget 115 --resume $RUN"
python3 $CODE/SM-SGE.py --dataset KGBD --length 6 --data_dir /root/data/kgbd --backend tensorflow --gpu -1 \
    --pre_epochs 160 --snapshot_epochs 20,40,80 --max_reid_epochs 0 --no_progress --time_budget 115 --resume $RUN
rc=$?
echo "== $(date -u '+%F %T') pre160 exit $rc"
[ $rc -eq 0 ] || exit $rc
echo "== $(date -u '+%F %T') step curve160: SM-SGE.py --dataset KGBD --length 6 --data_dir /root/data/kgbd --backend tensorflow --gpu -1 --pre_epochs 160 --pre_train 0 --max_reid_epochs 40 --no_progress"
python3 $CODE/SM-SGE.py --dataset KGBD --length 6 --data_dir /root/data/kgbd --backend tensorflow --gpu -1 \
    --pre_epochs 160 --pre_train 0 --max_reid_epochs 40 --no_progress
echo "== $(date -u '+%F %T') curve160 exit $?"
