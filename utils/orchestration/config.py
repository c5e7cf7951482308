"""The run configuration, declared once.

Every setting of a run is one field of RunConfig: its type, default, allowed values, help
text and, where the reference has one, the per-dataset value it takes when left unset
(docs/method.md §6). Both scripts' flags, their validation, config.json and the reloading of a
saved run are derived from these fields. A new switch is one field here plus its use.

Flags keep the reference's spelling: every value is parsed from its string here so that a
wrong one gets a single clear line (never a traceback).
"""
import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from typing import List, Optional, Union

from models.draws import S_RANGES
from models.engine import ENGINES, select
from utils.foundation.errors import UserError
from utils.foundation.graphs import SCALES as SCALE_NAMES

# What a setting affects: one tag per field, from which everything that asks "does this
# setting change results?" is derived (config.json, the resume check, the pre-trained
# encoder's record and its folder's name, what evaluate.py may choose anew).
AFFECTS = {
    "operational": "how the run is carried out, not what it computes: not saved, free to "
                   "differ on resume",
    "environment": "where and on what it runs (files, device, engine, compiler): saved, free "
                   "to differ on resume and at evaluation",
    "data": "which test protocol and data variant of the dataset: saved, checked on resume",
    "pretraining": "what the pre-trained encoder is (data, architecture, pretext task, its "
                   "training): saved with the encoder, names its folder, checked when it is "
                   "reloaded and on resume",
    "reid": "the Re-ID stage and its scoring after pre-training: saved, checked on resume",
}


