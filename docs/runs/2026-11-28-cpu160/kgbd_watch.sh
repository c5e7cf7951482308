#!/usr/bin/env bash
# When the resumed run has saved its 160-epoch encoder, stop it (SIGTERM: it saves and stays
# resumable in its Re-ID stage) and run the learning curve's Re-ID stage (40 epochs) on it.
set -uo pipefail
until grep -q "Pre-trained encoder saved to" /root/kgbd_cpu160.log; do
    sleep 20
    pgrep -f "kgbd_cpu160.sh" >/dev/null || { echo "the run ended without saving its encoder"; exit 1; }
done
echo "== $(date -u '+%F %T') encoder saved; stopping the run's Re-ID stage (resumable)"
pkill -TERM -f "SM-SGE.py --dataset KGBD --length 6 --data_dir /root/data/kgbd --backend tensorflow --gpu -1 --pre_epochs 160 --snapshot_epochs"
while pgrep -f "kgbd_cpu160.sh" >/dev/null; do sleep 5; done
cd /root/runs/gpu_kgbd_cpu/classification
echo "== $(date -u '+%F %T') step curve160: SM-SGE.py --dataset KGBD --length 6 --data_dir /root/data/kgbd --backend tensorflow --gpu -1 --pre_epochs 160 --pre_train 0 --max_reid_epochs 40 --no_progress"
python3 /root/exp_code2/SM-SGE.py --dataset KGBD --length 6 --data_dir /root/data/kgbd --backend tensorflow --gpu -1 \
    --pre_epochs 160 --pre_train 0 --max_reid_epochs 40 --no_progress
echo "== $(date -u '+%F %T') curve160 exit $?"
