#!/usr/bin/env bash
# After the curve's Re-ID stage: continue the 160-epoch run's own Re-ID stage (until its
# early stop, model chosen on the test set: the reference's protocol) for a bounded time.
set -uo pipefail
while pgrep -f kgbd_watch.sh >/dev/null; do sleep 5; done
cd /root/runs/gpu_kgbd_cpu/classification
RUN=RN/KGBD/6/20261127-183842_classification_sel-test_seed0
echo "== $(date -u '+%F %T') step cls160-reid: SM-SGE.py --dataset KGBD --length 6 --data_dir /root/data/kgbd --backend tensorflow --gpu -1 --pre_epochs 160 --snapshot_epochs 20,40,80 --max_reid_epochs 0 --no_progress --time_budget $1 --resume $RUN"
python3 /root/exp_code2/SM-SGE.py --dataset KGBD --length 6 --data_dir /root/data/kgbd --backend tensorflow --gpu -1 \
    --pre_epochs 160 --snapshot_epochs 20,40,80 --max_reid_epochs 0 --no_progress --time_budget "$1" --resume $RUN
echo "== $(date -u '+%F %T') cls160-reid exit $?"
