#!/usr/bin/env bash
# The open-set measurement of docs/identify.md ("Open-set scores compared"), in a scratch
# folder outside the repository: bash go.sh SCRATCH [RUN]. Without RUN it first trains the
# shortened demo run (f = 4, 5 pre-training epochs, validation-selected).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../../.." && pwd)"
SCRATCH="$1"
mkdir -p "$SCRATCH" && cd "$SCRATCH"
if [ -z "${2:-}" ]; then
  nice -n 10 python3 "$REPO/SM-SGE.py" --length 4 --pre_epochs 5 --patience 5 \
    --max_reid_epochs 30 --selection val --xla 0 --no_progress > demo_run.log 2>&1
  RUN="$(ls -d RN/demo/4/* | tail -1)"
else
  RUN="$2"
fi
# Walks as files: the demo's 20 people (walks 1-4 trained on, 5 and 6 never), and new
# people (3 walks each) no demo run has seen, as utils.data.demo writes them. split1: the
# walks tools/measure_identify.py uses (20 new people); split2: walks 5 and 6 swapped, and
# 60 new people (another draw), 50 of them to identify.
nice -n 10 python3 - "$REPO" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[1])
from utils.data.demo import generate_recordings, unseen_recordings, write_recordings
trained = generate_recordings()
for split, calibrate, known, people in (("split1", 4, 5, 20), ("split2", 5, 4, 60)):
    new, unknown = unseen_recordings(people, 3), range(11, people + 1)
    j = lambda *p: os.path.join(split, *p)
    write_recordings(j("calibrate"), trained, which=[calibrate])
    write_recordings(j("calibrate"), {k: new[k] for k in range(1, 11)}, prefix="new")
    write_recordings(j("enrol"), trained, which=[0, 1, 2, 3])
    write_recordings(j("known"), trained, which=[known])
    write_recordings(j("unknown"), {k: new[k] for k in unknown}, prefix="new")
PY
for split in split1 split2; do
  nice -n 10 python3 "$REPO/tools/measure_openset.py" "$RUN" --known $split/known \
    --unknown $split/unknown --calibrate $split/calibrate --enrol $split/enrol \
    --out $split 2>&1 | grep -v -e '^I0000' -e '^WARNING' -e 'oneDNN' > measure_$split.log
done
# identify.py's own numbers on the same run, with the new default gallery score
nice -n 10 python3 "$REPO/tools/measure_identify.py" "$RUN" --work mi 2>&1 \
  | grep -v -e '^I0000' -e '^WARNING' -e 'oneDNN' > measure_identify.log
