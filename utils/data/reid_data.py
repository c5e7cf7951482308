"""Reading the released pre-processed format, normalising it, and ordering training data.

Format (docs/method.md §1), for a folder and a file tag <T> and length <f>:
  [t_]source_{x,y,z}_<T>_<f>.npy   [N*f, V] one coordinate per file (t_ for test files)
  [t_]frame_id_<T>_<f>.npy         person id per sample ([N], or [N*f] per frame)
  ids_<T>_<f>.npy                  pickled {person id: [sample indices]} (optional here:
                                   it is derived from frame_id when missing)
"""
import os
import pickle
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from utils.data.datasets import DataLocation
from utils.foundation.errors import UserError
from utils.foundation.io import DAMAGED, damage_detail
from utils.foundation.skeleton import SkeletonLayout

AXES = ("x", "y", "z")


@dataclass
class Split:
    """Skeleton sequences [N, f, V, 3], centred on joint 0, with raw person ids [N]."""
    sequences: np.ndarray
    person_ids: np.ndarray


@dataclass
class ReIDData:
    train: Split
    test: Split
    id_list: np.ndarray                       # sorted training person ids; label = position
    train_labels: np.ndarray = field(init=False)
    test_labels: np.ndarray = field(init=False)

    def __post_init__(self):
        self.train_labels = labels_for(self.train.person_ids, self.id_list)
        self.test_labels = labels_for(self.test.person_ids, self.id_list)

    @property
    def num_classes(self) -> int:
        return len(self.id_list)


def labels_for(person_ids: np.ndarray, id_list: np.ndarray) -> np.ndarray:
    index = {pid: i for i, pid in enumerate(id_list.tolist())}
    return np.array([index.get(p, -1) for p in person_ids.tolist()], dtype=np.int64)


def _load_array(path: str, what: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=True)
    except DAMAGED + (pickle.UnpicklingError,) as exc:
        raise UserError(f"cannot read {what} file {path}: it is damaged ({damage_detail(exc)}); "
                        f"re-download or re-generate it") from None
    if not isinstance(arr, np.ndarray):   # an .npz archive under an .npy name
        arr.close()
        raise UserError(f"{what} file {path} is an .npz archive, not one .npy array; "
                        f"re-download or re-generate it")
    return arr


def _first_existing(folder: str, names: List[str]) -> Optional[str]:
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def centre_on(sequences: np.ndarray, joint: int = 0) -> np.ndarray:
    """Subtract `joint` of each frame from all joints of that frame, per axis."""
    return sequences - sequences[..., joint:joint + 1, :]


def window_fingerprints(windows: np.ndarray) -> np.ndarray:
    """One 64-bit fingerprint per window [W, f, J, 3] of its float32 values, as loaded
    (centred). identify.py cuts a recording's windows as the preparation does, so a
    recording a run was trained on gives the same fingerprints (its leakage check)."""
    import hashlib
    rows = np.ascontiguousarray(windows, dtype=np.float32).reshape(len(windows), -1)
    return np.array([int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little")
                     for row in rows], dtype=np.uint64)


