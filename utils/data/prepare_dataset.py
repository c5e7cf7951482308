"""Recordings -> the released pre-processed layout, both protocols (tools/prepare_kgbd.py).

Processing, as the authors' later pre-processing (TranSG) describes it: drop the first and
last `trim` frames of every recording, then cut non-overlapping windows of f frames
(stride f; the remainder is dropped); training windows may start every S frames instead
(--train_stride S; the authors' IAS/BIWI pre-processing uses S = 1). Dropped frames cut a
recording: no window spans them. Splits are by recording, never by window, so that no walk
feeds both training and testing:
- classification (the SM-SGE paper's protocol, our reading of SGELA/AGE): per person one
  recording (seeded choice) is the test set, the others are training data;
- retrieval (SimMC, SPC-MGR, Hi-MPC, TranSG): per person one recording is the probe, two
  the gallery, the rest training (a person with three recordings: one of each).
Held-out people (--holdout_people N): N people, a seeded choice, take no part in either
protocol. Their walks feed no training, pre-training, model selection or calibration; they
are written whole, as recordings to identify, under <out>/<name>/<f>/holdout/<person>/.
Every other person keeps the walk roles the same seed gives without held-out people, and
their walks are written too, by classification role, under <out>/<name>/<f>/known/<role>/
(write_holdout): what identify.py and tools/measure_openset.py measure on.
Research switch (--split_unit window, classification only): test windows are taken from
every walk instead of from one held-out walk, so training and test share walks (never
frames). Each person keeps the number of test windows the walk split gives them, spread
evenly over all their windows. It tests the other reading of the predecessors' protocol.
All functions but `prepare` are pure and work on in-memory arrays.
"""
import glob
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from utils.data.raw_skeletons import (BAD_FRAME_POLICIES, JOINT_ORDERS, MAX_COORDINATE, TRIM_FRAMES,
                                 Recording, discover, load_recordings)
from utils.foundation.errors import UserError
from utils.foundation.io import make_folder, write_failure
from utils.foundation.lock import LOCK_FILE, FolderLock
from utils.foundation.runtime import generator
from utils.foundation.skeleton import LAYOUTS_BY_NAME, get_layout, layout_record


def cut_windows(frames: np.ndarray, length: int, trim: int = TRIM_FRAMES,
                stride: int = 0) -> np.ndarray:
    """Drop `trim` frames at both ends, then windows of `length` frames starting every
    `stride` frames (0: stride = length, non-overlapping): [frames, J, 3] ->
    [windows, length, J, 3] (none when the walk is too short)."""
    kept, starts = window_starts(frames, length, trim, stride)
    if not starts:
        return np.zeros((0, length) + frames.shape[1:], frames.dtype)
    return np.stack([kept[s:s + length] for s in starts])


def window_starts(frames: np.ndarray, length: int, trim: int = TRIM_FRAMES, stride: int = 0):
    """(the trimmed frames, the first frame of each window in them). Dropped frames (NaN
    rows) cut the recording: no window spans them."""
    stride = stride or length
    kept = frames[trim:len(frames) - trim] if len(frames) > 2 * trim else frames[:0]
    good = ~np.isnan(kept).any(axis=tuple(range(1, kept.ndim)))   # also when none are kept
    starts, begin = [], 0
    for end in list(np.flatnonzero(~good)) + [len(kept)]:
        starts += range(begin, end - length + 1, stride)
        begin = end + 1
    return kept, starts


def frames_in_windows(frames: np.ndarray, length: int, trim: int, stride: int) -> int:
    """How many distinct frames the windows of a recording use."""
    _, starts = window_starts(frames, length, trim, stride)
    return len({s + i for s in starts for i in range(length)})


