"""The SM-SGE encoder: MGRN per frame, one 2-layer LSTM per scale, reconstruction heads.

Pretext task (docs/method.md §4): for every k = 1..f (repeated `sample_num` times) draw k sorted
distinct frames, shared by the whole batch (as the reference: once per run, see
models/draws.py); each scale's LSTM reads the sampled frame features and every output
reconstructs the sampled frames' skeletons of its own scale (SSR) and of the coarser ones
(CSI), or the skeletons `margin` frames later (the reference's pred_margin).

Speed: the draws of a step have lengths 1..f, so they are run together as one ragged,
time-major batch (longest draw first): step t holds only the draws longer than t, and each
scale makes one LSTM call per step instead of one per draw, with no padding. The first
layer's input projection is computed once per frame and gathered, since draws only pick
frames. `pretext_losses_per_draw` keeps the straightforward one-call-per-draw form; tests
check that both give the same losses.
"""
from typing import Dict, List, Tuple

import numpy as np

from models.draws import RaggedDraws
from models.layers import (Module, StackedLSTM, add_n, float_dtype, keras, normal_var, ops,
                           split_sizes, zeros_var)
from models.mgrn import FEATURES, MGRN
from utils.foundation.graphs import SCALES, MultiScaleGraph

# Which skeletons each scale's LSTM reconstructs: its own (SSR), then coarser ones (CSI).
RECONSTRUCTS = {"joint": ("joint", "part", "body"), "part": ("part", "body"),
                "body": ("body",), "hyper": ("hyper", "joint", "part", "body")}
# Scales in the order the reference concatenates their encodings for Re-ID.
ENCODING_ORDER = ("hyper", "joint", "part", "body")


class ReconstructionHead(Module):
    """2-layer MLP, hidden = LSTM size, ReLU; weights random-normal (std 1) as the reference."""

    def __init__(self, hidden: int, out: int, rng: np.random.Generator, name: str):
        super().__init__(name=name)
        self.w1 = normal_var([hidden, hidden], rng, "w1")
        self.b1 = zeros_var([hidden], "b1")
        self.w2 = normal_var([hidden, out], rng, "w2")
        self.b2 = zeros_var([out], "b2")

    def __call__(self, x):
        return ops.tensordot(ops.relu(ops.tensordot(x, self.w1, 1) + self.b1), self.w2, 1) + self.b2


def reconstruct_all(heads: Dict[str, ReconstructionHead], x) -> dict:
    """Every head of one scale on the same LSTM outputs x [N, H]; the first layers run as
    one wider product (faster than one per head, same numbers)."""
    names = list(heads)
    hidden = ops.relu(ops.matmul(x, ops.concatenate([heads[t].w1 for t in names], 1))
                      + ops.concatenate([heads[t].b1 for t in names], 0))
    return {t: ops.matmul(h, heads[t].w2) + heads[t].b2
            for t, h in zip(names, ops.split(hidden, len(names), axis=1))}


def slot_error(pred, target, loss: str, batch_axis: int = 0):
    """Per-slot error, reduced over the batch axis and the coordinates (last axis)."""
    diff, axes = pred - target, (batch_axis, len(pred.shape) - 1)
    if loss == "l1":
        return ops.mean(ops.abs(diff), axis=axes)
    if loss == "MSE":
        return ops.mean(ops.square(diff), axis=axes)
    return 0.5 * ops.sum(ops.square(diff), axis=axes)   # tf.nn.l2_loss


# ----------------------------------------------------------------------------------------

