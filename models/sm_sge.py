"""The SM-SGE encoder: MGRN per frame, one 2-layer LSTM per scale, reconstruction heads.

Pretext task (method §4): for every k = 1..f (repeated `sample_num` times) draw k sorted
distinct frames, shared by the whole batch; each scale's LSTM reads the sampled frame
features and every output reconstructs the sampled frames' skeletons of its own scale
(SSR) and of the coarser ones (CSI).

Speed: LSTMs are causal, so several draws can share one row of a batch when the state is
reset where a new draw starts. Draw k is packed with draw f-k, so the f draws of a round
fit in ceil((f+1)/2) rows of length f and each scale needs one LSTM call per step, not f.
The first layer's input projection is computed once per frame and gathered, since draws
only pick frames. `pretext_losses_per_draw` keeps the straightforward one-call-per-draw
form; tests check that both give the same losses.
"""
from typing import Dict, List

import numpy as np
import tensorflow as tf

from models.layers import StackedLSTM, normal_var, zeros_var
from models.mgrn import FEATURES, MGRN
from utils.graphs import SCALES, MultiScaleGraph

# Which skeletons each scale's LSTM reconstructs: its own (SSR), then coarser ones (CSI).
RECONSTRUCTS = {"joint": ("joint", "part", "body"), "part": ("part", "body"),
                "body": ("body",), "hyper": ("hyper", "joint", "part", "body")}
LOSSES = ("l1", "MSE", "l2")


class ReconstructionHead(tf.Module):
    """2-layer MLP, hidden = LSTM size, ReLU; weights random-normal (std 1) as the reference."""

    def __init__(self, hidden: int, out: int, rng: np.random.Generator, name: str):
        super().__init__(name=name)
        self.w1 = normal_var([hidden, hidden], rng, "w1")
        self.b1 = zeros_var([hidden], "b1")
        self.w2 = normal_var([hidden, out], rng, "w2")
        self.b2 = zeros_var([out], "b2")

    def __call__(self, x):
        return tf.tensordot(tf.nn.relu(tf.tensordot(x, self.w1, 1) + self.b1), self.w2, 1) + self.b2


# ----------------------------------------------------------------------------------------
# Random subsequence draws and their packing into rows (pure NumPy).

def sample_draws(length: int, sample_num: int, rng: np.random.Generator) -> List[np.ndarray]:
    """For every k = 1..f, `sample_num` times: k sorted distinct frame indices."""
    return [np.sort(rng.choice(length, size=k, replace=False))
            for _ in range(sample_num) for k in range(1, length + 1)]


def packing_rows(draw_lengths: List[int], length: int) -> List[List[int]]:
    """Group draws (by position in draw_lengths) into rows of at most `length` frames.

    First-fit decreasing: with one draw of every length 1..f this pairs k with f-k.
    """
    order = sorted(range(len(draw_lengths)), key=lambda i: -draw_lengths[i])
    rows, room = [], []
    for i in order:
        for r, free in enumerate(room):
            if draw_lengths[i] <= free:
                rows[r].append(i)
                room[r] -= draw_lengths[i]
                break
        else:
            rows.append([i])
            room.append(length - draw_lengths[i])
    return rows


def pack_draws(draws: List[np.ndarray], length: int, loss: str = "l1", packed: bool = True):
    """Arrays that lay the draws out in rows of `length` slots.

    Returns frame_index [R, f] (frame read by each slot), keep [R, f] (0 where a draw
    starts after another in the same row: the LSTM state is reset there) and weight
    [R, f] (each slot's share of the loss; 0 for padding). With packed=False every draw
    gets a row of its own (padding only), which is the simple layout.
    """
    lengths = [len(d) for d in draws]
    rows = packing_rows(lengths, length) if packed else [[i] for i in range(len(draws))]
    frame_index = np.zeros((len(rows), length), np.int32)
    keep = np.ones((len(rows), length), np.float32)
    weight = np.zeros((len(rows), length), np.float32)
    for r, members in enumerate(rows):
        t = 0
        for i in members:
            k = lengths[i]
            frame_index[r, t:t + k] = draws[i]
            keep[r, t] = 0.0 if t > 0 else 1.0
            # Per draw the reference takes a mean over its k frames (l1, MSE) or a sum
            # (l2); the scale's loss is then the mean over draws.
            weight[r, t:t + k] = (1.0 if loss == "l2" else 1.0 / k) / len(draws)
            t += k
    return frame_index, keep, weight


def slot_error(pred: tf.Tensor, target: tf.Tensor, loss: str) -> tf.Tensor:
    """Per-slot error, reduced over batch and coordinates: [B, ..., D] -> [...]."""
    diff = pred - target
    if loss == "l1":
        return tf.reduce_mean(tf.abs(diff), axis=[0, -1])
    if loss == "MSE":
        return tf.reduce_mean(tf.square(diff), axis=[0, -1])
    return 0.5 * tf.reduce_sum(tf.square(diff), axis=[0, -1])   # tf.nn.l2_loss


# ----------------------------------------------------------------------------------------