def split_recordings(names_by_person: Dict[int, List[str]], protocol: str,
                     rng: np.random.Generator) -> Dict[int, Dict[str, str]]:
    """{person: {recording: role}}. Roles: train/test (classification) or
    train/probe/gallery (retrieval). Persons are visited in sorted order, so the same seed
    gives the same split. Persons with too few recordings get no roles (left out)."""
    out = {}
    for pid in sorted(names_by_person):
        names = list(names_by_person[pid])
        shuffled = [names[i] for i in rng.permutation(len(names))]
        if protocol == "classification":
            if len(names) < 2:
                continue
            roles = ["test"] + ["train"] * (len(names) - 1)
        else:
            if len(names) < 3:
                continue
            gallery = 2 if len(names) >= 4 else 1
            roles = ["probe"] + ["gallery"] * gallery + ["train"] * (len(names) - 1 - gallery)
        out[pid] = dict(zip(shuffled, roles))
    return out


# ----------------------------------------------------------------------------------------
# The whole tool

@dataclass
class Prepared:
    manifests: Dict[int, dict] = field(default_factory=dict)   # length -> manifest
    skipped_files: List[str] = field(default_factory=list)


PROTOCOL_ROLES = {"classification": ("train", "test"), "retrieval": ("train", "probe", "gallery")}
SPLIT_UNITS = ("walk", "window")


def spread_picks(total: int, count: int) -> np.ndarray:
    """`count` distinct indices out of range(total), evenly spaced from first to last."""
    if count <= 0:
        return np.zeros(0, np.int64)
    return np.unique(np.round(np.linspace(0, total - 1, count)).astype(np.int64))


def split_by_window(windows_by_walk: List[np.ndarray], test_count: int):
    """(train windows, test windows, test picks per walk): the person's windows of every
    walk in walk order, `test_count` of them (evenly spread) to the test set."""
    every = np.concatenate(windows_by_walk)
    picks = spread_picks(len(every), test_count)
    is_test = np.zeros(len(every), bool)
    is_test[picks] = True
    bounds = np.cumsum([0] + [len(w) for w in windows_by_walk])
    per_walk = [int(is_test[a:b].sum()) for a, b in zip(bounds[:-1], bounds[1:])]
    return every[~is_test], every[is_test], per_walk


def build_protocol(recordings: List[Recording], arrays: Dict[str, np.ndarray], length: int,
                   protocol: str, seed: int, trim: int = TRIM_FRAMES, train_stride: int = 0,
                   counts: Optional[Dict[str, dict]] = None, split_unit: str = "walk",
                   held_out=frozenset()):
    """Windows of every role and the manifest entries of one protocol and length. Training
    windows start every `train_stride` frames (0: non-overlapping); test, probe and gallery
    windows never overlap. split_unit="window" (classification): see the module's note. A
    person left without windows in some role (walks too short, too few walks) is left out of
    the protocol altogether, and the manifest says why. People in `held_out` (ids) are left
    out without a trace; the walk split is drawn as if they were there, so everyone else's
    roles do not depend on who is held out."""
    counts = counts or {}
    by_person: Dict[int, List[Recording]] = {}
    for rec in recordings:
        if rec.path in arrays:
            by_person.setdefault(rec.person_id, []).append(rec)
    names = {pid: [r.name for r in recs] for pid, recs in by_person.items()}
    roles = split_recordings(names, protocol, np.random.default_rng(seed))
    needed = PROTOCOL_ROLES[protocol]
    windows: Dict[str, List[np.ndarray]] = {}
    ids: Dict[str, List[np.ndarray]] = {}
    persons = {}
    for pid, recs in sorted(by_person.items()):
        if pid in held_out:
            continue
        entry = dict(folder=recs[0].person, recordings={}, windows={})
        mine: Dict[str, List[np.ndarray]] = {}
        for rec in recs:
            role = roles.get(pid, {}).get(rec.name, "unused")
            stride = (train_stride if role == "train" else 0) or length
            w = cut_windows(arrays[rec.path], length, trim, stride)
            entry["recordings"][rec.name] = dict(
                role=role, frames=int(len(arrays[rec.path])),
                frames_kept=frames_in_windows(arrays[rec.path], length, trim, stride),
            windows=int(len(w)), **counts.get(rec.path, {}))
            entry["windows"][role] = entry["windows"].get(role, 0) + int(len(w))
            if len(w):
                mine.setdefault(role, []).append(w)
        if split_unit == "window" and protocol == "classification" and "test" in mine:
            walks = [cut_windows(arrays[r.path], length, trim, length) for r in recs]
            test_count = sum(len(w) for w in mine["test"])
            train_w, test_w, per_walk = split_by_window([w for w in walks if len(w)], test_count)
            mine = dict(train=[train_w], test=[test_w]) if len(train_w) else dict(test=[test_w])
            used = iter(per_walk)
            for rec, w in zip(recs, walks):
                n = next(used) if len(w) else 0
                entry["recordings"][rec.name].update(role="train+test", test_windows=n,
                                                     train_windows=int(len(w)) - n)
            entry["windows"] = {role: int(sum(len(x) for x in ws)) for role, ws in mine.items()}
        lacking = [r for r in needed if r not in mine]
        if lacking:
            entry["left_out"] = f"no {'/'.join(lacking)} windows of {length} frames"
        else:
            for role in needed:
                w = np.concatenate(mine[role])
                windows.setdefault(role, []).append(w)
                ids.setdefault(role, []).append(np.full(len(w), pid, np.int64))
        persons[str(pid)] = entry
    if not windows:
        raise UserError(f"no person has windows of {length} frames in every role of the "
                        f"{protocol} protocol ({', '.join(needed)}): are the recordings shorter "
                        f"than {2 * trim + length} frames, or too few per person?")
    joined = {role: (np.concatenate(windows[role]), np.concatenate(ids[role])) for role in needed}
    return joined, persons


