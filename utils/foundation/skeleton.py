"""Skeleton layouts: joints, bones, and the ten body parts the coarser scales are built from.

A layout is data of one form, whether built in or read from a user's JSON file:

    {"name": "...", "joints": [joint names, in the recordings' column order],
     "bones": [["a", "b"], ...], "parts": {part name: [joint names], ... the ten parts},
     "centre": "joint each frame is centred on (optional; default: the first joint)"}

and every layout passes the same validator. Part order (docs/method.md §2): left thigh, left
shank, right thigh, right shank, torso, head, left upper arm, left forearm, right upper arm,
right forearm. Body nodes are pairs of parts (left leg, right leg, torso, left arm, right
arm); hyper-joints are the joints plus every bone's midpoint (utils/foundation/graphs.py).
"""
import os
from dataclasses import dataclass
from typing import Dict, Tuple, Union

from utils.foundation.errors import UserError
from utils.foundation.io import read_json

PART_NAMES = ("left thigh", "left shank", "right thigh", "right shank", "torso", "head",
              "left upper arm", "left forearm", "right upper arm", "right forearm")
# Part-scale edges (0-based part indices): head to both upper arms and the torso, torso
# to both thighs, each limb segment to its lower one.
PART_EDGES = ((5, 6), (5, 8), (6, 7), (8, 9), (5, 4), (4, 2), (4, 0), (2, 3), (1, 0))

# Body-scale nodes, in order: left leg, right leg, torso, left arm, right arm. Which parts
# make up each body node; a body node is the mean of the joints of its parts.
BODY_FROM_PARTS = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))
# The torso (node 2) is linked to the four limbs.
BODY_EDGES = ((2, 0), (2, 1), (2, 3), (2, 4))


@dataclass(frozen=True)
class SkeletonLayout:
    name: str
    joint_names: Tuple[str, ...]
    bones: Tuple[Tuple[int, int], ...]
    part_groups: Tuple[Tuple[int, ...], ...]   # 10 joint groups, PART_NAMES order
    centre: int = 0                            # the joint each frame is centred on

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def body_groups(self) -> Tuple[Tuple[int, ...], ...]:
        return tuple(tuple(j for p in parts for j in self.part_groups[p])
                     for parts in BODY_FROM_PARTS)

    def as_data(self) -> dict:
        """The layout in the file form (what a run records for a layout file)."""
        names = self.joint_names
        return dict(name=self.name, joints=list(names),
                    bones=[[names[a], names[b]] for a, b in self.bones],
                    parts={p: [names[j] for j in g] for p, g in zip(PART_NAMES, self.part_groups)},
                    centre=names[self.centre])


def layout_from_data(data, where: str) -> SkeletonLayout:
    """Check a layout in the file form and build it; any problem is one line naming
    `where` (the file), the key and the offending name."""
    def bad(key, problem):
        raise UserError(f"{where}: \"{key}\" {problem}")

    if not isinstance(data, dict):
        raise UserError(f"{where}: a layout is a JSON object with \"name\", \"joints\", "
                        f"\"bones\" and \"parts\"")
    for key in ("name", "joints", "bones", "parts"):
        if key not in data:
            bad(key, "is missing")
    if not isinstance(data["name"], str) or not data["name"]:
        bad("name", "must be a non-empty string")
    joints = data["joints"]
    if not isinstance(joints, list) or not joints or not all(isinstance(j, str) and j for j in joints):
        bad("joints", "must be a non-empty list of joint names")
    index = {}
    for j in joints:
        if j in index:
            bad("joints", f"names {j!r} twice")
        index[j] = len(index)

    def known(key, name):
        if not isinstance(name, str) or name not in index:
            bad(key, f"names {name!r}, which is not in \"joints\"")
        return index[name]

    bones = data["bones"]
    if not isinstance(bones, list) or any(not isinstance(b, list) or len(b) != 2 for b in bones):
        bad("bones", "must be a list of [joint, joint] pairs")
    pairs = []
    for a, b in bones:
        i, j = known("bones", a), known("bones", b)
        if i == j:
            bad("bones", f"links {a!r} to itself")
        pairs.append((i, j))
    unreached = _unreached(len(joints), pairs)
    if unreached:
        bad("bones", f"leave {joints[unreached[0]]!r} unconnected to {joints[0]!r} (the bone "
                     f"graph must be connected)")
    parts = data["parts"]
    if not isinstance(parts, dict):
        bad("parts", f"must map each of the ten parts ({', '.join(PART_NAMES)}) to joints")
    for name in parts:
        if name not in PART_NAMES:
            bad("parts", f"has {name!r}, which is not one of the ten parts ({', '.join(PART_NAMES)})")
    groups = []
    for name in PART_NAMES:
        members = parts.get(name)
        if not isinstance(members, list) or not members:
            bad("parts", f"lacks {name!r} (each of the ten parts needs a non-empty list of joints)")
        groups.append(tuple(known(f"parts/{name}", m) for m in members))
    centre = known("centre", data["centre"]) if data.get("centre") is not None else 0
    return SkeletonLayout(data["name"], tuple(joints), tuple(pairs), tuple(groups), centre)