class SMSGE(tf.Module):
    def __init__(self, graph: MultiScaleGraph, lstm_size: int = 256, heads: int = 8,
                 fusion_lambda: float = 1.0, num_layers: int = 2, seed: int = 0,
                 scales=SCALES, cross_scale: bool = True, name: str = "sm_sge"):
        """scales: the graph scales to use (all four in the paper's model; subsets for its
        scale ablation). cross_scale=False drops the cross-scale reconstruction heads
        (CSI), keeping each scale's own (SSR)."""
        super().__init__(name=name)
        rng = np.random.default_rng(seed)
        self.graph = graph
        self.lstm_size = lstm_size
        self.scales = tuple(s for s in SCALES if s in scales)
        self.node_maps = {s: tf.constant(graph.node_maps[s]) for s in self.scales}
        self.nodes = {s: graph.num_nodes(s) for s in self.scales}
        self.mgrn = MGRN(graph.masks, heads, fusion_lambda, rng, self.scales)
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

    def scale_variables(self, scale: str):
        """Everything the scale's loss can reach: the whole MGRN, its LSTM, its heads."""
        heads = [v for h in self.heads[scale].values() for v in h.trainable_variables]
        return list(self.mgrn.trainable_variables) + list(
            self.lstms[scale].trainable_variables) + heads

    # -- per-frame stages ------------------------------------------------------------
    def scale_coordinates(self, x: tf.Tensor) -> Dict[str, tf.Tensor]:
        """x [B, T, V, 3] -> {scale: [B, T, nodes, 3]}."""
        return {s: tf.einsum("nv,btvc->btnc", self.node_maps[s], x) for s in self.scales}

    def frame_features(self, coords: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """{scale: [B, T, nodes, 3]} -> {scale: [B, T, nodes*8]} through the MGRN."""
        shape = tf.shape(coords["joint"])
        flat = {s: tf.reshape(c, [-1, self.nodes[s], 3]) for s, c in coords.items()}
        h = self.mgrn(flat)
        return {s: tf.reshape(h[s], [shape[0], shape[1], self.nodes[s] * FEATURES])
                for s in self.scales}

    # -- Re-ID encoding ----------------------------------------------------------------
    def encode(self, x: tf.Tensor, zero_frame: bool = True) -> tf.Tensor:
        """Prefix encodings [B, f(+1), 4H]: step k holds the last LSTM output of the
        k-frame prefix, all prefixes from one pass. With zero_frame (the reference's
        behaviour) a zero frame feature is appended, giving the (f+1)-th prefix."""
        feats = self.frame_features(self.scale_coordinates(x))
        outs = []
        for s in self.scales:
            f = feats[s]
            if zero_frame:
                f = tf.concat([f, tf.zeros_like(f[:, :1])], axis=1)
            outs.append(self.lstms[s](f))
        return tf.concat(outs, axis=-1)

    # -- pretext task ------------------------------------------------------------------
    def _targets(self, coords):
        return {s: tf.reshape(c, [tf.shape(c)[0], tf.shape(c)[1], self.nodes[s] * 3])
                for s, c in coords.items()}

    def pretext_losses(self, x: tf.Tensor, frame_index: tf.Tensor, keep: tf.Tensor,
                       weight: tf.Tensor, loss: str = "l1") -> Dict[str, tf.Tensor]:
        """Losses of the four scales for the draws laid out by pack_draws."""
        coords = self.scale_coordinates(x)
        feats = self.frame_features(coords)
        targets = {s: tf.gather(t, frame_index, axis=1) for s, t in self._targets(coords).items()}
        batch = tf.shape(x)[0]
        rows, slots = frame_index.shape
        keep_rows = tf.tile(keep, [batch, 1])
        losses = {}
        for s in self.scales:
            lstm = self.lstms[s]
            projected = tf.gather(lstm.project_input(feats[s]), frame_index, axis=1)
            projected = tf.reshape(projected, [batch * rows, slots, 4 * self.lstm_size])
            out = tf.reshape(lstm.from_projection(projected, keep_rows),
                             [batch, rows, slots, self.lstm_size])
            terms = [tf.reduce_sum(slot_error(head(out), targets[t], loss) * weight)
                     for t, head in self.heads[s].items()]
            losses[s] = tf.add_n(terms)
        return losses

    def pretext_losses_per_draw(self, x: tf.Tensor, draws: List[np.ndarray],
                                loss: str = "l1") -> Dict[str, tf.Tensor]:
        """Same losses, one LSTM call per draw (the reference's structure)."""
        coords = self.scale_coordinates(x)
        feats = self.frame_features(coords)
        targets = self._targets(coords)
        losses = {}
        for s in self.scales:
            per_draw = []
            for idx in draws:
                out = self.lstms[s](tf.gather(feats[s], idx, axis=1))
                terms = []
                for t, head in self.heads[s].items():
                    err = slot_error(head(out), tf.gather(targets[t], idx, axis=1), loss)
                    terms.append(tf.reduce_sum(err) if loss == "l2" else tf.reduce_mean(err))
                per_draw.append(tf.add_n(terms))
            losses[s] = tf.add_n(per_draw) / len(draws)
        return losses


class ReIDClassifier(tf.Module):
    """MLP E -> E (ReLU) -> classes on every prefix encoding; the logits are summed."""

    def __init__(self, embedding_size: int, num_classes: int, seed: int = 0,
                 name: str = "reid"):
        super().__init__(name=name)
        rng = np.random.default_rng(seed + 7919)
        self.w1 = normal_var([embedding_size, embedding_size], rng, "w1")
        self.b1 = zeros_var([embedding_size], "b1")
        self.w2 = normal_var([embedding_size, num_classes], rng, "w2")
        self.b2 = zeros_var([num_classes], "b2")

    def __call__(self, encodings: tf.Tensor) -> tf.Tensor:
        """encodings [B, K, E] -> summed logits [B, classes]."""
        hidden = tf.nn.relu(tf.tensordot(encodings, self.w1, 1) + self.b1)
        return tf.reduce_sum(tf.tensordot(hidden, self.w2, 1) + self.b2, axis=1)
