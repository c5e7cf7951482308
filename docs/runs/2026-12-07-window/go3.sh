#!/usr/bin/env bash
# The validation-selected Re-ID stage, once the 20-epoch encoder exists.
set -u
cd /root/win
while [ ! -f Pre-Trained/KGBD/6/lambda1_P8_nhood1_r1_l1_four_e20_seed0/encoder.npz ] || \
      [ ! -f Pre-Trained/KGBD/6/lambda1_P8_nhood1_r1_l1_four_e20_seed0/config.json ]; do sleep 10; done
sleep 20; date
python3 /work/main/SM-SGE.py --dataset KGBD --length 6 --data_dir /root/data/kgbd_window --pre_epochs 20 \
    --no_progress --pre_train 0 --selection val --time_budget ${BUDGET:-48} > val_sel.log 2>&1
echo "val-selected exit $?"; date
