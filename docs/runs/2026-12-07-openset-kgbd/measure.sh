#!/usr/bin/env bash
# The measurement as run (go.sh's own last step was refused by the leakage check: KGBD's
# Person064/5.txt is the same file as 4.txt, a training walk): the known people's test walks
# without that one, then every score of both routes, then identify.py's timings.
cd /root/openset
cp -r Datasets/KGBD/6/known/test known_test_clean && rm -r known_test_clean/Person064
RUN=$(ls -d RN/KGBD/6/*classification_sel-val_seed0 | tail -1)
python3 /work/main/tools/measure_openset.py $RUN --known known_test_clean \
    --unknown Datasets/KGBD/6/holdout --enrol Datasets/KGBD/6/known/train \
    --calibrate_share 0.5 --out openset_kgbd > measure.log 2>&1
python3 timing.py > timing.log 2>&1
./ab.sh > ab.log
