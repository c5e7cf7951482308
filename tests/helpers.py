"""Helpers shared by several test modules: paths, the scripts run as a user would, small
settings, synthetic data writers and hand-written expectations. Test modules import from
here, never from each other."""
import os
import re
import subprocess
import sys

import numpy as np

from utils.data.reid_data import write_split
from utils.foundation.skeleton import KGBD_JOINT_NAMES
from utils.orchestration.config import RunConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--length", "4", "--batch_size", "128", "--pre_epochs", "1", "--patience", "2",
        "--max_reid_epochs", "4", "--xla", "0", "--no_progress"]
# The tiny classification run that identification tests share (tests/conftest.py).
TINY_RUN = ["--length", "4", "--batch_size", "128", "--pre_epochs", "1", "--patience", "3",
            "--max_reid_epochs", "8", "--xla", "0", "--no_progress", "--selection", "val"]


def locate(dataset, length, split=None, view=None, probe_type=None, root="Datasets",
           prepared_as=None):
    """Where one dataset variant's files are (the dataset found by name and selected, then
    its own locate)."""
    from utils.data.datasets import get_dataset
    return get_dataset(dataset, root).select(split=split, view=view, probe_type=probe_type) \
        .locate(length, root, prepared_as)


def read_dataset(dataset, length, root="Datasets", split=None):
    """A registered dataset's training and test splits, read with its own layout."""
    from utils.data.datasets import get_dataset
    from utils.data.reid_data import load_reid_data
    from utils.foundation.skeleton import get_layout
    return load_reid_data(locate(dataset, length, split, root=root),
                          get_layout(get_dataset(dataset, root).layout))


SMALL_DEMO_PEOPLE = 6


def small_demo(root, length=4, people=SMALL_DEMO_PEOPLE):
    """root/Datasets/demo/<length> written with fewer people than the built-in demo (same
    format, a third of the data): the end-to-end tests whose point is not accuracy (resume,
    faults, scripts) train on it in a third of the time. A run started in root (or with
    --data_dir root/Datasets) finds it and generates nothing."""
    from utils.data.demo import write_demo
    write_demo("demo", length, os.path.join(str(root), "Datasets"), people=people)
    return root


def copy_of_run(run_dir, root):
    """A copy of a finished run under root/RN/... (tests that write into a run, such as a
    calibration or a gallery, work on their own copy of a shared one)."""
    import shutil
    target = os.path.join(str(root), os.path.relpath(str(run_dir), os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.dirname(str(run_dir)))))))
    shutil.copytree(str(run_dir), target)
    return type(run_dir)(target)


def source_files(*folders):
    """The project's Python files under folders ("." for all), as paths from the root,
    sub-packages included; hidden folders (.git, the video environment) are not entered."""
    found = []
    for folder in folders:
        for here, dirs, names in os.walk(os.path.join(ROOT, folder)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            found += [os.path.relpath(os.path.join(here, n), ROOT) for n in sorted(names)
                      if n.endswith(".py")]
    return found


def run(script, args, cwd):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, script)] + args, cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=900)
    return proc


def rank1(text):
    return float(re.search(r"Rank-1 ([0-9.]+) ", text.split("=" * 72)[-1]).group(1))


def small_opts(**kw):
    opts = dict(dataset="demo", split=None, length=4, view=None, probe_type=None,
                protocol="classification", progress=False, gpu=-1, fusion_lambda=1.0, P=8,
                sample_num=1, pre_train=True, save_flag=False, pre_epochs=0, patience=3,
                loss="l1", n_hood=1, seed=0, selection="val", val_fraction=0.2,
                batch_size=128, pre_lr=None, reid_lr=None, max_reid_epochs=4,
                zero_frame=True, optimizers="four", drop_last_test=True, cache=True, xla=False)
    opts.update(kw)
    return RunConfig(**opts)


def random_sequences(rng, n_ids=3, per_id=4, f=4, v=20):
    seqs = rng.normal(size=(n_ids * per_id, f, v, 3)).astype(np.float32)
    ids = np.repeat(np.arange(1, n_ids + 1) * 10, per_id)
    return seqs, ids


def write_ias(root, f=4):
    rng = np.random.default_rng(0)
    base = os.path.join(root, "IAS", str(f))
    train = random_sequences(rng, f=f)
    write_split(os.path.join(base, "IAS_train_npy_data"), "IAS", f, *train, test=False)
    for split in ("A", "B"):
        write_split(os.path.join(base, "IAS_test_npy_data"), f"IAS-{split}", f,
                    *random_sequences(rng, per_id=2, f=f), test=True)
    return train


