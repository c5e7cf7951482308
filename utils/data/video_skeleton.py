"""From per-frame pose estimates to skeleton recordings (tools/video_to_skeleton.py).

Pure NumPy, so that tracking, cutting, layout mapping and axes are tested without a pose
estimator. The estimator (MediaPipe Pose) gives, for the frames where it finds a person,
33 landmarks in metric world coordinates centred between the hips (x right, y down, z away
from the camera) with a visibility each, and the same landmarks in image coordinates.
"""
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from utils.foundation.skeleton import LAYOUTS_BY_NAME

MP = {name: i for i, name in enumerate(LAYOUTS_BY_NAME["mediapipe33"].joint_names)}
VIDEO_LAYOUTS = ("mediapipe33", "casia14", "kinect_v1")
# Files that identify.py and tools/video_to_skeleton.py take for videos, by extension.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def y_up(world: np.ndarray) -> np.ndarray:
    """MediaPipe world axes (x right, y down, z away) -> x right, y up, z towards the
    camera: y and z flipped, so the frame stays right-handed."""
    return world * np.array([1.0, -1.0, -1.0])


def _mid(points: np.ndarray, *names) -> np.ndarray:
    return points[..., [MP[n] for n in names], :].mean(axis=-2)


def to_layout(points: np.ndarray, layout: str) -> np.ndarray:
    """[..., 33, 3] MediaPipe landmarks -> [..., J, 3] in a named layout. Joints MediaPipe
    has are taken by name; the others are synthesised (docs/datasets.md, "From walking videos"):
    neck / shoulder centre = mid-shoulders, hip centre = mid-hips, head (Kinect) = mid-ears,
    spine = one third of the way from the hip centre to the shoulder centre, hand =
    mid of index and pinky knuckles, foot = foot index (toe)."""
    if layout == "mediapipe33":
        return points.copy()
    names = LAYOUTS_BY_NAME[layout].joint_names
    hip_centre = _mid(points, "left hip", "right hip")
    shoulder_centre = _mid(points, "left shoulder", "right shoulder")
    synthesised = {
        "neck": shoulder_centre, "shoulder centre": shoulder_centre, "hip centre": hip_centre,
        "spine": hip_centre + (shoulder_centre - hip_centre) / 3.0,
        "head": points[..., MP["nose"], :] if layout == "casia14" else _mid(points, "left ear", "right ear"),
        "left hand": _mid(points, "left index", "left pinky"),
        "right hand": _mid(points, "right index", "right pinky"),
        "left foot": points[..., MP["left foot index"], :],
        "right foot": points[..., MP["right foot index"], :],
    }
    return np.stack([synthesised[n] if n in synthesised else points[..., MP[n], :]
                     for n in names], axis=-2)


@dataclass
class Track:
    frame_indices: List[int] = field(default_factory=list)   # video frame indices, increasing

    @property
    def last(self) -> int:
        return self.frame_indices[-1]


def assign_tracks(centres: np.ndarray, present: np.ndarray, max_gap: int,
                  max_jump: float) -> List[Track]:
    """Split the frames with a detection into consistent tracks. centres [F, 2]: the
    person's hip centre in image coordinates (fractions of the width and height); present
    [F] bool. A detection continues the open track whose last centre is nearest, if it is
    within max_jump and the track was seen at most max_gap frames ago; otherwise it opens a
    new track (another person, or the same person after being lost too long)."""
    tracks: List[Track] = []
    for f in np.flatnonzero(present):
        open_tracks = [t for t in tracks if f - t.last <= max_gap + 1]
        best, best_d = None, max_jump
        for t in open_tracks:
            d = float(np.linalg.norm(centres[f] - centres[t.last]))
            if d <= best_d:
                best, best_d = t, d
        if best is None:
            best = Track()
            tracks.append(best)
        best.frame_indices.append(int(f))
    return tracks


def longest(tracks: List[Track]) -> Optional[Track]:
    return max(tracks, key=lambda t: (len(t.frame_indices), -t.frame_indices[0])) if tracks else None


def low_visibility(visibility: np.ndarray, threshold: float) -> int:
    """How many landmarks (over all kept frames) fall below the visibility threshold."""
    return int(np.sum(visibility < threshold))


def bone_lengths(joints: np.ndarray, layout: str, pairs) -> dict:
    """Median length over frames of named bones, e.g. (("left hip", "left knee"), ...)."""
    names = LAYOUTS_BY_NAME[layout].joint_names
    return {f"{a}-{b}": float(np.median(np.linalg.norm(
        joints[:, names.index(a)] - joints[:, names.index(b)], axis=-1))) for a, b in pairs}
