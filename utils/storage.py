"""Where runs live on disk: the one place that knows the folders and file names.

    Pre-Trained/<variant>/<f>/<settings>/encoder.npz, config.json    pre-trained encoders
    RN/<variant>/<f>/<stamp>_<protocol>..._seed<s>/                     one training run:
        config.json (at the start), resume.npz (while unfinished), encoder.npz,
        classifier.npz, plots, metrics.json (last: a run is finished when it has one);
        later identify.py may add gallery.npz and identify_calibration.json

The datasets' own released layout (Datasets/...) is utils/datasets.py's.
"""
import glob
import json
import os
import time

from utils.config import SCALE_NAMES, RunConfig, pretraining_switches
from utils.datasets import DataLocation, locate
from utils.errors import UserError
from utils.io import atomic_save_json

PRETRAINED_ROOT = "Pre-Trained"
RN_ROOT = "RN"
CONFIG_FILE = "config.json"
ENCODER_FILE = "encoder.npz"
CLASSIFIER_FILE = "classifier.npz"
METRICS_FILE = "metrics.json"
RESUME_FILE = "resume.npz"
GALLERY_FILE = "gallery.npz"                   # identify.py --enrol: enrolled people, threshold
CALIBRATION_FILE = "identify_calibration.json"  # identify.py --calibrate: the classifier's threshold
# What a pre-trained encoder's config.json records: its architecture and pre-training.
PRETRAIN_KEYS = tuple(dict.fromkeys(
    ("dataset", "length", "layout", "lstm_size", "P", "fusion_lambda", "n_hood", "num_joints", "scales",
     "cross_scale", "pre_epochs", "seed") + tuple(pretraining_switches())))


def data_location(cfg: RunConfig) -> DataLocation:
    """The dataset variant's folders (the built-in demo is generated on first use)."""
    if cfg.dataset in ("demo", "demo20"):
        from utils.demo import ensure_demo
        ensure_demo(cfg.dataset, cfg.length, cfg.data_dir)
    return locate(cfg.dataset, cfg.length, cfg.split, cfg.view, cfg.probe_type, cfg.data_dir,
                  cfg.protocol)


def pretrained_dir(cfg: RunConfig, loc: DataLocation) -> str:
    # IAS-A and IAS-B share their training data, and the reference re-uses the IAS-A
    # pre-trained model for IAS-B: one pre-trained encoder serves both splits.
    tag = "IAS" if cfg.dataset == "IAS" else loc.run_tag
    name = (f"lambda{cfg.fusion_lambda:g}_P{cfg.P}_nhood{cfg.n_hood}"
            f"_r{cfg.sample_num}_{cfg.loss}_{cfg.optimizers}_e{cfg.pre_epochs}_seed{cfg.seed}")
    if tuple(cfg.scales) != SCALE_NAMES:
        name += "_scales-" + "-".join(cfg.scales)
    if not cfg.cross_scale:
        name += "_noCSI"
    defaults = RunConfig()
    for key in pretraining_switches():   # in declaration order
        if getattr(cfg, key) != getattr(defaults, key):
            name += f"_{key}-{str(getattr(cfg, key)).replace('/', '')}"
    if cfg.task == "none":
        name += "_task-none"
    return os.path.join(PRETRAINED_ROOT, tag, str(cfg.length), name)


def runs_parent(cfg: RunConfig, loc: DataLocation) -> str:
    return os.path.join(RN_ROOT, loc.run_tag, str(cfg.length))


def new_run_name(cfg: RunConfig) -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"_{cfg.protocol}" + (
        f"_sel-{cfg.selection}" if cfg.protocol == "classification" else "") + f"_seed{cfg.seed}"


def save_config(folder: str, values: dict) -> None:
    atomic_save_json(os.path.join(folder, CONFIG_FILE), values)


def _load_json(folder: str, name: str, missing: str) -> dict:
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise UserError(f"{folder} holds no {name}{missing}")
    try:
        with open(path) as fh:
            return json.load(fh)
    except json.JSONDecodeError:
        raise UserError(f"{path} is not valid JSON; the model folder is damaged") from None


def load_config(folder: str) -> dict:
    return _load_json(folder, CONFIG_FILE, "; is it a model folder written by SM-SGE.py?")


def load_metrics(folder: str) -> dict:
    return _load_json(folder, METRICS_FILE, ": not a finished SM-SGE.py run folder")


def load_run_config(folder: str) -> RunConfig:
    return RunConfig.from_saved(load_config(folder), os.path.join(folder, CONFIG_FILE))


def finished_runs(parent: str):
    """(metrics, folder) of every finished run under `parent`."""
    for path in glob.glob(os.path.join(parent, "*", METRICS_FILE)):
        try:
            with open(path) as fh:
                yield json.load(fh), os.path.dirname(path)
        except (OSError, json.JSONDecodeError):
            continue


def find_best_run(cfg: RunConfig, loc: DataLocation) -> str:
    """The finished run of this protocol with the highest recorded Rank-1."""
    parent = runs_parent(cfg, loc)
    candidates = []
    for metrics, folder in finished_runs(parent):
        try:
            protocol = load_config(folder).get("protocol", "classification")
        except UserError:
            continue
        if protocol == cfg.protocol and "rank1" in metrics:
            candidates.append((metrics["rank1"], folder))
    if not candidates:
        raise UserError(f"no saved {cfg.protocol} model for {loc.run_tag} f={cfg.length} "
                        f"under {parent}; train one with SM-SGE.py (--save_flag 1)")
    return max(candidates)[1]


def unfinished_runs(parent: str):
    """Run folders under `parent` with a resume checkpoint, oldest first."""
    found = [os.path.dirname(p) for p in glob.glob(os.path.join(parent, "*", RESUME_FILE))]
    return sorted(found, key=os.path.getmtime)
