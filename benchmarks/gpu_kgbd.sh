#!/usr/bin/env bash
# The KGBD classification protocol (benchmarks/kgbd_protocol.sh) through the JAX engine on
# a GPU machine without TensorFlow or network access, reached through a command runner that
# carries at most 64 MiB per call, working tree included. The prepared KGBD data at f=6 is
# 110 MB (85 MB compressed: float32 does not compress much), so it travels in parts, one
# per call to the same machine, which keeps what earlier calls brought.
#
#   local:  benchmarks/gpu_kgbd.sh pack DATA_DIR [PARTS] [RUN_ROOT]
#           DATA_DIR holds KGBD/6 (tools/prepare_kgbd.py). Writes benchmarks/gpu_kgbd_1/ ..
#           gpu_kgbd_PARTS/ (default 2): one part of the compressed data each, its checksums,
#           and the wheels the machine lacks (keras, namex, optree; typing-extensions for
#           optree), for Python 3.12. With RUN_ROOT (a run root brought back earlier, e.g. an
#           unfinished pre-training), its step markers and unfinished runs (config.json and
#           resume.npz) go into gpu_kgbd_1/ too: use PARTS 3 then, so that part 1 still fits
#           one command.
#   GPU:    benchmarks/gpu_kgbd.sh device SECONDS        (carry benchmarks/gpu_kgbd_N)
#           Keeps what each call carried in benchmarks/gpu_kgbd_store/ (ignored, so it stays
#           on the machine between calls). Until every part is there: device.txt and, once, a
#           step-time benchmark in $OUT (BENCH_PRECISIONS: JAX matmul precisions, default
#           "default", i.e. TF32 tensor cores; "highest" is float32 products). With all parts: checks the
#           arrays against the checksums, runs the protocol's steps (STEPS, default
#           "cls curve val") until SECONDS minus RESERVE_S (default 60) are spent, and
#           returns the run root in $OUT/runs.tar.part* (<= 15 MiB each) with its log.
#   local:  benchmarks/gpu_kgbd.sh unpack FILES_AT RUN_ROOT
#           Puts the returned run root in RUN_ROOT; benchmarks/kgbd_protocol.sh DATA_DIR
#           RUN_ROOT then goes on with what is left (unfinished runs resume, on either engine).
# Environment on the GPU machine: MATMUL (JAX_DEFAULT_MATMUL_PRECISION for the run; default
# "default": JAX's GPU default, TF32 tensor cores for float32 products, as in the run logged
# in docs/runs/2026-11-27-gpu/; "highest" gives float32 products as on a CPU, at a cost not
# measured), and kgbd_protocol.sh's.
set -uo pipefail
cd "$(dirname "$0")/.."
code=$PWD
die() { echo "error: $*" >&2; exit 2; }
FILES=(KGBD/6/KGBD_train_npy_data KGBD/6/KGBD_test_npy_data KGBD/6/manifest.json)

