#!/usr/bin/env bash
# The validation-selected window-split Re-ID stage resumed once more, toward its early stop.
set -u
P=/work/main   # run from a copy of the code, so that edits during the run do not reach it
cd /root/win
COMMON="--dataset KGBD --length 6 --data_dir /root/data/kgbd_window --pre_epochs 20 --no_progress"
date
python3 $P/SM-SGE.py $COMMON --pre_train 0 --selection val --time_budget 45 --resume RN/KGBD/6/20261207-083836_classification_sel-val_seed0 > val_sel_part4.log 2>&1
echo "val-selected part 4 exit $?"; date
