import numpy as np
import pytest

from utils.errors import UserError
from utils.graphs import MASK_OFF, attention_mask, build_graph, pooling_matrix
from utils.skeleton import CASIA_14, KINECT_V1, KINECT_V2, layout_for


@pytest.mark.parametrize("layout,hyper", [(KINECT_V1, 39), (KINECT_V2, 49), (CASIA_14, 27)])
def test_node_counts(layout, hyper):
    g = build_graph(layout)
    assert g.num_nodes("joint") == layout.num_joints
    assert g.num_nodes("part") == 10
    assert g.num_nodes("body") == 5
    assert g.num_nodes("hyper") == hyper


@pytest.mark.parametrize("layout", [KINECT_V1, KINECT_V2, CASIA_14])
def test_skeleton_is_a_tree_and_groups_cover_joints(layout):
    assert len(layout.bones) == layout.num_joints - 1
    covered = sorted(j for g in layout.part_groups for j in g)
    assert covered == list(range(layout.num_joints))


def test_part_and_body_edges():
    g = build_graph(KINECT_V1)
    part = g.adjacencies["part"]
    assert part.sum() == 2 * 9 and part[5, 6] == part[6, 5] == 1 and part[1, 0] == 1
    assert part[5, 0] == 0
    body = g.adjacencies["body"]
    assert body[2].sum() == 4 and body.sum() == 8


def test_hyper_edges_link_midpoints_to_their_two_joints_only():
    g = build_graph(KINECT_V1)
    adj = g.adjacencies["hyper"]
    v = 20
    assert adj[:v, :v].sum() == 0                       # joints not linked directly
    assert np.all(adj[v:].sum(1) == 2)                  # each midpoint has its two ends
    # First bone in row-major order is (0, 1): midpoint node 20 links joints 0 and 1.
    assert adj[20, 0] == adj[20, 1] == 1
    # Its coordinates are the bone midpoint.
    joints = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    hyper = g.scale_coordinates(joints)["hyper"]
    np.testing.assert_allclose(hyper[20], (joints[0] + joints[1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(hyper[:20], joints)


def test_midpoints_follow_row_major_order_kinect_v2():
    g = build_graph(KINECT_V2)
    m = g.node_maps["hyper"][25:]
    pairs = [tuple(np.flatnonzero(row)) for row in m]
    assert pairs == sorted(pairs)                        # (min, max) lexicographic
    assert (1, 20) in pairs and (6, 22) in pairs


def test_part_and_body_pooling_hand_computed():
    g = build_graph(KINECT_V1)
    joints = np.arange(60, dtype=np.float32).reshape(20, 3)
    c = g.scale_coordinates(joints)
    # left thigh = mean of joints 12, 13; head = mean of 2, 3
    np.testing.assert_allclose(c["part"][0], [(36 + 39) / 2, (37 + 40) / 2, (38 + 41) / 2])
    np.testing.assert_allclose(c["part"][5], [(6 + 9) / 2, (7 + 10) / 2, (8 + 11) / 2])
    # left leg = mean of joints 12..15; torso body node = mean of 0..3
    np.testing.assert_allclose(c["body"][0], joints[12:16].mean(0))
    np.testing.assert_allclose(c["body"][2], joints[0:4].mean(0))
    g2 = build_graph(KINECT_V2)
    j2 = np.arange(75, dtype=np.float32).reshape(25, 3)
    np.testing.assert_allclose(g2.scale_coordinates(j2)["part"][7], j2[[6, 7, 21, 22]].mean(0))


def test_pooling_rows_sum_to_one():
    m = pooling_matrix(((0, 1), (2,)), 3)
    np.testing.assert_allclose(m.sum(1), 1.0)


def test_attention_mask_neighbourhood():
    chain = np.zeros((4, 4), np.float32)
    for i in range(3):
        chain[i, i + 1] = chain[i + 1, i] = 1
    m1 = attention_mask(chain, 1)
    assert m1[0, 0] == 0 and m1[0, 1] == 0 and m1[0, 2] == MASK_OFF
    m2 = attention_mask(chain, 2)
    assert m2[0, 2] == 0 and m2[0, 3] == MASK_OFF


def test_unknown_joint_count_is_a_user_error():
    with pytest.raises(UserError, match="no skeleton layout has 17 joints"):
        layout_for(17)