KGBD_ORDER = list(KGBD_JOINT_NAMES)      # the order of the raw files: Head first


def kgbd_text(frames: np.ndarray) -> str:
    """[F, 20, 3] in raw-file joint order -> the KGBD text format."""
    return "".join(f"{name};{x};{y};{z}\n" for frame in frames
                   for name, (x, y, z) in zip(KGBD_ORDER, frame))


def raw_frames(pid: int, walk: int, count: int) -> np.ndarray:
    """Recognisable values in metres: x = person, y = walk, z = frame / 10, plus the joint's
    raw index / 100 on x."""
    f = np.zeros((count, 20, 3), np.float32)
    f[..., 0] = pid + np.arange(20) / 100.0
    f[..., 1] = walk
    f[..., 2] = np.arange(count)[:, None] / 10.0
    return f


def write_kgbd_tree(root, walks=None):
    """Persons 1..4 with 5, 5, 3 and 4 walks of 60-80 frames; person 4's walk 4 has only
    25 frames (shorter than 20 + f for f = 6)."""
    walks = walks or {1: 5, 2: 5, 3: 3, 4: 4}
    for pid, n in walks.items():
        folder = root / "Data" / f"Person{pid:03d}"
        folder.mkdir(parents=True)
        for w in range(1, n + 1):
            count = 25 if (pid, w) == (4, 4) else 60 + 5 * w
            (folder / f"{w}.txt").write_text(kgbd_text(raw_frames(pid, w, count)))
    return root


KINECT_18 = {   # a Kinect v2 subset many gait labs record: no hands, no spine shoulder
    "name": "kinect_v2_18",
    "joints": ["spine base", "spine mid", "neck", "head", "left shoulder", "left elbow",
               "left wrist", "right shoulder", "right elbow", "right wrist", "left hip",
               "left knee", "left ankle", "left foot", "right hip", "right knee", "right ankle",
               "right foot"],
    "bones": [["spine base", "spine mid"], ["spine mid", "neck"], ["neck", "head"],
              ["neck", "left shoulder"], ["left shoulder", "left elbow"], ["left elbow", "left wrist"],
              ["neck", "right shoulder"], ["right shoulder", "right elbow"],
              ["right elbow", "right wrist"], ["spine base", "left hip"], ["left hip", "left knee"],
              ["left knee", "left ankle"], ["left ankle", "left foot"], ["spine base", "right hip"],
              ["right hip", "right knee"], ["right knee", "right ankle"], ["right ankle", "right foot"]],
    "parts": {"left thigh": ["left hip", "left knee"], "left shank": ["left ankle", "left foot"],
              "right thigh": ["right hip", "right knee"], "right shank": ["right ankle", "right foot"],
              "torso": ["spine base", "spine mid"], "head": ["neck", "head"],
              "left upper arm": ["left shoulder", "left elbow"], "left forearm": ["left wrist"],
              "right upper arm": ["right shoulder", "right elbow"], "right forearm": ["right wrist"]},
    "centre": "spine base",
}


# The parity cases: runs of the authors' code recorded in tests/fixtures/parity
CASES = {"ks20": dict(dataset="KS20", test_tag="KS20", rank1=22.5),
         "ias": dict(dataset="IAS", test_tag="IAS-A", split="A", rank1=25.0)}


def expected_encoder_parameters(joints: int, bones: int, lstm: int, heads: int = 8) -> int:
    """The encoder's size written out from the method (docs/method.md §3-4), independently of the code."""
    nodes = dict(joint=joints, part=10, body=5, hyper=joints + bones)
    gat = 3 * 8 + 8 + heads * (8 * 8 + 8 + 8 + 2 + 8)        # input linear, P heads
    fusion = 10 * 8 * 8        # J<-J,P,B; P<-P,B; B<-B; I<-I,J,P,B
    lstm_params = sum((n * 8 + lstm) * 4 * lstm + 4 * lstm + 2 * lstm * 4 * lstm + 4 * lstm
                      for n in nodes.values())
    targets = dict(joint=("joint", "part", "body"), part=("part", "body"), body=("body",),
                   hyper=("hyper", "joint", "part", "body"))
    heads_params = sum(lstm * lstm + lstm + (lstm + 1) * nodes[t] * 3
                       for s in nodes for t in targets[s])
    return 4 * gat + fusion + lstm_params + heads_params
