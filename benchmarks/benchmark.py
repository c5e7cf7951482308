"""Speed and memory of SM-SGE on this machine; prints a table and writes JSON.

    python benchmarks/benchmark.py                 # full run (about 10 minutes on 2 cores)
    python benchmarks/benchmark.py --quick         # fewer steps and sweep points
    python benchmarks/benchmark.py --sections breakdown,reid   # some sections only
    python benchmarks/benchmark.py --backend jax   # the JAX engine (default: tensorflow)

Measures, on synthetic data of the KS20 shape (25 joints, LSTM 256) unless stated:
  - pre-training step time (median over the timed steps), steps/s and sequences/s at
    batch 64, f=6, for the ragged layout with and without XLA, and for the reference's
    one-LSTM-call-per-draw layout;
  - the same step in the KGBD shape (20 joints, LSTM 128, batch 256);
  - a breakdown: the default step with one part left out at a time, and forward only;
  - Re-ID epoch time with cached encodings and with the encoder run every batch;
  - encoding throughput (sequences/s);
  - how the pre-training step grows with sequence length and batch size (ragged, no XLA);
  - model size: the parameter count and the floating-point operations of one forward pass
    of one sequence (encoder and Re-ID classifier), from XLA's cost analysis of the
    compiled inference (JAX engine; TensorFlow does not expose it);
  - peak resident memory of the process after each section (it only grows).
Not a test: timings depend on the machine and its load. Ratios are measured in one run.
"""
import argparse
import os
import platform
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

# The authors' code, KS20 shape, batch 64, f=6, TF 2.21 CPU, timed on other machines:
# quoted with those machines in the output, never divided into our timings, since a ratio
# means something only between two things timed in the same run.
REFERENCE_STEP_NOTE = ("the authors' code took 0.6 s/step for this shape on one 2-core AMD EPYC "
                       "(AVX-512) and 1.10 s/step on another (AVX2): not comparable across machines")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_model(joints=25, lstm=256, seed=0, fusion_lambda=1.0, cross_scale=True):
    """A full SM-SGE encoder: the KS20 shape by default, KGBD's with joints=20, lstm=128."""
    from models.sm_sge import SMSGE
    from utils.foundation.graphs import build_graph
    from utils.foundation.skeleton import KINECT_V1, KINECT_V2
    return SMSGE(build_graph({20: KINECT_V1, 25: KINECT_V2}[joints]), lstm, 8, fusion_lambda, seed=seed,
                 cross_scale=cross_scale)


def pretrain_stepper(batch, length, layout, jit, joints=25, optimizers="four",
                     forward_only=False, **model_options):
    """A compiled pre-training step on synthetic data: returns (run one step, compile s)."""
    from models.training import Pretrainer
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.3, size=(batch, length, joints, 3)).astype(np.float32)
    trainer = Pretrainer(make_model(joints, **model_options), 0.0005, length, layout=layout,
                         jit=jit, optimizers=optimizers, rng=rng)
    assert not forward_only or layout == "ragged"
    if forward_only:   # the losses alone: what the backward pass and updates add is the rest
        from models.engine import backend
        losses = backend().function(
            lambda x, frames: trainer.model.pretext_losses(x, frames, trainer.ragged),
            trainer.model.trainable_variables, jit=jit)
        trainer._step = lambda *inputs: (losses(*inputs), ())
    t0 = time.perf_counter()
    trainer.step(x)
    return (lambda: trainer.step(x)), time.perf_counter() - t0


