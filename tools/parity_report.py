"""How far our computations are from the authors' own code, on their recorded outputs.

    python tools/parity_report.py                 # both cases of tests/fixtures/parity
    python tools/parity_report.py --fixtures ../shared/parity

Prints, for every quantity, the largest difference relative to the largest magnitude of
the reference tensor. tests/test_parity.py asserts tolerances on the same quantities.
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


def relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-30))


class ParityCase:
    """One fixture case: the reference's outputs, and our model loaded from its checkpoint
    (`stage` "init": the initial weights; "rn": the trained Re-ID model)."""

    def __init__(self, name: str, stage: str = "init", root: str = FIXTURES):
        from models.reference_checkpoint import (ReferenceCheckpoint, load_reference_classifier,
                                                 load_reference_encoder)
        from models.sm_sge import SMSGE, ReIDClassifier
        from utils.graphs import build_graph
        from utils.skeleton import layout_for
        self.name, self.stage, self.folder = name, stage, os.path.join(root, name)
        with open(os.path.join(self.folder, "init", "meta.json")) as fh:
            self.meta = json.load(fh)
        self.ref = np.load(os.path.join(self.folder, stage, "reference_outputs.npz"))
        self.ckpt = ReferenceCheckpoint(os.path.join(self.folder, stage, "model.ckpt"))
        sizes = self.ckpt.sizes()
        self.model = SMSGE(build_graph(layout_for(sizes["num_joints"]), self.meta["nhood"]),
                           sizes["lstm_size"], sizes["heads"], self.meta["fusion_lambda"])
        load_reference_encoder(self.ckpt, self.model)
        self.batch, self.length = self.meta["batch_size"], self.meta["time_step"]
        self.x = self.ref["in_J"].reshape(self.batch, self.length, -1, 3)
        self.classifier = ReIDClassifier(self.model.embedding_size, sizes["num_classes"])
        load_reference_classifier(self.ckpt, self.classifier, trained=stage == "rn")

    def encodings(self) -> np.ndarray:
        """Ours [B, f+1, 4H] laid out as the reference's [(f+1)*B, 4H], prefix-major."""
        import tensorflow as tf
        enc = self.model.encode(tf.constant(self.x)).numpy()
        return np.transpose(enc, [1, 0, 2]).reshape(-1, enc.shape[-1])

    def logits_and_loss(self):
        import tensorflow as tf
        logits = self.classifier(self.model.encode(tf.constant(self.x))).numpy()
        labels = self.ref["labels"].argmax(1)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return logits, float(loss)

    def scale_inputs(self) -> dict:
        import tensorflow as tf
        return {s: c.numpy() for s, c in self.model.scale_coordinates(tf.constant(self.x)).items()}

    def mgrn_features(self) -> dict:
        import tensorflow as tf
        coords = self.model.scale_coordinates(tf.constant(self.x))
        return {s: h.numpy() for s, h in self.model.frame_features(coords).items()}

    def pretext(self, layout: str = "ragged"):
        """(losses, {scale: {reference variable name: our gradient, reshaped}}, names our
        gradients reach per scale) with the recorded draws."""
        import tensorflow as tf
        from models.draws import ragged_draws
        from models.reference_checkpoint import LETTER, reference_name_map
        draws = [self.ref[f"draw_{i}"] for i in range(self.length)]
        x = tf.constant(self.x)
        with tf.GradientTape(persistent=True) as tape:
            if layout == "ragged":
                ragged = ragged_draws([len(d) for d in draws])
                losses = self.model.pretext_losses(x, tf.constant(ragged.frames(draws)), ragged)
            else:
                losses = self.model.pretext_losses_per_draw(x, draws)
        names = reference_name_map(self.model)
        grads, reached = {}, {}
        for scale, letter in LETTER.items():
            variables = self.model.scale_variables(scale)
            by_var = dict(zip([id(v) for v in variables], tape.gradient(losses[scale], variables)))
            reached[scale] = {name for name, (var, _) in names.items()
                              if by_var.get(id(var)) is not None}
            grads[scale] = {}
            for name, (var, part) in names.items():
                g = by_var.get(id(var))
                if g is not None:
                    grads[scale][name] = g.numpy() if part is None else g.numpy()[part]
        return {s: float(v) for s, v in losses.items()}, grads, reached


def differences(name: str, root: str = FIXTURES) -> dict:
    """{quantity: largest relative difference} for one case."""
    from models.reference_checkpoint import LETTER
    out = {}
    case = ParityCase(name, "init", root)
    inputs, feats = case.scale_inputs(), case.mgrn_features()
    out["part, body, hyper-joint inputs"] = max(
        relative_error(inputs[s].reshape(case.ref[f"in_{k}"].shape), case.ref[f"in_{k}"])
        for s, k in LETTER.items() if s != "joint")
    out["MGRN features (4 scales)"] = max(
        relative_error(feats[s].reshape(case.ref[f"mgrn_{k}"].shape), case.ref[f"mgrn_{k}"])
        for s, k in LETTER.items())
    out["prefix encodings"] = relative_error(case.encodings(), case.ref["encodings"])
    logits, loss = case.logits_and_loss()
    out["summed logits (untrained classifier)"] = relative_error(logits, case.ref["logits"])
    out["Re-ID loss"] = abs(loss - float(case.ref["reid_loss"])) / abs(float(case.ref["reid_loss"]))
    for layout in ("ragged", "per_draw"):
        losses, grads, _ = case.pretext(layout)
        out[f"4 pretext losses ({layout})"] = max(
            abs(losses[s] - float(case.ref[f"loss_{k}"])) / abs(float(case.ref[f"loss_{k}"]))
            for s, k in LETTER.items())
        out[f"every gradient ({layout})"] = max(
            relative_error(grads[s][key.split("/", 1)[1]].reshape(case.ref[key].shape), case.ref[key])
            for s, k in LETTER.items() for key in case.ref.files if key.startswith(f"grad_{k}/"))
    rn = ParityCase(name, "rn", root)
    out["trained Re-ID model: encodings"] = relative_error(rn.encodings(), rn.ref["encodings"])
    logits, loss = rn.logits_and_loss()
    out["trained Re-ID model: test logits"] = relative_error(logits, rn.ref["logits"])
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fixtures", default=FIXTURES)
    args = p.parse_args(argv)
    table = {name: differences(name, args.fixtures) for name in CASES}
    print("| quantity | " + " | ".join(f"{n} (largest relative difference)" for n in CASES) + " |")
    print("|---|" + "---|" * len(CASES))
    for quantity in table[CASES[0]]:
        print(f"| {quantity} | " + " | ".join(f"{table[n][quantity]:.1e}" for n in CASES) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
