"""Skeleton layouts: joints, bones, part groups and body groups, defined once.

Every other module asks `layout_for(num_joints)` instead of hard-coding joint indices.
Part order (method §2): left thigh, left shank, right thigh, right shank, torso, head,
left upper arm, left forearm, right upper arm, right forearm.
Body order: left leg, right leg, torso, left arm, right arm.
"""
from dataclasses import dataclass
from typing import Tuple

from utils.errors import UserError

PART_NAMES = ("left thigh", "left shank", "right thigh", "right shank", "torso", "head",
              "left upper arm", "left forearm", "right upper arm", "right forearm")
# Part-scale edges (0-based part indices): head to both upper arms and the torso, torso
# to both thighs, each limb segment to its lower one.
PART_EDGES = ((5, 6), (5, 8), (6, 7), (8, 9), (5, 4), (4, 2), (4, 0), (2, 3), (1, 0))

BODY_NAMES = ("left leg", "right leg", "torso", "left arm", "right arm")
# Which parts make up each body node; a body node is the mean of the joints of its parts.
BODY_FROM_PARTS = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))
# The torso (node 2) is linked to the four limbs.
BODY_EDGES = ((2, 0), (2, 1), (2, 3), (2, 4))


@dataclass(frozen=True)
class SkeletonLayout:
    name: str
    joint_names: Tuple[str, ...]
    bones: Tuple[Tuple[int, int], ...]
    part_groups: Tuple[Tuple[int, ...], ...]   # 10 joint groups, PART_NAMES order

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def body_groups(self) -> Tuple[Tuple[int, ...], ...]:
        return tuple(tuple(j for p in parts for j in self.part_groups[p])
                     for parts in BODY_FROM_PARTS)


KINECT_V1 = SkeletonLayout(
    name="Kinect v1 (20 joints: IAS-Lab, KGBD, BIWI)",
    joint_names=("hip centre", "spine", "shoulder centre", "head",
                 "left shoulder", "left elbow", "left wrist", "left hand",
                 "right shoulder", "right elbow", "right wrist", "right hand",
                 "left hip", "left knee", "left ankle", "left foot",
                 "right hip", "right knee", "right ankle", "right foot"),
    bones=((0, 1), (1, 2), (2, 3), (2, 4), (4, 5), (5, 6), (6, 7), (2, 8), (8, 9),
           (9, 10), (10, 11), (0, 12), (12, 13), (13, 14), (14, 15), (0, 16), (16, 17),
           (17, 18), (18, 19)),
    part_groups=((12, 13), (14, 15), (16, 17), (18, 19), (0, 1), (2, 3),
                 (4, 5), (6, 7), (8, 9), (10, 11)),
)

KINECT_V2 = SkeletonLayout(
    name="Kinect v2 (25 joints: KS20)",
    joint_names=("spine base", "spine mid", "neck", "head",
                 "left shoulder", "left elbow", "left wrist", "left hand",
                 "right shoulder", "right elbow", "right wrist", "right hand",
                 "left hip", "left knee", "left ankle", "left foot",
                 "right hip", "right knee", "right ankle", "right foot",
                 "spine shoulder", "left hand tip", "left thumb",
                 "right hand tip", "right thumb"),
    bones=((0, 1), (1, 20), (20, 2), (2, 3), (20, 4), (4, 5), (5, 6), (6, 7), (7, 21),
           (6, 22), (20, 8), (8, 9), (9, 10), (10, 11), (11, 23), (10, 24), (0, 12),
           (12, 13), (13, 14), (14, 15), (0, 16), (16, 17), (17, 18), (18, 19)),
    part_groups=((12, 13), (14, 15), (16, 17), (18, 19), (0, 1), (2, 3, 20),
                 (4, 5), (6, 7, 21, 22), (8, 9), (10, 11, 23, 24)),
)

CASIA_14 = SkeletonLayout(
    name="CASIA-B estimated poses (14 joints)",
    joint_names=("head", "neck", "right shoulder", "right elbow", "right wrist",
                 "left shoulder", "left elbow", "left wrist", "right hip", "right knee",
                 "right ankle", "left hip", "left knee", "left ankle"),
    bones=((0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9),
           (9, 10), (1, 11), (11, 12), (12, 13)),
    part_groups=((11,), (12, 13), (8,), (9, 10), (1,), (0,),
                 (5,), (6, 7), (2,), (3, 4)),
)

LAYOUTS = {layout.num_joints: layout for layout in (KINECT_V1, KINECT_V2, CASIA_14)}

# Kinect v2 joint feeding each Kinect v1 joint (the v1 "shoulder centre" is v2's spine
# shoulder; v2's neck and hand tips/thumbs have no v1 counterpart).
V2_TO_V1 = (0, 1, 20, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)


# Layouts by the names the data preparation tool accepts (--layout).
LAYOUTS_BY_NAME = {"kinect_v1": KINECT_V1, "kinect_v2": KINECT_V2, "casia14": CASIA_14}

# Joint names in the raw KGBD text files (Andersson & Araujo, AAAI 2015), mapped onto
# Kinect v1 joint names. The files list joints in their own order (head first), not in
# the SDK order of KINECT_V1 (hip centre first); frames are re-ordered by these names.
KGBD_JOINT_NAMES = {
    "Head": "head", "Shoulder-Center": "shoulder centre", "Shoulder-Right": "right shoulder",
    "Shoulder-Left": "left shoulder", "Elbow-Right": "right elbow", "Elbow-Left": "left elbow",
    "Wrist-Right": "right wrist", "Wrist-Left": "left wrist", "Hand-Right": "right hand",
    "Hand-Left": "left hand", "Spine": "spine", "Hip-centro": "hip centre",
    "Hip-Right": "right hip", "Hip-Left": "left hip", "Knee-Right": "right knee",
    "Knee-Left": "left knee", "Ankle-Right": "right ankle", "Ankle-Left": "left ankle",
    "Foot-Right": "right foot", "Foot-Left": "left foot",
}


def layout_for(num_joints: int) -> SkeletonLayout:
    try:
        return LAYOUTS[num_joints]
    except KeyError:
        raise UserError(f"no skeleton layout has {num_joints} joints; supported joint "
                        f"counts are {sorted(LAYOUTS)} (Kinect v1, CASIA-B, Kinect v2)")
