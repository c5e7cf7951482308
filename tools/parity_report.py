"""How far our computations are from the authors' own code, on their recorded outputs.

    python tools/parity_report.py                 # both cases of tests/fixtures/parity
    python tools/parity_report.py --fixtures OTHER_FIXTURE_FOLDER

Prints, for every quantity, the largest difference between our float32 computation, our
float64 twin of it and the reference's outputs, relative to the largest magnitude of the
reference tensor, and the largest ratio of a difference to its bound (see "Tolerances that
hold on any CPU" below). tests/test_parity.py asserts the same bounds.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "tests", "fixtures", "parity")
CASES = ("ks20", "ias")


def relative_error(ours: np.ndarray, ref: np.ndarray, scale_of: np.ndarray = None) -> float:
    """Largest |ours - ref| relative to the largest magnitude of `scale_of` (default: ref)."""
    scale_of = ref if scale_of is None else scale_of
    return float(np.abs(ours - ref).max() / max(np.abs(scale_of).max(), 1e-30))


class ParityCase:
    """One fixture case: the reference's outputs, and our model loaded from its checkpoint
    (`stage` "init": the initial weights; "rn": the trained Re-ID model)."""

    def __init__(self, name: str, stage: str = "init", root: str = FIXTURES,
                 precision=np.float32):
        from models.layers import float_precision
        from models.reference_checkpoint import (ReferenceCheckpoint, load_reference_classifier,
                                                 load_reference_encoder)
        from models.sm_sge import SMSGE, ReIDClassifier
        from utils.foundation.graphs import build_graph
        from utils.data.datasets import get_dataset
        from utils.foundation.skeleton import get_layout
        self.name, self.stage, self.folder = name, stage, os.path.join(root, name)
        with open(os.path.join(self.folder, "init", "meta.json")) as fh:
            self.meta = json.load(fh)
        self.ref = np.load(os.path.join(self.folder, stage, "reference_outputs.npz"))
        self.ckpt = ReferenceCheckpoint(os.path.join(self.folder, stage, "model.ckpt"))
        sizes = self.ckpt.sizes()
        from models.engine import name as engine_name
        if np.dtype(precision) == np.float64 and engine_name() == "jax":
            import jax   # JAX computes in float32 unless told otherwise
            jax.config.update("jax_enable_x64", True)
        with float_precision(precision):
            layout = get_layout(get_dataset(self.meta["dataset"]).layout)
            self.model = SMSGE(build_graph(layout, self.meta["nhood"]),
                               sizes["lstm_size"], sizes["heads"], self.meta["fusion_lambda"])
            self.classifier = ReIDClassifier(self.model.embedding_size, sizes["num_classes"])
        load_reference_encoder(self.ckpt, self.model)
        load_reference_classifier(self.ckpt, self.classifier, trained=stage == "rn")
        self.batch, self.length = self.meta["batch_size"], self.meta["time_step"]
        self.x = self.ref["in_J"].reshape(self.batch, self.length, -1, 3).astype(precision)

    def encodings(self) -> np.ndarray:
        """Ours [B, f+1, S*H] laid out as the reference's [(f+1)*B, S*H], prefix-major."""
        enc = np.asarray(self.model.encode(self.x))
        return np.transpose(enc, [1, 0, 2]).reshape(-1, enc.shape[-1])

    def logits_and_loss(self):
        from models.layers import ops
        logits = self.classifier(self.model.encode(self.x))
        labels = self.ref["labels"].argmax(1)
        loss = ops.mean(ops.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        return np.asarray(logits), float(loss)

    def scale_inputs(self) -> dict:
        return {s: np.asarray(c) for s, c in self.model.scale_coordinates(self.x).items()}

    def mgrn_features(self) -> dict:
        coords = self.model.scale_coordinates(self.x)
        return {s: np.asarray(h) for s, h in self.model.frame_features(coords).items()}

    def pretext(self, draw_batching: str = "ragged"):
        """(losses, {scale: {reference variable name: our gradient, reshaped}}, names our
        gradients reach per scale) with the recorded draws. A gradient reaches a variable
        when it is not None (TensorFlow's answer for an unconnected variable) and not all
        zero (JAX's)."""
        from models.draws import ragged_draws
        from models.engine import active_engine
        from models.reference_checkpoint import LETTER, reference_name_map
        draws = [self.ref[f"draw_{i}"] for i in range(self.length)]
        if draw_batching == "ragged":
            ragged = ragged_draws([len(d) for d in draws])
            frame_indices = ragged.frame_indices(draws)
            loss_fn = lambda x: self.model.pretext_losses(x, frame_indices, ragged)   # noqa: E731
        else:
            loss_fn = lambda x: self.model.pretext_losses_per_draw(x, draws)   # noqa: E731
        variables = list(self.model.trainable_variables)
        losses, all_grads = active_engine().gradients(loss_fn, variables, self.x)
        names = reference_name_map(self.model)
        grads, reached = {}, {}
        for scale, letter in LETTER.items():
            by_var = {id(v): g for v, g in zip(variables, all_grads[scale])
                      if g is not None and np.any(g != 0)}
            reached[scale] = {name for name, (var, _) in names.items() if id(var) in by_var}
            grads[scale] = {}
            for name, (var, part) in names.items():
                g = by_var.get(id(var))
                if g is not None:
                    grads[scale][name] = g if part is None else g[part]
        return {s: float(v) for s, v in losses.items()}, grads, reached


# ----------------------------------------------------------------------------------------
# Tolerances that hold on any CPU.
#
# The reference's outputs and ours in float32 are both exact maths plus float32 rounding,
# and how large that rounding is depends on the summation orders that the CPU's vector
# instructions and libraries pick (oneDNN and Eigen dispatch on SSE4.1 / AVX / AVX2 /
# AVX-512; TF_ENABLE_ONEDNN_OPTS=0 routes everything through Eigen). So both are compared
# with our float64 twin of the same model, checkpoint and inputs (exact maths for this
# purpose: float64 rounding is 1e-16), and each difference is bounded by how sensitive that
# tensor is to float32-sized changes of its data:
#
#   scale(T) = max over SENSITIVITY_TRIALS of |T64(data*(1+eps*u)) - T64(data)| / max|T_ref|
#
# with u uniform in [-1, 1] for every weight and input value (eps = 2^-23), and at least
# FLOOR. Backward error analysis says a float32 evaluation is the exact maths on data
# perturbed by about n * eps, n the number of roundings on a value's way (MGRN, two LSTM
# layers over f steps, heads, reductions): a few tens. Two rules:
#
# - Maths parity: |T_ref - T64| <= REFERENCE_FACTOR * scale(T). It does not depend on the
#   CPU the test runs on (T64 and scale are float64 results), only on the reference's file.
# - Our float32: |T32 - T64| <= OWN_FACTOR * scale(T), the same factor for forward values;
#   for gradients 10 times more (GRADIENT_OWN_FACTOR). Summation order matters most in the
#   long reductions of the backward pass (sums over B*f*nodes = thousands of terms), where a
#   sequential float32 sum errs by up to n * eps * sum|terms| while a perturbation of the
#   data moves it only by about sqrt(n) * eps * rms(term).
#
# FLOOR covers tensors that hardly move under small changes of the data (l1 gradients of
# output biases are means of signs), whose float32 error is the rounding of their last sum
# over the B*f rows of a batch: about sqrt(B*f) eps (a random walk), so 16 eps.
# Measured worst, on one AMD EPYC over SSE4.1, AVX, AVX2, AVX-512 and oneDNN off (docs/parity.md,
# "The figures"): about a twentieth of each bound. A wrong formula (a missing bias, head or zero
# frame) moves tensors by 1e-4 to 1, beyond both bounds (tests/test_parity.py checks that
# such changes are caught).
REFERENCE_FACTOR = 100.0
OWN_FACTOR = 100.0
GRADIENT_OWN_FACTOR = 1000.0
FLOOR = 16 * float(np.finfo(np.float32).eps)
SENSITIVITY_TRIALS = 2
DRAW_BATCHINGS = ("ragged", "per_draw")   # models/training.Pretrainer.DRAW_BATCHINGS


def quantities(case: ParityCase, batchings=DRAW_BATCHINGS) -> dict:
    """{key: our value shaped as the reference's}; keys are the reference file's names,
    with "@<draw batching>" on the pretext losses and gradients."""
    from models.reference_checkpoint import LETTER
    out = {}
    logits, loss = case.logits_and_loss()
    out["encodings"], out["logits"] = case.encodings(), logits
    out["loss" if case.stage == "rn" else "reid_loss"] = np.float64(loss)
    if case.stage == "rn":
        return out
    feats = case.mgrn_features()
    for scale, k in LETTER.items():
        out[f"mgrn_{k}"] = feats[scale].reshape(case.ref[f"mgrn_{k}"].shape)
    for batching in batchings:
        losses, grads, _ = case.pretext(batching)
        for scale, k in LETTER.items():
            out[f"loss_{k}@{batching}"] = np.float64(losses[scale])
            for name, g in grads[scale].items():
                key = f"grad_{k}/{name}"
                if key in case.ref.files:
                    out[f"{key}@{batching}"] = g.reshape(case.ref[key].shape)
    return out


def reference_value(case: ParityCase, key: str) -> np.ndarray:
    return case.ref[key.split("@")[0]]


def rounding_scales(case64: ParityCase, trials: int = SENSITIVITY_TRIALS) -> dict:
    """{key without the draw batching: scale(T)} (see above), from the float64 case."""
    eps = float(np.finfo(np.float32).eps)
    base = quantities(case64, ("ragged",))
    variables = list(case64.model.trainable_variables) + list(case64.classifier.trainable_variables)
    saved, x = [np.array(v.numpy()) for v in variables], case64.x
    scales = {}
    try:
        for trial in range(trials):
            rng = np.random.default_rng(trial)
            for v, w in zip(variables, saved):
                v.assign(w * (1 + eps * rng.uniform(-1, 1, w.shape)))
            case64.x = x * (1 + eps * rng.uniform(-1, 1, x.shape))
            for key, value in quantities(case64, ("ragged",)).items():
                change = relative_error(value, base[key], reference_value(case64, key))
                name = key.split("@")[0]
                scales[name] = max(scales.get(name, 0.0), change)
    finally:
        for v, w in zip(variables, saved):
            v.assign(w)
        case64.x = x
    return scales


def parity_table(name: str, stage: str, root: str = FIXTURES) -> dict:
    """{key: dict(ours32_ref, ours32_64, ref_64, scale)}: differences relative to the
    reference tensor's largest magnitude, and scale(T) (at least FLOOR)."""
    case32 = ParityCase(name, stage, root)
    case64 = ParityCase(name, stage, root, precision=np.float64)
    ours32, ours64 = quantities(case32), quantities(case64)
    scales = rounding_scales(case64)
    table = {}
    for key, value in ours32.items():
        ref = reference_value(case32, key)
        table[key] = dict(ours32_ref=relative_error(value, ref),
                          ours32_64=relative_error(value, ours64[key], ref),
                          ref_64=relative_error(ours64[key], ref),
                          scale=max(scales[key.split("@")[0]], FLOOR))
    return table


FAMILIES = (  # report rows: (stage, title, which keys)
    ("init", "MGRN features (4 scales)", lambda k: k.startswith("mgrn_")),
    ("init", "prefix encodings", lambda k: k == "encodings"),
    ("init", "summed logits (untrained classifier)", lambda k: k == "logits"),
    ("init", "Re-ID loss", lambda k: k == "reid_loss"),
    ("init", "4 pretext losses (ragged)", lambda k: k.startswith("loss_") and k.endswith("@ragged")),
    ("init", "4 pretext losses (per draw)", lambda k: k.startswith("loss_") and k.endswith("@per_draw")),
    ("init", "every gradient (ragged)", lambda k: k.startswith("grad_") and k.endswith("@ragged")),
    ("init", "every gradient (per draw)", lambda k: k.startswith("grad_") and k.endswith("@per_draw")),
    ("rn", "trained Re-ID model: encodings", lambda k: k == "encodings"),
    ("rn", "trained Re-ID model: test logits", lambda k: k == "logits"),
)
COLUMNS = (("ours32_ref", "ours (float32) vs reference"), ("ref_64", "reference vs ours (float64)"),
           ("ours32_64", "ours float32 vs float64"),
           ("ref_ratio", "reference vs ours (float64) / its bound REFERENCE_FACTOR * scale"),
           ("own_ratio", "ours float32 vs float64 / its bound (GRADIENT_)OWN_FACTOR * scale"))


def own_factor(key: str) -> float:
    return GRADIENT_OWN_FACTOR if key.startswith("grad_") else OWN_FACTOR


def within_bounds(key: str, row: dict) -> bool:
    return (row["ref_64"] <= REFERENCE_FACTOR * row["scale"]
            and row["ours32_64"] <= own_factor(key) * row["scale"])


def report(root: str = FIXTURES, cases=CASES) -> dict:
    """{case: {family title: {column: largest value over the family's tensors}}}."""
    out = {}
    for name in cases:
        tables = {stage: parity_table(name, stage, root) for stage in ("init", "rn")}
        out[name] = {}
        for stage, title, chosen in FAMILIES:
            rows = [dict(r, ref_ratio=r["ref_64"] / (REFERENCE_FACTOR * r["scale"]),
                         own_ratio=r["ours32_64"] / (own_factor(k) * r["scale"]))
                    for k, r in tables[stage].items() if chosen(k)]
            out[name][title] = {col: max(r[col] for r in rows) for col, _ in COLUMNS}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fixtures", default=FIXTURES)
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of "
                   + ",".join(CASES))
    args = p.parse_args(argv)
    cases = tuple(c for c in CASES if c in args.cases.split(","))
    table = report(args.fixtures, cases)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(table, fh, indent=1)
    for col, heading in COLUMNS:
        print(f"\n{heading} (must stay below 1)" if col.endswith("ratio") else
              f"\n{heading} (largest, relative to the reference tensor's largest magnitude)")
        print("| quantity | " + " | ".join(cases) + " |")
        print("|---|" + "---|" * len(cases))
        for _, title, _ in FAMILIES:
            print(f"| {title} | " + " | ".join(f"{table[n][title][col]:.1e}" for n in cases) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