def setting(default, help: str, group: str, kind=None, choices=None, low=None, high=None,
            flag: Optional[str] = None, per_dataset: Optional[str] = None, *, affects: str,
            selects: bool = False):
    """One declared setting. group: which scripts take it as a flag ("data" and "model":
    both; "train": SM-SGE.py; "eval": evaluate.py; "derived": none, filled by resolve).
    per_dataset: the Dataset attribute (utils/data/datasets.py) that supplies it when it is left unset.
    affects: one of AFFECTS, the earliest stage whose result the value changes; every new
    setting must say (a pre-training switch left untagged would silently reuse an encoder
    pre-trained without it). selects: the flag chooses a variant of the datasets that declare
    it among their SELECTORS (utils/data/datasets.py), as IAS's --split."""
    if affects not in AFFECTS:
        raise ValueError(f"affects must be one of {', '.join(AFFECTS)}, got {affects!r}")
    meta = dict(help=help, group=group, kind=kind, choices=choices, low=low, high=high,
                flag=flag, per_dataset=per_dataset, affects=affects, selects=selects)
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RunConfig:
    # -- data: which dataset variant, where it is ----------------------------------------
    dataset: str = setting("demo", "dataset name (default: the built-in demo)", "data",
                           affects="pretraining")
    split: Optional[str] = setting(None, "test split, of a dataset with several (IAS: A or B)",
                                   "data", str, affects="data", selects=True)
    length: int = setting(6, "sequence length f (4, 6, 8, 10; CASIA_B 20, 30, 40)", "data",
                          low=1, high=200, affects="pretraining")
    view: Optional[int] = setting(None, "CASIA_B cross-view test view, 0..10", "data", int,
                                  low=0, high=10, affects="data", selects=True)
    probe_type: Optional[str] = setting(None, "CASIA_B matching probe.gallery, e.g. nm.nm",
                                        "data", str, affects="data", selects=True)
    gpu: int = setting(0, "GPU number; -1 forces the CPU", "data", low=-1, affects="environment")
    backend: Optional[str] = setting(None, "engine: tensorflow or jax (default: KERAS_BACKEND "
                                     "if set, else tensorflow)", "data", str, choices=ENGINES,
                                     affects="environment")
    protocol: str = setting("classification", "classification (the paper's) or retrieval "
                            "(probe/gallery CMC and mAP), or a protocol registered in "
                            "utils/orchestration/protocols.py", "data", affects="data")
    distance: str = setting("euclidean", "retrieval: distance between sequence encodings",
                            "data", choices=("euclidean", "cosine"), affects="reid")
    progress: bool = setting(True, "hide progress bars", "data", flag="no_progress",
                             affects="operational")
    data_dir: str = setting("Datasets", "folder holding the datasets in the released format",
                            "data", affects="environment")
    layout: Optional[Union[str, dict]] = setting(
        None, "skeleton layout: a built-in name (kinect_v1, kinect_v2, casia14, coco17, "
        "mediapipe33) or a layout file PATH.json (default: the dataset's, or its manifest's)",
        "train", str, affects="pretraining")
    # -- model: shape of the encoder and its scoring -------------------------------------
    fusion_lambda: float = setting(1.0, "collaboration fusion coefficient, 0..1", "model",
                                   low=0.0, high=1.0, affects="pretraining")
    P: int = setting(8, "attention heads per structural relation layer", "model", low=1, high=64,
                     affects="pretraining")
    n_hood: int = setting(1, "joint-scale attention neighbourhood: (A+I)^n_hood", "model",
                          low=1, high=10, affects="pretraining")
    batch_size: Optional[int] = setting(None, "batch size (also the scoring batch)", "model",
                                        int, low=1, per_dataset="batch_size", affects="pretraining")
    zero_frame: bool = setting(True, "1: the reference's zero-frame prefix (f+1 prefixes)", "model",
                               affects="reid")
    drop_last_test: bool = setting(True, "1: like the reference, score test data in full "
                                   "batches only", "model", affects="reid")
    struct_only: bool = setting(False, "1: no collaborative relations (reference switch)",
                                "model", affects="pretraining")
    global_att: bool = setting(False, "1: attention over all node pairs (reference switch)",
                               "model", affects="pretraining")
    last_pre: bool = setting(False, "1: only the last prefix's logits (reference switch)", "model",
                             affects="reid")
    # -- training -------------------------------------------------------------------------
    sample_num: int = setting(1, "sampling rounds r of the pretext task", "train", low=1, high=20,
                              affects="pretraining")
    pre_train: bool = setting(True, "1: pre-train; 0: reload the saved pre-trained model", "train",
                              affects="reid")
    save_flag: bool = setting(True, "1: save the Re-ID model under RN/", "train", affects="reid")
    pre_epochs: Optional[int] = setting(None, "pre-training epochs", "train", int, low=0,
                                        per_dataset="pretrain_epochs", affects="pretraining")
    patience: int = setting(100, "early-stopping patience of the Re-ID stage", "train", low=1,
                            affects="reid")
    loss: str = setting("l1", "reconstruction loss: l1, MSE or l2", "train",
                        choices=("l1", "MSE", "l2"), affects="pretraining")
    task: str = setting("pre", "pre: self-supervised pre-training; none: Re-ID on the "
                        "untrained encoder", "train", choices=("pre", "none"),
                        affects="pretraining")
    ord_sample: bool = setting(False, "1: subsequence draws take frames 0..k-1 (reference "
                               "switch)", "train", affects="pretraining")
    s_range: str = setting("all", "reference switch: any value but 'all' keeps only the first "
                           "draw (k=1) in the losses", "train", choices=S_RANGES,
                           affects="pretraining")
    pred_margin: int = setting(0, "0, 1, 2: predict frames that many steps ahead", "model",
                               low=0, high=2, affects="pretraining")
    fresh_draws: bool = setting(False, "1: new random subsequences every step (the paper's "
                                "wording); 0: drawn once (reference)", "train",
                                affects="pretraining")
    encoder_ckpt: Optional[str] = setting(None, "with --pre_train 0: start from an authors' "
                                          "pre-trained TF1 checkpoint (prefix or folder)",
                                          "train", str, affects="reid")
    seed: int = setting(0, "seed of weights, sampling and data order", "train", low=0,
                        affects="pretraining")
    selection: str = setting("test", "model selection on the test set (reference) or on a "
                             "validation split", "train", choices=("test", "val"), affects="reid")
    val_fraction: float = setting(0.2, "share of each identity held out with --selection val",
                                  "train", low=0.01, high=0.9, affects="reid")
    pre_lr: Optional[float] = setting(None, "pre-training learning rate", "train", float,
                                      low=1e-8, high=10.0, per_dataset="pretrain_lr",
                                      affects="pretraining")
    reid_lr: Optional[float] = setting(None, "Re-ID learning rate", "train", float, low=1e-8,
                                       high=10.0, per_dataset="reid_lr", affects="reid")
    max_reid_epochs: int = setting(0, "cap on Re-ID epochs (0: until early stop)", "train", low=0,
                                   affects="reid")
    optimizers: str = setting("four", "four per-scale Adam optimisers (reference) or one on "
                              "the summed loss", "train", choices=("four", "one"),
                              affects="pretraining")
    scales: List[str] = setting(list(SCALE_NAMES), "graph scales to use, comma-separated (the "
                                "paper's scale ablation)", "train", choices=SCALE_NAMES,
                                affects="pretraining")
    cross_scale: bool = setting(True, "1: cross-scale skeleton inference heads; 0: own scale "
                                "only", "train", flag="csi", affects="pretraining")
    cache: bool = setting(True, "1: encode once and train the classifier on cached encodings",
                          "train", affects="reid")
    xla: bool = setting(True, "1: compile the pre-training step with XLA (TensorFlow engine; "
                        "JAX always compiles with XLA)", "train", affects="environment")
    steps_per_call: Optional[int] = setting(None, "pre-training steps run by one compiled "
                                            "call (default: 20 on JAX; on TensorFlow 10 "
                                            "with XLA, 1 with --xla 0); the same "
                                            "computation either way",
                                            "train", int, low=1, affects="environment")
    resume: Optional[str] = setting(None, "continue an unfinished run: its folder, or none for "
                                    "the newest one with these settings (repeat the run's flags)",
                                    "train", str, affects="operational")
    time_budget: Optional[float] = setting(None, "minutes: after the epoch that spends them, "
                                           "save the run and stop (continue with --resume)",
                                           "train", float, low=0.0, affects="operational")
    snapshot_epochs: List[int] = setting([], "comma-separated pre-training epochs after which "
                                         "the encoder is also saved as if --pre_epochs were "
                                         "that number (a learning curve from one run)", "train",
                                         low=1, affects="operational")
    # -- evaluate.py ------------------------------------------------------------------------
    model_dir: str = setting("best", "'best' (highest recorded Rank-1 for this dataset/split/"
                             "length), a run folder under RN/, or an authors' TF1 checkpoint "
                             "(its .ckpt prefix or folder)", "eval", affects="operational")
    allow_seen_walks: bool = setting(False, "1: retrieval on a classification run's encoder "
                                     "scores even when probe or gallery walks were in its "
                                     "pre-training data (the result is marked so)", "eval",
                                     affects="operational")
    # -- derived from the dataset by resolve(); not flags ----------------------------------
    num_joints: Optional[int] = setting(None, "joints per skeleton (from the layout)", "derived",
                                        affects="pretraining")
    lstm_size: Optional[int] = setting(None, "LSTM size", "derived", per_dataset="lstm_size",
                                       affects="pretraining")
    min_save_epoch: int = setting(0, "first 0-based Re-ID epoch whose model may be kept "
                                  "(IAS: 10, as the reference)", "derived", affects="reid")

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def saved(self) -> dict:
        """What config.json holds: every setting that shapes what the run computes."""
        return {k: v for k, v in dataclasses.asdict(self).items()
                if k not in fields_affecting("operational")}

    @classmethod
    def from_saved(cls, values: dict, where: str) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"{where} has a setting this version does not know: {unknown[0]}")
        try:
            return cls(**values)
        except ValueError as exc:   # a resolved record lacking a derived value
            raise UserError(f"{where} is incomplete ({exc}); the run folder is damaged") from None


