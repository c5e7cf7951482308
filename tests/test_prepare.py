"""tools/prepare_kgbd.py on small synthetic raw trees written here (no real data in CI)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from utils.data.prepare_dataset import cut_windows, prepare, split_recordings, summary_line
from utils.data.raw_skeletons import RawDataError, parse_kgbd_text
from utils.data.reid_data import load_reid_data, read_split
from utils.foundation.errors import UserError
from utils.foundation.skeleton import KGBD_JOINT_NAMES, KINECT_V1, KINECT_V2
from tests.helpers import (KGBD_ORDER, ROOT, kgbd_text, locate, raw_frames, read_dataset,
                           write_kgbd_tree)

def test_joints_are_mapped_by_name():
    frames = raw_frames(7, 1, 3)
    parsed = parse_kgbd_text(kgbd_text(frames))
    assert parsed.shape == (3, 20, 3)
    for raw_index, raw_name in enumerate(KGBD_ORDER):
        ours = KINECT_V1.joint_names.index(KGBD_JOINT_NAMES[raw_name])
        np.testing.assert_allclose(parsed[:, ours, 0], 7 + raw_index / 100.0, rtol=1e-6)
    # spot checks by name: the hip centre comes first in our layout, the head is joint 3
    assert KINECT_V1.joint_names[0] == "hip centre" and KGBD_ORDER.index("Hip-centro") == 11
    np.testing.assert_allclose(parsed[0, 0, 0], 7.11, rtol=1e-6)
    np.testing.assert_allclose(parsed[0, 3, 0], 7.00, rtol=1e-6)


@pytest.mark.parametrize("mutate, message", [
    (lambda lines: lines[:5] + ["Head;1;2"] + lines[6:], "t.txt:6: expected 'JointName;x;y;z'"),
    (lambda lines: lines[:5] + ["Nose;1;2;3"] + lines[6:], "t.txt:6: unknown joint name 'Nose'"),
    (lambda lines: lines[:5] + ["Elbow-Left;a;2;3"] + lines[6:], "t.txt:6: coordinates are not numbers"),
    (lambda lines: lines[:23] + lines[24:], "t.txt:21: the frame starting here lacks Shoulder-Left"),
    (lambda lines: lines[1:], "t.txt:1: the first frame does not start with Head"),
    (lambda lines: [], "t.txt: the file holds no frames"),
])
def test_malformed_files_name_file_and_line(mutate, message):
    lines = kgbd_text(raw_frames(1, 1, 3)).splitlines()
    with pytest.raises(RawDataError) as err:
        parse_kgbd_text("\n".join(mutate(lines)), "t.txt")
    assert message in str(err.value)


def test_trimming_and_windows():
    frames = np.arange(57)[:, None, None] * np.ones((1, 2, 3))
    w = cut_windows(frames, 6)
    assert w.shape == (6, 6, 2, 3)                      # 57 - 20 = 37 frames -> 6 windows
    assert w[0, 0, 0, 0] == 10 and w[-1, -1, 0, 0] == 45  # first 10 dropped, remainder dropped
    assert cut_windows(frames[:25], 6).shape[0] == 0    # shorter than 20 + f: no window


def test_splits_are_disjoint_complete_and_seeded():
    names = {1: ["1", "2", "3", "4", "5"], 2: ["1", "2", "3"], 3: ["1", "2", "3", "4"], 4: ["1"]}
    cls = split_recordings(names, "classification", np.random.default_rng(0))
    assert set(cls) == {1, 2, 3}                        # one walk only: left out
    assert all(list(r.values()).count("test") == 1 and len(r) == len(names[p]) for p, r in cls.items())
    ret = split_recordings(names, "retrieval", np.random.default_rng(0))
    assert sorted(ret[1].values()) == ["gallery", "gallery", "probe", "train", "train"]
    assert sorted(ret[2].values()) == ["gallery", "probe", "train"]       # three walks: one each
    assert sorted(ret[3].values()) == ["gallery", "gallery", "probe", "train"]
    assert split_recordings(names, "retrieval", np.random.default_rng(0)) == ret
    assert any(split_recordings(names, "classification", np.random.default_rng(s)) != cls
               for s in range(1, 5))


def test_prepare_writes_both_layouts_that_the_loader_reads(tmp_path):
    raw = write_kgbd_tree(tmp_path / "raw")
    out = tmp_path / "Datasets"
    result = prepare(str(raw), str(out), lengths=(6,), seed=3, log=lambda *_: None)
    man = json.loads((out / "KGBD" / "6" / "manifest.json").read_text())
    assert man == json.loads(json.dumps(result.manifests[6]))
    assert man["seed"] == 3 and man["trim_frames"] == 10
    cls = man["protocols"]["classification"]
    assert set(cls["persons"]) == {"1", "2", "3", "4"}
    p4 = cls["persons"]["4"]["recordings"]
    assert p4["4.txt"]["windows"] == 0 and p4["4.txt"]["frames"] == 25
    assert p4["1.txt"] == dict(role=p4["1.txt"]["role"], frames=65, frames_kept=42, windows=7,
                               frames_dropped=0, lost_joint_frames=0)
    assert (man["frames_dropped"], man["lost_joint_frames"], man["bad_frames"]) == (0, 0, "stop")

    # person 4's short walk has no window: if it is their test walk, they are left out
    assert ("left_out" in cls["persons"]["4"]) == (p4["4.txt"]["role"] == "test")
    kept = [p for p, e in cls["persons"].items() if "left_out" not in e]
    data = read_dataset("KGBD", 6, str(out))
    assert data.num_classes == len(kept) >= 3
    assert len(data.train_labels) == cls["windows"]["train"]
    assert len(data.test_labels) == cls["windows"]["test"]
    # a window is 6 consecutive kept frames of one walk of one person; frames are centred,
    # so read the raw z (frame number) and y (walk) through the un-centred hip centre offset
    train = read_split(str(out / "KGBD" / "6" / "KGBD_train_npy_data"), "KGBD", 6, 20, False, "KGBD")
    raw_x = np.load(out / "KGBD" / "6" / "KGBD_train_npy_data" / "source_z_KGBD_6.npy").reshape(-1, 6, 20)
    assert np.allclose(np.diff(raw_x[:, :, 0], axis=1), 0.1) and raw_x[:, 0, 0].min() >= 0.999
    np.testing.assert_allclose(train.sequences[..., 0, :], 0)            # centred on joint 0
    # walks are disjoint between train and test, per person
    for pid, entry in cls["persons"].items():
        roles = [r["role"] for r in entry["recordings"].values()]
        assert roles.count("test") == 1
    ret = man["protocols"]["retrieval"]
    rloc = locate("KGBD", 6, root=str(out), prepared_as="retrieval")
    assert rloc.run_tag == "KGBD-retrieval" and rloc.train_dir.endswith(os.path.join("retrieval", "KGBD_train_npy_data"))
    probe = read_split(os.path.join(rloc.test_dir, "probe"), "KGBD", 6, 20, True, "KGBD")
    gallery = read_split(os.path.join(rloc.test_dir, "gallery"), "KGBD", 6, 20, True, "KGBD")
    assert len(probe.person_ids) == ret["windows"]["probe"]
    assert len(gallery.person_ids) == ret["windows"]["gallery"]
    assert set(probe.person_ids) == {int(p) for p, e in ret["persons"].items() if "left_out" not in e}

    # same seed, same files
    again = prepare(str(raw), str(tmp_path / "again"), lengths=(6,), seed=3, log=lambda *_: None)
    assert again.manifests[6]["protocols"] == result.manifests[6]["protocols"]
    for name in ("source_x_KGBD_6.npy", "frame_id_KGBD_6.npy"):
        np.testing.assert_array_equal(
            np.load(out / "KGBD" / "6" / "KGBD_train_npy_data" / name),
            np.load(tmp_path / "again" / "KGBD" / "6" / "KGBD_train_npy_data" / name))


def test_a_walk_stored_twice_is_named_and_recorded(tmp_path):
    """KGBD holds one walk twice (Person064's 4.txt and 5.txt are the same file); a split
    can put one copy in training and the other in test. The preparation says so."""
    import shutil
    raw = write_kgbd_tree(tmp_path / "raw")
    shutil.copy(raw / "Data" / "Person001" / "2.txt", raw / "Data" / "Person001" / "6.txt")
    lines = []
    result = prepare(str(raw), str(tmp_path / "Datasets"), lengths=(6,), log=lines.append)
    assert result.manifests[6]["identical_recordings"] == [["Person001/2.txt", "Person001/6.txt"]]
    (line,) = [l for l in lines if l.startswith("identical recordings: ")]
    assert line.startswith("identical recordings: Person001/2.txt = Person001/6.txt (the same walk")
    clean = prepare(str(write_kgbd_tree(tmp_path / "raw2")), str(tmp_path / "D2"), lengths=(6,),
                    log=lambda *_: None)
    assert clean.manifests[6]["identical_recordings"] == []


def test_bad_file_stops_or_is_skipped_and_nothing_half_written(tmp_path):
    raw = write_kgbd_tree(tmp_path / "raw")
    bad = raw / "Data" / "Person002" / "2.txt"
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join(lines[:30] + ["Knee-Left;0.1;;0.3"] + lines[31:]))
    out = tmp_path / "Datasets"
    with pytest.raises(RawDataError, match=r"Person002/2.txt:31: coordinates are not numbers"):
        prepare(str(raw), str(out), lengths=(6,), log=lambda *_: None)
    assert not os.path.exists(out / "KGBD") or os.listdir(out / "KGBD") == []   # nothing left behind
    result = prepare(str(raw), str(out), lengths=(6,), skip_bad=True, log=lambda *_: None)
    assert len(result.skipped_files) == 1 and "2.txt:31" in result.skipped_files[0]
    assert "2.txt" not in result.manifests[6]["protocols"]["classification"]["persons"]["2"]["recordings"]


def test_generic_folders_in_a_named_layout(tmp_path):
    rng = np.random.default_rng(0)
    for person in ("alice", "bob"):
        for rec in range(3):
            frames = rng.normal(size=(50, 25, 3)).astype(np.float32)
            folder = tmp_path / "raw" / person
            folder.mkdir(parents=True, exist_ok=True)
            if rec == 0:   # one row per frame, 75 numbers
                np.savetxt(folder / f"r{rec}.csv", frames.reshape(50, 75), delimiter=",")
            else:
                np.save(folder / f"r{rec}.npy", frames)
    out = tmp_path / "Datasets"
    result = prepare(str(tmp_path / "raw"), str(out), name="KS20", fmt="folders",
                     layout_name="kinect_v2", lengths=(4,), log=lambda *_: None)
    persons = result.manifests[4]["protocols"]["classification"]["persons"]
    assert {p["folder"] for p in persons.values()} == {"alice", "bob"}   # ids 1, 2
    data = read_dataset("KS20", 4, str(out))
    assert data.train.sequences.shape[2] == KINECT_V2.num_joints
    with pytest.raises(UserError, match="dataset KGBD uses the kinect_v1 layout .20 joints., the "
                                        "kinect_v2 layout has 25; pick another --name"):
        prepare(str(tmp_path / "raw"), str(out), fmt="folders", layout_name="kinect_v2",
                lengths=(4,), log=lambda *_: None)
    (tmp_path / "raw" / "bob" / "r1.npy").write_bytes(b"junk")
    with pytest.raises(RawDataError, match="r1.npy: cannot read it"):
        prepare(str(tmp_path / "raw"), str(out), name="KS20", fmt="folders",
                layout_name="kinect_v2", lengths=(4,), log=lambda *_: None)


@pytest.mark.parametrize("args, message", [
    (["nowhere"], "raw data folder nowhere not found"),
    (["{raw}", "--lengths", "6,x"], "--lengths takes comma-separated integers"),
    (["{raw}", "--format", "folders", "--layout", "kinect_v9"], "unknown --layout 'kinect_v9'"),
])
def test_script_errors_are_one_line(tmp_path, args, message):
    raw = write_kgbd_tree(tmp_path / "raw")
    args = [a.replace("{raw}", str(raw)) for a in args]
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "prepare_kgbd.py")] + args,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert message in proc.stderr.strip().splitlines()[-1]


def test_script_end_to_end(tmp_path):
    raw = write_kgbd_tree(tmp_path / "raw")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "prepare_kgbd.py"), str(raw),
                           "--lengths", "4,6", "--no_progress"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "f=6: classification:" in proc.stdout
    # the lengths, and the lock a preparation holds while it writes (a hidden file)
    assert sorted(os.listdir(tmp_path / "Datasets" / "KGBD")) == [".lock", "4", "6"]


def test_file_joint_order_is_the_sdk_order_permuted():
    """--joint_order file keeps the files' order (Head first): the same coordinates as the
    default SDK order, up to the joint permutation given by the names."""
    frames = raw_frames(3, 2, 5)
    sdk = parse_kgbd_text(kgbd_text(frames))
    kept = parse_kgbd_text(kgbd_text(frames), joint_order="file")
    np.testing.assert_array_equal(kept, frames)            # exactly the files' rows
    perm = [KINECT_V1.joint_names.index(KGBD_JOINT_NAMES[n]) for n in KGBD_ORDER]
    np.testing.assert_array_equal(kept, sdk[:, perm])
    assert KGBD_ORDER[0] == "Head"    # loaded data is centred on joint 0: the head, here


def test_prepare_with_file_order_and_stride_records_both_and_centres_on_the_head(tmp_path):
    raw = write_kgbd_tree(tmp_path / "raw")
    sdk = prepare(str(raw), str(tmp_path / "sdk"), lengths=(6,), seed=3, log=lambda *_: None)
    fil = prepare(str(raw), str(tmp_path / "file"), lengths=(6,), seed=3, log=lambda *_: None,
                  joint_order="file", train_stride=2)
    man = fil.manifests[6]
    assert (man["joint_order"], man["train_stride"], man["window_stride"]) == ("file", 2, 6)
    assert (sdk.manifests[6]["joint_order"], sdk.manifests[6]["train_stride"]) == ("sdk", 6)
    cls, base = man["protocols"]["classification"], sdk.manifests[6]["protocols"]["classification"]
    # the same walks play the same roles; test windows are unchanged, training windows
    # start every 2 frames: F frames - 20 trimmed -> (F - 20 - 6) // 2 + 1 windows
    assert cls["windows"]["test"] == base["windows"]["test"]
    assert cls["windows"]["train"] > 2.5 * base["windows"]["train"]
    trained = [r for e in cls["persons"].values() for r in e["recordings"].values()
               if r["role"] == "train" and r["frames"] >= 26]
    assert trained
    for rec in trained:
        count = (rec["frames"] - 20 - 6) // 2 + 1
        assert rec["windows"] == count and rec["frames_kept"] == (count - 1) * 2 + 6
    raw_z = np.load(tmp_path / "file" / "KGBD" / "6" / "KGBD_train_npy_data" / "source_z_KGBD_6.npy")
    starts = raw_z.reshape(-1, 6, 20)[:, 0, 0]
    assert set(np.round(10 * np.diff(np.sort(starts[:20])))) <= {0.0, 2.0}
    data = read_dataset("KGBD", 6, str(tmp_path / "file"))
    np.testing.assert_allclose(data.train.sequences[..., 0, :], 0)     # centred on the head


def test_stride_windows_counts_and_contents():
    frames = np.arange(57)[:, None, None] * np.ones((1, 2, 3))
    w = cut_windows(frames, 6, stride=1)
    assert w.shape == (32, 6, 2, 3)                      # 37 kept frames -> 37 - 6 + 1 windows
    assert [int(x[0, 0, 0]) for x in w[:3]] == [10, 11, 12] and w[-1, -1, 0, 0] == 46
    np.testing.assert_array_equal(cut_windows(frames, 6, stride=6), cut_windows(frames, 6))
    assert cut_windows(frames, 6, stride=4).shape[0] == (37 - 6) // 4 + 1


@pytest.mark.slow
def test_own_dataset_with_a_layout_file_runs_end_to_end(tmp_path):
    """An 18-joint layout file, recordings in a tree of one's own, a dataset name no code
    knows: prepared, trained (a few steps) and evaluated, without --layout at evaluation."""
    from tests.helpers import KINECT_18
    layout_path = tmp_path / "k18.json"
    layout_path.write_text(json.dumps(KINECT_18))
    rng = np.random.default_rng(1)
    for p in range(4):
        body = rng.normal(size=(18, 3))
        for r in range(3):
            walk = body + 0.01 * rng.normal(size=(60, 18, 3))
            folder = tmp_path / "raw" / f"walker{p}"
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / f"w{r}.npy", walk.astype(np.float32))
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")

    def script(*args):
        proc = subprocess.run([sys.executable, os.path.join(ROOT, *args[0])] + list(args[1:]),
                              cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    script(("tools", "prepare_kgbd.py"), str(tmp_path / "raw"), "--format", "folders",
           "--layout", str(layout_path), "--name", "MYSET", "--lengths", "4", "--no_progress")
    manifest = json.loads((tmp_path / "Datasets" / "MYSET" / "4" / "manifest.json").read_text())
    assert manifest["layout"]["name"] == "kinect_v2_18" and len(manifest["layout"]["joints"]) == 18
    out = script(("SM-SGE.py",), "--dataset", "MYSET", "--length", "4", "--batch_size", "8",
                 "--pre_epochs", "1", "--max_reid_epochs", "2", "--xla", "0", "--no_progress")
    assert "18 joints (kinect_v2_18 layout)" in out and "Rank-1" in out
    (run,) = (tmp_path / "RN" / "MYSET" / "4").iterdir()
    config = json.loads((run / "config.json").read_text())
    assert config["layout"]["joints"] == KINECT_18["joints"]          # recorded by content
    layout_path.unlink()                                                # not needed any more
    ev = script(("evaluate.py",), "--dataset", "MYSET", "--length", "4", "--model_dir", str(run),
                "--no_progress")
    assert "Confusion matrix" in ev
    rank1 = lambda text: text.split("=" * 72)[-1].split("Rank-1 ")[1].split()[0]   # noqa: E731
    assert rank1(ev) == rank1(out)


def glitched_tree(root, fmt):
    """Persons 1..3, 3 walks of 70 frames each. Person 1's walk 1 has a NaN frame (frame 30)
    and walk 2 a 1e30 value (frame 40), both inside kept windows; walk 3 a lost joint at
    frame 35 (exactly 0, 0, 0)."""
    for pid in (1, 2, 3):
        for w in (1, 2, 3):
            frames = raw_frames(pid, w, 70).astype(np.float64)
            if pid == 1 and w == 1:
                frames[30, 5] = np.nan
            if pid == 1 and w == 2:
                frames[40, 7, 1] = 1e30
            if pid == 1 and w == 3:
                frames[35, 2] = 0.0
            if fmt == "kgbd":
                folder = root / "Data" / f"Person{pid:03d}"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{w}.txt").write_text(kgbd_text(frames))
            else:
                folder = root / f"p{pid}"
                folder.mkdir(parents=True, exist_ok=True)
                np.save(folder / f"{w}.npy", frames)
    return root


@pytest.mark.parametrize("fmt", ["kgbd", "folders"])
def test_glitched_frames_stop_by_default_naming_file_frame_and_joint(tmp_path, fmt):
    raw = glitched_tree(tmp_path / "raw", fmt)
    with pytest.raises(RawDataError) as err:
        prepare(str(raw), str(tmp_path / "out"), fmt=fmt, lengths=(6,), log=lambda *_: None)
    message = str(err.value)
    # the raw file's 6th joint (Elbow-Left) is Kinect v1's left elbow; .npy rows are in that order
    joint = KGBD_JOINT_NAMES[KGBD_ORDER[5]] if fmt == "kgbd" else KINECT_V1.joint_names[5]
    assert joint == "left elbow"
    where = "Person001/1.txt: frame 30 (line 601)" if fmt == "kgbd" else "p1/1.npy: frame 30 (row 30)"
    assert where in message and "joint 'left elbow': nan, nan, nan" in message
    assert "--bad_frames drop" in message
    assert not (tmp_path / "out" / "KGBD" / "6").exists()              # nothing written


@pytest.mark.parametrize("fmt", ["kgbd", "folders"])
def test_dropped_frames_cut_the_recording_and_are_counted(tmp_path, fmt):
    raw = glitched_tree(tmp_path / "raw", fmt)
    result = prepare(str(raw), str(tmp_path / "out"), fmt=fmt, lengths=(6,), seed=0,
                     log=lambda *_: None, bad_frames="drop")
    man = result.manifests[6]
    assert (man["frames_dropped"], man["lost_joint_frames"], man["bad_frames"]) == (2, 1, "drop")
    recs = man["protocols"]["classification"]["persons"]["1"]["recordings"]
    names = ("1.txt", "2.txt", "3.txt") if fmt == "kgbd" else ("1.npy", "2.npy", "3.npy")
    assert [recs[n]["frames_dropped"] for n in names] == [1, 1, 0]
    assert [recs[n]["lost_joint_frames"] for n in names] == [0, 0, 1]
    # 70 frames - 20 trimmed = 50 kept (frames 10..59); a dropped frame at 30 leaves runs of
    # 20 and 29 frames: 3 + 4 windows of 6 (8 without the gap), none spanning frame 30
    assert recs[names[0]]["windows"] == 7
    x = np.load(tmp_path / "out" / "KGBD" / "6" / "KGBD_train_npy_data" / "source_z_KGBD_6.npy")
    test = np.load(tmp_path / "out" / "KGBD" / "6" / "KGBD_test_npy_data" / "t_source_z_KGBD_6.npy")
    frames = np.concatenate([x, test]).reshape(-1, 6, 20)[..., 0]
    assert np.all(np.isfinite(frames)) and np.abs(frames).max() < 20
    assert "frames with non-finite or implausible values dropped" in summary_line(man)
    # --skip_bad keeps its meaning: a glitched recording is skipped whole, and counted
    skipped = prepare(str(raw), str(tmp_path / "skip"), fmt=fmt, lengths=(6,), seed=0,
                      log=lambda *_: None, skip_bad=True)
    assert len(skipped.skipped_files) == 2 and skipped.manifests[6]["lost_joint_frames"] == 1


def test_max_coordinate_is_settable_and_checked_by_the_script(tmp_path):
    raw = write_kgbd_tree(tmp_path / "raw")     # values up to 8 m
    with pytest.raises(RawDataError, match="beyond 5 m"):
        prepare(str(raw), str(tmp_path / "o"), lengths=(6,), log=lambda *_: None, max_coordinate=5)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "prepare_kgbd.py"), str(raw),
                           "--max_coordinate", "-3"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "--max_coordinate must be a positive number" in proc.stderr


def _window_keys(folder, test: bool):
    """(person, walk, first frame) of every window written to a split folder, from the raw
    values of write_kgbd_tree (x = person + joint/100, y = walk, z = frame / 10)."""
    prefix = "t_" if test else ""
    axes = [np.load(os.path.join(folder, f"{prefix}source_{a}_KGBD_6.npy")).reshape(-1, 6, 20)
            for a in "xyz"]
    return {(int(round(axes[0][i, 0, 0])), int(round(axes[1][i, 0, 0])),
             int(round(10 * axes[2][i, 0, 0]))) for i in range(len(axes[0]))}


def test_window_split_shares_walks_not_frames_and_changes_nothing_else(tmp_path):
    """--split_unit window: every person's test windows come from all their walks (the
    same number per person as the walk split gives), no window is in both sets, together
    they are the walk split's windows, and the retrieval protocol is byte-identical."""
    raw = write_kgbd_tree(tmp_path / "raw")
    walk = prepare(str(raw), str(tmp_path / "walk"), lengths=(6,), seed=3, log=lambda *_: None)
    win = prepare(str(raw), str(tmp_path / "win"), lengths=(6,), seed=3, log=lambda *_: None,
                  split_unit="window")
    assert (walk.manifests[6]["split_unit"], win.manifests[6]["split_unit"]) == ("walk", "window")
    cls_walk = walk.manifests[6]["protocols"]["classification"]
    cls_win = win.manifests[6]["protocols"]["classification"]
    assert cls_win["windows"] == cls_walk["windows"]
    for pid, entry in cls_win["persons"].items():
        assert entry["windows"] == cls_walk["persons"][pid]["windows"]
    base = {s: os.path.join(tmp_path / s, "KGBD", "6") for s in ("walk", "win")}
    train = {s: _window_keys(os.path.join(base[s], "KGBD_train_npy_data"), False) for s in base}
    test = {s: _window_keys(os.path.join(base[s], "KGBD_test_npy_data"), True) for s in base}
    assert not train["win"] & test["win"]
    assert train["win"] | test["win"] == train["walk"] | test["walk"]
    # walk split: each person's test windows come from one walk; window split: from several,
    # and those walks also feed training
    walks_in = lambda keys, pid: {w for p, w, _ in keys if p == pid}   # noqa: E731
    for pid in {p for p, _, _ in test["win"]}:
        assert len(walks_in(test["walk"], pid)) == 1
        assert len(walks_in(test["win"], pid)) > 1
        assert walks_in(test["win"], pid) & walks_in(train["win"], pid)
    for role in ("gallery", "probe"):
        for name in sorted(os.listdir(os.path.join(base["walk"], "retrieval", "KGBD_test_npy_data", role))):
            a, b = (np.load(os.path.join(base[s], "retrieval", "KGBD_test_npy_data", role, name),
                            allow_pickle=True) for s in ("walk", "win"))
            np.testing.assert_array_equal(a, b)
    data = read_dataset("KGBD", 6, str(tmp_path / "win"))
    assert len(data.test_labels) == cls_walk["windows"]["test"]


def test_window_split_refuses_overlapping_training_windows(tmp_path):
    raw = write_kgbd_tree(tmp_path / "raw")
    with pytest.raises(UserError, match="drop --train_stride"):
        prepare(str(raw), str(tmp_path / "x"), lengths=(6,), log=lambda *_: None,
                split_unit="window", train_stride=1)
