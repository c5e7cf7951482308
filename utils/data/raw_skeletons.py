"""Reading raw skeleton recordings, and judging their values (tools/prepare_kgbd.py).

Two input formats:
- "kgbd": the Kinect Gait Biometry Dataset as distributed (Data/PersonNNN/K.txt): one text
  file per walk, one `JointName;x;y;z` line per joint, 20 lines per frame, each frame
  starting with `Head`. Joints are re-ordered by name into the Kinect v1 SDK layout, or kept
  in the files' order (--joint_order file: the authors' convention, see docs/datasets.md).
- "folders": `<root>/<person>/<recording>.{npy,csv}`, each [frames, joints, 3] or one
  row per frame of joints*3 numbers (x, y, z of joint 0, then joint 1, ...), joints in the
  order of a layout (utils/foundation/skeleton.py).
Glitches (non-finite or implausible values, lost joints) are found by check_frames.
Windows, splits and writing the dataset are utils/data/prepare_dataset.py's.
"""
import os
import re
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from utils.foundation.errors import UserError
from utils.foundation.io import DAMAGED, damage_detail, read_text
from utils.foundation.skeleton import KGBD_JOINT_NAMES, KINECT_V1, SkeletonLayout

TRIM_FRAMES = 10
FORMATS = ("kgbd", "folders")


class RawDataError(UserError):
    """A raw file that cannot be read: the message names the file and line."""


# ----------------------------------------------------------------------------------------
# Parsing

JOINT_ORDERS = ("sdk", "file")


def parse_kgbd_text(text: str, source: str = "<text>", joint_order: str = "sdk",
                    lines: Optional[list] = None) -> np.ndarray:
    """One KGBD walk -> [frames, 20, 3] float64, joints in the Kinect v1 SDK order (placed
    by name), or with joint_order="file" in the files' own order (Head first), as the
    authors' pre-processing keeps them. The values are not judged here (check_frames does);
    `lines`, if given, receives each frame's first line number."""
    if joint_order == "file":
        order = {name: i for i, name in enumerate(KGBD_JOINT_NAMES)}
    else:
        order = {name: KINECT_V1.joint_names.index(ours) for name, ours in KGBD_JOINT_NAMES.items()}
    frames, current, seen, start_line = [], None, set(), 0

    def close(line_no):
        if len(seen) != len(order):
            missing = sorted(set(order) - seen)
            raise RawDataError(f"{source}:{start_line}: the frame starting here lacks "
                               f"{', '.join(missing)} (it ends before line {line_no})")
        frames.append(current)
        if lines is not None:
            lines.append(start_line)

    for line_no, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(";")
        if len(parts) != 4:
            raise RawDataError(f"{source}:{line_no}: expected 'JointName;x;y;z', got {line[:60]!r}")
        name = parts[0]
        if name not in order:
            raise RawDataError(f"{source}:{line_no}: unknown joint name {name!r}")
        try:
            xyz = [float(v) for v in parts[1:]]
        except ValueError:
            raise RawDataError(f"{source}:{line_no}: coordinates are not numbers: {line[:60]!r}") from None
        if name == "Head":
            if current is not None:
                close(line_no)
            current, seen, start_line = np.zeros((len(order), 3)), set(), line_no
        elif current is None:
            raise RawDataError(f"{source}:{line_no}: the first frame does not start with Head")
        if name in seen:
            raise RawDataError(f"{source}:{line_no}: joint {name} appears twice in one frame")
        seen.add(name)
        current[order[name]] = xyz
    if current is None:
        raise RawDataError(f"{source}: the file holds no frames")
    close(line_no + 1)
    return np.stack(frames)


def read_recording(path: str, layout: SkeletonLayout) -> np.ndarray:
    """A generic recording (.npy or .csv) -> [frames, joints, 3] float64 (values are judged
    by check_frames)."""
    joints = layout.num_joints
    try:
        if path.endswith(".npy"):
            arr = np.load(path, allow_pickle=False)
        else:
            arr = np.loadtxt(read_text(path, "recording", RawDataError).splitlines(),
                             delimiter=",", dtype=np.float64, ndmin=2)
    except DAMAGED as exc:   # an empty or truncated file too (EOFError)
        raise RawDataError(f"{path}: cannot read it ({damage_detail(exc)})") from None
    if not isinstance(arr, np.ndarray):   # np.load opens an .npz archive whatever its name
        arr.close()
        raise RawDataError(f"{path}: an .npz archive (np.savez) under an .npy name; save each "
                           f"recording as one array with np.save")
    if arr.ndim == 2 and arr.shape[1] == 3 * joints:
        arr = arr.reshape(len(arr), joints, 3)
    if arr.ndim != 3 or arr.shape[1:] != (joints, 3):
        raise RawDataError(f"{path}: shape {arr.shape}; expected [frames, {joints}, 3] or "
                           f"[frames, {3 * joints}] for the {layout.name} layout")
    if len(arr) == 0:
        raise RawDataError(f"{path}: the recording holds no frames")
    if not np.issubdtype(arr.dtype, np.number):
        raise RawDataError(f"{path}: holds {arr.dtype} values, not numbers")
    if np.issubdtype(arr.dtype, np.complexfloating):   # astype would drop the imaginary parts
        raise RawDataError(f"{path}: holds complex numbers ({arr.dtype}); coordinates must be "
                           f"real numbers in metres")
    return arr.astype(np.float64)