def _as_declared(name: str):
    """RunConfig's field `name` again, for a subclass that narrows its type."""
    f = RunConfig.__dataclass_fields__[name]
    return field(default=f.default, metadata=f.metadata)


@dataclass
class ResolvedConfig(RunConfig):
    """A RunConfig after resolve() (or reloaded from a run's config.json): the per-dataset and
    derived values are filled, so their types are no longer Optional. What the user asked
    for is a RunConfig; what the stages run with is a ResolvedConfig."""
    layout: Union[str, dict] = _as_declared("layout")
    batch_size: int = _as_declared("batch_size")
    pre_epochs: int = _as_declared("pre_epochs")
    pre_lr: float = _as_declared("pre_lr")
    reid_lr: float = _as_declared("reid_lr")
    num_joints: int = _as_declared("num_joints")
    lstm_size: int = _as_declared("lstm_size")

    def __post_init__(self):
        unset = [f.name for f in dataclasses.fields(self)
                 if (f.metadata["per_dataset"] or f.metadata["group"] == "derived"
                     or f.name == "layout") and getattr(self, f.name) is None]
        if unset:
            raise ValueError(f"a resolved configuration needs {', '.join(unset)}")


def fields_affecting(*tags: str) -> tuple:
    """Names of the settings tagged with any of `tags` (AFFECTS), in declaration order."""
    return tuple(f.name for f in dataclasses.fields(RunConfig) if f.metadata["affects"] in tags)


