"""The datasets: each one's settings row (docs/method.md §6), where its files live, and its
quirks, in one definition per dataset.

A dataset is a `Dataset` (or a subclass that overrides one of its hooks) in REGISTRY; adding
one, quirks included, is one definition here and nothing elsewhere. The flags that choose
one of its variants (IAS's --split, CASIA-B's --view) are its own fields (SELECTORS), set by
`select`. A run finds its dataset by name once (utils/orchestration/run.resolve), selects it,
resolves its `Variant` (the dataset, the folders, the skeleton layout) and passes it down;
no other module asks which dataset it is.

The released format (docs/method.md §1), for one variant folder <base> and a file tag
<T>: <base>/<T>_train_npy_data/ and <base>/<T>_test_npy_data/ (`released_folders`); the file
names inside them are utils/data/reid_data.py's.
"""
import dataclasses
import os
from dataclasses import dataclass
from typing import ClassVar, Optional, Tuple

from utils.foundation.errors import UserError
from utils.foundation.io import read_json

DATASETS_ROOT = "Datasets"
MANIFEST = "manifest.json"


def released_folders(base: str, tag: str) -> Tuple[str, str]:
    """(training folder, test folder) of a variant folder in the released format: the one
    description of it, for every reader and writer."""
    return os.path.join(base, f"{tag}_train_npy_data"), os.path.join(base, f"{tag}_test_npy_data")


@dataclass(frozen=True)
class DataLocation:
    """Folders and file-name tags of one dataset variant in the released format."""
    dataset: str
    length: int
    train_dir: str
    test_dir: str
    train_tag: str   # <DS> part of train file names, e.g. "IAS"
    test_tag: str    # <DS> part of test file names, e.g. "IAS-A"
    run_tag: str     # names this variant in Pre-Trained/ and RN/, e.g. "IAS-A"
    source: str = ""  # where the files come from, for the error that says they are missing


@dataclass(frozen=True)
class Dataset:
    """One dataset: its settings row (the reference's, where it has one), its skeleton
    layout, where its files come from, and its rules as fields and overridable hooks.

    A dataset whose variants are chosen by flags (IAS's test split, CASIA-B's view) declares
    them in SELECTORS, as fields of its own of the same names as the flags; `select` sets
    them from a run's flags, and the hooks read them from self."""
    name: str
    layout: Optional[str]        # skeleton layout name (utils/foundation/skeleton.py); None: the manifest's
    batch_size: int
    lstm_size: int
    pretrain_lr: float
    pretrain_epochs: int
    reid_lr: float
    source: str                  # where the pre-processed files come from (for error messages)
    min_save_epoch: int = 0      # first 0-based Re-ID epoch whose model may be kept
    # Generated data: "module:function" taking (name, f, root) that makes the files if they
    # are missing. A name, not a callable: generators sit above this module (they write the
    # released format with utils/data/reid_data.py), so it must not import them.
    build: Optional[str] = None
    SELECTORS: ClassVar[Tuple[str, ...]] = ()

    @property
    def num_joints(self) -> int:
        from utils.foundation.skeleton import get_layout
        return get_layout(self.layout).num_joints

    def select(self, **chosen) -> "Dataset":
        """This dataset with its selectors set from a run's flags (None: not given); a flag
        the dataset does not take is refused in one line naming the datasets that do."""
        given = {k: v for k, v in chosen.items() if v is not None}
        for key in given:
            if key not in self.SELECTORS:
                owners = [d.name for d in REGISTRY.values() if key in d.SELECTORS]
                raise UserError(f"--{key} applies to {' and '.join(owners) or 'no dataset'} "
                                f"only, not to {self.name}; drop it")
        chosen = dataclasses.replace(self, **given)
        chosen.check_selection()
        return chosen

    # -- hooks: a dataset with a quirk overrides one of these ------------------------------
    def check_selection(self) -> None:
        """Refuse, in one line, a selection that names no variant (a missing --split)."""

    def setting(self, row: str):
        """The value of a per-dataset setting (a field of the settings row) for this variant."""
        return getattr(self, row)

    def locate(self, length: int, root: str = DATASETS_ROOT,
               prepared_as: Optional[str] = None) -> DataLocation:
        """The variant's folders. A dataset prepared from raw recordings keeps the walks of
        a protocol whose training walks differ in <f>/<protocol>/ (retrieval/); prepared_as
        names that protocol."""
        base, run_tag = os.path.join(root, self.name, str(length)), self.name
        if prepared_as and os.path.isdir(os.path.join(base, prepared_as)):
            base, run_tag = os.path.join(base, prepared_as), f"{self.name}-{prepared_as}"
        return DataLocation(self.name, length, *released_folders(base, self.name), self.name,
                            self.name, run_tag, self.source)

    def pretraining_tag(self, loc: DataLocation) -> str:
        """Names the variant's pre-trained encoders: variants with the same training data
        may share one."""
        return loc.run_tag

    def retrieval_sets(self, loc: DataLocation, root: str) -> Tuple[Tuple[str, str], Tuple[str, str]]:
        """((folder, file tag) of the probe, the same of the gallery) for --protocol
        retrieval: probe/ and gallery/ in the test folder, as the retrieval works store them."""
        probe, gallery = (os.path.join(loc.test_dir, n) for n in ("probe", "gallery"))
        if not os.path.isdir(probe):
            raise UserError(f"retrieval needs {probe} and {gallery} (the probe/gallery folders "
                            f"of the retrieval works); they are missing for {loc.run_tag}")
        return (probe, loc.test_tag), (gallery, loc.test_tag)


