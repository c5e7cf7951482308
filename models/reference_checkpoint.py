"""Reading the authors' TF1 checkpoints (their released `RN/...ckpt` and `Pre-Trained/...ckpt`
files) into our modules, with no TF1 graph: every variable is mapped by name.

The reference names variables by creation order (`Variable`, `Variable_1`, ...,
`conv1d_7/kernel`, `BiasAdd_3/biases`), so the map below restates that order:
- Multi_Scale: the structural relation layers in the order J, P, B, I; each makes its input
  projection (`Variable_{2s}`, `Variable_{2s+1}`), then per head three 1x1 convolutions
  (projection, scorer f1 with bias, scorer f2 with bias) and a `BiasAdd`. Then the eleven
  fusion matrices (`Variable_8..18`, one of them never used).
- MSR: per scale scope J, P, B, I, its reconstruction heads (W1, b1, W2, b2 each) and its
  2-layer LSTM (`rnn/multi_rnn_cell/cell_{l}/lstm_cell/{kernel,bias}`).
- Recognition: W1, b1, W2, b2. A Re-ID checkpoint holds two sets: `Variable..Variable_3`
  from the pre-training graph (never trained) and `Variable_4.._7`, the trained classifier.
"""
import glob
import importlib.util
import os
from typing import Callable, Dict, List, Tuple

import numpy as np

from utils.foundation.errors import UserError

LETTER = {"joint": "J", "part": "P", "body": "B", "hyper": "I"}
SRL_ORDER = ("joint", "part", "body", "hyper")
# Fusion matrices in creation order, as (receiving scale, sending scale); None is the
# reference's W_cs_I, created but never used.
FUSION_ORDER = (("joint", "part"), ("part", "body"), ("joint", "body"), None,
                ("hyper", "joint"), ("hyper", "part"), ("hyper", "body"),
                ("hyper", "hyper"), ("joint", "joint"), ("part", "part"), ("body", "body"))
# Reconstruction heads in creation order inside each scale's MSR scope.
HEAD_ORDER = {"joint": ("joint", "part", "body"), "part": ("part", "body"),
              "body": ("body",), "hyper": ("joint", "part", "body", "hyper")}
TRAINED_CLASSIFIER = 4    # first Recognition variable index of the trained classifier


def _indexed(base: str, i: int) -> str:
    return base if i == 0 else f"{base}_{i}"


def resolve_checkpoint(path: str) -> str:
    """A checkpoint prefix from a prefix, a prefix without `.ckpt`, or a folder holding
    exactly one checkpoint."""
    for prefix in (path, path + ".ckpt"):
        if os.path.isfile(prefix + ".index"):
            return prefix
    if os.path.isdir(path):
        found = sorted(p[:-len(".index")] for p in glob.glob(os.path.join(path, "*.index")))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise UserError(f"{path} holds {len(found)} checkpoints; name one: "
                            + ", ".join(os.path.basename(f) for f in found[:5]))
        raise UserError(f"{path} holds no TF checkpoint (*.ckpt.index) and no config.json")
    raise UserError(f"no checkpoint at {path} (expected {path}.index or a folder with one)")


