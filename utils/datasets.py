"""Dataset registry: per-dataset settings (method §6) and where each dataset's files live.

Adding a dataset means adding one DatasetSpec here; loaders and scripts read nothing else.
"""
import dataclasses
import os
from dataclasses import dataclass
from typing import Optional

from utils.errors import UserError

DATASETS_ROOT = "Datasets"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    layout: Optional[str]     # skeleton layout name (utils/skeleton.py); None: the manifest's
    batch_size: int
    lstm_size: int
    pretrain_lr: float
    pretrain_epochs: int
    reid_lr: float
    source: str               # where the pre-processed files come from
    pretrain_epochs_probe: Optional[int] = None   # CASIA-B with a probe type

    @property
    def num_joints(self) -> int:
        from utils.skeleton import get_layout
        return get_layout(self.layout).num_joints


AUTHORS = ("the SM-SGE authors' pre-processed release, linked from "
           "https://github.com/Kali-Hac/SM-SGE (README: 'Preparing the datasets')")
# KGBD's raw recordings are public (KinectGait), so it can also be built from them.
KGBD_SOURCES = (AUTHORS + ", or built from the raw KinectGait recordings with "
                "tools/prepare_kgbd.py (README: 'Preparing KGBD from its raw recordings')")

REGISTRY = {
    "KS20": DatasetSpec("KS20", "kinect_v2", 64, 256, 0.0005, 200, 0.0025, AUTHORS),
    "IAS": DatasetSpec("IAS", "kinect_v1", 64, 256, 0.0025, 120, 0.0025, AUTHORS),
    "KGBD": DatasetSpec("KGBD", "kinect_v1", 256, 128, 0.0025, 160, 0.0025, KGBD_SOURCES),
    "BIWI": DatasetSpec("BIWI", "kinect_v1", 256, 256, 0.005, 120, 0.0025, AUTHORS),
    "CASIA_B": DatasetSpec("CASIA_B", "casia14", 128, 256, 0.0005, 160, 0.0005,
                           AUTHORS, pretrain_epochs_probe=200),
    # Built-in procedural data (utils/demo.py): our own settings, sized so that the whole
    # pipeline runs in minutes on two CPU cores.
    "demo": DatasetSpec("demo", "kinect_v2", 64, 256, 0.0005, 30, 0.0025,
                        "generated on first use by utils/demo.py"),
    "demo20": DatasetSpec("demo20", "kinect_v1", 64, 256, 0.0005, 30, 0.0025,
                          "generated on first use by utils/demo.py"),
}

# A dataset prepared from raw recordings under a name of one's own (tools/prepare_kgbd.py
# --name MYSET) runs with these settings, the IAS row (a Kinect gait set of similar size),
# unless flags say otherwise; its manifest supplies the layout.
GENERIC = DatasetSpec("generic", None, 64, 256, 0.0025, 120, 0.0025,
                      "your own recordings, prepared with tools/prepare_kgbd.py")
MANIFEST = "manifest.json"

IAS_SPLITS = ("A", "B")
CASIA_VIEWS = tuple(range(11))
CASIA_PROBE_TYPES = ("nm.nm", "cl.nm", "bg.nm", "cl.cl", "bg.bg", "nm.cl", "nm.bg")


def prepared_datasets(root: str):
    """Names of datasets prepared under `root` (a manifest in some <name>/<f>/)."""
    import glob
    found = {os.path.basename(os.path.dirname(os.path.dirname(p)))
             for p in glob.glob(os.path.join(root, "*", "*", MANIFEST))}
    return sorted(found - set(REGISTRY))


def get_spec(name: str, root: Optional[str] = None) -> DatasetSpec:
    """The settings of a known dataset, or the generic row for one prepared under `root`."""
    if name in REGISTRY:
        return REGISTRY[name]
    prepared = prepared_datasets(root) if root else []
    if name in prepared:
        return dataclasses.replace(GENERIC, name=name)
    raise UserError(f"unknown dataset '{name}'; choose one of {', '.join(list(REGISTRY) + prepared)}"
                    + (f" (or prepare it under {root} with tools/prepare_kgbd.py --name {name})"
                       if root else ""))