def read_split(folder: str, tag: str, length: int, num_joints: int, test: bool,
               dataset: str, centre: int = 0, source_hint: str = "the dataset's release") -> Split:
    """Read one train or test folder of the released format and check its shapes; frames
    are centred on joint `centre` (the layout's). source_hint: where such files come from."""
    prefix = "t_" if test else ""
    if not os.path.isdir(folder):
        raise UserError(f"dataset folder {folder} not found: put the pre-processed "
                        f"{dataset} files there ({prefix}source_x_{tag}_{length}.npy and the "
                        f"rest); they come from {source_hint}")
    coords = []
    for axis in AXES:
        name = f"{prefix}source_{axis}_{tag}_{length}.npy"
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise UserError(f"missing file {path}: each of {prefix}source_x/y/z_{tag}_{length}"
                            f".npy must be in {folder}; they come from {source_hint}")
        arr = _load_array(path, "skeleton")
        if arr.ndim != 2 or arr.dtype == object:
            raise UserError(f"{path} has shape {arr.shape}; expected [samples*{length}, "
                            f"{num_joints}] numbers (one coordinate of each joint per frame)")
        if arr.shape[1] != num_joints:
            raise UserError(f"{path} has {arr.shape[1]} joints per frame but {dataset} uses "
                            f"{num_joints}; is this file from another dataset?")
        if arr.shape[0] % length:
            raise UserError(f"{path} has {arr.shape[0]} frames, not a multiple of --length "
                            f"{length}; is it from another sequence length?")
        coords.append(arr.astype(np.float32))
    if len({c.shape for c in coords}) != 1:
        raise UserError(f"the x/y/z files in {folder} disagree in shape: "
                        f"{[c.shape for c in coords]}")
    num_samples = coords[0].shape[0] // length
    if num_samples == 0:
        raise UserError(f"{folder} holds no sequences")
    sequences = np.stack(coords, axis=-1).reshape(num_samples, length, num_joints, 3)
    if not np.all(np.isfinite(sequences)):
        raise UserError(f"{folder} holds NaN or infinite coordinates; re-generate the files")

    names = [f"{prefix}frame_id_{tag}_{length}.npy", f"frame_id_{tag}_{length}.npy"]
    path = _first_existing(folder, names)
    if path is None:
        raise UserError(f"missing file {os.path.join(folder, names[0])} (person id of each "
                        f"sample); it comes from {source_hint}")
    person_ids = np.asarray(_load_array(path, "person id")).reshape(-1)
    if person_ids.shape[0] == num_samples * length and length > 1:
        person_ids = person_ids[::length]       # one id per frame -> one per sample
    if person_ids.shape[0] != num_samples:
        raise UserError(f"{path} has {person_ids.shape[0]} ids for {num_samples} sequences")
    try:
        person_ids = person_ids.astype(np.int64)
    except (TypeError, ValueError):
        raise UserError(f"{path} must hold integer person ids") from None

    ids_path = _first_existing(folder, [f"ids_{tag}_{length}.npy", f"{prefix}ids_{tag}_{length}.npy"])
    if ids_path is not None:
        check_ids_file(ids_path, person_ids)
    return Split(centre_on(sequences, centre), person_ids)


def check_ids_file(path: str, person_ids: np.ndarray) -> None:
    """The ids dict must agree with frame_id; a mismatch means mixed-up files."""
    ids = _load_array(path, "ids")
    if ids.dtype == object and ids.shape == ():
        ids = ids.item()
    if not isinstance(ids, dict):
        raise UserError(f"{path} must hold a pickled dict {{person id: [sample indices]}}")
    for pid, indices in ids.items():
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.max() >= len(person_ids) or
                             np.any(person_ids[indices] != int(pid))):
            raise UserError(f"{path} disagrees with the frame_id file for person {pid}; "
                            f"the two files come from different releases")


def load_reid_data(loc: DataLocation, layout: SkeletonLayout) -> ReIDData:
    """Training and test splits, frames centred on the layout's centre joint."""
    train = read_split(loc.train_dir, loc.train_tag, loc.length, layout.num_joints, False,
                       loc.dataset, layout.centre, loc.source)
    test = read_split(loc.test_dir, loc.test_tag, loc.length, layout.num_joints, True,
                      loc.dataset, layout.centre, loc.source)
    id_list = np.unique(train.person_ids)
    unseen = sorted(set(np.unique(test.person_ids).tolist()) - set(id_list.tolist()))
    if unseen:
        raise UserError(f"test persons {unseen[:5]} never appear in training data of "
                        f"{loc.run_tag}; the classification protocol needs the same identities")
    return ReIDData(train, test, id_list)


def load_variant(variant) -> ReIDData:
    """A resolved dataset variant's training and test splits (utils/data/datasets.Variant:
    its files, read with its skeleton layout)."""
    return load_reid_data(variant.files, variant.layout)


