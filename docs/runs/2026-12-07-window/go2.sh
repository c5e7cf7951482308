#!/usr/bin/env bash
# After the first process (pre-training + Re-ID, test-selected) stops on its budget: resume it
# and start the validation-selected Re-ID stage on the same 20-epoch encoder, side by side.
set -u
P=/work/main
cd /root/win
while kill -0 2892 2>/dev/null; do sleep 5; done
date
RUN=$(ls -d RN/KGBD/6/*classification_sel-test* | tail -1)
echo "test-selected run: $RUN"
COMMON="--dataset KGBD --length 6 --data_dir /root/data/kgbd_window --pre_epochs 20 --no_progress"
python3 $P/SM-SGE.py $COMMON --time_budget ${BUDGET:-55} --resume $RUN > test_sel_part2.log 2>&1 &
A=$!
python3 $P/SM-SGE.py $COMMON --pre_train 0 --selection val --time_budget ${BUDGET:-55} > val_sel.log 2>&1 &
B=$!
wait $A; echo "test-selected part 2 exit $?"; date
wait $B; echo "val-selected exit $?"; date