def _unreached(count: int, pairs) -> list:
    """Joints not connected to joint 0 through the bones."""
    neighbours = {i: set() for i in range(count)}
    for i, j in pairs:
        neighbours[i].add(j)
        neighbours[j].add(i)
    seen, todo = {0}, [0]
    while todo:
        for n in neighbours[todo.pop()] - seen:
            seen.add(n)
            todo.append(n)
    return [i for i in range(count) if i not in seen]


def _limbs(left_right_pattern: Dict[str, list]) -> Dict[str, list]:
    """The eight limb parts from one side's pattern ("{s}" stands for left / right)."""
    return {f"{side} {part}": [j.format(s=side) for j in joints]
            for side in ("left", "right") for part, joints in left_right_pattern.items()}


# ----------------------------------------------------------------------------------------
# Built-in layouts, in the same form as a layout file

BUILT_IN = {
    # Kinect v1 SDK order (IAS-Lab, KGBD, BIWI)
    "kinect_v1": dict(
        name="kinect_v1",
        joints=["hip centre", "spine", "shoulder centre", "head",
                "left shoulder", "left elbow", "left wrist", "left hand",
                "right shoulder", "right elbow", "right wrist", "right hand",
                "left hip", "left knee", "left ankle", "left foot",
                "right hip", "right knee", "right ankle", "right foot"],
        bones=[["hip centre", "spine"], ["spine", "shoulder centre"], ["shoulder centre", "head"]]
        + [[a.format(s=s), b.format(s=s)] for s in ("left", "right") for a, b in (
            ("shoulder centre", "{s} shoulder"), ("{s} shoulder", "{s} elbow"),
            ("{s} elbow", "{s} wrist"), ("{s} wrist", "{s} hand"))]
        + [[a.format(s=s), b.format(s=s)] for s in ("left", "right") for a, b in (
            ("hip centre", "{s} hip"), ("{s} hip", "{s} knee"), ("{s} knee", "{s} ankle"),
            ("{s} ankle", "{s} foot"))],
        parts=dict(torso=["hip centre", "spine"], head=["shoulder centre", "head"], **_limbs({
            "thigh": ["{s} hip", "{s} knee"], "shank": ["{s} ankle", "{s} foot"],
            "upper arm": ["{s} shoulder", "{s} elbow"], "forearm": ["{s} wrist", "{s} hand"]}))),
    # Kinect v2 SDK order (KS20)
    "kinect_v2": dict(
        name="kinect_v2",
        joints=["spine base", "spine mid", "neck", "head",
                "left shoulder", "left elbow", "left wrist", "left hand",
                "right shoulder", "right elbow", "right wrist", "right hand",
                "left hip", "left knee", "left ankle", "left foot",
                "right hip", "right knee", "right ankle", "right foot",
                "spine shoulder", "left hand tip", "left thumb", "right hand tip", "right thumb"],
        bones=[["spine base", "spine mid"], ["spine mid", "spine shoulder"],
               ["spine shoulder", "neck"], ["neck", "head"]]
        + [[a.format(s=s), b.format(s=s)] for s in ("left", "right") for a, b in (
            ("spine shoulder", "{s} shoulder"), ("{s} shoulder", "{s} elbow"),
            ("{s} elbow", "{s} wrist"), ("{s} wrist", "{s} hand"), ("{s} hand", "{s} hand tip"),
            ("{s} wrist", "{s} thumb"))]
        + [[a.format(s=s), b.format(s=s)] for s in ("left", "right") for a, b in (
            ("spine base", "{s} hip"), ("{s} hip", "{s} knee"), ("{s} knee", "{s} ankle"),
            ("{s} ankle", "{s} foot"))],
        parts=dict(torso=["spine base", "spine mid"], head=["neck", "head", "spine shoulder"],
                   **_limbs({"thigh": ["{s} hip", "{s} knee"], "shank": ["{s} ankle", "{s} foot"],
                             "upper arm": ["{s} shoulder", "{s} elbow"],
                             "forearm": ["{s} wrist", "{s} hand", "{s} hand tip", "{s} thumb"]}))),
    # CASIA-B estimated poses (the authors' 14 joints)
    "casia14": dict(
        name="casia14",
        joints=["head", "neck", "right shoulder", "right elbow", "right wrist",
                "left shoulder", "left elbow", "left wrist", "right hip", "right knee",
                "right ankle", "left hip", "left knee", "left ankle"],
        bones=[["head", "neck"]] + [[a.format(s=s), b.format(s=s)] for s in ("right", "left")
                                    for a, b in (("neck", "{s} shoulder"), ("{s} shoulder", "{s} elbow"),
                                                 ("{s} elbow", "{s} wrist"))]
        + [[a.format(s=s), b.format(s=s)] for s in ("right", "left")
           for a, b in (("neck", "{s} hip"), ("{s} hip", "{s} knee"), ("{s} knee", "{s} ankle"))],
        parts=dict(torso=["neck"], head=["head"], **_limbs({
            "thigh": ["{s} hip"], "shank": ["{s} knee", "{s} ankle"],
            "upper arm": ["{s} shoulder"], "forearm": ["{s} elbow", "{s} wrist"]}))),
    # COCO keypoints (17), as 2D/3D pose estimators output them. No neck or spine: the torso
    # part is the mean of shoulders and hips, the head the face points.
    "coco17": dict(
        name="coco17",
        joints=["nose", "left eye", "right eye", "left ear", "right ear",
                "left shoulder", "right shoulder", "left elbow", "right elbow",
                "left wrist", "right wrist", "left hip", "right hip",
                "left knee", "right knee", "left ankle", "right ankle"],
        bones=[["nose", "left eye"], ["nose", "right eye"], ["left eye", "left ear"],
               ["right eye", "right ear"], ["left ear", "left shoulder"],
               ["right ear", "right shoulder"], ["left shoulder", "right shoulder"],
               ["left hip", "right hip"]]
        + [[a.format(s=s), b.format(s=s)] for s in ("left", "right") for a, b in (
            ("{s} shoulder", "{s} elbow"), ("{s} elbow", "{s} wrist"), ("{s} shoulder", "{s} hip"),
            ("{s} hip", "{s} knee"), ("{s} knee", "{s} ankle"))],
        parts=dict(torso=["left shoulder", "right shoulder", "left hip", "right hip"],
                   head=["nose", "left eye", "right eye", "left ear", "right ear"],
                   **_limbs({"thigh": ["{s} hip"], "shank": ["{s} knee", "{s} ankle"],
                             "upper arm": ["{s} shoulder"], "forearm": ["{s} elbow", "{s} wrist"]}))),
    # MediaPipe Pose / BlazePose GHUM (33 landmarks). Bones are MediaPipe's pose connections,
    # plus what connects its three pieces (face, mouth, body) into one graph: nose to both
    # mouth corners, and each ear to its shoulder (as COCO's skeleton does).
    "mediapipe33": dict(
        name="mediapipe33",
        joints=["nose", "left eye inner", "left eye", "left eye outer", "right eye inner",
                "right eye", "right eye outer", "left ear", "right ear", "mouth left",
                "mouth right", "left shoulder", "right shoulder", "left elbow", "right elbow",
                "left wrist", "right wrist", "left pinky", "right pinky", "left index",
                "right index", "left thumb", "right thumb", "left hip", "right hip",
                "left knee", "right knee", "left ankle", "right ankle", "left heel",
                "right heel", "left foot index", "right foot index"],
        bones=[["nose", "left eye inner"], ["left eye inner", "left eye"],
               ["left eye", "left eye outer"], ["left eye outer", "left ear"],
               ["nose", "right eye inner"], ["right eye inner", "right eye"],
               ["right eye", "right eye outer"], ["right eye outer", "right ear"],
               ["mouth left", "mouth right"], ["nose", "mouth left"], ["nose", "mouth right"],
               ["left ear", "left shoulder"], ["right ear", "right shoulder"],
               ["left shoulder", "right shoulder"], ["left hip", "right hip"]]
        + [[a.format(s=s), b.format(s=s)] for s in ("left", "right") for a, b in (
            ("{s} shoulder", "{s} elbow"), ("{s} elbow", "{s} wrist"), ("{s} wrist", "{s} pinky"),
            ("{s} wrist", "{s} index"), ("{s} wrist", "{s} thumb"), ("{s} pinky", "{s} index"),
            ("{s} shoulder", "{s} hip"), ("{s} hip", "{s} knee"), ("{s} knee", "{s} ankle"),
            ("{s} ankle", "{s} heel"), ("{s} heel", "{s} foot index"),
            ("{s} ankle", "{s} foot index"))],
        parts=dict(torso=["left shoulder", "right shoulder", "left hip", "right hip"],
                   head=["nose", "left eye inner", "left eye", "left eye outer", "right eye inner",
                         "right eye", "right eye outer", "left ear", "right ear", "mouth left",
                         "mouth right"],
                   **_limbs({"thigh": ["{s} hip", "{s} knee"],
                             "shank": ["{s} ankle", "{s} heel", "{s} foot index"],
                             "upper arm": ["{s} shoulder", "{s} elbow"],
                             "forearm": ["{s} wrist", "{s} pinky", "{s} index", "{s} thumb"]}))),
}

