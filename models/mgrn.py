"""Multi-scale graph relation network (docs/method.md §3), applied to every frame independently.

Input: {scale: [M, nodes, 3]} node coordinates of M frames. Output: {scale: [M, nodes, 8]}.
"""
import numpy as np

from models.layers import (Module, add_n, float_dtype, glorot_var, normal_var, ops, split_sizes,
                           zeros_var)
from utils.foundation.graphs import MASK_OFF, SCALES

FEATURES = 8   # node feature size after structural relation learning

# Cross-scale collaborative relations: the scale that receives <- the scales it reads.
# Each scale also has its self relation; the body scale has only that.
CROSS_RELATIONS = {"joint": ("part", "body"), "part": ("body",), "body": (),
                   "hyper": ("joint", "part", "body")}


def collaborative_message(queries, keys):
    """R = softmax over keys of (S . T^T); message = R . T.  [M, Ns, F], [M, Nt, F]."""
    relation = ops.softmax(ops.einsum("msf,mtf->mst", queries, keys), axis=-1)
    return ops.matmul(relation, keys)


def leaky_relu(x, slope: float):
    """LeakyReLU whose derivative at exactly 0 is `slope`, as TensorFlow's (and so the
    reference's); jax.nn.leaky_relu takes 1 there. Zeros do occur: a skeleton centred on a
    joint has that joint at the origin, so with the input bias at its initial zero every
    score of that node is 0."""
    return ops.where(x > 0, x, slope * x)


def neighbour_lists(mask: np.ndarray):
    """Allowed keys of every node as [N, K] indices plus a [N, K] bias (0, or MASK_OFF on
    padding), K = the largest neighbourhood. Masked pairs get weight exp(-1e9) = 0 in a
    dense softmax, so attending over these lists gives the same result with a fraction of
    the work (skeleton graphs are sparse: at most 5 of 49 hyper-joint nodes per row)."""
    allowed = [np.flatnonzero(row == 0) for row in mask]
    k = max(len(a) for a in allowed)
    index = np.stack([np.pad(a, (0, k - len(a)), constant_values=a[0]) for a in allowed])
    bias = np.stack([np.where(np.arange(k) < len(a), 0.0, MASK_OFF) for a in allowed])
    return index.astype(np.int32), bias.astype(np.float32)


class StructuralRelation(Module):
    """Linear 3 -> 8, then one GAT layer with P heads of 8 features, heads averaged."""

    def __init__(self, mask: np.ndarray, heads: int, rng: np.random.Generator, name: str):
        super().__init__(name=name)
        index, bias = neighbour_lists(mask)
        self.neighbours, self.neighbour_bias = index, bias.astype(float_dtype())
        self.w_in = normal_var([3, FEATURES], rng, "w_in")
        self.b_in = zeros_var([FEATURES], "b_in")
        # Per head, as the reference's 1x1 convolutions: a projection (no bias) and two
        # scorers with biases, each with the Glorot limits of a single head (fan-in 8).
        self.w_head = glorot_var([heads, FEATURES, FEATURES], rng, "w_head", (FEATURES, FEATURES))
        self.a_src = glorot_var([heads, FEATURES], rng, "a_src", (FEATURES, 1))
        self.a_dst = glorot_var([heads, FEATURES], rng, "a_dst", (FEATURES, 1))
        # The scorer biases are added before the LeakyReLU, so they do not cancel.
        self.a_src_bias = zeros_var([heads], "a_src_bias")
        self.a_dst_bias = zeros_var([heads], "a_dst_bias")
        self.b_head = zeros_var([heads, 1, FEATURES], "b_head")

    def __call__(self, coords):
        count, nodes = coords.shape[0], coords.shape[1]
        heads = self.w_head.shape[0]
        h = ops.reshape(ops.tensordot(coords, self.w_in, 1) + self.b_in, [-1, FEATURES])
        # One product gives every head's features z = h W_p and both attention scores,
        # src = z a_src = h (W_p a_src) (likewise dst). Laid out node-major [M, N, P, 8]:
        # small per-head products are slow, and this keeps the heads in the last axes.
        w = ops.transpose(self.w_head, [1, 0, 2])                          # [8, P, 8]
        w_all = ops.concatenate([ops.reshape(w, [FEATURES, heads * FEATURES]),
                                 ops.einsum("fpg,pg->fp", w, self.a_src),
                                 ops.einsum("fpg,pg->fp", w, self.a_dst)], axis=1)
        z, src, dst = split_sizes(ops.matmul(h, w_all), [heads * FEATURES, heads, heads], axis=1)
        z = ops.reshape(z, [count, nodes, heads, FEATURES])
        # Both scorer biases ride on src: leaky_relu(src_i + b_src + dst_j + b_dst).
        src = ops.reshape(src, [count, nodes, heads]) + (self.a_src_bias + self.a_dst_bias)
        dst = ops.reshape(dst, [count, nodes, heads])
        # logits_ij = LeakyReLU(src_i + dst_j) for the allowed neighbours j of each node i
        dst = ops.take(dst, self.neighbours, axis=1)                       # [M, N, K, P]
        logits = leaky_relu(src[:, :, None] + dst, 0.2) + self.neighbour_bias[..., None]
        attention = ops.softmax(logits, axis=2)
        values = ops.take(z, self.neighbours, axis=1)                      # [M, N, K, P, 8]
        out = ops.sum(attention[..., None] * values, axis=2)               # [M, N, P, 8]
        out = ops.elu(out + ops.transpose(self.b_head, [1, 0, 2]))
        return ops.mean(out, axis=2)                                       # heads averaged


class MGRN(Module):
    def __init__(self, masks: dict, heads: int, fusion_lambda: float,
                 rng: np.random.Generator, scales=SCALES, struct_only: bool = False,
                 name: str = "mgrn"):
        """struct_only: the reference's --struct_only switch: no collaborative relations
        (the fusion weights exist but are not used)."""
        super().__init__(name=name)
        self.fusion_lambda = float(fusion_lambda)
        self.struct_only = bool(struct_only)
        self.scales = tuple(scales)   # a subset for the scale ablations of the paper
        self.structural = {s: StructuralRelation(masks[s], heads, rng, f"sr_{s}")
                           for s in self.scales}
        self.fusion = {s: {src: normal_var([FEATURES, FEATURES], rng, f"w_{s}_from_{src}")
                           for src in (s,) + CROSS_RELATIONS[s] if src in self.scales}
                       for s in self.scales}

    def __call__(self, coords: dict) -> dict:
        h = {s: self.structural[s](coords[s]) for s in self.scales}
        if self.struct_only or self.fusion_lambda == 0.0:
            return h
        fused = {}
        for s in self.scales:   # every message reads the pre-fusion features
            update = add_n([ops.tensordot(collaborative_message(h[s], h[src]), w, 1)
                            for src, w in self.fusion[s].items()])
            fused[s] = h[s] + self.fusion_lambda * update
        return fused