pack() {
    local data=${1:-} parts=${2:-2} runs=${3:-} tmp n
    [ -d "$data/KGBD/6/KGBD_train_npy_data" ] || die "no KGBD/6 in '$data': run tools/prepare_kgbd.py first"
    [[ $parts =~ ^[1-9]$ ]] || die "PARTS must be 1 to 9, got '$parts'"
    [ -z "$runs" ] || [ -d "$runs/done" ] || die "no run root in '$runs' (it has no done/ folder)"
    tmp=$(mktemp -d) || exit 2
    trap "rm -rf '$tmp'" EXIT
    "${PYTHON:-python3}" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any \
        -d "$tmp/wheels" keras==3.15.1 namex optree typing-extensions || die "could not download the wheels"
    echo "compressing $(du -sh "$data/KGBD/6" --exclude=retrieval | cut -f1) of KGBD data (about 2 minutes)"
    tar -C "$data" -cf - "${FILES[@]}" | xz -6 -T2 > "$tmp/data.tar.xz" || die "compression failed"
    split -n "$parts" -d "$tmp/data.tar.xz" "$tmp/data.tar.xz.part" || exit 2
    (cd "$data" && find "${FILES[@]}" -type f -print0 | sort -z | xargs -0 sha256sum) \
        > "$tmp/SHA256SUMS" || exit 2
    echo "$parts" > "$tmp/PARTS"
    for n in $(seq 1 "$parts"); do
        rm -rf "benchmarks/gpu_kgbd_$n" && mkdir -p "benchmarks/gpu_kgbd_$n"
        cp "$tmp"/wheels/*.whl "$tmp/SHA256SUMS" "$tmp/PARTS" "$tmp/data.tar.xz.part0$((n - 1))" \
            "benchmarks/gpu_kgbd_$n/"
    done
    if [ -n "$runs" ]; then   # what goes on there: the step markers and the unfinished runs
        (cd "$runs" && { echo done; find . -path "*/RN/*" -name resume.npz -printf '%h\n' \
            | while read -r d; do echo "$d/config.json"; echo "$d/resume.npz"; done; } \
            | tar -cf "$code/benchmarks/gpu_kgbd_1/runs.tar" -T -) || die "could not pack the run root $runs"
    fi
    du -sh benchmarks/gpu_kgbd_[1-9]
}

device() {
    local seconds=${1:-} start store out rc=0
    [[ $seconds =~ ^[0-9]+$ ]] || die "usage: $0 device SECONDS"
    start=$(date +%s)
    out=${OUT:-$code/gpu_out}
    store=$code/benchmarks/gpu_kgbd_store
    mkdir -p "$out" "$store"
    for n in 1 2 3 4 5 6 7 8 9; do
        [ -d "benchmarks/gpu_kgbd_$n" ] && cp benchmarks/gpu_kgbd_$n/* "$store/"
    done
    if [ -f "$store/runs.tar" ]; then   # a run root carried in: its unfinished runs go on
        mkdir -p "$store/runs" && tar -C "$store/runs" -xf "$store/runs.tar" && rm "$store/runs.tar" \
            || die "the carried run root does not unpack"
    fi
    if [ ! -d "$store/site/keras" ]; then
        python3 -m pip install -q --no-index --no-deps --target "$store/site" "$store"/*.whl \
            > "$out/install.log" 2>&1 || die "wheel install failed (see install.log)"
    fi
    export PYTHONPATH="$store/site:$code" KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
    export JAX_DEFAULT_MATMUL_PRECISION=${MATMUL:-default} JAX_COMPILATION_CACHE_DIR=$store/jax_cache
    { nvidia-smi 2>&1 || echo "no nvidia-smi"
      python3 -c "import sys, jax, keras; print(sys.version.split()[0], 'jax', jax.__version__, 'keras', keras.__version__, jax.devices())"
    } > "$out/device.txt" 2>&1
    tail -1 "$out/device.txt"

    # data/ok holds the checksums the unpacked data was checked against: a new pack unpacks anew
    if ! cmp -s "$store/data/ok" "$store/SHA256SUMS"; then
        local have want
        have=$(ls "$store"/data.tar.xz.part0* 2>/dev/null | wc -l)
        want=$(cat "$store/PARTS" 2>/dev/null || echo 2)
        if [ "$have" -lt "$want" ]; then
            echo "$have of $want data parts are here; the others come with the next calls"
            [ -f "$store/benchmarked" ] && return 0   # once per machine is enough
            for precision in ${BENCH_PRECISIONS:-default}; do
                JAX_DEFAULT_MATMUL_PRECISION=$precision timeout 80 python3 benchmarks/benchmark.py \
                    --backend jax --quick --sections kgbd --out "$out/benchmark_$precision.json" \
                    > "$out/benchmark_$precision.txt" 2>&1
                echo "benchmark ($precision matmul precision): exit $? after $(( $(date +%s) - start )) s"
                grep "KGBD" "$out/benchmark_$precision.txt"
            done
            touch "$store/benchmarked"
            return 0
        fi
        rm -rf "$store/data" && mkdir -p "$store/data"
        cat "$store"/data.tar.xz.part0* | xz -dc | tar -C "$store/data" -xf - \
            || die "the carried data does not unpack"
        (cd "$store/data" && sha256sum --quiet -c "$store/SHA256SUMS") \
            || die "the data arrived damaged (checksums differ)"
        cp "$store/SHA256SUMS" "$store/data/ok"
        echo "data unpacked, $(wc -l < "$store/SHA256SUMS") files match their checksums"
    fi

    # the protocol until RESERVE_S before the end: the last epoch's slack and the packing
    DEADLINE=$(( start + seconds - ${RESERVE_S:-60} )) STEPS=${STEPS:-cls curve val} PYTHON=python3 \
        EXTRA="--backend jax ${EXTRA:-}" \
        bash benchmarks/kgbd_protocol.sh "$store/data" "$store/runs" 600 > "$out/protocol.log" 2>&1
    rc=$?
    echo "protocol: exit $rc after $(( $(date +%s) - start )) s"
    grep -E "^\[[0-9]+/|^Re-ID epoch .*(00|[05]0):|Rank-1|step |deadline|error" "$out/protocol.log" | tail -40
    # A Re-ID run's encoder.npz is a copy of its pre-trained encoder: hard links travel once.
    local enc pre
    for enc in "$store"/runs/*/RN/*/*/*/encoder.npz; do
        for pre in "$store"/runs/*/Pre-Trained/*/*/*/encoder.npz; do
            [ -f "$enc" ] && [ -f "$pre" ] && cmp -s "$enc" "$pre" && ln -f "$pre" "$enc" && break
        done
    done
    tar -C "$store" -cf - runs | split -b 15M -d - "$out/runs.tar.part" || rc=1
    ls -la "$out"
    return $rc
}

unpack() {
    local from=${1:-} root=${2:-}
    compgen -G "$from/runs.tar.part*" >/dev/null || die "no runs.tar.part* in '$from'"
    [ -n "$root" ] || die "usage: $0 unpack FILES_AT RUN_ROOT"
    mkdir -p "$root" || exit 2
    cat "$from"/runs.tar.part* | tar -C "$root" --strip-components=1 -xf - || die "the returned runs do not unpack"
    # a run that finished there may have left its checkpoint here from an earlier return
    find "$root" -path "*/RN/*" -name metrics.json -printf '%h\n' | while read -r d; do
        rm -f "$d/resume.npz"
    done
    cp "$from"/*.log "$from"/*.txt "$root/" 2>/dev/null
    echo "runs in $root: done $(ls "$root/done" 2>/dev/null | tr '\n' ' ')"
}

case ${1:-} in
    pack) pack "${2:-}" "${3:-}" "${4:-}" ;;
    device) device "${2:-}" ;;
    unpack) unpack "${2:-}" "${3:-}" ;;
    *) die "usage: $0 pack DATA_DIR [PARTS] [RUN_ROOT] | device SECONDS | unpack FILES_AT RUN_ROOT" ;;
esac
