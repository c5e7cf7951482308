#!/usr/bin/env bash
# KGBD, window split: prepare, 20 pre-training epochs + Re-ID to its early stop (test-selected),
# then the same encoder with --selection val. Run from /root/win.
set -u
P=/work/main
cd /root/win
date; git -C $P rev-parse --short HEAD
if [ ! -d /root/data/kgbd_window/KGBD ]; then
  /usr/bin/time -v python3 $P/tools/prepare_kgbd.py /root/kgbd_raw/Data --lengths 6 --out /root/data/kgbd_window --split_unit window --no_progress 2>&1 | grep -v -E "^\s+(Average|Exit|Page|Voluntary|Involuntary|Swaps|File|Socket|Signals|Major|Minor|Percent|System|User|Command|Maximum resident set size \(kbytes\): 0)"
fi
date
python3 $P/SM-SGE.py --dataset KGBD --length 6 --data_dir /root/data/kgbd_window --pre_epochs 20 --no_progress --time_budget ${BUDGET_TEST:-100} > test_sel.log 2>&1
date
python3 $P/SM-SGE.py --dataset KGBD --length 6 --data_dir /root/data/kgbd_window --pre_epochs 20 --pre_train 0 --selection val --no_progress --time_budget ${BUDGET_VAL:-40} > val_sel.log 2>&1
date