class ReferenceCheckpoint:
    """The arrays of one TF1 checkpoint, by name, and the sizes they imply. Read with
    TensorFlow, or without it from an export beside the checkpoint (<prefix>.npz, written by
    tools/export_checkpoint.py), as on machines that have only JAX."""

    def __init__(self, path: str):
        self.prefix = resolve_checkpoint(path)
        if os.path.isfile(self.prefix + EXPORT_SUFFIX):
            self.arrays = read_export(self.prefix)
        else:
            self.arrays = read_with_tensorflow(self.prefix)
        self.shapes = {k: tuple(v.shape) for k, v in self.arrays.items()}
        if "MSR/MSR/J_pred/J_pred/Variable_2" not in self.shapes:
            raise UserError(f"{self.prefix} is not an SM-SGE checkpoint of the authors' code "
                            f"(no MSR/MSR/J_pred variables)")

    def get(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def has(self, name: str) -> bool:
        return name in self.shapes

    @property
    def has_trained_classifier(self) -> bool:
        return self.has(f"Recognition/Recognition/Variable_{TRAINED_CLASSIFIER + 3}")

    def sizes(self) -> dict:
        """Joints, LSTM size, attention heads and identities, read off the shapes."""
        hidden, joints3 = self.shapes["MSR/MSR/J_pred/J_pred/Variable_2"]
        heads = sum(1 for k in self.shapes
                    if k.startswith("Multi_Scale/BiasAdd") and k.endswith("/biases"))
        classifier = TRAINED_CLASSIFIER if self.has_trained_classifier else 0
        out = f"Recognition/Recognition/Variable_{classifier + 2}"
        return dict(num_joints=joints3 // 3, lstm_size=hidden, heads=heads // len(SRL_ORDER),
                    num_classes=self.shapes[out][1] if self.has(out) else None)


EXPORT_SUFFIX = ".npz"


def read_with_tensorflow(prefix: str) -> Dict[str, np.ndarray]:
    """TensorFlow reads the TF1 format (the model itself may then run on either engine)."""
    try:
        installed = importlib.util.find_spec("tensorflow") is not None
    except ImportError:
        installed = False
    if not installed:
        raise UserError(f"reading the authors' checkpoint {prefix} needs TensorFlow installed "
                        f"(pip install -r requirements.txt), or an export of it made where "
                        f"TensorFlow is: python tools/export_checkpoint.py {prefix}")
    from models.engine_tensorflow import read_tf1_checkpoint
    return read_tf1_checkpoint(prefix)


def read_export(prefix: str) -> Dict[str, np.ndarray]:
    from utils.foundation.io import DAMAGED, damage_detail
    path = prefix + EXPORT_SUFFIX
    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except DAMAGED as exc:
        raise UserError(f"cannot read {path}: it is damaged ({damage_detail(exc)}); export it "
                        f"again: python tools/export_checkpoint.py {prefix}") from None


def export_checkpoint(prefix: str) -> str:
    """Write every variable of a TF1 checkpoint to <prefix>.npz (needs TensorFlow)."""
    from utils.foundation.io import atomic_save_npz
    prefix = resolve_checkpoint(prefix)
    atomic_save_npz(prefix + EXPORT_SUFFIX, read_with_tensorflow(prefix))
    return prefix + EXPORT_SUFFIX


# ----------------------------------------------------------------------------------------
# The map: our variable <- (reference names, how to assemble them)

Source = Tuple[object, List[str], Callable[[List[np.ndarray]], np.ndarray]]


def _same(arrays):
    return arrays[0]


def encoder_sources(model) -> List[Source]:
    """(our variable, reference names, assemble) for every variable of an SMSGE encoder."""
    if tuple(model.scales) != SRL_ORDER or any(
            set(model.heads[s]) != set(HEAD_ORDER[s]) for s in model.scales):
        raise UserError("the authors' checkpoints hold the full model: all four scales and "
                        "the cross-scale heads (drop --scales/--csi)")
    heads = model.mgrn.structural["joint"].w_head.shape[0]
    sources: List[Source] = []
    for si, scale in enumerate(SRL_ORDER):
        layer = model.mgrn.structural[scale]
        sources += [(layer.w_in, [f"Multi_Scale/Multi_Scale/{_indexed('Variable', 2 * si)}"], _same),
                    (layer.b_in, [f"Multi_Scale/Multi_Scale/Variable_{2 * si + 1}"], _same)]
        conv = [3 * (si * heads + h) for h in range(heads)]
        conv_name = lambda c, part: f"Multi_Scale/{_indexed('conv1d', c)}/{part}"   # noqa: E731
        sources += [
            (layer.w_head, [conv_name(c, "kernel") for c in conv],
             lambda a: np.stack([k[0] for k in a])),
            (layer.a_src, [conv_name(c + 1, "kernel") for c in conv],
             lambda a: np.stack([k[0, :, 0] for k in a])),
            (layer.a_src_bias, [conv_name(c + 1, "bias") for c in conv],
             lambda a: np.concatenate(a)),
            (layer.a_dst, [conv_name(c + 2, "kernel") for c in conv],
             lambda a: np.stack([k[0, :, 0] for k in a])),
            (layer.a_dst_bias, [conv_name(c + 2, "bias") for c in conv],
             lambda a: np.concatenate(a)),
            (layer.b_head, [f"Multi_Scale/{_indexed('BiasAdd', si * heads + h)}/biases"
                            for h in range(heads)],
             lambda a: np.stack(a)[:, None, :]),
        ]
    for i, pair in enumerate(FUSION_ORDER):
        if pair is not None:
            receiver, sender = pair
            sources.append((model.mgrn.fusion[receiver][sender],
                            [f"Multi_Scale/Multi_Scale/Variable_{2 * len(SRL_ORDER) + i}"], _same))
    for scale in SRL_ORDER:
        letter = LETTER[scale]
        for j, target in enumerate(HEAD_ORDER[scale]):
            head = model.heads[scale][target]
            for k, var in enumerate((head.w1, head.b1, head.w2, head.b2)):
                sources.append((var, [f"MSR/MSR/{letter}_pred/{letter}_pred/"
                                      f"{_indexed('Variable', 4 * j + k)}"], _same))
        lstm = model.lstms[scale]
        for layer_i, (kernel, bias) in enumerate(zip(lstm.kernels, lstm.biases)):
            cell = f"MSR/{letter}_pred/rnn/multi_rnn_cell/cell_{layer_i}/lstm_cell"
            sources += [(kernel, [f"{cell}/kernel"], _same), (bias, [f"{cell}/bias"], _same)]
    return sources


def classifier_sources(classifier, first: int) -> List[Source]:
    return [(var, [f"Recognition/Recognition/{_indexed('Variable', first + k)}"], _same)
            for k, var in enumerate((classifier.w1, classifier.b1, classifier.w2, classifier.b2))]


def load_sources(ckpt: ReferenceCheckpoint, sources: List[Source]) -> None:
    """Check every reference variable's shape against ours, then assign them all."""
    values = []
    for var, names, assemble in sources:
        missing = [n for n in names if not ckpt.has(n)]
        if missing:
            raise UserError(f"{ckpt.prefix} has no variable {missing[0]}; the model built from "
                            f"the flags (heads --P, dataset) does not fit this checkpoint")
        arrays = [ckpt.get(n) for n in names]
        value = assemble(arrays)
        if tuple(value.shape) != tuple(var.shape):
            want = tuple(var.shape)
            raise UserError(f"{ckpt.prefix}: variable {names[0]} has shape "
                            f"{ckpt.shapes[names[0]]}, but the model built from the flags needs "
                            f"{want} for it ({var.name}); check --dataset, --length and "
                            f"the architecture flags")
        values.append((var, value))
    for var, value in values:
        var.assign(value.astype(np.dtype(var.dtype)))


def load_reference_encoder(path_or_ckpt, model) -> ReferenceCheckpoint:
    ckpt = path_or_ckpt if isinstance(path_or_ckpt, ReferenceCheckpoint) else ReferenceCheckpoint(path_or_ckpt)
    load_sources(ckpt, encoder_sources(model))
    return ckpt


def load_reference_classifier(ckpt: ReferenceCheckpoint, classifier, trained: bool = True) -> None:
    """trained: the Re-ID classifier (Variable_4.._7); otherwise the untrained copy."""
    if trained and not ckpt.has_trained_classifier:
        raise UserError(f"{ckpt.prefix} holds no trained Re-ID classifier "
                        f"(Recognition/Recognition/Variable_4.._7): it is a pre-trained "
                        f"encoder; use it with SM-SGE.py --pre_train 0 --encoder_ckpt")
    load_sources(ckpt, classifier_sources(classifier, TRAINED_CLASSIFIER if trained else 0))


def reference_name_map(model) -> Dict[str, Tuple[object, int]]:
    """reference name -> (our variable, position within it) for single-source variables,
    and the stacked head index for multi-source ones; used to compare gradients by name."""
    out = {}
    for var, names, _ in encoder_sources(model):
        for i, n in enumerate(names):
            out[n] = (var, i if len(names) > 1 else None)
    return out


def adopt_checkpoint_sizes(cfg, ckpt: ReferenceCheckpoint):
    """The run configuration with the LSTM size and heads of an authors' checkpoint, whose
    joints must fit the dataset; and the checkpoint's sizes."""
    sizes = ckpt.sizes()
    if sizes["num_joints"] != cfg.num_joints:
        raise UserError(f"{ckpt.prefix} is a {sizes['num_joints']}-joint model, but "
                        f"{cfg.dataset} has {cfg.num_joints} joints; check --dataset")
    return cfg.replace(lstm_size=sizes["lstm_size"], P=sizes["heads"]), sizes