@dataclass(frozen=True)
class TwoTestSplits(Dataset):
    """IAS-Lab: one training set, two test sets (A: other clothes, B: other room). The
    reference pre-trains once for both, and in retrieval matches one split against the other."""
    splits: Tuple[str, ...] = ("A", "B")
    split: Optional[str] = None
    SELECTORS: ClassVar[Tuple[str, ...]] = ("split",)

    def check_selection(self):
        if self.split not in self.splits:
            raise UserError(f"{self.name} needs --split {' or --split '.join(self.splits)}"
                            + (f" (got {self.split!r})" if self.split else ""))

    def locate(self, length, root=DATASETS_ROOT, prepared_as=None) -> DataLocation:
        loc = Dataset.locate(self, length, root, prepared_as)
        tag = f"{self.name}-{self.split}"
        return dataclasses.replace(loc, test_tag=tag, run_tag=tag)

    def pretraining_tag(self, loc):
        return self.name   # both splits share the training data and its encoder

    def retrieval_sets(self, loc, root):
        other = next(s for s in self.splits if s != self.split)
        gallery = dataclasses.replace(self, split=other).locate(loc.length, root)
        return (loc.test_dir, loc.test_tag), (gallery.test_dir, gallery.test_tag)


@dataclass(frozen=True)
class CrossView(Dataset):
    """CASIA-B: per view a training/test folder (cross-view evaluation, --view), or one
    training set and a test folder per probe condition (matching, --probe_type)."""
    pretrain_epochs_probe: Optional[int] = None   # pre-training epochs with --probe_type
    views: Tuple[int, ...] = tuple(range(11))
    probe_types: Tuple[str, ...] = ("nm.nm", "cl.nm", "bg.nm", "cl.cl", "bg.bg", "nm.cl", "nm.bg")
    view: Optional[int] = None
    probe_type: Optional[str] = None
    SELECTORS: ClassVar[Tuple[str, ...]] = ("view", "probe_type")

    def check_selection(self):
        if self.probe_type:
            if self.probe_type not in self.probe_types:
                raise UserError(f"unknown CASIA-B --probe_type '{self.probe_type}'; choose one "
                                f"of {', '.join(self.probe_types)}")
            return
        if self.view is None:
            raise UserError(f"{self.name} needs --view 0..10 (cross-view) or --probe_type (matching)")
        if self.view not in self.views:
            raise UserError(f"unknown CASIA-B view {self.view}; views are 0..10 (0 to 180 degrees)")

    def setting(self, row):
        if row == "pretrain_epochs" and self.probe_type and self.pretrain_epochs_probe:
            return self.pretrain_epochs_probe
        return getattr(self, row)

    def locate(self, length, root=DATASETS_ROOT, prepared_as=None) -> DataLocation:
        if self.probe_type:
            base = os.path.join(root, f"{self.name}_match", str(length))
            train, test = released_folders(base, self.name)
            # The reference reads the test folder named by the probe condition alone (the
            # part before the dot): nm.nm, nm.cl and nm.bg all read .../nm/.
            return DataLocation(self.name, length, train,
                                os.path.join(test, self.probe_type.split(".")[0]), self.name,
                                self.name, f"{self.name}_match-{self.probe_type}", self.source)
        base = os.path.join(root, self.name, str(length), f"view_{self.view}")
        return DataLocation(self.name, length, *released_folders(base, self.name), self.name,
                            self.name, f"{self.name}-view{self.view}", self.source)


