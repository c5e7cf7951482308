#!/usr/bin/env bash
# Resume both window-split Re-ID stages toward their early stop, one after the other.
set -u
P=/work/main   # run from a copy of the code, so that edits during the run do not reach it
cd /root/win
COMMON="--dataset KGBD --length 6 --data_dir /root/data/kgbd_window --pre_epochs 20 --no_progress"
date
python3 $P/SM-SGE.py $COMMON --time_budget 75 --resume RN/KGBD/6/20261207-062952_classification_sel-test_seed0 > test_sel_part5.log 2>&1
echo "test-selected part 5 exit $?"; date
python3 $P/SM-SGE.py $COMMON --pre_train 0 --selection val --time_budget 65 --resume RN/KGBD/6/20261207-083836_classification_sel-val_seed0 > val_sel_part3.log 2>&1
echo "val-selected part 3 exit $?"; date
