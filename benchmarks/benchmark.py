"""Speed and memory of SM-SGE on this machine; prints a table and writes JSON.

    python benchmarks/benchmark.py                 # full run (about 10 minutes on 2 cores)
    python benchmarks/benchmark.py --quick         # fewer steps and sweep points
    python benchmarks/benchmark.py --sections breakdown,reid   # some sections only
    python benchmarks/benchmark.py --backend jax   # the JAX engine (default: tensorflow)
    python benchmarks/benchmark.py --sections step # the training step, before and after

Measures, on synthetic data of the KS20 shape (25 joints, LSTM 256) unless stated:
  - pre-training step time (median over the timed steps), steps/s and sequences/s at
    batch 64, f=6, for ragged draws with and without XLA, and for the reference's
    one LSTM call per draw;
  - the same step in the KGBD shape (20 joints, LSTM 128, batch 256);
  - a breakdown: the default step with one part left out at a time, and forward only;
  - Re-ID epoch time with cached encodings and with the encoder run every batch;
  - encoding throughput (sequences/s);
  - how the pre-training step grows with sequence length and batch size (ragged, no XLA);
  - model size: the parameter count and the floating-point operations of one forward pass
    of one sequence (encoder and Re-ID classifier), from XLA's cost analysis of the
    compiled inference (JAX engine; TensorFlow does not expose it);
  - the training step at the KGBD shape (batch 256), at batch 8 and at the KS20 shape, as
    the earlier code ran it, as it runs now, and the engine's default steps per compiled
    call (twenty on JAX, ten on TensorFlow): kernels per step (optimised HLO), step median
    and 90th percentile, host milliseconds per step, seconds per step over epochs, cold
    and warm compile, GFLOP/s (JAX), the checkpoint's time (section "step");
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


def pretrain_stepper(batch, length, draw_batching, jit, joints=25, optimizers="four",
                     forward_only=False, **model_options):
    """A compiled pre-training step on synthetic data: returns (run one step, compile s)."""
    from models.training import Pretrainer
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.3, size=(batch, length, joints, 3)).astype(np.float32)
    trainer = Pretrainer(make_model(joints, **model_options), 0.0005, length, draw_batching=draw_batching,
                         jit=jit, optimizers=optimizers, rng=rng)
    assert not forward_only or draw_batching == "ragged"
    if forward_only:   # the losses alone: what the backward pass and updates add is the rest
        from models.engine import active_engine
        losses = active_engine().function(
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


def time_pretrain(batch, length, draw_batching, jit, steps, **options):
    step, compile_s = pretrain_stepper(batch, length, draw_batching, jit, **options)
    return dict(batch=batch, length=length, draw_batching=draw_batching, xla=jit,
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


def hlo_kernels(text: str) -> dict:
    """What a compiled step launches, from its optimised HLO text: the instructions of the
    entry computation that do work (fusions, dots, copies, ...), by opcode; parameters,
    constants, tuples, their elements and bitcasts launch nothing."""
    idle = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast"}
    start = text.index("ENTRY")
    body = text[text.index("{", start) + 1:text.index("\n}", start)]
    counts = {}
    for line in body.splitlines():
        if " = " not in line:
            continue
        rest, depth = line.split(" = ", 1)[1], 0
        for i, ch in enumerate(rest):     # the result's shape ends at a space outside brackets
            depth += ch in "([{"
            depth -= ch in ")]}"
            if ch == " " and depth == 0:
                break
        opcode = rest[i + 1:].split("(", 1)[0].strip()
        if opcode not in idle:
            counts[opcode] = counts.get(opcode, 0) + 1
    return dict(total=sum(counts.values()), fusions=counts.get("fusion", 0),
                dots=counts.get("dot", 0), by_opcode=counts)


def compiled_step_cost(trainer, x) -> dict:
    """Kernels per step (optimised HLO) and, on JAX, XLA's FLOP count of the step."""
    from models.engine import name
    step = trainer._step
    if name() == "jax":
        compiled = step.compiled.lower(*step.state(), x, *trainer._frame_indices).compile()
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        return dict(kernels=hlo_kernels(compiled.as_text()), gflop=float(cost["flops"]) / 1e9)
    import tensorflow as tf
    args = [tf.convert_to_tensor(a) for a in (x, *trainer._frame_indices)]
    try:
        text = step.compiled.experimental_get_compiler_ir(*args)(stage="optimized_hlo")
    except Exception as exc:   # without XLA (jit_compile False) there is no HLO
        return dict(kernels=None, note=f"no optimised HLO: {exc.__class__.__name__}")
    return dict(kernels=hlo_kernels(text))


