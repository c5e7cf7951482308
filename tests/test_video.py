"""The video route: tracking, cutting, layout mapping and axes on landmarks recorded from the
estimator (tests/fixtures/video), and tools/video_to_skeleton.py end to end on the shared
walking clip, run in the video environment (.venv-video, or SMSGE_VIDEO_PYTHON)."""
import os
import subprocess

import numpy as np
import pytest

from utils.data.prepare_dataset import prepare
from utils.data.raw_skeletons import check_frames, read_recording
from utils.data.video_skeleton import (MP, assign_tracks, bone_lengths, longest, low_visibility,
                                  to_layout, y_up)
from utils.foundation.skeleton import LAYOUTS_BY_NAME

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LANDMARKS = np.load(os.path.join(ROOT, "tests", "fixtures", "video", "walk_side_landmarks.npz"))
CLIP = os.path.join(os.path.dirname(ROOT), "shared", "video", "walk_side.mp4")
VIDEO_PYTHON = os.environ.get("SMSGE_VIDEO_PYTHON", os.path.join(ROOT, ".venv-video", "bin", "python"))
LEGS = (("left hip", "left knee"), ("left knee", "left ankle"),
        ("right hip", "right knee"), ("right knee", "right ankle"))


def test_axes_are_turned_y_up_and_stay_right_handed():
    world = y_up(LANDMARKS["world"].astype(float))
    names = LAYOUTS_BY_NAME["mediapipe33"].joint_names
    assert np.all(world[:, names.index("nose"), 1] > world[:, names.index("left ankle"), 1])
    flipped = y_up(np.eye(3))
    assert np.isclose(np.linalg.det(flipped), 1.0)                   # a rotation, no mirror


@pytest.mark.parametrize("layout", ["mediapipe33", "casia14", "kinect_v1"])
def test_mapping_to_each_layout(layout):
    points = y_up(LANDMARKS["world"].astype(float))
    joints = to_layout(points, layout)
    names = LAYOUTS_BY_NAME[layout].joint_names
    assert joints.shape == (12, len(names), 3)
    for n in names:            # joints MediaPipe has are taken as they are
        if n in MP and n not in ("head",):
            np.testing.assert_array_equal(joints[:, names.index(n)], points[:, MP[n]])
    mid_hips = (points[:, MP["left hip"]] + points[:, MP["right hip"]]) / 2
    mid_shoulders = (points[:, MP["left shoulder"]] + points[:, MP["right shoulder"]]) / 2
    if layout == "casia14":
        np.testing.assert_allclose(joints[:, names.index("neck")], mid_shoulders)
        np.testing.assert_allclose(joints[:, names.index("head")], points[:, MP["nose"]])
    if layout == "kinect_v1":
        np.testing.assert_allclose(joints[:, names.index("hip centre")], mid_hips)
        np.testing.assert_allclose(joints[:, names.index("shoulder centre")], mid_shoulders)
        spine = joints[:, names.index("spine")]
        np.testing.assert_allclose(spine, mid_hips + (mid_shoulders - mid_hips) / 3)
        np.testing.assert_allclose(joints[:, names.index("left foot")], points[:, MP["left foot index"]])
    # an adult's thigh and shank, whatever the layout
    if layout != "casia14":
        for length in bone_lengths(joints, layout, LEGS).values():
            assert 0.3 <= length <= 0.5


def test_two_people_in_view_make_two_tracks_and_the_longest_is_kept():
    # person A walks left to right in frames 0-29; person B stands at the right edge and is
    # detected instead of A in frames 10, 12, 14 (a single-person estimator flickers)
    f = 30
    centres = np.stack([np.linspace(0.1, 0.6, f), np.full(f, 0.5)], axis=1)
    flicker = [10, 12, 14]
    centres[flicker] = [0.95, 0.5]
    present = np.ones(f, bool)
    tracks = assign_tracks(centres, present, max_gap=5, max_jump=0.25)
    assert [len(t.frame_indices) for t in tracks] == [27, 3]
    assert tracks[1].frame_indices == flicker and longest(tracks) is tracks[0]


def test_a_person_lost_too_long_cuts_the_recording():
    f = 40
    centres = np.stack([np.linspace(0.1, 0.7, f), np.full(f, 0.5)], axis=1)
    present = np.ones(f, bool)
    present[10:13] = False                 # lost 3 frames: bridged (frames dropped)
    present[20:28] = False                 # lost 8 frames: cut
    tracks = assign_tracks(centres, present, max_gap=5, max_jump=0.25)
    assert [(t.frame_indices[0], t.frame_indices[-1], len(t.frame_indices)) for t in tracks] == [(0, 19, 17), (28, 39, 12)]
    assert longest(tracks) is tracks[0]
    assert [len(t.frame_indices) for t in assign_tracks(centres, present, 10, 0.25)] == [29]