def step_times(step, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def step_summary(times, batch) -> dict:
    # The median: a shared machine adds slow outliers that a mean would keep.
    step_s = float(np.median(times))
    return dict(step_s=step_s, step_s_mean=float(np.mean(times)), step_s_min=float(np.min(times)),
                steps_per_s=1 / step_s, sequences_per_s=batch / step_s)


def time_pretrain(batch, length, layout, jit, steps, **options):
    step, compile_s = pretrain_stepper(batch, length, layout, jit, **options)
    return dict(batch=batch, length=length, layout=layout, xla=jit,
                **step_summary(step_times(step, steps), batch),
                first_step_s=compile_s, peak_rss_mib=peak_rss_mib())


def time_breakdown(steps, rounds=5):
    """The BREAKDOWN variants, timed in interleaved rounds so that the machine's slow
    spells hit every variant alike."""
    steppers = {name: pretrain_stepper(64, 6, "ragged", True, **options)[0]
                for name, options in BREAKDOWN}
    times = {name: [] for name in steppers}
    for _ in range(rounds):
        for name, step in steppers.items():
            times[name] += step_times(step, max(1, steps // rounds))
    return {name: step_summary(t, 64) for name, t in times.items()}


def time_encoding(batch, length, repeats=3):
    from models.training import Encoder
    from models.draws import reid_prefixes
    x = np.random.default_rng(0).normal(0, 0.3, size=(batch, length, 25, 3)).astype(np.float32)
    encoder = Encoder(make_model(), reid_prefixes(length))
    encoder(x)                                           # compile
    t0 = time.perf_counter()
    for _ in range(repeats):
        np.asarray(encoder(x))
    return batch * repeats / (time.perf_counter() - t0)


def time_reid(n_train=1520, n_test=400, length=6, batch=64, classes=20, epochs=2):
    """One Re-ID epoch = a pass over the training batches + scoring the selection set.
    Uncached runs the frozen encoder on both every epoch (the reference's way); cached
    encodes both once, before the first epoch."""
    from models.draws import reid_prefixes
    from models.sm_sge import ReIDClassifier
    from models.training import Encoder, ReIDTrainer
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.3, size=(n_train, length, 25, 3)).astype(np.float32)
    xt = rng.normal(0, 0.3, size=(n_test, length, 25, 3)).astype(np.float32)
    y, yt = rng.integers(0, classes, n_train), rng.integers(0, classes, n_test)
    encoder = Encoder(make_model(), reid_prefixes(length))
    encoder.encode_all(x[:batch], batch)                 # compile
    t0 = time.perf_counter()
    enc, enc_t = encoder.encode_all(x, batch), encoder.encode_all(xt, batch)
    encode_s = time.perf_counter() - t0
    out = dict(encode_sequences_per_s=(n_train + n_test) / encode_s, encode_once_s=encode_s)
    batches = [np.arange(i, i + batch) for i in range(0, n_train - batch + 1, batch)]
    for raw in (False, True):
        trainer = ReIDTrainer(ReIDClassifier(encoder.model.embedding_size, classes), 0.0025, encoder)
        data = x if raw else enc
        trainer.train_batch(data[batches[0]], y[batches[0]], raw=raw)   # compile
        trainer.evaluate(enc_t, yt, batch)
        t0 = time.perf_counter()
        for _ in range(epochs):
            for idx in batches:
                trainer.train_batch(data[idx], y[idx], raw=raw)
            trainer.evaluate(encoder.encode_all(xt, batch) if raw else enc_t, yt, batch)
        out["epoch_s_uncached" if raw else "epoch_s_cached"] = (time.perf_counter() - t0) / epochs
    out["cache_speedup_per_epoch"] = out["epoch_s_uncached"] / out["epoch_s_cached"]
    # A whole Re-ID stage of 200 epochs (about what the demo run takes): the cache pays
    # for one encoding of both sets.
    out["cache_speedup_200_epoch_stage"] = (200 * out["epoch_s_uncached"]) / (
        200 * out["epoch_s_cached"] + encode_s)
    out["peak_rss_mib"] = peak_rss_mib()
    return out


SECTIONS = ("size", "pretrain", "kgbd", "breakdown", "reid", "sweeps")


def size_section(length=6, classes=20):
    """Parameters (KS20 shape, classifier for `classes` identities) and the operations of
    one forward pass of one sequence: encoder (f+1 prefixes) and classifier."""
    from models.draws import reid_prefixes
    from models.engine import name
    from models.factory import count_parameters
    from models.sm_sge import ReIDClassifier
    from models.training import Encoder
    model = make_model()
    classifier = ReIDClassifier(model.embedding_size, classes)
    out = dict(parameters=count_parameters(model, classifier),
               encoder_parameters=count_parameters(model), paper_parameters=5.58e6,
               paper_gflops=22.6)
    if name() == "jax":
        import jax
        from keras import StatelessScope
        encoder = Encoder(model, reid_prefixes(length))
        variables = model.trainable_variables + classifier.trainable_variables

        def forward(values, x):
            with StatelessScope(state_mapping=list(zip(variables, values))):
                return classifier(encoder.encode(x))
        x = np.zeros((1, length, 25, 3), np.float32)
        cost = jax.jit(forward).lower([v.value for v in variables], x).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        out["gflops_per_sequence"] = float(cost["flops"]) / 1e9
        out["flops_counted_by"] = "XLA cost analysis of the compiled forward pass (JAX)"
    print(f"model size: {out['parameters'] / 1e6:.3f} M parameters (encoder "
          f"{out['encoder_parameters'] / 1e6:.3f} M; paper 5.58 M)"
          + (f", {out['gflops_per_sequence']:.3f} GFLOPs per sequence (paper 22.6)"
             if "gflops_per_sequence" in out else ", FLOPs: run with --backend jax"))
    return out

# Variants of the default step (ragged + XLA, b64, f=6) that leave one part out; the
# differences say roughly where a step's time goes.
BREAKDOWN = (
    ("default step", {}),
    ("one optimiser: no repeated MGRN backward passes", dict(optimizers="one")),
    ("no cross-scale heads: 4 reconstruction heads, not 10", dict(cross_scale=False)),
    ("no collaborative relations (lambda 0)", dict(fusion_lambda=0.0)),
    ("forward pass only: losses, no gradients or updates", dict(forward_only=True)),
)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--out", default="benchmarks/results/benchmark.json")
    ap.add_argument("--backend", default=None, choices=("tensorflow", "jax"),
                    help="engine (default: KERAS_BACKEND if set, else tensorflow)")
    args = ap.parse_args()
    from models.engine import select
    select(args.backend)
    sections = set(args.sections.split(","))
    unknown = sections - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s) {', '.join(sorted(unknown))}; "
                 f"choose from {', '.join(SECTIONS)}")
    steps = 3 if args.quick else 20
    lengths = (4, 6, 10) if args.quick else (4, 6, 8, 10, 20, 40)
    batches = (32, 64) if args.quick else (16, 32, 64, 128)
    from models.engine import name as engine_name
    from models.engine import device_description
    results = dict(device=device_description(), backend=engine_name(),
                   python=platform.python_version(), reference_step_note=REFERENCE_STEP_NOTE)
    print(f"Engine and device: {results['device']}")
    from utils.foundation.io import atomic_save_json

    def done(key, value):   # written after every section: a run cut short keeps what it has
        results[key] = value
        atomic_save_json(args.out, results)
    if "size" in sections:
        done("size", size_section())
    if "pretrain" in sections:
        done("pretrain", pretrain_section(steps))
    if "kgbd" in sections:
        done("kgbd", kgbd_section(steps))
    if "breakdown" in sections:
        done("breakdown", time_breakdown(2 * steps, rounds=8))
        for name, r in results["breakdown"].items():
            print(f"breakdown  {name:55s} {r['step_s']:.3f} s/step")
    if "reid" in sections:
        done("reid", reid_section(1 if args.quick else 3))
    if "sweeps" in sections:
        length_rows, batch_rows = sweeps_section(lengths, batches, steps)
        results["sweep_length"] = length_rows
        done("sweep_batch", batch_rows)
    print(f"written {args.out}")