def steps_per_block() -> int:
    """Steps per compiled call in the "blocks" mode: the engine's default, as training runs."""
    from models.engine import active_engine
    return active_engine().default_steps_per_call(True)


def time_training_step(batch, steps, rounds=3, joints=20, lstm=128, length=6, pool=2048):
    """The pre-training step as the earlier code ran it ("before": the weights and
    optimiser states written back into the variables after every step, the losses fetched
    after every step), with its state kept on the device ("after": written back and fetched
    once per epoch), and that with the engine's default steps per compiled call ("blocks":
    a loop on the device over batches of the data's device copy, steps_per_block()), timed
    in alternated rounds on one machine. Per mode: first call (trace and compile: cold; on
    JAX again from the persistent compilation cache: warm); step time median and 90th
    percentile over `steps` steps each waited for (one call each: not "blocks"); host
    milliseconds per step when the steps are not waited for (the time to return from a call
    that queues the step: gathering the batch and dispatching); seconds per step over
    epochs run as training runs them (Pretrainer.epoch; "before" steps one by one); the
    checkpoint's time apart."""
    import tempfile
    from models.engine import name
    from models.training import Pretrainer
    rng = np.random.default_rng(0)
    data = rng.normal(0, 0.3, size=(pool, length, joints, 3)).astype(np.float32)
    order = [rng.choice(pool, batch, replace=False) for _ in range(steps)]
    engine = name()
    if engine == "jax":   # the warm compile: the same step again, from the cache on disk
        import jax
        jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="bench-jax-cache-"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    block = steps_per_block()
    modes = dict(before=(False, 1), after=(True, 1), blocks=(True, block))

    def trainer_for(mode):
        keep, steps_per_call = modes[mode]
        return Pretrainer(make_model(joints, lstm), 0.0005, length, jit=True, keep_on_device=keep,
                          rng=np.random.default_rng(0), steps_per_call=steps_per_call)

    def first_call(trainer, mode):
        if mode == "blocks":
            trainer.epoch(data, order[:block])
        else:
            trainer.step(data[order[0]])

    out, trainers = {}, {}
    for mode in modes:
        t0 = time.perf_counter()
        trainers[mode] = trainer_for(mode)
        first_call(trainers[mode], mode)
        cold = time.perf_counter() - t0
        warm = None
        if engine == "jax":
            t0 = time.perf_counter()
            first_call(trainer_for(mode), mode)
            warm = time.perf_counter() - t0
        cost = compiled_step_cost(trainers[mode], data[order[0]]) if mode != "blocks" else {}
        out[mode] = dict(compile_cold_s=cold, compile_warm_s=warm, waited=[], host_ms=[],
                         epoch_s=0.0, epoch_steps=0, **cost)
    per_round = max(block, steps // rounds)
    for r in range(rounds):
        idx = order[r * per_round:(r + 1) * per_round]
        for mode, trainer in trainers.items():
            if mode != "blocks":
                for i in idx:                               # each step waited for
                    t0 = time.perf_counter()
                    if mode == "before":
                        trainer.step(data[i])
                    else:
                        losses = trainer._queue(data[i])
                        float(next(iter(losses.values())))
                    out[mode]["waited"].append(time.perf_counter() - t0)
                trainer.sync()
            t0 = time.perf_counter()                        # an epoch, as training runs it
            if mode == "before":
                for i in idx:
                    trainer.step(data[i])
            else:
                trainer.epoch(data, idx)
            out[mode]["epoch_s"] += time.perf_counter() - t0
            out[mode]["epoch_steps"] += len(idx)
    if engine == "jax":   # host time apart only where a call returns before its step is done
        trainer = trainers["after"]
        queued = []
        for i in order[:min(steps, 100)]:
            h = time.perf_counter()
            queued.append(trainer._queue(data[i]))
            out["after"]["host_ms"].append(1000 * (time.perf_counter() - h))
        trainer.sync()
        [float(v) for q in queued for v in q.values()]
    from utils.orchestration.resume import save_state
    trainer = trainers["after"]
    arrays = dict(encoder=[v.numpy() for v in trainer.model.trainable_variables],
                  optimisers=[v.numpy() for v in trainer.optimiser_variables()])
    folder = tempfile.mkdtemp(prefix="bench-checkpoint-")
    t0 = time.perf_counter()
    save_state(folder, dict(stage="pretrain", epoch=1), arrays)
    checkpoint_s = time.perf_counter() - t0
    for mode, r in out.items():
        waited = np.array(r.pop("waited"))
        host = r.pop("host_ms")
        r["epoch_s_per_step"] = r.pop("epoch_s") / r.pop("epoch_steps")
        r.update(step_s_median=float(np.median(waited)) if len(waited) else None,
                 step_s_p90=float(np.percentile(waited, 90)) if len(waited) else None,
                 steps_timed=int(len(waited)),
                 host_ms_per_step=float(np.median(host)) if host else None)
        if r.get("gflop"):
            r["gflop_per_s"] = r["gflop"] / r["step_s_median"]
    out.update(batch=batch, joints=joints, lstm=lstm, length=length, checkpoint_s=checkpoint_s,
               steps_per_block=block,
               speedup_median=out["before"]["step_s_median"] / out["after"]["step_s_median"],
               speedup_epoch=out["before"]["epoch_s_per_step"] / out["after"]["epoch_s_per_step"],
               speedup_blocks=out["after"]["epoch_s_per_step"] / out["blocks"]["epoch_s_per_step"])
    return out


def step_section(steps):
    """The training step at the KGBD shape (batch 256) and at batch 8, where the cost per
    kernel and per call dominates on a CPU as it does on a GPU, and at the KS20 shape
    (25 joints, LSTM 256, batch 64): before, after, and in blocks of steps. At batch 256 a
    third of the steps and at the KS20 shape a tenth (a step takes most of a second and a
    quarter of one on two CPU cores)."""
    results = {}
    for shape, batch, joints, lstm, share in (("KGBD", 256, 20, 128, 3), ("KGBD", 8, 20, 128, 1),
                                              ("KS20", 64, 25, 256, 10)):
        r = time_training_step(batch, max(30, steps // share), joints=joints, lstm=lstm)
        results[f"{shape.lower()}_b{batch}"] = r
        for mode in ("before", "after", "blocks"):
            m = r[mode]
            kernels = m["kernels"]["total"] if m.get("kernels") else "n/a"
            host = f"{m['host_ms_per_step']:.2f}" if m["host_ms_per_step"] is not None else "-"
            warm = f"{m['compile_warm_s']:.1f}" if m["compile_warm_s"] is not None else "-"
            waited = (f"median {1000 * m['step_s_median']:.1f} ms, p90 "
                      f"{1000 * m['step_s_p90']:.1f} ms ({m['steps_timed']} steps), "
                      if m["steps_timed"] else f"{r['steps_per_block']} steps per call, ")
            print(f"step {shape} b{batch} {mode:6s}: {waited}epoch "
                  f"{1000 * m['epoch_s_per_step']:.1f} ms/step, host {host} ms/step, "
                  f"kernels {kernels}, compile cold {m['compile_cold_s']:.1f} s / warm {warm} s"
                  + (f", {m['gflop_per_s']:.1f} GFLOP/s" if m.get("gflop_per_s") else ""))
        print(f"  after vs before: x{r['speedup_median']:.2f} per waited step, "
              f"x{r['speedup_epoch']:.2f} per epoch step; blocks vs after: "
              f"x{r['speedup_blocks']:.2f} per epoch step; checkpoint {r['checkpoint_s']:.2f} s")
    return results


SECTIONS = ("size", "pretrain", "kgbd", "breakdown", "reid", "sweeps", "step")


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
    if "step" in sections:
        done("step", step_section(30 if args.quick else 300))
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
    for name, draw_batching, jit in variants:
        r = time_pretrain(64, 6, draw_batching, jit, steps)
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
    """The KGBD shape: 20 joints, LSTM 128, batch 256, f=6 (ragged draws, XLA)."""
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
