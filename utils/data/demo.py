"""The built-in `demo` dataset: procedurally generated 3D walking, no download needed.

Twenty people, each with their own body proportions (segment lengths a few per cent
around human averages) and walking style (cadence, stride, arm swing, knee flexion,
torso lean and sway, left/right asymmetry). Every recording adds its own speed, heading,
sensor noise and start phase. Training and test samples are windows cut from distinct
recordings. Everything is seeded: the same seed writes byte-identical files.

Files are written into Datasets/demo[20]/<f>/ in exactly the released format, so the
ordinary loader reads them. The test folder also holds probe/ and gallery/ sub-folders
(one test recording each) for the retrieval protocol.
"""
import os

import numpy as np

from utils.data.datasets import DATASETS_ROOT, get_dataset, released_folders
from utils.data.reid_data import write_split
from utils.foundation.errors import UserError, guarded
from utils.foundation.skeleton import V2_TO_V1

NUM_PEOPLE = 20
TRAIN_RECORDINGS = 4
TEST_RECORDINGS = 2          # the first is the retrieval probe, the second the gallery
RECORDING_FRAMES = 60        # 2 s at 30 frames per second
FPS = 30.0
SEED = 2021

# Average segment lengths in metres (scaled by each person's height factor).
SEGMENTS = dict(spine_low=0.22, spine_high=0.25, neck=0.07, head=0.14, shoulder=0.18,
                hip=0.09, hip_drop=0.06, upper_arm=0.29, forearm=0.26, hand=0.08,
                hand_tip=0.06, thumb=0.05, thigh=0.44, shank=0.42, foot=0.14)


def person_parameters(rng: np.random.Generator) -> dict:
    height = 1.0 + rng.normal(0, 0.04)
    lengths = {k: v * height * (1.0 + rng.normal(0, 0.03)) for k, v in SEGMENTS.items()}
    return dict(
        lengths=lengths,
        cadence=rng.uniform(1.6, 2.1),          # steps per second
        hip_amp=rng.uniform(0.30, 0.50),        # thigh swing (rad)
        knee_amp=rng.uniform(0.6, 1.1),         # knee flexion in swing (rad)
        knee_lag=rng.uniform(0.2, 0.7),
        arm_amp=rng.uniform(0.12, 0.55),        # arm swing (rad)
        elbow=rng.uniform(0.1, 0.5),            # resting elbow flexion (rad)
        arm_lag=rng.uniform(-0.3, 0.3),
        abduction=rng.uniform(0.04, 0.2),       # arms held away from the body (rad)
        lean=rng.uniform(-0.05, 0.2),           # forward torso lean (rad)
        roll=rng.uniform(0.02, 0.08),           # lateral trunk sway (rad)
        twist=rng.uniform(0.05, 0.2),           # pelvis/shoulder counter-rotation (rad)
        head_tilt=rng.uniform(-0.1, 0.2),
        asym=rng.normal(0, 0.08),               # left amplitudes x(1+a), right x(1-a)
    )


def _rot_y(angle):
    """Rotation about the vertical axis, for arrays of angles: [..., 3, 3]."""
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1),
                     np.stack([-s, z, c], -1)], -2)


def _sagittal(angle, outward=0.0):
    """Unit vector pointing down, swung forward by `angle` (and sideways by `outward`)."""
    return np.stack([np.sin(outward) * np.ones_like(angle), -np.cos(angle) * np.cos(outward),
                     np.sin(angle) * np.cos(outward)], -1)