def pretrain_section(steps):
    from models.engine import name as engine
    results = {}
    variants = (("ragged+xla", "ragged", True), ("ragged", "ragged", False),
                ("per_draw+xla", "per_draw", True),
                ("per_draw (reference structure)", "per_draw", False))
    if engine() == "jax":   # JAX always compiles with XLA: the no-XLA variants are the same
        variants = (("ragged+xla", "ragged", True),
                    ("per_draw (reference structure)", "per_draw", True))
    for name, layout, jit in variants:
        r = time_pretrain(64, 6, layout, jit, steps)
        results[name] = r
        print(f"pre-train step KS20 b64 f6  {name:32s} {r['step_s']:.3f} s/step  "
              f"{r['sequences_per_s']:.0f} seq/s  (first step {r['first_step_s']:.1f} s)")
    base = results["per_draw (reference structure)"]["step_s"]
    for name, r in results.items():
        r["speedup_vs_per_draw"] = base / r["step_s"]
        print(f"  {name:32s} x{r['speedup_vs_per_draw']:.2f} vs the reference's structure "
              f"(timed in this run)")
    print(f"  ({REFERENCE_STEP_NOTE})")
    return results


def kgbd_section(steps):
    """The KGBD shape: 20 joints, LSTM 128, batch 256, f=6 (the default layout, XLA)."""
    r = time_pretrain(256, 6, "ragged", True, max(3, steps // 2), joints=20, lstm=128)
    print(f"pre-train step KGBD b256 f6 ragged+xla {r['step_s']:.3f} s/step  "
          f"{r['sequences_per_s']:.0f} seq/s  (first step {r['first_step_s']:.1f} s)")
    return r


def reid_section(epochs):
    reid = time_reid(epochs=epochs)
    print(f"Re-ID epoch (1520 train + 400 test seqs, b64): cached {reid['epoch_s_cached']:.3f} s, "
          f"uncached {reid['epoch_s_uncached']:.3f} s -> x{reid['cache_speedup_per_epoch']:.1f} per "
          f"epoch, x{reid['cache_speedup_200_epoch_stage']:.1f} over a 200-epoch stage incl. encoding")
    print(f"encoding: {reid['encode_sequences_per_s']:.0f} sequences/s")
    return reid


def sweeps_section(lengths, batches, steps):
    by_length, by_batch = [], []
    # Batch 16 for the length sweep: at f=40 a batch of 64 needs more memory than a
    # 24 GiB machine has (activations of ~f^2/2 LSTM steps per sequence are kept).
    for f in lengths:
        r = time_pretrain(16, f, "ragged", False, max(2, steps // 3))
        r.update(encode_sequences_per_s=time_encoding(16, f))
        by_length.append(r)
        print(f"  length {f:3d} b16: {r['step_s']:.3f} s/step, {r['sequences_per_s']:.0f} seq/s, "
              f"encoding {r['encode_sequences_per_s']:.0f} seq/s, peak RSS {r['peak_rss_mib']:.0f} MiB")
    for b in batches:
        r = time_pretrain(b, 6, "ragged", False, max(2, steps // 3))
        by_batch.append(r)
        print(f"  batch {b:4d} f6: {r['step_s']:.3f} s/step, {r['sequences_per_s']:.0f} seq/s, "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB")
    return by_length, by_batch


if __name__ == "__main__":
    main()