LAYOUTS_BY_NAME = {name: layout_from_data(data, f"built-in layout {name}")
                   for name, data in BUILT_IN.items()}
KINECT_V1 = LAYOUTS_BY_NAME["kinect_v1"]
KINECT_V2 = LAYOUTS_BY_NAME["kinect_v2"]
CASIA_14 = LAYOUTS_BY_NAME["casia14"]

# Kinect v2 joint feeding each Kinect v1 joint (the v1 "shoulder centre" is v2's spine
# shoulder; v2's neck and hand tips/thumbs have no v1 counterpart). Used by the demo data.
V2_TO_V1 = (0, 1, 20, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)

# Joint names in the raw KGBD text files (Andersson & Araujo, AAAI 2015), in the files'
# order (Head first), mapped onto Kinect v1 joint names.
KGBD_JOINT_NAMES = {
    "Head": "head", "Shoulder-Center": "shoulder centre", "Shoulder-Right": "right shoulder",
    "Shoulder-Left": "left shoulder", "Elbow-Right": "right elbow", "Elbow-Left": "left elbow",
    "Wrist-Right": "right wrist", "Wrist-Left": "left wrist", "Hand-Right": "right hand",
    "Hand-Left": "left hand", "Spine": "spine", "Hip-centro": "hip centre",
    "Hip-Right": "right hip", "Hip-Left": "left hip", "Knee-Right": "right knee",
    "Knee-Left": "left knee", "Ankle-Right": "right ankle", "Ankle-Left": "left ankle",
    "Foot-Right": "right foot", "Foot-Left": "left foot",
}


# ----------------------------------------------------------------------------------------
# Naming a layout: a built-in name, a JSON file, or the content a run recorded

LayoutRef = Union[str, dict]


def load_layout_file(path: str) -> SkeletonLayout:
    return layout_from_data(read_json(path, "layout file"), path)


def get_layout(ref: LayoutRef) -> SkeletonLayout:
    """A built-in name, a path to a layout file (*.json), or a recorded layout (dict)."""
    if isinstance(ref, dict):
        return layout_from_data(ref, "the recorded layout")
    if ref in LAYOUTS_BY_NAME:
        return LAYOUTS_BY_NAME[ref]
    if ref.endswith(".json") or os.path.sep in ref:
        return load_layout_file(ref)
    raise UserError(f"unknown layout {ref!r}: name one of {', '.join(LAYOUTS_BY_NAME)}, or give "
                    f"a layout file (PATH.json)")


def layout_record(ref: LayoutRef) -> LayoutRef:
    """What a manifest or config.json records: a built-in's name, else the whole content
    (so that a run can be evaluated without the file)."""
    if isinstance(ref, str) and ref in LAYOUTS_BY_NAME:
        return ref
    return get_layout(ref).as_data()
