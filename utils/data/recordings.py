"""Reading a recording to identify, as the preparation reads one: a skeleton file judged as
tools/prepare_kgbd.py judges it (utils/data/raw_skeletons.py: the run's layout, glitch
values, --bad_frames), cut into windows of the run's length f as the preparation cuts them
(utils/data/prepare_dataset.py: trim, stride f), centred as the loader centres them
(utils/data/reid_data.py). Videos go through the video route (utils/data/video_route.py).
"""
import os
from typing import List, Sequence

import numpy as np

from utils.data.prepare_dataset import cut_windows
from utils.data.raw_skeletons import (BAD_FRAME_POLICIES, MAX_COORDINATE, TRIM_FRAMES,
                                      RawDataError, check_frames, read_recording)
from utils.data.reid_data import centre_on
from utils.data.video_skeleton import VIDEO_EXTENSIONS
from utils.foundation.errors import UserError
from utils.foundation.skeleton import SkeletonLayout

RECORDING_EXTENSIONS = (".npy", ".csv")


def is_video(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)


def read_checked(path: str, layout: SkeletonLayout, bad_frames: str = "stop",
                 max_coordinate: float = MAX_COORDINATE) -> np.ndarray:
    """A recording file -> [frames, joints, 3] float32, read and judged exactly as
    tools/prepare_kgbd.py --format folders does (dropped frames are NaN rows)."""
    if bad_frames not in BAD_FRAME_POLICIES:
        raise UserError(f"--bad_frames must be {' or '.join(BAD_FRAME_POLICIES)}, got {bad_frames!r}")
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file; give a recording (.npy or .csv), a folder of "
                        f"them, or a video")
    if not path.endswith(RECORDING_EXTENSIONS):
        raise UserError(f"{path}: not a recording (.npy or .csv) nor a video; convert it to "
                        f"[frames, {layout.num_joints}, 3] in the {layout.name} layout")
    try:
        raw = read_recording(path, layout)
    except RawDataError as exc:
        if "shape" in str(exc):   # another joint count or layout than the run's
            raise UserError(f"{exc}; this run was trained on {layout.name} skeletons of "
                            f"{layout.num_joints} joints: record or convert the walk in that "
                            f"layout, or use a run trained on yours") from None
        raise UserError(f"{exc}; check or re-export the file") from None
    try:
        return check_frames(raw, path, layout.joint_names, bad_frames, max_coordinate).frames
    except RawDataError as exc:   # the preparation's line, with this command's remedies
        where = str(exc).split("; --bad_frames")[0]
        raise UserError(f"{where}; --bad_frames drop drops such frames (as tools/prepare_kgbd.py "
                        f"does), or fix the recording") from None


def recording_windows(frames: np.ndarray, length: int, centre: int, source: str,
                      trim: int = TRIM_FRAMES) -> np.ndarray:
    """[frames, J, 3] -> windows [W, f, J, 3] float32 as the preparation cuts them (trim at
    both ends, non-overlapping, none across dropped frames), centred on joint `centre`."""
    windows = cut_windows(frames, length, trim)
    if not len(windows):
        dropped = int(np.isnan(frames).any(axis=(1, 2)).sum())
        raise UserError(
            f"{source}: {len(frames)} frames, {max(len(frames) - 2 * trim, 0)} after dropping "
            f"{trim} at each end" + (f" ({dropped} dropped for glitches cut it)" if dropped else "")
            + f": no window of f={length} frames; record a longer walk (at least "
            f"{2 * trim + length} clean frames)")
    return centre_on(windows, centre).astype(np.float32)


def expand_inputs(paths: Sequence[str]) -> List[str]:
    """Recordings and videos named, or found (recursively, sorted) in named folders."""
    out = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(d, f) for d, _, files in os.walk(path) for f in files
                           if f.endswith(RECORDING_EXTENSIONS) or is_video(f))
            if not found:
                raise UserError(f"{path}: no recording (.npy, .csv) or video in this folder")
            out += found
        else:
            out.append(path)
    return out