class SMSGE(Module):
    def __init__(self, graph: MultiScaleGraph, lstm_size: int = 256, heads: int = 8,
                 fusion_lambda: float = 1.0, num_layers: int = 2, seed: int = 0,
                 scales=SCALES, cross_scale: bool = True, struct_only: bool = False,
                 name: str = "sm_sge"):
        """scales: the graph scales to use (all four in the paper's model; subsets for its
        scale ablation). cross_scale=False drops the cross-scale reconstruction heads
        (CSI), keeping each scale's own (SSR). struct_only: no collaborative relations."""
        super().__init__(name=name)
        rng = np.random.default_rng(seed)
        self.graph = graph
        self.lstm_size = lstm_size
        self.scales = tuple(s for s in SCALES if s in scales)
        self.node_maps = {s: graph.node_maps[s].astype(float_dtype()) for s in self.scales}
        self.nodes = {s: graph.num_nodes(s) for s in self.scales}
        self.mgrn = MGRN(graph.masks, heads, fusion_lambda, rng, self.scales, struct_only)
        self.lstms = {s: StackedLSTM(self.nodes[s] * FEATURES, lstm_size, num_layers, rng,
                                     f"lstm_{s}") for s in self.scales}
        targets = {s: tuple(t for t in RECONSTRUCTS[s] if t in self.scales and
                            (cross_scale or t == s)) for s in self.scales}
        self.heads = {s: {t: ReconstructionHead(lstm_size, self.nodes[t] * 3, rng,
                                                f"head_{s}_to_{t}") for t in targets[s]}
                      for s in self.scales}

    @property
    def embedding_size(self) -> int:
        return len(self.scales) * self.lstm_size

    @property
    def encoding_scales(self) -> Tuple[str, ...]:
        """Order of the scales in an encoding: the reference's I, J, P, B."""
        return tuple(s for s in ENCODING_ORDER if s in self.scales)

    def scale_variables(self, scale: str):
        """Everything the scale's loss can reach: the whole MGRN, its LSTM, its heads."""
        heads = [v for h in self.heads[scale].values() for v in h.trainable_variables]
        return list(self.mgrn.trainable_variables) + list(
            self.lstms[scale].trainable_variables) + heads

    # -- per-frame stages ------------------------------------------------------------
    def scale_coordinates(self, x) -> dict:
        """x [B, T, V, 3] -> {scale: [B, T, nodes, 3]}."""
        return {s: ops.einsum("nv,btvc->btnc", self.node_maps[s], x) for s in self.scales}

    def frame_features(self, coords: dict) -> dict:
        """{scale: [B, T, nodes, 3]} -> {scale: [B, T, nodes*8]} through the MGRN."""
        batch, steps = coords[self.scales[0]].shape[:2]
        flat = {s: ops.reshape(c, [-1, self.nodes[s], 3]) for s, c in coords.items()}
        h = self.mgrn(flat)
        return {s: ops.reshape(h[s], [batch, steps, self.nodes[s] * FEATURES])
                for s in self.scales}

    # -- Re-ID encoding ----------------------------------------------------------------
    def encode(self, x, zero_frame: bool = True):
        """Prefix encodings [B, f(+1), S*H] (S scales, LSTM size H): step k holds the last LSTM output of the
        k-frame prefix, all prefixes from one pass. With zero_frame (the reference's
        behaviour) a zero frame feature is appended, giving the (f+1)-th prefix."""
        feats = self.frame_features(self.scale_coordinates(x))
        outs = []
        for s in self.encoding_scales:
            f = feats[s]
            if zero_frame:
                f = ops.concatenate([f, ops.zeros_like(f[:, :1])], axis=1)
            outs.append(self.lstms[s](f))
        return ops.concatenate(outs, axis=-1)

    # -- pretext task ------------------------------------------------------------------
    def _targets(self, coords):
        return {s: ops.reshape(c, [c.shape[0], c.shape[1], self.nodes[s] * 3])
                for s, c in coords.items()}

    def pretext_losses(self, x, frame_indices, draws: RaggedDraws, loss: str = "l1",
                       margin: int = 0) -> dict:
        """Losses of the scales for the draws packed as `draws`; frame_indices [slots]
        holds the frame each slot reads (layout.frame_indices(draws)); its target is the skeleton
        `margin` frames later (the reference's pred_margin; 0 = reconstruction)."""
        batch = x.shape[0]
        sizes = [n * batch for n in draws.rows_per_step]
        coords = self.scale_coordinates(x)
        feats = self.frame_features(coords)

        def by_slot(t, shift=0):   # [B, T, D] -> [slots, B, D], slot-major like the LSTM batch
            return ops.take(ops.transpose(t, [1, 0, 2]), frame_indices + shift, axis=0)

        targets = {s: by_slot(t, margin) for s, t in self._targets(coords).items()}
        weight = draws.weight.astype(keras.backend.standardize_dtype(x.dtype))
        losses = {}
        for s in self.scales:
            lstm = self.lstms[s]
            projected = ops.reshape(by_slot(lstm.project_input(feats[s])), [-1, 4 * self.lstm_size])
            out = ops.concatenate(lstm.run_steps(split_sizes(projected, sizes)), 0)
            preds = reconstruct_all(self.heads[s], out)
            terms = [ops.sum(slot_error(ops.reshape(p, [-1, batch, p.shape[-1]]),
                                        targets[t], loss, 1) * weight)
                     for t, p in preds.items()]
            losses[s] = add_n(terms)
        return losses

    def pretext_losses_per_draw(self, x, draws: List[np.ndarray], loss: str = "l1",
                                margin: int = 0) -> dict:
        """Same losses, one LSTM call per draw (the reference's structure)."""
        coords = self.scale_coordinates(x)
        feats = self.frame_features(coords)
        targets = self._targets(coords)
        losses = {}
        for s in self.scales:
            per_draw = []
            for idx in draws:
                out = self.lstms[s](ops.take(feats[s], idx, axis=1))
                terms = []
                for t, head in self.heads[s].items():
                    err = slot_error(head(out), ops.take(targets[t], idx + margin, axis=1), loss)
                    terms.append(ops.sum(err) if loss == "l2" else ops.mean(err))
                per_draw.append(add_n(terms))
            losses[s] = add_n(per_draw) / len(draws)
        return losses


class ReIDClassifier(Module):
    """MLP E -> E (ReLU) -> classes on every prefix encoding; the logits are summed."""

    def __init__(self, embedding_size: int, num_classes: int, seed: int = 0,
                 name: str = "reid"):
        super().__init__(name=name)
        rng = np.random.default_rng(seed + 7919)
        self.w1 = normal_var([embedding_size, embedding_size], rng, "w1")
        self.b1 = zeros_var([embedding_size], "b1")
        self.w2 = normal_var([embedding_size, num_classes], rng, "w2")
        self.b2 = zeros_var([num_classes], "b2")

    def __call__(self, encodings):
        """encodings [B, K, E] -> summed logits [B, classes]."""
        hidden = ops.relu(ops.tensordot(encodings, self.w1, 1) + self.b1)
        return ops.sum(ops.tensordot(hidden, self.w2, 1) + self.b2, axis=1)
