#!/usr/bin/env bash
# KGBD, 2026-11-27 from 21:45, 2-core Intel Xeon, TensorFlow 2.21.0 CPU: the two Re-ID stages on the
# 20-epoch encoder continued towards their early stop, then pre-training length and seeds on a subset.
set -u
code=/root/exp_code
log() { echo "== $(date '+%F %T') $*"; }
log "start, commit $(git -C $code log --oneline -1 | cut -c1-60)"
lscpu | grep 'Model name'

# The Re-ID stage to its end: resume both Re-ID stages on the 20-epoch H200 encoder (20 more minutes each)
cd /root/runs/kgbd_reid/classification
common="--dataset KGBD --length 6 --data_dir /root/data/kgbd --no_progress --pre_epochs 20 --pre_train 0"
log "exp1 test resume"
python3 $code/SM-SGE.py $common --selection test --time_budget 20 \
    --resume RN/KGBD/6/20261127-191106_classification_sel-test_seed0 > ../reid20_test_part3.log 2>&1
log "exit $?"
log "exp1 val resume"
python3 $code/SM-SGE.py $common --selection val --time_budget 20 \
    --resume RN/KGBD/6/20261127-200116_classification_sel-val_seed0 > ../reid20_val_part2.log 2>&1
log "exit $?"

# The subset: every tenth person of KGBD (Person001, Person011, ..., Person161), prepared by the same tool
sub=/root/data/kgbd_sub10
if [ ! -f $sub/KGBD/6/manifest.json ]; then
    mkdir -p $sub/raw/Data
    for p in $(ls /root/data/kgbd_raw/Data | awk 'NR % 10 == 1'); do ln -sfn /root/data/kgbd_raw/Data/$p $sub/raw/Data/$p; done
    log "prepare subset: $(ls $sub/raw/Data | wc -l) people"
    python3 $code/tools/prepare_kgbd.py $sub/raw/Data --lengths 6 --out $sub --no_progress > /root/runs/exp21/prepare_sub10.log 2>&1
    log "exit $?"
fi

# Seeds: seeds 1 and 2 of the subset's 20-epoch configuration (seed 0 is the 20-epoch snapshot of the run below)
mkdir -p /root/runs/exp21/sub10/seeds && cd /root/runs/exp21/sub10/seeds
for s in 1 2; do
    [ -f done_seed$s ] && continue
    log "exp4 seed $s"
    python3 $code/SM-SGE.py --dataset KGBD --length 6 --data_dir $sub --no_progress --pre_epochs 20 \
        --max_reid_epochs 40 --seed $s --time_budget 30 > /root/runs/exp21/seed$s.log 2>&1
    rc=$?; log "exit $rc"; [ $rc -eq 0 ] && touch done_seed$s
done

# Pre-training length: 160 pre-training epochs on the subset, snapshots 5/20/40/80, Re-ID <= 40 on each
log "exp2"
STEPS="cls curve" CURVE="5 20 40 80" PRE_EPOCHS=160 EXTRA="--max_reid_epochs 40" \
    bash $code/benchmarks/kgbd_protocol.sh $sub /root/runs/exp21/sub10/curve 90
log "exit $?"
