#!/usr/bin/env bash
# KGBD with 24 people held out: prepare, one validation-selected classification run with 20
# pre-training epochs (Re-ID stage capped at 60 epochs), then the open-set measurement.
set -u
P=/work/main
cd /root/openset
date; git -C $P rev-parse --short HEAD
if [ ! -d Datasets/KGBD/6/holdout ]; then
  python3 $P/tools/prepare_kgbd.py /root/kgbd_raw/Data --lengths 6 --holdout_people 24 --out Datasets --no_progress
fi
date
python3 $P/SM-SGE.py --dataset KGBD --length 6 --pre_epochs 20 --selection val --max_reid_epochs 60 --no_progress --time_budget 110 > train.log 2>&1
echo "train exit $?"; date
RUN=$(ls -d RN/KGBD/6/*classification_sel-val_seed0 | tail -1)
python3 $P/tools/measure_openset.py $RUN --known Datasets/KGBD/6/known/test --unknown Datasets/KGBD/6/holdout --enrol Datasets/KGBD/6/known/train --calibrate_share 0.5 --out openset_kgbd > measure.log 2>&1
echo "measure exit $?"; date
