#!/usr/bin/env bash
# identify.py on 50 recordings in one call, with the last batch padded (now) and without (before)
cd /root/openset
RUN=$(ls -d RN/KGBD/6/*classification_sel-val_seed0 | tail -1)
W=$(ls Datasets/KGBD/6/known/test/*/*.npy | head -50)
for round in 1 2; do
  for mode in padded unpadded; do
    # "unpadded" ran with a temporary switch in Identifier.encode that skipped the padding
    if [ $mode = unpadded ]; then export SMSGE_AB_NO_PAD=1; else unset SMSGE_AB_NO_PAD; fi
    s=$(date +%s.%N)
    python3 /work/main/identify.py --model_dir $RUN --gallery timing_gallery.npz $W > ab_$mode.out 2>/dev/null
    e=$(date +%s.%N)
    echo "$mode round $round: $(echo "$e - $s" | bc) s; $(tail -1 ab_$mode.out)"
  done
done