def identical_recordings(recordings, arrays: Dict[str, np.ndarray]) -> List[List[str]]:
    """Groups of recordings (person/file) whose frames are the same, as read: a walk
    stored twice (KGBD's Person064 has one) would sit in training and in test at once."""
    import hashlib
    groups: Dict[str, List[str]] = {}
    for rec in recordings:
        if rec.path in arrays:
            frames = np.ascontiguousarray(arrays[rec.path])
            key = hashlib.sha256(str(frames.shape).encode() + frames.tobytes()).hexdigest()
            groups.setdefault(key, []).append(f"{rec.person}/{rec.name}")
    return [names for names in groups.values() if len(names) > 1]


def unused_recordings(persons: dict, length: int, trim: int) -> Dict[str, str]:
    """{person/recording: why} for every recording that gives no window of `length` frames
    (too short, or cut to pieces by dropped frames), from a protocol's manifest entries."""
    unused = {}
    for entry in persons.values():
        for name, rec in entry["recordings"].items():
            if rec["windows"]:
                continue
            dropped = rec.get("frames_dropped", 0)
            why = (f"{rec['frames']} frames, {dropped} of them dropped as glitches; no "
                   f"{length} consecutive good frames are left" if dropped else
                   f"{rec['frames']} frames: shorter than the {2 * trim + length} that one "
                   f"window of {length} needs after trimming {trim} at each end")
            unused[f"{entry['folder']}/{name}"] = why
    return unused


STAGING_PREFIX = ".tmp-prepare-"   # where a preparation builds its files before the move
HOLDOUT_FOLDER = "holdout"       # held-out people's walks, <f>/holdout/<person>/<walk>.npy
KNOWN_FOLDER = "known"           # with them, the trained people's: <f>/known/<role>/<person>/


def choose_holdout(person_ids, count: int, seed: int) -> List[int]:
    """`count` of the person ids, a seeded choice (utils/foundation/runtime.py's "held-out
    people" generator of the preparation's seed), in ascending order."""
    pool = sorted(set(person_ids))
    if count < 0:
        raise UserError(f"--holdout_people must be 0 or more, got {count}")
    if count and count >= len(pool) - 1:
        raise UserError(f"--holdout_people {count}: only {len(pool)} people have readable "
                        f"recordings, and at least two must stay to train on; hold out fewer")
    if not count:
        return []
    picked = generator(seed, "held-out people").choice(len(pool), size=count, replace=False)
    return sorted(pool[i] for i in picked)