def test_low_visibility_landmarks_are_counted():
    vis = LANDMARKS["visibility"]
    assert low_visibility(vis, 0.5) == int(np.sum(vis < 0.5)) > 0
    assert low_visibility(vis, 0.0) == 0


needs_clip = pytest.mark.skipif(not os.path.isfile(CLIP), reason=f"the shared test clip {CLIP} is absent")
needs_env = pytest.mark.skipif(
    not os.path.isfile(VIDEO_PYTHON),
    reason=f"no video environment at {VIDEO_PYTHON}: python3 -m venv .venv-video && "
           f".venv-video/bin/pip install -r requirements-video.txt")


def tool(args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", GLOG_minloglevel="3")
    return subprocess.run([VIDEO_PYTHON, os.path.join(ROOT, "tools", "video_to_skeleton.py")] + args,
                          cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
@needs_clip
@needs_env
def test_clip_to_recording_the_preparation_tool_accepts(tmp_path):
    proc = tool([CLIP, "--out", str(tmp_path / "rec"), "--person", "walker", "--preview",
                 "--no_progress"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    path = tmp_path / "rec" / "walker" / "walk_side.npy"
    joints = np.load(path)
    assert joints.shape[1:] == (33, 3) and joints.shape[0] >= 60          # of 118 frames
    assert (tmp_path / "rec" / "walker" / "walk_side.png").stat().st_size > 10000
    for length in bone_lengths(joints, "mediapipe33", LEGS).values():
        assert 0.3 <= length <= 0.5
    names = LAYOUTS_BY_NAME["mediapipe33"].joint_names
    assert np.median(joints[:, names.index("nose"), 1]) > np.median(joints[:, names.index("left ankle"), 1])
    layout = LAYOUTS_BY_NAME["mediapipe33"]
    check = check_frames(read_recording(str(path), layout), str(path), layout.joint_names)
    assert check.dropped == 0
    # mapped to the Kinect v1 layout, several people's videos: the preparation tool takes them
    proc = tool([CLIP, "--out", str(tmp_path / "k1"), "--person", "walker", "--layout",
                 "kinect_v1", "--no_progress"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    one = np.load(tmp_path / "k1" / "walker" / "walk_side.npy")
    assert one.shape[1:] == (20, 3)
    for p in range(3):   # the same walk, shifted, as three people's three recordings
        for r in range(3):
            folder = tmp_path / "tree" / f"person{p}"
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / f"walk{r}.npy", one[r:] + np.array([p, 0, r], np.float32))
    result = prepare(str(tmp_path / "tree"), str(tmp_path / "Datasets"), name="VIDEO",
                     fmt="folders", layout_name="kinect_v1", lengths=(6,), log=lambda *_: None)
    assert result.manifests[6]["protocols"]["classification"]["windows"]["test"] > 0


@pytest.mark.slow
@needs_env
def test_unreadable_and_empty_videos_are_reported_and_others_go_on(tmp_path):
    videos = tmp_path / "videos" / "someone"
    videos.mkdir(parents=True)
    (videos / "broken.mp4").write_bytes(b"not a video")
    make_blank = ("import cv2, numpy as np, sys; w = cv2.VideoWriter(sys.argv[1], "
                  "cv2.VideoWriter_fourcc(*'mp4v'), 25, (160, 120)); "
                  "[w.write(np.zeros((120, 160, 3), np.uint8)) for _ in range(10)]; w.release()")
    subprocess.run([VIDEO_PYTHON, "-c", make_blank, str(videos / "empty.mp4")], check=True,
                   timeout=120)
    proc = tool([str(tmp_path / "videos"), "--out", str(tmp_path / "out"), "--no_progress"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "broken.mp4: not a readable video" in proc.stderr
    assert "empty.mp4: no person found in its 10 frames" in proc.stderr
    assert "0 recording(s) written" in proc.stdout and "2 of 2 video(s) failed" in proc.stdout
    assert not (tmp_path / "out").exists()
    if os.path.isfile(CLIP):     # a good video beside them is still converted
        os.symlink(CLIP, videos / "walk_side.mp4")
        proc = tool([str(tmp_path / "videos"), "--out", str(tmp_path / "out"), "--no_progress"],
                    tmp_path)
        assert proc.returncode == 0 and "1 recording(s) written" in proc.stdout
        assert "2 of 3 video(s) failed" in proc.stdout
        assert os.listdir(tmp_path / "out" / "someone") == ["walk_side.npy"]