AUTHORS = ("the SM-SGE authors' pre-processed release, linked from "
           "https://github.com/Kali-Hac/SM-SGE (docs/datasets.md: 'The authors' pre-processed datasets')")
# KGBD's raw recordings are public (KinectGait), so it can also be built from them.
KGBD_SOURCES = (AUTHORS + ", or built from the raw KinectGait recordings with "
                "tools/prepare_kgbd.py (docs/datasets.md: 'KGBD from its raw recordings')")
BUILT_IN = "generated on first use by utils/data/demo.py"

REGISTRY = {d.name: d for d in (
    Dataset(name="KS20", layout="kinect_v2", batch_size=64, lstm_size=256, pretrain_lr=0.0005,
            pretrain_epochs=200, reid_lr=0.0025, source=AUTHORS),
    # On IAS the reference keeps a Re-ID model only from epoch 10 on.
    TwoTestSplits(name="IAS", layout="kinect_v1", batch_size=64, lstm_size=256,
                  pretrain_lr=0.0025, pretrain_epochs=120, reid_lr=0.0025, source=AUTHORS,
                  min_save_epoch=10),
    Dataset(name="KGBD", layout="kinect_v1", batch_size=256, lstm_size=128, pretrain_lr=0.0025,
            pretrain_epochs=160, reid_lr=0.0025, source=KGBD_SOURCES),
    Dataset(name="BIWI", layout="kinect_v1", batch_size=256, lstm_size=256, pretrain_lr=0.005,
            pretrain_epochs=120, reid_lr=0.0025, source=AUTHORS),
    CrossView(name="CASIA_B", layout="casia14", batch_size=128, lstm_size=256,
              pretrain_lr=0.0005, pretrain_epochs=160, reid_lr=0.0005, source=AUTHORS,
              pretrain_epochs_probe=200),
    # Built-in procedural data (utils/data/demo.py): our own settings, sized so that the whole
    # pipeline runs in minutes on two CPU cores.
    Dataset(name="demo", layout="kinect_v2", batch_size=64, lstm_size=256, pretrain_lr=0.0005,
            pretrain_epochs=30, reid_lr=0.0025, source=BUILT_IN, build="utils.data.demo:ensure_demo"),
    Dataset(name="demo20", layout="kinect_v1", batch_size=64, lstm_size=256, pretrain_lr=0.0005,
            pretrain_epochs=30, reid_lr=0.0025, source=BUILT_IN, build="utils.data.demo:ensure_demo"),
)}

# A dataset prepared from raw recordings under a name of one's own (tools/prepare_kgbd.py
# --name MYSET) runs with these settings, the IAS row (a Kinect gait set of similar size),
# unless flags say otherwise; its manifest supplies the layout.
GENERIC = Dataset(name="generic", layout=None, batch_size=64, lstm_size=256, pretrain_lr=0.0025,
                  pretrain_epochs=120, reid_lr=0.0025,
                  source="your own recordings, prepared with tools/prepare_kgbd.py")


