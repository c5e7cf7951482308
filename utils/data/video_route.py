"""The video route from inside the project: a walking video turned into a skeleton recording
in a run's layout by tools/video_to_skeleton.py, run in the video environment (MediaPipe
lives there, not in the project's own; docs/video.md).
"""
import os
import subprocess
from typing import Sequence

from utils.data.video_skeleton import VIDEO_LAYOUTS
from utils.foundation.errors import UserError

# The project's root (this file is utils/data/video_route.py): where the video route's
# environment and tools/video_to_skeleton.py are.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def video_python() -> str:
    return os.environ.get("SMSGE_VIDEO_PYTHON",
                          os.path.join(ROOT, ".venv-video", "bin", "python"))


def video_to_recording(path: str, layout, out: str, options: Sequence[str] = ()) -> str:
    """Run the video route (tools/video_to_skeleton.py, in the video environment) on one
    video, writing the recording in the run's layout under `out`; returns its path."""
    python = video_python()
    if not os.path.isfile(python):
        raise UserError(f"{path}: a video needs the video environment: python3 -m venv "
                        f".venv-video && .venv-video/bin/pip install -r requirements-video.txt "
                        f"(or set SMSGE_VIDEO_PYTHON)")
    if layout not in VIDEO_LAYOUTS:
        name = layout if isinstance(layout, str) else layout.get("name", "its own")
        raise UserError(f"{path}: the video route writes {', '.join(VIDEO_LAYOUTS)} skeletons, "
                        f"this run takes the {name} layout; use a run trained on one of them")
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    cmd = [python, os.path.join(ROOT, "tools", "video_to_skeleton.py"), path, "--out", out,
           "--person", "video", "--layout", layout, "--no_progress"] + list(options)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", GLOG_minloglevel="3")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
        reason = errors[-1][len("error: "):] if errors else (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise UserError(f"{path}: the video route failed: {reason}")
    recording = os.path.join(out, "video", os.path.splitext(os.path.basename(path))[0] + ".npy")
    if not os.path.isfile(recording):
        raise UserError(f"{path}: the video route wrote no recording; check the video")
    return recording
