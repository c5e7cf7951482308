import json

import numpy as np
import pytest

from utils.foundation.errors import UserError
from utils.foundation.graphs import MASK_OFF, attention_mask, build_graph, pooling_matrix
from utils.foundation.skeleton import (BUILT_IN, CASIA_14, KINECT_V1, KINECT_V2, LAYOUTS_BY_NAME,
                                       PART_NAMES, get_layout, layout_from_data, layout_record,
                                       load_layout_file)

from tests.helpers import KINECT_18


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


def test_unknown_layout_name_is_a_user_error():
    with pytest.raises(UserError, match="unknown layout 'kinect_v9': name one of kinect_v1, "):
        get_layout("kinect_v9")


def test_built_in_layouts_pass_the_validator_and_keep_the_reference_graphs():
    for name, data in BUILT_IN.items():
        assert layout_from_data(data, name) == LAYOUTS_BY_NAME[name]
        assert layout_from_data(LAYOUTS_BY_NAME[name].as_data(), name) == LAYOUTS_BY_NAME[name]
    # the joint indices the reference's graphs were written for (Kinect v1 and v2 SDK order)
    assert KINECT_V1.part_groups == ((12, 13), (14, 15), (16, 17), (18, 19), (0, 1), (2, 3),
                                     (4, 5), (6, 7), (8, 9), (10, 11))
    assert set(KINECT_V1.bones) == {(0, 1), (1, 2), (2, 3), (2, 4), (4, 5), (5, 6), (6, 7),
                                    (2, 8), (8, 9), (9, 10), (10, 11), (0, 12), (12, 13),
                                    (13, 14), (14, 15), (0, 16), (16, 17), (17, 18), (18, 19)}
    assert [set(g) for g in KINECT_V2.part_groups] == [
        {12, 13}, {14, 15}, {16, 17}, {18, 19}, {0, 1}, {2, 3, 20}, {4, 5}, {6, 7, 21, 22},
        {8, 9}, {10, 11, 23, 24}]
    assert set(KINECT_V2.bones) == {(0, 1), (1, 20), (20, 2), (2, 3), (20, 4), (4, 5), (5, 6),
                                    (6, 7), (7, 21), (6, 22), (20, 8), (8, 9), (9, 10), (10, 11),
                                    (11, 23), (10, 24), (0, 12), (12, 13), (13, 14), (14, 15),
                                    (0, 16), (16, 17), (17, 18), (18, 19)}
    assert (LAYOUTS_BY_NAME["coco17"].num_joints, LAYOUTS_BY_NAME["mediapipe33"].num_joints) == (17, 33)
    assert all(layout.centre == 0 for layout in LAYOUTS_BY_NAME.values())


def test_a_layout_file_builds_all_four_scales(tmp_path):
    path = tmp_path / "k18.json"
    path.write_text(json.dumps(KINECT_18))
    layout = load_layout_file(str(path))
    assert get_layout(str(path)) == layout and layout.num_joints == 18
    g = build_graph(layout)
    assert {s: g.num_nodes(s) for s in ("joint", "part", "body", "hyper")} == \
        dict(joint=18, part=10, body=5, hyper=18 + 17)
    assert layout_record(str(path)) == layout.as_data()          # recorded by content
    assert get_layout(layout_record(str(path))) == layout
    assert layout_record("kinect_v1") == "kinect_v1"              # built-ins by name


def _broken(**change):
    data = json.loads(json.dumps(KINECT_18))
    for key, value in change.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    return data


@pytest.mark.parametrize("data, message", [
    (_broken(name=None), '"name" is missing'),
    (_broken(joints=["head", "head"]), "\"joints\" names 'head' twice"),
    (_broken(bones=[["head", "tail"]]), "\"bones\" names 'tail', which is not in \"joints\""),
    (_broken(bones=[["head", "neck"]]), "\"bones\" leave 'spine mid' unconnected to 'spine base'"),
    (_broken(bones=[["head"]]), "\"bones\" must be a list of [joint, joint] pairs"),
    (_broken(parts={p: ["head"] for p in PART_NAMES[:9]}), "\"parts\" lacks 'right forearm'"),
    (_broken(parts=dict({p: ["head"] for p in PART_NAMES}, tail=["head"])), "\"parts\" has 'tail'"),
    (_broken(parts=dict({p: ["head"] for p in PART_NAMES}, torso=[])), "lacks 'torso'"),
    (_broken(parts=dict({p: ["head"] for p in PART_NAMES}, torso=["wing"])),
     "\"parts/torso\" names 'wing'"),
    (_broken(centre="tail"), "\"centre\" names 'tail'"),
    ([], "a layout is a JSON object"),
])
def test_invalid_layouts_name_the_file_key_and_offender(tmp_path, data, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError) as err:
        load_layout_file(str(path))
    assert str(err.value).startswith(str(path)) and message in str(err.value)
    path.write_text("{oops")
    with pytest.raises(UserError, match="not valid JSON"):
        load_layout_file(str(path))
