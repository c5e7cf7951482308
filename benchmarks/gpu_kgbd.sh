#!/usr/bin/env bash
# The KGBD classification protocol (benchmarks/kgbd_protocol.sh) on a lent GPU machine,
# through the JAX engine. That machine has no TensorFlow and no network, and takes at most
# 64 MiB per command with the working tree; the prepared KGBD data at f=6 is 110 MB
# (85 MB compressed, float32 does not compress much), so it travels in two commands to the
# same warm machine, each carrying one half.
#
#   here:   benchmarks/gpu_kgbd.sh pack DATA_DIR
#           DATA_DIR holds KGBD/6 (tools/prepare_kgbd.py). Writes benchmarks/gpu_kgbd_1/ and
#           benchmarks/gpu_kgbd_2/: one half of the compressed data each, its checksums, and
#           the wheels the machine lacks (keras, namex, optree; typing-extensions for optree), for Python 3.12.
#   there:  benchmarks/gpu_kgbd.sh device SECONDS        (carry benchmarks/gpu_kgbd_N)
#           Keeps what each call carried in benchmarks/gpu_kgbd_store/ (ignored, so it stays
#           on the warm machine). With half the data: device.txt and a step-time benchmark
#           (float32 and TF32 matrix products) in $OUT. With both halves: checks the arrays
#           against the checksums, runs the protocol's steps (STEPS, default "cls curve val")
#           until SECONDS minus 60 are spent, and returns the run root in
#           $OUT/runs.tar.part-* (<= 15 MiB each) with its log.
#   here:   benchmarks/gpu_kgbd.sh unpack FILES_AT RUN_ROOT
#           Puts the returned run root in RUN_ROOT; benchmarks/kgbd_protocol.sh DATA_DIR
#           RUN_ROOT then goes on with what is left (unfinished runs resume, on either engine).
# Environment there: MATMUL (JAX_DEFAULT_MATMUL_PRECISION, default highest: float32
# products as on a CPU; "default" lets JAX use TF32 tensor cores), and kgbd_protocol.sh's.
set -uo pipefail
cd "$(dirname "$0")/.."
code=$PWD
die() { echo "error: $*" >&2; exit 2; }
FILES=(KGBD/6/KGBD_train_npy_data KGBD/6/KGBD_test_npy_data KGBD/6/manifest.json)

pack() {
    local data=${1:-} tmp
    [ -d "$data/KGBD/6/KGBD_train_npy_data" ] || die "no KGBD/6 in '$data': run tools/prepare_kgbd.py first"
    tmp=$(mktemp -d) || exit 2
    trap "rm -rf '$tmp'" EXIT
    "${PYTHON:-python3}" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any \
        -d "$tmp/wheels" keras==3.15.1 namex optree typing-extensions || die "could not download the wheels"
    echo "compressing $(du -sh "$data/KGBD/6" --exclude=retrieval | cut -f1) of KGBD data (about 2 minutes)"
    tar -C "$data" -cf - "${FILES[@]}" | xz -6 -T2 > "$tmp/data.tar.xz" || die "compression failed"
    split -n 2 -d "$tmp/data.tar.xz" "$tmp/data.tar.xz.part" || exit 2
    (cd "$data" && find "${FILES[@]}" -type f -print0 | sort -z | xargs -0 sha256sum) \
        > "$tmp/SHA256SUMS" || exit 2
    for n in 1 2; do
        rm -rf "benchmarks/gpu_kgbd_$n" && mkdir -p "benchmarks/gpu_kgbd_$n"
        cp "$tmp"/wheels/*.whl "$tmp/SHA256SUMS" "$tmp/data.tar.xz.part0$((n - 1))" "benchmarks/gpu_kgbd_$n/"
    done
    du -sh benchmarks/gpu_kgbd_1 benchmarks/gpu_kgbd_2
}

device() {
    local seconds=${1:-} start store out rc=0
    [[ $seconds =~ ^[0-9]+$ ]] || die "usage: $0 device SECONDS"
    start=$(date +%s)
    out=${OUT:-$code/gpu_out}
    store=$code/benchmarks/gpu_kgbd_store
    mkdir -p "$out" "$store"
    for n in 1 2; do
        [ -d "benchmarks/gpu_kgbd_$n" ] && cp benchmarks/gpu_kgbd_$n/* "$store/"
    done
    if [ ! -d "$store/site/keras" ]; then
        python3 -m pip install -q --no-index --no-deps --target "$store/site" "$store"/*.whl \
            > "$out/install.log" 2>&1 || die "wheel install failed (see install.log)"
    fi
    export PYTHONPATH="$store/site:$code" KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
    export JAX_DEFAULT_MATMUL_PRECISION=${MATMUL:-highest} JAX_COMPILATION_CACHE_DIR=$store/jax_cache
    { nvidia-smi 2>&1 || echo "no nvidia-smi"
      python3 -c "import sys, jax, keras; print(sys.version.split()[0], 'jax', jax.__version__, 'keras', keras.__version__, jax.devices())"
    } > "$out/device.txt" 2>&1
    tail -1 "$out/device.txt"

    if [ ! -f "$store/data/ok" ]; then
        if [ ! -f "$store/data.tar.xz.part00" ] || [ ! -f "$store/data.tar.xz.part01" ]; then
            echo "one half of the data is here; the other comes with the next call"
            for precision in highest default; do
                JAX_DEFAULT_MATMUL_PRECISION=$precision timeout 80 python3 benchmarks/benchmark.py \
                    --backend jax --quick --sections kgbd --out "$out/benchmark_$precision.json" \
                    > "$out/benchmark_$precision.txt" 2>&1
                echo "benchmark ($precision matmul precision): exit $? after $(( $(date +%s) - start )) s"
                grep "KGBD" "$out/benchmark_$precision.txt"
            done
            return 0
        fi
        rm -rf "$store/data" && mkdir -p "$store/data"
        cat "$store"/data.tar.xz.part0[01] | xz -dc | tar -C "$store/data" -xf - \
            || die "the carried data does not unpack"
        (cd "$store/data" && sha256sum --quiet -c "$store/SHA256SUMS") \
            || die "the data arrived damaged (checksums differ)"
        touch "$store/data/ok"
        echo "data unpacked, $(wc -l < "$store/SHA256SUMS") files match their checksums"
    fi

    # the protocol until 60 s before the end: the last epoch's slack and the packing
    DEADLINE=$(( start + seconds - 60 )) STEPS=${STEPS:-cls curve val} PYTHON=python3 \
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
    cp "$from"/*.log "$from"/*.txt "$root/" 2>/dev/null
    echo "runs in $root: done $(ls "$root/done" 2>/dev/null | tr '\n' ' ')"
}

case ${1:-} in
    pack) pack "${2:-}" ;;
    device) device "${2:-}" ;;
    unpack) unpack "${2:-}" "${3:-}" ;;
    *) die "usage: $0 pack DATA_DIR | device SECONDS | unpack FILES_AT RUN_ROOT" ;;
esac