def selectors(cfg: RunConfig) -> dict:
    """The dataset-selecting flags' values ({"split": "A", "view": None, ...})."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(RunConfig)
            if f.metadata["selects"]}


def _fields(groups):
    return [f for f in dataclasses.fields(RunConfig) if f.metadata["group"] in groups]


def _kind(f):
    if f.default is dataclasses.MISSING:   # a list (default_factory)
        return list
    return f.metadata["kind"] or type(f.default)


def field_of_flag(flag: str) -> str:
    for f in dataclasses.fields(RunConfig):
        if (f.metadata["flag"] or f.name) == flag:
            return f.name
    return flag


def add_flags(parser: argparse.ArgumentParser, groups) -> None:
    """Declare the flags of the given groups; values stay strings until parse_flags."""
    for f in _fields(groups):
        meta, flag = f.metadata, "--" + (f.metadata["flag"] or f.name)
        if f.name == "progress":
            parser.add_argument(flag, action="store_true", help=meta["help"])
            continue
        if f.name == "resume":
            parser.add_argument(flag, nargs="?", const="latest", default="", help=meta["help"])
            continue
        among = "any" if _kind(f) is list else "one"
        help_text = meta["help"] + (f"; {among} of {', '.join(meta['choices'])}" if meta["choices"] else "")
        help_text += " (default: per dataset)" if meta["per_dataset"] else ""
        parser.add_argument(flag, default=_flag_text(f), help=help_text)


def _flag_text(f) -> str:
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if default is None:
        return ""
    if isinstance(default, bool):
        return "1" if default else "0"
    if isinstance(default, list):
        return ",".join(map(str, default))
    return f"{default:g}" if isinstance(default, float) else str(default)


def parse_flags(args: argparse.Namespace, groups) -> RunConfig:
    """Check and convert every flag of the groups; unset fields keep their defaults."""
    values = {}
    for f in _fields(groups):
        flag = f.metadata["flag"] or f.name
        text = getattr(args, flag)
        if f.name == "progress":
            values["progress"] = not text
            continue
        values[f.name] = _parse(f, flag, text)
    cfg = RunConfig(**values)
    _check_together(cfg)
    return cfg


def parse_number(text: str, flag: str, kind=int, low=None, high=None):
    """A numeric flag's text -> its value, or one line saying what is wrong: not a number,
    not finite, or outside [low, high] (either bound may be None)."""
    try:
        number = kind(text)
    except ValueError:
        raise UserError(f"--{flag} must be {'an integer' if kind is int else 'a number'}, "
                        f"got '{text}'") from None
    if not math.isfinite(number):   # nan passes every bound check; neither is JSON
        raise UserError(f"--{flag} must be a finite number, got '{text}'")
    if (low is not None and number < low) or (high is not None and number > high):
        if high is None:
            bounds = f"at least {low}"
        else:
            bounds = f"{low}..{high}" if kind is int else f"between {low} and {high}"
        raise UserError(f"--{flag} must be {bounds}, got {number}")
    return number


def _parse(f, flag: str, text: str):
    meta, kind = f.metadata, _kind(f)
    if text == "" and f.default is None:
        return None
    if kind is bool:
        if text not in ("0", "1"):
            raise UserError(f"--{flag} must be 0 or 1, got '{text}'")
        return text == "1"
    if kind is list:
        items = [v.strip() for v in text.split(",") if v.strip()]
        if meta["choices"]:       # a non-empty subset of named values, in declared order
            if not items or any(n not in meta["choices"] for n in items):
                raise UserError(f"--{flag} takes a comma-separated subset of "
                                f"{','.join(meta['choices'])}; got '{text}'")
            return [c for c in meta["choices"] if c in items]
        try:                      # whole numbers, sorted, each at least `low`
            numbers = sorted({int(v) for v in items})
        except ValueError:
            raise UserError(f"--{flag} takes comma-separated whole numbers, got '{text}'") from None
        if numbers and numbers[0] < meta["low"]:
            raise UserError(f"--{flag} values must be at least {meta['low']}, got {numbers[0]}")
        return numbers
    if kind in (int, float):
        return parse_number(text, flag, kind, meta["low"], meta["high"])
    if meta["choices"] and text not in meta["choices"]:
        *first, last = meta["choices"]
        raise UserError(f"--{flag} must be {', '.join(first)} or {last}, got '{text}'")
    return text


def _check_together(cfg: RunConfig) -> None:
    from utils.data.datasets import REGISTRY, prepared_datasets
    if cfg.dataset not in REGISTRY and cfg.dataset not in prepared_datasets(cfg.data_dir):
        known = list(REGISTRY) + prepared_datasets(cfg.data_dir)
        raise UserError(f"unknown --dataset '{cfg.dataset}'; choose one of {', '.join(known)}, or "
                        f"prepare it under {cfg.data_dir} with tools/prepare_kgbd.py --name {cfg.dataset}")
    from utils.orchestration.protocols import protocol_named
    protocol_named(cfg.protocol)   # an unknown one is refused here, at the flags
    if cfg.length - 2 * cfg.pred_margin < 1:
        raise UserError(f"--pred_margin {cfg.pred_margin} leaves no draw for --length "
                        f"{cfg.length}; use a margin below {cfg.length / 2:g}")
    if cfg.encoder_ckpt and cfg.pre_train:
        raise UserError("--encoder_ckpt loads a pre-trained encoder: use it with --pre_train 0")


def resolve_config(cfg: RunConfig, dataset) -> ResolvedConfig:
    """Fill the per-dataset settings (docs/method.md §6) that the user left unset from the
    selected dataset's row, and the layout: --layout, else a prepared dataset's manifest,
    else the dataset's own; recorded as a built-in's name or a layout file's whole content.
    A configuration already resolved (a saved run's) is returned as it is."""
    if isinstance(cfg, ResolvedConfig):
        return cfg
    from utils.data.datasets import manifest_layout
    from utils.foundation.skeleton import get_layout, layout_record
    changes = {f.name: dataset.setting(f.metadata["per_dataset"]) for f in dataclasses.fields(cfg)
               if f.metadata["per_dataset"] and getattr(cfg, f.name) is None}
    layout = cfg.layout or manifest_layout(cfg.data_dir, dataset.name, cfg.length) or dataset.layout
    if layout is None:
        raise UserError(f"{dataset.name} has no manifest with a layout under {cfg.data_dir}; "
                        f"give --layout")
    changes.update(layout=layout_record(layout), num_joints=get_layout(layout).num_joints,
                   lstm_size=dataset.lstm_size)
    if cfg.task == "none":   # no pre-training: Re-ID on the randomly initialised encoder
        changes["pre_epochs"] = 0
    epochs = changes.get("pre_epochs", cfg.pre_epochs)
    if cfg.snapshot_epochs and (not cfg.pre_train or cfg.snapshot_epochs[-1] >= epochs):
        raise UserError(f"--snapshot_epochs saves encoders during pre-training: each value must "
                        f"be below --pre_epochs ({epochs}) and --pre_train must be 1")
    changes["min_save_epoch"] = dataset.min_save_epoch
    changes["backend"] = select(cfg.backend)
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    return ResolvedConfig(**dict(values, **changes))