# ----------------------------------------------------------------------------------------
# Judging frames

BAD_FRAME_POLICIES = ("stop", "drop")
MAX_COORDINATE = 20.0   # metres: no walker's joint is that far from the sensor


@dataclass
class FrameCheck:
    frames: np.ndarray   # [F, J, 3] float32; rows of dropped frames are NaN (never written)
    dropped: int = 0     # frames with a non-finite or implausible value, dropped
    lost: int = 0        # frames where the sensor lost a joint: exactly (0, 0, 0)


def check_frames(arr: np.ndarray, source: str, joint_names, policy: str = "stop",
                 max_coordinate: float = MAX_COORDINATE, frame_lines=None) -> FrameCheck:
    """Find glitches in a recording's raw float64 values: non-finite coordinates and values
    beyond +-max_coordinate (policy "stop": one line naming the file, frame and joint;
    "drop": those frames are dropped and the recording is cut there), and frames where a
    joint is exactly (0, 0, 0), the sensor's mark of a lost joint (counted; dropped too
    under "drop")."""
    with np.errstate(invalid="ignore"):
        glitch = ~np.isfinite(arr) | (np.abs(arr) > max_coordinate)
    bad = glitch.any(axis=(1, 2))
    lost = np.all(arr == 0, axis=2).any(axis=1) & ~bad
    if bad.any() and policy == "stop":
        f = int(np.flatnonzero(bad)[0])
        j = int(np.flatnonzero(glitch[f].any(axis=1))[0])
        where = f"frame {f}" + (f" (line {frame_lines[f]})" if frame_lines else f" (row {f})")
        raise RawDataError(f"{source}: {where}, joint {joint_names[j]!r}: "
                           f"{', '.join(f'{v:g}' for v in arr[f, j])} is not finite or beyond "
                           f"{max_coordinate:g} m; --bad_frames drop drops such frames, "
                           f"--skip_bad skips the recording")
    frames = arr.astype(np.float32) if not bad.any() else np.where(bad[:, None, None], 0, arr).astype(np.float32)
    if policy == "drop":
        frames[bad | lost] = np.nan
    return FrameCheck(frames, int(bad.sum()), int(lost.sum()))


# ----------------------------------------------------------------------------------------
# Finding recordings

@dataclass
class Recording:
    person: str          # folder name, e.g. Person015
    person_id: int       # the id written to the dataset files
    name: str            # file name without folder, e.g. 3.txt
    path: str


def _natural_key(text: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def discover(root: str, fmt: str) -> List[Recording]:
    """All recordings under root, persons and recordings in natural order. Person ids are
    the number in the folder name (Person015 -> 15) when every folder has one, else 1, 2, ..."""
    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not os.path.isdir(root):
        raise UserError(f"raw data folder {root} not found; for KGBD, fetch the repository "
                        f"Vortander/KinectGait and give its Data/ folder")
    if fmt == "kgbd" and os.path.isdir(os.path.join(root, "Data")):
        root = os.path.join(root, "Data")
    exts = (".txt",) if fmt == "kgbd" else (".npy", ".csv")
    persons = sorted((d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
                      and not d.startswith(".")), key=_natural_key)
    numbers = [re.findall(r"\d+", p) for p in persons]
    use_numbers = all(numbers) and len({int(n[-1]) for n in numbers}) == len(persons)
    found = []
    for i, person in enumerate(persons):
        pid = int(numbers[i][-1]) if use_numbers else i + 1
        folder = os.path.join(root, person)
        for name in sorted(os.listdir(folder), key=_natural_key):
            if name.endswith(exts) and os.path.isfile(os.path.join(folder, name)):
                found.append(Recording(person, pid, name, os.path.join(folder, name)))
    if not found:
        raise UserError(f"no recordings ({'/'.join(exts)} files in one folder per person) "
                        f"under {root}")
    return found


def load_recordings(recordings: List[Recording], fmt: str, layout: SkeletonLayout,
                    skip_bad: bool, progress=None, joint_order: str = "sdk",
                    bad_frames: str = "stop", max_coordinate: float = MAX_COORDINATE):
    """({path: [frames, J, 3]}, skipped-file messages, {path: frame counts}): a bad file
    raises, or with skip_bad is skipped and reported; glitches in the values are judged by
    check_frames under the bad_frames policy."""
    arrays, skipped, counts = {}, [], {}
    for rec in (progress(recordings) if progress else recordings):
        try:
            if fmt == "kgbd":
                text = read_text(rec.path, "recording", RawDataError)
                lines = []
                raw = parse_kgbd_text(text, rec.path, joint_order, lines)
                names = list(KGBD_JOINT_NAMES) if joint_order == "file" else layout.joint_names
            else:
                raw, lines, names = read_recording(rec.path, layout), None, layout.joint_names
            check = check_frames(raw, rec.path, names, bad_frames, max_coordinate, lines)
        except RawDataError as exc:
            if not skip_bad:
                raise
            skipped.append(str(exc))
            continue
        arrays[rec.path] = check.frames
        counts[rec.path] = dict(frames_dropped=check.dropped, lost_joint_frames=check.lost)
    return arrays, skipped, counts