def recording_file(name: str, taken: set) -> str:
    """The .npy file name a held-out recording is written under: its name without the
    extension, or with it ('r1.csv.npy') when another recording of the person has that stem."""
    stem = os.path.splitext(name)[0]
    out = f"{stem}.npy" if f"{stem}.npy" not in taken else f"{name}.npy"
    taken.add(out)
    return out


def write_walks(folder: str, recordings: List[Recording], arrays: Dict[str, np.ndarray],
                length: int, trim: int = TRIM_FRAMES, counts: Optional[Dict[str, dict]] = None) -> dict:
    """Walks as recordings to identify: <folder>/<person>/<walk>.npy, [frames, joints, 3]
    float32 in the dataset's joint order, frames the preparation dropped as NaN rows (read
    them with --bad_frames drop). A walk with no window of `length` frames is not written
    (nothing could identify it); the manifest says so. Returns the manifest entries
    {person id: {folder, recordings}}."""
    counts = counts or {}
    persons, taken = {}, {}
    for rec in recordings:
        if rec.path not in arrays:
            continue
        frames = arrays[rec.path]
        entry = persons.setdefault(str(rec.person_id), dict(folder=rec.person, recordings={}))
        n = int(len(cut_windows(frames, length, trim)))
        info = dict(frames=int(len(frames)), windows=n, **counts.get(rec.path, {}))
        if n:
            name = recording_file(rec.name, taken.setdefault(rec.person, set()))
            make_folder(os.path.join(folder, rec.person))
            np.save(os.path.join(folder, rec.person, name), frames.astype(np.float32))
            info["file"] = f"{rec.person}/{name}"
        entry["recordings"][rec.name] = info
    return persons


def write_holdout(stage: str, recordings: List[Recording], arrays: Dict[str, np.ndarray],
                  held_out, classification: dict, length: int, trim: int = TRIM_FRAMES,
                  counts: Optional[Dict[str, dict]] = None) -> dict:
    """With held-out people, the walks to measure identification on, under `stage` (one
    length's folder), and their manifest entry:
    - holdout/<person>/<walk>.npy: every walk of the held-out people;
    - known/train/ and known/test/<person>/<walk>.npy: the walks of the people the
      classification protocol trains on, by their role there (train: to enrol a gallery
      from; test: never trained on). Not with --split_unit window, whose test windows come
      from every walk."""
    strangers = [r for r in recordings if r.person_id in held_out]
    entry = dict(folder=HOLDOUT_FOLDER, people=len(held_out),
                 persons=write_walks(os.path.join(stage, HOLDOUT_FOLDER), strangers, arrays,
                                     length, trim, counts))
    roles = {(int(pid), name): rec["role"] for pid, person in classification.items()
             if "left_out" not in person for name, rec in person["recordings"].items()}
    known = {}
    for role in ("train", "test"):
        recs = [r for r in recordings if roles.get((r.person_id, r.name)) == role]
        if recs:
            written = write_walks(os.path.join(stage, KNOWN_FOLDER, role), recs, arrays,
                                  length, trim, counts)
            known[role] = sum("file" in w for p in written.values() for w in p["recordings"].values())
    entry["known"] = dict(folder=KNOWN_FOLDER, walks=known) if known else None
    return entry


def write_protocol(folder: str, name: str, length: int, joined: dict, protocol: str) -> None:
    from utils.data.reid_data import write_split
    from utils.data.datasets import released_folders
    train_x, train_ids = joined["train"]
    train_dir, test_dir = released_folders(folder, name)
    write_split(train_dir, name, length, train_x, train_ids, False)
    if protocol == "classification":
        write_split(test_dir, name, length, *joined["test"], True)
        return
    for role in ("probe", "gallery"):
        write_split(os.path.join(test_dir, role), name, length, *joined[role], True)
    # The loader also reads a test set beside training: probe and gallery together.
    write_split(test_dir, name, length,
                np.concatenate([joined["probe"][0], joined["gallery"][0]]),
                np.concatenate([joined["probe"][1], joined["gallery"][1]]), True)


