#!/usr/bin/env bash
# On a 2-core Intel Xeon (TensorFlow 2.21.0 CPU): Re-ID stages on the KGBD encoders pre-trained on an
# NVIDIA H200 with the JAX engine (snapshots 20/40/80 of the 160-epoch run)
set -u
cd /root/runs/kgbd_reid
echo "start $(date '+%F %T') commit $(git -C /root/exp_code log --oneline -1)"
STEPS=curve CURVE="20 40" PRE_EPOCHS=80 bash /root/exp_code/benchmarks/kgbd_protocol.sh /root/data/kgbd /root/runs/kgbd_reid 60
echo "curve done $(date '+%F %T')"
# The Re-ID stage to its own early stop on the 20-epoch encoder, model chosen on the test set, then on a
# validation split (each call at most 50 minutes; continued with --resume)
cd classification
for sel in test val; do
  echo "== $(date '+%F %T') reid20 $sel"
  python3 /root/exp_code/SM-SGE.py --dataset KGBD --length 6 --data_dir /root/data/kgbd --no_progress \
     --pre_epochs 20 --pre_train 0 --selection $sel --time_budget 50 > ../reid20_$sel.log 2>&1
  echo "exit $? $(date '+%F %T')"
done
