"""Where runs live on disk: the one place that knows the folders and file names.

    Pre-Trained/<variant>/<f>/<settings>/encoder.npz, config.json    pre-trained encoders
    RN/<variant>/<f>/<stamp>_<protocol>..._seed<s>/                     one training run:
        config.json (at the start), resume.npz (while unfinished), encoder.npz,
        classifier.npz, plots, metrics.json (last: a run is finished when it has one);
        later identify.py may add gallery.npz and identify_calibration.json

The datasets' own released format (Datasets/...) is utils/data/datasets.py's.
"""
import glob
import os
import time

from utils.data.datasets import Variant
from utils.foundation.errors import UserError
from utils.foundation.io import atomic_save_json, read_json
from utils.orchestration.config import ResolvedConfig, RunConfig, fields_affecting

PRETRAINED_ROOT = "Pre-Trained"
RN_ROOT = "RN"
CONFIG_FILE = "config.json"
ENCODER_FILE = "encoder.npz"
CLASSIFIER_FILE = "classifier.npz"
METRICS_FILE = "metrics.json"
RESUME_FILE = "resume.npz"
GALLERY_FILE = "gallery.npz"                   # identify.py --enrol: enrolled people, threshold
CALIBRATION_FILE = "identify_calibration.json"  # identify.py --calibrate: the classifier's threshold
TRAINING_WINDOWS_FILE = "training_windows.npy"  # fingerprints of the windows the run trained on
# A pre-trained encoder's folder is Pre-Trained/<run tag>/<f>/<name>, and its config.json
# records every setting tagged "pretraining" (utils/orchestration/config.py), checked when it is reloaded.
# The name holds every such setting but those the path or the data fix (NAMED_IN_PATH): the
# BASE_NAME ones always, in this order, then every other one whose value is not its default
# (the dataset's row for per-dataset settings) as _<setting>-<value>. So a new pre-training
# setting, once tagged, names the folder of an encoder trained with it; it cannot reuse one.
NAMED_IN_PATH = ("dataset", "length", "layout", "num_joints", "lstm_size")
BASE_NAME = (("fusion_lambda", "lambda{:g}"), ("P", "P{}"), ("n_hood", "nhood{}"),
             ("sample_num", "r{}"), ("loss", "{}"), ("optimizers", "{}"), ("pre_epochs", "e{}"),
             ("seed", "seed{}"))
# Names older versions gave, kept so that their encoders are found: first these two ...
SUFFIX_FIRST = {"scales": lambda v: "scales-" + "-".join(v), "cross_scale": lambda v: "noCSI"}
SUFFIX_LAST = ("task",)   # ... and --task none last
PRETRAIN_KEYS = fields_affecting("pretraining")
def pretrained_dir(cfg: ResolvedConfig, variant: Variant) -> str:
    tag = variant.pretraining_tag   # variants with the same training data may share it
    name = "_".join(form.format(getattr(cfg, key)) for key, form in BASE_NAME)
    for key in _suffix_order():
        value = getattr(cfg, key)
        if value != _default(cfg, variant, key):
            name += "_" + (SUFFIX_FIRST[key](value) if key in SUFFIX_FIRST
                           else f"{key}-{str(value).replace('/', '')}")
    return os.path.join(PRETRAINED_ROOT, tag, str(cfg.length), name)


def _suffix_order():
    named = set(NAMED_IN_PATH) | {key for key, _ in BASE_NAME}
    rest = [k for k in PRETRAIN_KEYS if k not in named and k not in SUFFIX_FIRST
            and k not in SUFFIX_LAST]
    return list(SUFFIX_FIRST) + rest + list(SUFFIX_LAST)


def _default(cfg: RunConfig, variant: Variant, key: str):
    """A setting's default: the dataset's row for a per-dataset one, else the declared one."""
    row = RunConfig.__dataclass_fields__[key].metadata["per_dataset"]
    return variant.dataset.setting(row) if row else getattr(RunConfig(), key)


def runs_parent(variant: Variant, length: int) -> str:
    return os.path.join(RN_ROOT, variant.run_tag, str(length))


def new_run_name(protocol_part: str, seed: int) -> str:
    """<stamp><protocol_part>_seed<s>; protocol_part: the protocol's run_name()."""
    return time.strftime("%Y%m%d-%H%M%S") + protocol_part + f"_seed{seed}"


def save_config(folder: str, values: dict) -> None:
    atomic_save_json(os.path.join(folder, CONFIG_FILE), values)


def _load_json(folder: str, name: str, missing: str) -> dict:
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise UserError(f"{folder} holds no {name}{missing}")
    try:
        return read_json(path, "run record")
    except UserError as exc:
        raise UserError(f"{exc}; the model folder is damaged") from None


def load_config(folder: str) -> dict:
    return _load_json(folder, CONFIG_FILE, "; is it a model folder written by SM-SGE.py?")


def load_metrics(folder: str) -> dict:
    return _load_json(folder, METRICS_FILE, ": not a finished SM-SGE.py run folder")


def load_run_config(folder: str) -> ResolvedConfig:
    return ResolvedConfig.from_saved(load_config(folder), os.path.join(folder, CONFIG_FILE))


def finished_runs(parent: str):
    """(metrics, folder) of every finished run under `parent`."""
    for path in glob.glob(os.path.join(parent, "*", METRICS_FILE)):
        try:
            metrics = read_json(path)
        except UserError:
            continue
        yield metrics, os.path.dirname(path)


def find_best_run(run) -> str:
    """The finished run of run's protocol with the highest recorded value of the metric the
    protocol ranks by (Rank-1); run: utils/orchestration/run.Run."""
    parent, protocol = run.runs_parent, run.protocol
    candidates = []
    for metrics, folder in finished_runs(parent):
        try:
            saved = load_config(folder)
        except UserError:
            continue
        if protocol.made(saved) and protocol.ranked_by in metrics:
            candidates.append((metrics[protocol.ranked_by], folder))
    if not candidates:
        raise UserError(f"no saved {protocol.name} model for {run.variant.run_tag} "
                        f"f={run.cfg.length} under {parent}; train one with SM-SGE.py (--save_flag 1)")
    return max(candidates)[1]


def unfinished_runs(parent: str):
    """Run folders under `parent` with a resume checkpoint, oldest first."""
    found = [os.path.dirname(p) for p in glob.glob(os.path.join(parent, "*", RESUME_FILE))]
    return sorted(found, key=os.path.getmtime)