def source_of(name: str) -> str:
    return (REGISTRY.get(name) or GENERIC).source


def manifest_layout(root: str, dataset: str, length: int):
    """The layout a prepared dataset's manifest records (a name or the content), or None."""
    path = os.path.join(root, dataset, str(length), MANIFEST)
    if not os.path.isfile(path):
        return None
    import json
    try:
        with open(path) as fh:
            return json.load(fh).get("layout")
    except (OSError, json.JSONDecodeError):
        raise UserError(f"{path} is not valid JSON; prepare the dataset again") from None


@dataclass(frozen=True)
class DataLocation:
    """Folders and file-name tags of one dataset variant in the released layout."""
    dataset: str
    length: int
    train_dir: str
    test_dir: str
    train_tag: str   # <DS> part of train file names, e.g. "IAS"
    test_tag: str    # <DS> part of test file names, e.g. "IAS-A"
    run_tag: str     # names this variant in Pre-Trained/ and RN/, e.g. "IAS-A"


def locate(dataset: str, length: int, split: Optional[str] = None, view: Optional[int] = None,
           probe_type: Optional[str] = None, root: str = DATASETS_ROOT,
           protocol: str = "classification") -> DataLocation:
    """Resolve the released folder layout (method §1) for one dataset variant. A dataset
    prepared from raw recordings (tools/prepare_kgbd.py) keeps its retrieval protocol, whose
    training walks differ, in <f>/retrieval/; it is used for --protocol retrieval."""
    get_spec(dataset, root)   # unknown names fail here, with the list of known ones
    base = os.path.join(root, dataset, str(length))
    tag = test_tag = run_tag = dataset
    if protocol == "retrieval" and os.path.isdir(os.path.join(base, "retrieval")):
        base, run_tag = os.path.join(base, "retrieval"), f"{dataset}-retrieval"
    if dataset == "IAS":
        if split not in IAS_SPLITS:
            raise UserError("IAS needs --split A or --split B" + (f" (got {split!r})" if split else ""))
        test_tag = run_tag = f"IAS-{split}"
    elif split:
        raise UserError(f"--split applies to IAS only, not to {dataset}; drop it")
    if dataset == "CASIA_B":
        if probe_type:
            if probe_type not in CASIA_PROBE_TYPES:
                raise UserError(f"unknown CASIA-B --probe_type '{probe_type}'; choose one of "
                                f"{', '.join(CASIA_PROBE_TYPES)}")
            base = os.path.join(root, "CASIA_B_match", str(length))
            run_tag = f"CASIA_B_match-{probe_type}"
            # The reference reads the test folder named by the probe condition alone
            # (the part before the dot): nm.nm, nm.cl and nm.bg all read .../nm/.
            return DataLocation(dataset, length,
                                os.path.join(base, f"{tag}_train_npy_data"),
                                os.path.join(base, f"{tag}_test_npy_data", probe_type.split(".")[0]),
                                tag, tag, run_tag)
        if view is None:
            raise UserError("CASIA_B needs --view 0..10 (cross-view) or --probe_type (matching)")
        if view not in CASIA_VIEWS:
            raise UserError(f"unknown CASIA-B view {view}; views are 0..10 (0 to 180 degrees)")
        base = os.path.join(base, f"view_{view}")
        run_tag = f"CASIA_B-view{view}"
    elif view is not None or probe_type:
        raise UserError(f"--view and --probe_type apply to CASIA_B only, not to {dataset}")
    return DataLocation(dataset, length, os.path.join(base, f"{tag}_train_npy_data"),
                        os.path.join(base, f"{tag}_test_npy_data"), tag, test_tag, run_tag)