def prepare(root: str, out: str, name: str = "KGBD", fmt: str = "kgbd",
            layout_name: str = "kinect_v1", lengths=(4, 6, 8, 10), seed: int = 0,
            skip_bad: bool = False, trim: int = TRIM_FRAMES, progress=None, log=print,
            joint_order: str = "sdk", train_stride: int = 0, bad_frames: str = "stop",
            max_coordinate: float = MAX_COORDINATE, split_unit: str = "walk",
            holdout_people: int = 0) -> Prepared:
    """Read every recording, then write both protocols for every length under
    <out>/<name>/<f>/ (classification) and <out>/<name>/<f>/retrieval/ (retrieval), with a
    manifest.json per length; with holdout_people N, N people's walks as recordings under
    <out>/<name>/<f>/holdout/ instead. Everything is built in a temporary folder and moved
    into place only when complete."""
    from utils.data.datasets import REGISTRY
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UserError(f"--name {name!r}: use letters, digits, '_', '-' and '.' (it names a folder)")
    layout_ref = "kinect_v1" if fmt == "kgbd" else layout_name
    if fmt == "folders" and layout_name not in LAYOUTS_BY_NAME and not layout_name.endswith(".json"):
        raise UserError(f"unknown --layout {layout_name!r}; choose one of "
                        f"{', '.join(LAYOUTS_BY_NAME)}, or give a layout file (PATH.json)")
    layout = get_layout(layout_ref)
    if name in REGISTRY and REGISTRY[name].num_joints != layout.num_joints:
        raise UserError(f"dataset {name} uses the {REGISTRY[name].layout} layout "
                        f"({REGISTRY[name].num_joints} joints), the {layout.name} layout has "
                        f"{layout.num_joints}; pick another --name (any name of your own works)")
    recordings = discover(root, fmt)
    if joint_order not in JOINT_ORDERS:
        raise UserError(f"--joint_order must be {' or '.join(JOINT_ORDERS)}, got {joint_order!r}")
    if joint_order == "file" and fmt != "kgbd":
        raise UserError("--joint_order file applies to --format kgbd (the KGBD text files) only")
    if split_unit not in SPLIT_UNITS:
        raise UserError(f"--split_unit must be {' or '.join(SPLIT_UNITS)}, got {split_unit!r}")
    if split_unit == "window" and train_stride:
        raise UserError("--split_unit window cuts every walk into non-overlapping windows; "
                        "drop --train_stride (overlapping training windows would share frames "
                        "with test windows)")
    if bad_frames not in BAD_FRAME_POLICIES:
        raise UserError(f"--bad_frames must be {' or '.join(BAD_FRAME_POLICIES)}, got {bad_frames!r}")
    arrays, skipped, counts = load_recordings(recordings, fmt, layout, skip_bad, progress,
                                              joint_order, bad_frames, max_coordinate)
    for message in skipped:
        log(f"skipped: {message}")
    if not arrays:
        raise UserError(f"no readable recordings under {root}")
    identical = identical_recordings(recordings, arrays)
    for names in identical:   # kept, so that a preparation's splits stay those of its seed
        log(f"identical recordings: {' = '.join(names)} (the same walk twice: split into "
            f"training and test it is seen by both; remove the copies under {root} for a "
            f"clean split)")
    held_out = choose_holdout([r.person_id for r in recordings if r.path in arrays],
                              holdout_people, seed)
    result = Prepared(skipped_files=skipped)
    base = os.path.join(out, name)
    created = [p for p in (out, base) if not os.path.isdir(p)]   # removed again on failure
    make_folder(base)
    staging, done = None, False
    lock = FolderLock(base, "prepare_kgbd.py").acquire()   # one preparation per dataset at a time
    try:
        for old_stage in glob.glob(os.path.join(glob.escape(base), STAGING_PREFIX + "*")):
            shutil.rmtree(old_stage, ignore_errors=True)     # left by a preparation killed outright
        staging = tempfile.mkdtemp(dir=base, prefix=STAGING_PREFIX)
        for length in lengths:
            stage = os.path.join(staging, str(length))
            manifest = dict(source=os.path.abspath(root), format=fmt, layout=layout_record(layout_ref),
                            name=name, length=length, seed=seed, trim_frames=trim,
                            window_stride=length, train_stride=train_stride or length,
                            joint_order=joint_order if fmt == "kgbd" else "layout",
                            bad_frames=bad_frames, max_coordinate=max_coordinate,
                            split_unit=split_unit,
                            frames_dropped=sum(c["frames_dropped"] for c in counts.values()),
                            lost_joint_frames=sum(c["lost_joint_frames"] for c in counts.values()),
                            skipped_files=skipped, identical_recordings=identical,
                            protocols={})
            for protocol in ("classification", "retrieval"):
                joined, persons = build_protocol(recordings, arrays, length, protocol, seed, trim,
                                                 train_stride, counts, split_unit, set(held_out))
                for pid, entry in persons.items():
                    if "left_out" in entry:
                        log(f"f={length} {protocol}: person {pid} left out ({entry['left_out']})")
                if protocol == "classification":   # the same recordings serve both protocols
                    unused = unused_recordings(persons, length, trim)
                    for key, why in unused.items():
                        log(f"f={length}: {key} not used ({why})")
                    manifest["unused_recordings"] = unused
                folder = stage if protocol == "classification" else os.path.join(stage, "retrieval")
                write_protocol(folder, name, length, joined, protocol)
                manifest["protocols"][protocol] = dict(
                    folder="." if protocol == "classification" else "retrieval",
                    windows={role: int(len(x)) for role, (x, _) in sorted(joined.items())},
                    persons=persons)
            if held_out:
                manifest["holdout"] = dict(seed=seed, **write_holdout(
                    stage, recordings, arrays, set(held_out),
                    manifest["protocols"]["classification"]["persons"], length, trim, counts))
            with open(os.path.join(stage, "manifest.json"), "w") as fh:
                json.dump(manifest, fh, indent=1, sort_keys=True)
            result.manifests[length] = manifest
        for length in lengths:   # all lengths complete: move them into place
            final, old = os.path.join(base, str(length)), None
            if os.path.exists(final):
                old = os.path.join(staging, f"old-{length}")
                os.rename(final, old)
            os.rename(os.path.join(staging, str(length)), final)
        done = True
    except OSError as exc:   # a full disk, a read-only folder
        raise write_failure(exc.filename or base, exc) from None
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
        lock.release()
        for folder in reversed(created if not done else []):   # no empty dataset folder
            try:
                if os.path.exists(os.path.join(folder, LOCK_FILE)):
                    os.remove(os.path.join(folder, LOCK_FILE))
                os.rmdir(folder)
            except OSError:
                pass
    return result


def summary_line(manifest: dict) -> str:
    parts = []
    for protocol, info in manifest["protocols"].items():
        parts.append(f"{protocol}: " + ", ".join(f"{n} {role}" for role, n in info["windows"].items()))
    line = f"f={manifest['length']}: " + "; ".join(parts) + " windows"
    held = manifest.get("holdout")
    if held:
        walks = sum("file" in r for e in held["persons"].values() for r in e["recordings"].values())
        line += f"; {held['people']} people held out ({walks} walks in {held['folder']}/"
        if held.get("known"):
            line += ", the others' " + " and ".join(
                f"{n} {role} walks in {held['known']['folder']}/{role}/"
                for role, n in held["known"]["walks"].items())
        line += ")"
    dropped, lost = manifest.get("frames_dropped", 0), manifest.get("lost_joint_frames", 0)
    if dropped or lost:
        line += (f" ({dropped} frames with non-finite or implausible values"
                 + (" dropped" if manifest.get("bad_frames") == "drop" else "")
                 + f", {lost} frames with a lost joint (0, 0, 0)"
                 + (" dropped" if manifest.get("bad_frames") == "drop" else ", kept") + ")")
    return line