def prepared_datasets(root: str):
    """Names of datasets prepared under `root` (a manifest in some <name>/<f>/)."""
    import glob
    found = {os.path.basename(os.path.dirname(os.path.dirname(p)))
             for p in glob.glob(os.path.join(root, "*", "*", MANIFEST))}
    return sorted(found - set(REGISTRY))


def get_dataset(name: str, root: Optional[str] = None) -> Dataset:
    """A registered dataset, or the generic row for one prepared under `root`."""
    if name in REGISTRY:
        return REGISTRY[name]
    prepared = prepared_datasets(root) if root else []
    if name in prepared:
        return dataclasses.replace(GENERIC, name=name)
    raise UserError(f"unknown dataset '{name}'; choose one of {', '.join(list(REGISTRY) + prepared)}"
                    + (f" (or prepare it under {root} with tools/prepare_kgbd.py --name {name})"
                       if root else ""))


def read_manifest(root: str, dataset: str, length: int) -> Optional[dict]:
    """A prepared dataset's manifest.json (tools/prepare_kgbd.py), or None for data without
    one (the authors' files, the demo); a damaged one is one line."""
    path = os.path.join(root, dataset, str(length), MANIFEST)
    if not os.path.isfile(path):
        return None
    try:
        manifest = read_json(path, "manifest")
    except UserError as exc:
        raise UserError(f"{exc}; prepare the dataset again") from None
    return manifest if isinstance(manifest, dict) else {}


def manifest_layout(root: str, dataset: str, length: int):
    """The layout a prepared dataset's manifest records (a name or the content), or None."""
    manifest = read_manifest(root, dataset, length)
    return manifest.get("layout") if manifest is not None else None


def walks_by_role(root: str, dataset: str, length: int) -> Optional[dict]:
    """{protocol: {role: {(person folder, recording)}}}, as a prepared dataset's manifest
    records which walk went where; None for data without a manifest (the authors' files, the
    demo). A walk split between training and test (--split_unit window) is in both roles."""
    manifest = read_manifest(root, dataset, length)
    if manifest is None:
        return None
    walks: dict = {}
    for protocol, described in manifest.get("protocols", {}).items():
        roles = walks.setdefault(protocol, {})
        for person in described.get("persons", {}).values():
            for recording, record in person.get("recordings", {}).items():
                for role in str(record.get("role", "")).split("+"):
                    roles.setdefault(role, set()).add((person.get("folder"), recording))
    return walks


@dataclass(frozen=True)
class Variant:
    """One dataset variant of a run, resolved once: the dataset (settings row, rules and
    selection), where its files are, and its skeleton layout (utils/foundation/skeleton.py)."""
    dataset: Dataset
    files: DataLocation
    layout: object   # SkeletonLayout
    root: str

    @property
    def run_tag(self) -> str:
        return self.files.run_tag

    @property
    def pretraining_tag(self) -> str:
        return self.dataset.pretraining_tag(self.files)

    def retrieval_sets(self):
        return self.dataset.retrieval_sets(self.files, self.root)

    def manifest(self) -> Optional[dict]:
        """The prepared dataset's manifest.json, or None (the authors' files, the demo)."""
        return read_manifest(self.root, self.dataset.name, self.files.length)

    def walks_by_role(self) -> Optional[dict]:
        return walks_by_role(self.root, self.dataset.name, self.files.length)


def resolve_variant(dataset: Dataset, length: int, root: str, layout,
                    prepared_as: Optional[str] = None, build: bool = True) -> Variant:
    """The variant of a selected dataset, its files made first where the dataset builds them
    (the built-in demo) unless build is False (looking up saved runs needs no data).
    layout: the resolved layout record (a name or a layout's content)."""
    from utils.foundation.skeleton import get_layout
    if build and dataset.build is not None:
        import importlib
        module, function = dataset.build.split(":")
        getattr(importlib.import_module(module), function)(dataset.name, length, root)
    return Variant(dataset, dataset.locate(length, root, prepared_as), get_layout(layout), root)