def reference_epoch_order(labels: np.ndarray, batch_size: int,
                          rng: np.random.Generator) -> np.ndarray:
    """The reference's training order (its class_samp_gen), built once per run and used
    for pre-training and Re-ID alike, every epoch.

    With C identities (sorted) and bpc = batch_size // C it makes 2 * (N // batch_size)
    blocks; block i takes, for every identity, its samples [bpc*i, bpc*(i+1)) in stored
    order, or, once fewer than bpc are left, bpc random re-draws (with replacement) of
    that identity's samples. The order is therefore longer than N (about 1.3-1.9 N).
    """
    classes = np.unique(labels)
    per_class = batch_size // len(classes)
    if per_class == 0:
        raise UserError(f"batch size {batch_size} is smaller than the {len(classes)} "
                        f"identities; the class-balanced order needs one of each per batch")
    members = {c: np.flatnonzero(labels == c) for c in classes}
    order = []
    for block in range(2 * (len(labels) // batch_size)):
        for c in classes:
            chunk = members[c][per_class * block:per_class * (block + 1)]
            if len(chunk) < per_class:
                chunk = members[c][rng.integers(0, len(members[c]), per_class)]
            order.append(chunk)
    if not order:
        raise UserError(f"{len(labels)} training sequences make no full batch of "
                        f"{batch_size}; lower --batch_size")
    return np.concatenate(order)


def full_batches(order: np.ndarray, batch_size: int) -> List[np.ndarray]:
    """Consecutive batches of the given order; the incomplete last one is dropped."""
    count = len(order) // batch_size
    if count == 0:
        raise UserError(f"{len(order)} training sequences (after class balancing) make no "
                        f"full batch of {batch_size}; lower --batch_size")
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(count)]


def stratified_holdout(labels: np.ndarray, fraction: float, rng: np.random.Generator):
    """Split indices into (train, validation), taking `fraction` of every identity
    (at least one sample each where an identity has two or more)."""
    train_idx, val_idx = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(fraction * len(members)))
        n_val = min(max(n_val, 1 if len(members) > 1 else 0), len(members) - 1)
        val_idx.append(members[:n_val])
        train_idx.append(members[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def write_split(folder: str, tag: str, length: int, sequences: np.ndarray,
                person_ids: np.ndarray, test: bool) -> None:
    """Write sequences [N, f, V, 3] in the released format (used by the demo and tests).

    Each file is written under a temporary name and renamed, so a crash never leaves a
    half-written file that the loader would take for a real one.
    """
    from utils.foundation.io import atomic_save_npy, make_folder
    prefix = "t_" if test else ""
    n, f, v, _ = sequences.shape
    assert f == length, (f, length)
    make_folder(folder)
    for a, axis in enumerate(AXES):
        atomic_save_npy(os.path.join(folder, f"{prefix}source_{axis}_{tag}_{length}.npy"),
                        sequences[..., a].reshape(n * f, v).astype(np.float32))
    ids = {int(p): np.flatnonzero(person_ids == p).tolist() for p in np.unique(person_ids)}
    atomic_save_npy(os.path.join(folder, f"ids_{tag}_{length}.npy"),
                    np.array(ids, dtype=object))
    atomic_save_npy(os.path.join(folder, f"{prefix}frame_id_{tag}_{length}.npy"),
                    person_ids.astype(np.int64))


def retrieval_splits(loc: DataLocation, layout: SkeletonLayout, sets) -> Tuple[Split, Split]:
    """(probe Split, gallery Split), read from sets = ((folder, file tag) of the probe, the
    same of the gallery): the dataset's choice (Dataset.retrieval_sets in utils/data/datasets.py)."""
    v, f, c = layout.num_joints, loc.length, layout.centre
    return tuple(read_split(folder, tag, f, v, True, loc.dataset, c, loc.source)
                 for folder, tag in sets)