def walk(person: dict, rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """One recording: [n_frames, 25, 3] Kinect v2 joints in camera coordinates (metres)."""
    L = person["lengths"]
    speed = 1.0 + rng.normal(0, 0.06)
    heading = rng.uniform(-np.pi / 4, np.pi / 4)
    noise = rng.uniform(0.015, 0.035)
    t = np.arange(n_frames) / FPS
    phase = 2 * np.pi * (person["cadence"] * speed / 2.0) * t + rng.uniform(0, 2 * np.pi)
    J = np.zeros((n_frames, 25, 3))

    pelvis_yaw = person["twist"] * np.sin(phase)
    roll = person["roll"] * np.sin(phase)
    lean = person["lean"] + 0.03 * np.sin(2 * phase)
    trunk = np.stack([np.sin(roll), np.cos(lean) * np.cos(roll), np.sin(lean)], -1)
    J[:, 1] = L["spine_low"] * trunk
    J[:, 20] = J[:, 1] + L["spine_high"] * trunk
    tilt = lean + person["head_tilt"]
    head_dir = np.stack([np.sin(roll), np.cos(tilt), np.sin(tilt)], -1)
    J[:, 2] = J[:, 20] + L["neck"] * head_dir
    J[:, 3] = J[:, 2] + L["head"] * head_dir

    sides = ((-1, 0.0, 1 + person["asym"], (12, 13, 14, 15), (4, 5, 6, 7, 21, 22)),
             (+1, np.pi, 1 - person["asym"], (16, 17, 18, 19), (8, 9, 10, 11, 23, 24)))
    stride = np.sqrt(speed)
    for sign, offset, amp, leg, arm in sides:
        ph = phase + offset
        hip_at = np.einsum("tij,j->ti", _rot_y(pelvis_yaw), [sign * L["hip"], -L["hip_drop"], 0])
        J[:, leg[0]] = hip_at
        thigh = person["hip_amp"] * amp * stride * np.sin(ph)
        knee = person["knee_amp"] * amp * (0.5 + 0.5 * np.sin(ph + person["knee_lag"])) ** 2
        J[:, leg[1]] = J[:, leg[0]] + L["thigh"] * _sagittal(thigh)
        J[:, leg[2]] = J[:, leg[1]] + L["shank"] * _sagittal(thigh - knee)
        foot = np.stack([np.zeros_like(ph), -0.3 + 0.3 * np.sin(ph), np.ones_like(ph)], -1)
        J[:, leg[3]] = J[:, leg[2]] + L["foot"] * foot / np.linalg.norm(foot, axis=-1,
                                                                         keepdims=True)

        shoulder_yaw = -pelvis_yaw
        J[:, arm[0]] = J[:, 20] + np.einsum("tij,j->ti", _rot_y(shoulder_yaw),
                                            [sign * L["shoulder"], -0.03, 0])
        swing = person["arm_amp"] * amp * np.sin(ph + np.pi + person["arm_lag"])
        bend = person["elbow"] + 0.5 * person["arm_amp"] * (1 + np.sin(ph + np.pi))
        out = sign * person["abduction"]
        J[:, arm[1]] = J[:, arm[0]] + L["upper_arm"] * _sagittal(swing, out)
        fore = _sagittal(swing + bend, out)
        J[:, arm[2]] = J[:, arm[1]] + L["forearm"] * fore
        J[:, arm[3]] = J[:, arm[2]] + L["hand"] * fore
        J[:, arm[4]] = J[:, arm[3]] + L["hand_tip"] * fore
        thumb = fore + np.array([-sign * 0.6, 0.0, 0.4])
        J[:, arm[5]] = J[:, arm[2]] + L["thumb"] * thumb / np.linalg.norm(thumb, axis=-1,
                                                                          keepdims=True)

    # Walk towards the camera along the heading, about 3 m away, then add sensor noise.
    J = np.einsum("ij,tvj->tvi", _rot_y(np.array(heading)), J)
    forward = np.array([np.sin(heading), 0.0, -np.cos(heading)])
    travel = (1.2 * speed * t)[:, None] * forward + np.array([0.0, 0.9, 4.0])
    J = J + travel[:, None, :]
    return (J + rng.normal(0, noise, J.shape)).astype(np.float32)


def windows(recording: np.ndarray, length: int, stride: int) -> np.ndarray:
    starts = range(0, recording.shape[0] - length + 1, stride)
    return np.stack([recording[s:s + length] for s in starts])


def generate_recordings(seed: int = SEED, people: int = NUM_PEOPLE):
    """{person id: [recordings]}, train recordings first. Independent of the length f. A smaller
    set has the full set's first bodies and gaits but other recordings (one generator)."""
    rng = np.random.default_rng(seed)
    people = [person_parameters(rng) for _ in range(people)]
    return {pid + 1: [walk(p, rng, RECORDING_FRAMES)
                      for _ in range(TRAIN_RECORDINGS + TEST_RECORDINGS)]
            for pid, p in enumerate(people)}


def _kinect_v1(name: str) -> bool:
    """The people are generated as Kinect v2 skeletons; a dataset in the Kinect v1 layout
    (demo20) gets them in that layout."""
    return get_dataset(name).layout == "kinect_v1"


def _stack(samples):
    seqs = np.concatenate([s for s, _ in samples])
    ids = np.concatenate([np.full(len(s), pid, dtype=np.int64) for s, pid in samples])
    return seqs, ids


def write_demo(name: str, length: int, root: str = DATASETS_ROOT, seed: int = SEED,
               people: int = NUM_PEOPLE) -> str:
    """Write Datasets/<name>/<length>/ (train, test, test/probe, test/gallery). Fewer people
    make a smaller stand-in with the same format (the end-to-end tests train on one)."""
    recs = generate_recordings(seed, people)
    to_v1 = _kinect_v1(name)
    train, test, probe, gallery = [], [], [], []
    for pid, recordings in recs.items():
        if to_v1:
            recordings = [r[:, V2_TO_V1] for r in recordings]
        train += [(windows(r, length, max(1, length // 2)), pid)
                  for r in recordings[:TRAIN_RECORDINGS]]
        held_out = [windows(r, length, length) for r in recordings[TRAIN_RECORDINGS:]]
        test += [(w, pid) for w in held_out]
        probe.append((held_out[0], pid))
        gallery.append((held_out[1], pid))
    base = os.path.join(root, name, str(length))
    train_dir, test_dir = released_folders(base, name)
    write_split(train_dir, name, length, *_stack(train), test=False)
    write_split(os.path.join(test_dir, "probe"), name, length, *_stack(probe), test=True)
    write_split(os.path.join(test_dir, "gallery"), name, length, *_stack(gallery), test=True)
    # The test folder itself is written last: its presence marks a complete dataset.
    write_split(test_dir, name, length, *_stack(test), test=True)
    return base


def ensure_demo(name: str, length: int, root: str = DATASETS_ROOT, verbose: bool = True) -> None:
    if length > RECORDING_FRAMES:
        raise UserError(f"the {name} dataset has recordings of {RECORDING_FRAMES} frames; "
                        f"use --length {RECORDING_FRAMES} or less")
    marker = os.path.join(released_folders(os.path.join(root, name, str(length)), name)[1],
                          f"t_frame_id_{name}_{length}.npy")
    if not os.path.isfile(marker):
        if verbose:
            print(f"Generating the built-in '{name}' dataset (f={length}) into "
                  f"{os.path.join(root, name, str(length))} ...", flush=True)
        write_demo(name, length, root)


# ----------------------------------------------------------------------------------------
# Whole recordings, as files: for identify.py (utils/orchestration/identify.py) and its tests

UNSEEN_SEED = 7331   # another seed: people whose bodies and gaits no demo run has seen


def unseen_recordings(people: int, recordings: int, seed: int = UNSEEN_SEED):
    """{person number: [recordings]} of `people` new people, `recordings` walks each
    ([RECORDING_FRAMES, 25, 3], Kinect v2), drawn exactly as the demo's own people are but
    from another seed, so that no run trained on the demo has seen them."""
    if seed == SEED:
        raise UserError(f"seed {SEED} makes the demo's own people; pick another seed")
    rng = np.random.default_rng(seed)
    drawn = [person_parameters(rng) for _ in range(people)]
    return {pid + 1: [walk(p, rng, RECORDING_FRAMES) for _ in range(recordings)]
            for pid, p in enumerate(drawn)}


def write_recordings(out: str, by_person: dict, name: str = "demo", prefix: str = "person",
                     which=None) -> list:
    """Write <out>/<prefix><N>/<k>.npy for {person: [recordings]} ([frames, joints, 3] in
    the layout of dataset `name`: Kinect v2 for demo, v1 for demo20), recordings numbered
    from 1 in order; `which` picks recordings by position (default all). Returns the paths."""
    from utils.foundation.io import atomic_save_npy
    paths = []
    for pid, recordings in sorted(by_person.items()):
        for k, rec in enumerate(recordings):
            if which is not None and k not in which:
                continue
            path = os.path.join(out, f"{prefix}{pid}", f"{k + 1}.npy")
            atomic_save_npy(path, rec[:, V2_TO_V1] if _kinect_v1(name) else rec)
            paths.append(path)
    return paths


def main(argv=None) -> int:
    """python3 -m utils.data.demo OUT [--unseen N] [--dataset demo20]: whole demo recordings as
    files, to try identify.py: OUT/trained/ (the demo's people: 1-4 their training walks,
    5-6 their held-out test walks) and with --unseen N, OUT/unseen/ (N new people, 3 walks)."""
    import argparse
    p = argparse.ArgumentParser(prog="python3 -m utils.data.demo", description=main.__doc__)
    p.add_argument("out")
    p.add_argument("--dataset", default="demo", choices=("demo", "demo20"))
    p.add_argument("--unseen", type=int, default=0, help="new people to write (default 0)")
    args = p.parse_args(argv)

    def work():
        n = len(write_recordings(os.path.join(args.out, "trained"), generate_recordings(),
                                 args.dataset))
        if args.unseen:
            n += len(write_recordings(os.path.join(args.out, "unseen"),
                                      unseen_recordings(args.unseen, 3), args.dataset, "new"))
        print(f"{n} recordings written under {args.out}")
    return guarded(work)


if __name__ == "__main__":
    import sys
    sys.exit(main())
