"""Walking videos -> 3D skeleton recordings, ready for tools/prepare_kgbd.py --format folders.

    .venv-video/bin/python tools/video_to_skeleton.py VIDEO_OR_FOLDER --out DIR [--preview]

For each video: MediaPipe Pose (BlazePose GHUM, 33 landmarks in metric world coordinates
centred between the hips) on every frame; frames without a person are dropped; detections
are split into consistent tracks (a track is cut where its person is lost for more than
--max_gap frames or jumps by more than --max_jump of the image); the longest track is
written as DIR/<person>/<video name>.npy ([frames, joints, 3], y up), or every track with
--all_tracks. <person> is the name of the folder the video sits in, or --person.

Runs in its own environment (requirements-video.txt: mediapipe 0.10.21 bundles the pose
model but pins numpy<2 and protobuf<5, which TensorFlow 2.20+ does not accept). Nothing is
downloaded at run time.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from utils.data.video_skeleton import (MP, VIDEO_EXTENSIONS, VIDEO_LAYOUTS,  # noqa: E402
                                       assign_tracks, longest, low_visibility, to_layout, y_up)
from utils.foundation.errors import UserError  # noqa: E402
from utils.foundation.io import atomic_path, atomic_save_npy  # noqa: E402

PREVIEW_FRAMES = 6


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="video_to_skeleton.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="a video file, or a folder of videos (searched recursively)")
    p.add_argument("--out", required=True, help="output tree: <out>/<person>/<recording>.npy")
    p.add_argument("--person", default="", help="person name (default: the video's folder name)")
    p.add_argument("--layout", default="mediapipe33", choices=VIDEO_LAYOUTS,
                   help="joints written: MediaPipe's 33, or mapped to casia14 / kinect_v1 by name "
                        "(missing joints synthesised)")
    p.add_argument("--max_gap", type=int, default=5,
                   help="frames a person may be lost before the recording is cut (default 5)")
    p.add_argument("--max_jump", type=float, default=0.25,
                   help="largest move of the hip centre between detections, as a fraction of "
                        "the image (default 0.25); a larger one starts another track")
    p.add_argument("--min_visibility", type=float, default=0.5,
                   help="landmarks below this visibility are counted (default 0.5)")
    p.add_argument("--all_tracks", action="store_true", help="write every track, not only the longest")
    p.add_argument("--preview", action="store_true",
                   help="write <recording>.png beside each recording: sampled frames with the skeleton")
    p.add_argument("--no_progress", action="store_true", help="hide the progress bars")
    return p


def find_videos(source: str):
    if os.path.isfile(source):
        return [source]
    if not os.path.isdir(source):
        raise UserError(f"{source} is neither a video file nor a folder")
    found = sorted(os.path.join(d, f) for d, _, files in os.walk(source) for f in files
                   if f.lower().endswith(VIDEO_EXTENSIONS))
    if not found:
        raise UserError(f"no video ({', '.join(VIDEO_EXTENSIONS)}) under {source}")
    return found


def estimate(path: str, progress: bool):
    """Per frame: world landmarks [33, 3], image landmarks [33, 2], visibility [33] (NaN
    where no person was found)."""
    import cv2
    import mediapipe as mp
    from tqdm import tqdm
    cap = cv2.VideoCapture(path)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = cap.read()
    if not cap.isOpened() or not ok:
        raise UserError(f"{path}: not a readable video")
    world, image, vis = [], [], []
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
        frame = first
        with tqdm(total=count or None, desc=os.path.basename(path), leave=False, unit="frame",
                  disable=True if not progress else None) as bar:
            while ok:
                result = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                if result.pose_world_landmarks:
                    lw, li = result.pose_world_landmarks.landmark, result.pose_landmarks.landmark
                    world.append([(p.x, p.y, p.z) for p in lw])
                    image.append([(p.x, p.y) for p in li])
                    vis.append([p.visibility for p in lw])
                else:
                    world.append(np.full((33, 3), np.nan))
                    image.append(np.full((33, 2), np.nan))
                    vis.append(np.full(33, np.nan))
                bar.update()
                ok, frame = cap.read()
    cap.release()
    return np.array(world, float), np.array(image, float), np.array(vis, float)


def read_frames(video: str, wanted) -> dict:
    """{index: frame} for the wanted frame indices, read in one pass."""
    import cv2
    cap, out, f = cv2.VideoCapture(video), {}, 0
    wanted = set(wanted)
    while len(out) < len(wanted):
        ok, frame = cap.read()
        if not ok:
            break
        if f in wanted:
            out[f] = frame
        f += 1
    cap.release()
    return out


def write_preview(path: str, video: str, image, track) -> None:
    """A PNG of sampled frames of the track with the estimated skeleton drawn over them."""
    import cv2
    from utils.foundation.skeleton import LAYOUTS_BY_NAME
    bones = LAYOUTS_BY_NAME["mediapipe33"].bones
    picks = [track[int(i)] for i in np.linspace(0, len(track) - 1, min(PREVIEW_FRAMES, len(track)))]
    frames = read_frames(video, picks)
    tiles = []
    for f in picks:
        img = frames[f].copy()
        h, w = img.shape[:2]
        pts = [(int(x * w), int(y * h)) for x, y in image[f]]
        for a, b in bones:
            cv2.line(img, pts[a], pts[b], (0, 255, 0), max(2, w // 200))
        for p in pts:
            cv2.circle(img, p, max(3, w // 150), (0, 0, 255), -1)
        cv2.putText(img, f"frame {f}", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 3)
        scale = 360.0 / h
        tiles.append(cv2.resize(img, (int(w * scale), 360)))
    sheet = np.concatenate(tiles, axis=1)
    with atomic_path(path) as tmp:    # a temporary .png beside it, renamed when complete
        if not cv2.imwrite(tmp, sheet):
            raise UserError(f"cannot write the preview {path}")


def convert(path: str, args, log=print) -> int:
    """One video -> its recording(s); returns how many were written."""
    start = time.time()
    world, image, vis = estimate(path, not args.no_progress)
    present = ~np.isnan(world).any(axis=(1, 2))
    if not present.any():
        raise UserError(f"{path}: no person found in its {len(world)} frames")
    centres = np.where(present[:, None], (image[:, MP["left hip"]] + image[:, MP["right hip"]]) / 2, np.nan)
    tracks = assign_tracks(centres, present, args.max_gap, args.max_jump)
    chosen = tracks if args.all_tracks else [longest(tracks)]
    person = args.person or os.path.basename(os.path.dirname(os.path.abspath(path)))
    stem = os.path.splitext(os.path.basename(path))[0]
    per_frame = (time.time() - start) / len(world)
    for k, track in enumerate(chosen):
        name = stem if len(chosen) == 1 else f"{stem}_track{k + 1}"
        joints = to_layout(y_up(world[track.frame_indices]), args.layout).astype(np.float32)
        out = os.path.join(args.out, person, name + ".npy")
        atomic_save_npy(out, joints)
        if args.preview:
            write_preview(os.path.join(args.out, person, name + ".png"), path, image, track.frame_indices)
        log(f"{path}: {len(track.frame_indices)} of {len(world)} frames kept ({int(present.sum())} with a "
            f"person, {len(tracks)} track(s)); {low_visibility(vis[track.frame_indices], args.min_visibility)} "
            f"landmarks below visibility {args.min_visibility:g}; {per_frame * 1000:.0f} ms/frame "
            f"-> {out}")
    return len(chosen)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        try:
            import cv2  # noqa: F401
            import mediapipe  # noqa: F401
        except ImportError:
            raise UserError("the video route needs its own environment: python3 -m venv "
                            ".venv-video && .venv-video/bin/pip install -r requirements-video.txt, "
                            "then run this tool with .venv-video/bin/python") from None
        if args.max_gap < 0 or not 0 < args.max_jump <= 2 or not 0 <= args.min_visibility <= 1:
            raise UserError("--max_gap must be >= 0, --max_jump in (0, 2], --min_visibility in [0, 1]")
        videos = find_videos(args.source)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    written, failed = 0, 0
    for path in videos:
        try:
            written += convert(path, args)
        except UserError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
    print(f"{written} recording(s) written under {args.out}; {failed} of {len(videos)} video(s) "
          f"failed")
    return 0 if written else 2


if __name__ == "__main__":
    sys.exit(main())
