#!/usr/bin/env bash
# The full KGBD protocol, resumable: run the same command again after an interruption (a
# killed job, a restarted machine) and it goes on from the last finished epoch.
#
#   benchmarks/kgbd_protocol.sh DATA_DIR RUN_ROOT [CHUNK_MINUTES] [once]
#
# DATA_DIR holds KGBD/6 (tools/prepare_kgbd.py); RUN_ROOT receives the runs (keep it
# outside the repository). Steps, in order (each skipped once RUN_ROOT/done/STEP exists):
#   cls      classification, PRE_EPOCHS of pre-training (saving the encoder after each
#            epoch in CURVE as well), then Re-ID until the reference's early stop,
#            model chosen on the test set (the reference's way)
#   curveE   for E in CURVE and PRE_EPOCHS: the encoder after E epochs, Re-ID capped at
#            REID_BUDGET epochs (the learning curve: one Re-ID budget for every point)
#   val      the PRE_EPOCHS encoder, Re-ID until early stop, model chosen on a validation split
#   ret      retrieval, with its own PRE_EPOCHS pre-training on the retrieval training walks
# Then RUN_ROOT/protocol.md (tools/compare_runs.py tables) and learning_curve.png.
# Every SM-SGE.py call runs at most CHUNK_MINUTES (default 30) and exits 3 when it stops on
# its budget; "once" ends the script after one such call (a machine with a per-command limit).
# RUN_ROOT/done/STEP holds the finished run's folder relative to RUN_ROOT, so a run root can
# move between machines (a GPU machine's runs go on here).
# Environment: DATASET (KGBD), LENGTH (6), PRE_EPOCHS (160), CURVE ("20 40 80"),
# REID_BUDGET (40), EXTRA (flags for every call, e.g. "--seed 1"), PYTHON (python3),
# STEPS (the steps to run, "cls curve val ret"; the report needs all four),
# DEADLINE (unix time: no call runs past it; each gets --time_budget of what is left, and
# none starts with under MIN_CALL_S seconds left, default 60; the script then exits 3).
set -uo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 DATA_DIR RUN_ROOT [CHUNK_MINUTES] [once]" >&2
    exit 2
fi
data=$(cd "$1" 2>/dev/null && pwd) || { echo "error: no data folder $1" >&2; exit 2; }
mkdir -p "$2" && root=$(cd "$2" && pwd)
chunk=${3:-30}
once=${4:-}
code=$(cd "$(dirname "$0")/.." && pwd)
dataset=${DATASET:-KGBD}; length=${LENGTH:-6}; pre=${PRE_EPOCHS:-160}
curve=${CURVE:-20 40 80}; budget=${REID_BUDGET:-40}; extra=${EXTRA:-}
py=${PYTHON:-python3}; steps=" ${STEPS:-cls curve val ret} "
deadline=${DEADLINE:-}; min_call=${MIN_CALL_S:-60}
mkdir -p "$root/done"

# step NAME FOLDER FLAGS...: run SM-SGE.py in RUN_ROOT/FOLDER until the run finishes.
# Steps sharing a folder share its Pre-Trained/ encoders; steps run one at a time, so the
# newest unfinished run under it is this step's.
step() {
    local name=$1 folder=$2 rc
    shift 2
    [ -f "$root/done/$name" ] && return 0
    mkdir -p "$root/$folder"
    cd "$root/$folder" || exit 2
    while :; do
        local resume=() minutes=$chunk
        if [ -n "$deadline" ]; then
            local left=$(( deadline - $(date +%s) ))
            if [ "$left" -lt "$min_call" ]; then
                echo "deadline reached before step $name; run the same command to go on"
                exit 3
            fi
            # the budget is checked after each epoch: leave one epoch's slack (MIN_CALL_S)
            minutes=$(awk -v l="$left" -v m="$min_call" -v c="$chunk" \
                'BEGIN { b = (l - m) / 60; if (b > c) b = c; if (b < 0) b = 0; printf "%.2f", b }')
        fi
        compgen -G "RN/*/*/*/resume.npz" >/dev/null && resume=(--resume)
        echo "== $(date '+%F %T') step $name: SM-SGE.py $* ${resume[*]}" | tee -a "$root/$name.log"
        # shellcheck disable=SC2086  # EXTRA is a list of flags
        "$py" "$code/SM-SGE.py" --dataset "$dataset" --length "$length" --data_dir "$data" \
            --no_progress $extra "$@" --time_budget "$minutes" "${resume[@]}" 2>&1 | tee -a "$root/$name.log"
        rc=${PIPESTATUS[0]}
        if [ "$rc" -eq 0 ]; then
            dirname "$(ls -td RN/*/*/*/metrics.json | head -n 1)" | sed "s|^|$folder/|" > "$root/done/$name"
            return 0
        fi
        if [ "$rc" -ne 3 ]; then
            echo "error: step $name failed (exit $rc); its log is $root/$name.log" >&2
            exit "$rc"
        fi
        [ -n "$once" ] && { echo "stopped after one chunk; run the same command to go on"; exit 3; }
    done
}

wanted() { [[ $steps == *" $1 "* ]]; }
snapshots=$(echo $curve | tr ' ' ',')
wanted cls && step cls classification --pre_epochs "$pre" ${snapshots:+--snapshot_epochs "$snapshots"}
if wanted curve; then
    for e in $curve $pre; do
        step "curve$e" classification --pre_epochs "$e" --pre_train 0 --max_reid_epochs "$budget"
    done
fi
wanted val && step val classification --pre_epochs "$pre" --pre_train 0 --selection val
wanted ret && step ret retrieval --protocol retrieval --pre_epochs "$pre"
for s in cls val ret $(for e in $curve $pre; do echo "curve$e"; done); do
    [ -f "$root/done/$s" ] || { echo "steps done: $(ls "$root/done" | tr '\n' ' ')(the report needs all)"; exit 0; }
done

run() { echo "$root/$(cat "$root/done/$1")"; }
{
    echo "# $dataset f=$length: the protocol at $pre pre-training epochs"
    echo
    "$py" "$code/tools/compare_runs.py" "$(run cls)=classification, test-selected" \
        "$(run val)=classification, val-selected" "$(run ret)=retrieval"
    echo
    echo "## Learning curve (Re-ID capped at $budget epochs)"
    echo
    args=()
    for e in $curve $pre; do args+=("$(run "curve$e")=$e epochs"); done
    "$py" "$code/tools/compare_runs.py" "${args[@]}" --plot "$root/learning_curve.png" \
        --title "$dataset: Rank-1 and nAUC against pre-training epochs"
} > "$root/protocol.md.tmp" && mv "$root/protocol.md.tmp" "$root/protocol.md"
cat "$root/protocol.md"
