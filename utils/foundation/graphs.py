"""The four graph scales of a skeleton (docs/method.md §2): nodes, adjacency, masks, pooling.

All functions are pure NumPy so that they are easy to test and can be precomputed once.
Scales are always listed in the order of SCALES.
"""
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from utils.foundation.skeleton import BODY_EDGES, PART_EDGES, SkeletonLayout

SCALES = ("joint", "part", "body", "hyper")
MASK_OFF = -1e9   # added to attention logits of pairs that are not neighbours


def adjacency(num_nodes: int, edges) -> np.ndarray:
    adj = np.zeros((num_nodes, num_nodes), dtype=np.float32)
    for i, j in edges:
        adj[i, j] = adj[j, i] = 1.0
    return adj


def bone_midpoint_pairs(joint_adj: np.ndarray) -> Tuple[Tuple[int, int], ...]:
    """Each undirected bone once, at its first visit in row-major order of the adjacency."""
    pairs = []
    n = joint_adj.shape[0]
    for i in range(n):
        for j in range(n):
            if joint_adj[i, j] and i < j:
                pairs.append((i, j))
    return tuple(pairs)


def hyper_edges(num_joints: int, pairs) -> Tuple[Tuple[int, int], ...]:
    """Midpoint node V+m is linked to its two end joints; joints are not linked directly."""
    edges = []
    for m, (i, j) in enumerate(pairs):
        edges += [(num_joints + m, i), (num_joints + m, j)]
    return tuple(edges)


def attention_mask(adj: np.ndarray, n_hood: int = 1) -> np.ndarray:
    """(A + I)^n_hood binarised: 0 where attention is allowed, MASK_OFF elsewhere."""
    if n_hood < 1:
        raise ValueError("n_hood must be at least 1")
    step = adj + np.eye(adj.shape[0], dtype=np.float32)
    reach = np.eye(adj.shape[0], dtype=np.float32)
    for _ in range(n_hood):
        reach = np.minimum(reach @ step, 1.0)
    return np.where(reach > 0, 0.0, MASK_OFF).astype(np.float32)


def pooling_matrix(groups, num_joints: int) -> np.ndarray:
    """[len(groups), num_joints] matrix whose row g averages the joints of group g."""
    mat = np.zeros((len(groups), num_joints), dtype=np.float32)
    for g, members in enumerate(groups):
        mat[g, list(members)] = 1.0 / len(members)
    return mat


def midpoint_matrix(pairs, num_joints: int) -> np.ndarray:
    """[V + len(pairs), V] matrix: the joints themselves, then each bone's midpoint."""
    mat = np.zeros((num_joints + len(pairs), num_joints), dtype=np.float32)
    mat[np.arange(num_joints), np.arange(num_joints)] = 1.0
    for m, (i, j) in enumerate(pairs):
        mat[num_joints + m, [i, j]] = 0.5
    return mat


@dataclass(frozen=True)
class MultiScaleGraph:
    """Per scale: the matrix mapping joints to that scale's nodes, and the attention mask."""
    layout: SkeletonLayout
    node_maps: Dict[str, np.ndarray]   # scale -> [nodes, V]
    adjacencies: Dict[str, np.ndarray]
    masks: Dict[str, np.ndarray]        # scale -> [nodes, nodes]

    def num_nodes(self, scale: str) -> int:
        return self.node_maps[scale].shape[0]

    def scale_coordinates(self, joints: np.ndarray) -> Dict[str, np.ndarray]:
        """joints [..., V, 3] -> {scale: [..., nodes, 3]} (part/body means, midpoints)."""
        return {s: np.einsum("nv,...vc->...nc", m, joints) for s, m in self.node_maps.items()}


def build_graph(layout: SkeletonLayout, n_hood: int = 1, global_att: bool = False) -> MultiScaleGraph:
    """n_hood widens the joint-scale mask only (the part, body and hyper-joint masks keep
    1, as in the reference); global_att (the reference's --global_att) allows attention
    between every pair of nodes at every scale."""
    v = layout.num_joints
    joint_adj = adjacency(v, layout.bones)
    pairs = bone_midpoint_pairs(joint_adj)
    adjs = {
        "joint": joint_adj,
        "part": adjacency(len(layout.part_groups), PART_EDGES),
        "body": adjacency(len(layout.body_groups), BODY_EDGES),
        "hyper": adjacency(v + len(pairs), hyper_edges(v, pairs)),
    }
    maps = {
        "joint": np.eye(v, dtype=np.float32),
        "part": pooling_matrix(layout.part_groups, v),
        "body": pooling_matrix(layout.body_groups, v),
        "hyper": midpoint_matrix(pairs, v),
    }
    if global_att:
        masks = {s: attention_mask(np.ones_like(a)) for s, a in adjs.items()}
    else:
        masks = {s: attention_mask(a, n_hood if s == "joint" else 1) for s, a in adjs.items()}
    return MultiScaleGraph(layout, maps, adjs, masks)
