"""Command-line flags shared by SM-SGE.py and evaluate.py, and their validation.

Flag names and defaults follow the reference README; values are checked here so that a
wrong value gets one clear line, never a traceback.
"""
import argparse
import os
import sys

from models.draws import S_RANGES
from utils.datasets import CASIA_PROBE_TYPES, REGISTRY
from utils.errors import UserError

DEFAULT_DATASET = "demo"


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default=DEFAULT_DATASET,
                   help=f"one of {', '.join(REGISTRY)} (default: the built-in demo)")
    p.add_argument("--split", default="", help="IAS test split: A or B")
    p.add_argument("--length", default="6", help="sequence length f (4, 6, 8, 10; CASIA_B 20, 30, 40)")
    p.add_argument("--view", default="", help="CASIA_B cross-view test view, 0..10")
    p.add_argument("--probe_type", default="",
                   help=f"CASIA_B matching probe.gallery, one of {', '.join(CASIA_PROBE_TYPES)}")
    p.add_argument("--gpu", default="0", help="GPU number; -1 forces the CPU")
    p.add_argument("--protocol", default="classification", choices=("classification", "retrieval"),
                   help="classification (the paper's) or retrieval (probe/gallery CMC and mAP)")
    p.add_argument("--no_progress", action="store_true", help="hide progress bars")
    p.add_argument("--data_dir", default="Datasets",
                   help="folder holding the datasets in the released layout (default: Datasets)")


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    """Flags that shape the model or its scoring: SM-SGE.py, and evaluate.py for the
    authors' checkpoints (our own run folders carry their settings in config.json)."""
    p.add_argument("--fusion_lambda", default="1", help="collaboration fusion coefficient, 0..1")
    p.add_argument("--P", default="8", help="attention heads per structural relation layer")
    p.add_argument("--n_hood", default="1", help="joint-scale attention neighbourhood: (A+I)^n_hood")
    p.add_argument("--batch_size", default="", help="override the per-dataset batch size (also the scoring batch)")
    p.add_argument("--zero_frame", default="1", help="1: the reference's zero-frame prefix (f+1 prefixes)")
    p.add_argument("--drop_last_test", default="1",
                   help="1: like the reference, score test data in full batches only")
    # The reference's research switches that change the maths (README: "Research switches").
    p.add_argument("--struct_only", default="0", help="1: no collaborative relations (reference switch)")
    p.add_argument("--global_att", default="0", help="1: attention over all node pairs (reference switch)")
    p.add_argument("--last_pre", default="0", help="1: only the last prefix's logits (reference switch)")
    p.add_argument("--pred_margin", default="0", help="0, 1, 2: predict frames that many steps ahead")


def training_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="SM-SGE.py", description="Self-supervised pre-training of SM-SGE, then person Re-ID.")
    _add_data_flags(p)
    _add_model_flags(p)
    p.add_argument("--sample_num", default="1", help="sampling rounds r of the pretext task")
    p.add_argument("--pre_train", default="1", help="1: pre-train; 0: reload the saved pre-trained model")
    p.add_argument("--save_flag", default="1", help="1: save the Re-ID model under RN/")
    p.add_argument("--pre_epochs", default="", help="pre-training epochs (default: per dataset)")
    p.add_argument("--patience", default="100", help="early-stopping patience of the Re-ID stage")
    p.add_argument("--loss", default="l1", help="reconstruction loss: l1, MSE or l2")
    p.add_argument("--task", default="pre", choices=("pre", "none"),
                   help="pre: self-supervised pre-training; none: Re-ID on the untrained encoder")
    p.add_argument("--ord_sample", default="0", help="1: subsequence draws take frames 0..k-1 (reference switch)")
    p.add_argument("--s_range", default="all", choices=S_RANGES,
                   help="reference switch: any value but 'all' keeps only the first draw (k=1) in the losses")
    p.add_argument("--fresh_draws", default="0",
                   help="1: new random subsequences every step (the paper's wording); 0: drawn once (reference)")
    p.add_argument("--encoder_ckpt", default="",
                   help="with --pre_train 0: start from an authors' pre-trained TF1 checkpoint (prefix or folder)")
    # Beyond the reference.
    p.add_argument("--seed", default="0", help="seed of weights, sampling and data order")
    p.add_argument("--selection", default="test", choices=("test", "val"),
                   help="model selection on the test set (reference) or on a validation split")
    p.add_argument("--val_fraction", default="0.2", help="share of each identity held out with --selection val")
    p.add_argument("--pre_lr", default="", help="override the per-dataset pre-training learning rate")
    p.add_argument("--reid_lr", default="", help="override the per-dataset Re-ID learning rate")
    p.add_argument("--max_reid_epochs", default="0", help="cap on Re-ID epochs (0: until early stop)")
    p.add_argument("--optimizers", default="four", choices=("four", "one"),
                   help="four per-scale Adam optimisers (reference) or one on the summed loss")
    p.add_argument("--scales", default="joint,part,body,hyper",
                   help="graph scales to use, comma-separated (the paper's scale ablation)")
    p.add_argument("--csi", default="1", help="1: cross-scale skeleton inference heads; 0: own scale only")
    p.add_argument("--cache", default="1", help="1: encode once and train the classifier on cached encodings")
    p.add_argument("--xla", default="1", help="1: compile the pre-training step with XLA")
    p.add_argument("--resume", nargs="?", const="latest", default="",
                   help="continue an unfinished run: its folder, or none for the newest one with "
                        "these settings (repeat the run's flags)")
    p.add_argument("--time_budget", default="",
                   help="minutes: after the epoch that spends them, save the run and stop "
                        "(continue with --resume)")
    return p


def evaluation_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate.py", description="Evaluate a saved SM-SGE Re-ID model.")
    _add_data_flags(p)
    _add_model_flags(p)
    p.add_argument("--model_dir", default="best",
                   help="'best' (highest recorded Rank-1 for this dataset/split/length), a run "
                        "folder under RN/, or an authors' TF1 checkpoint (its .ckpt prefix or folder)")
    return p


def _number(args, name, cast, low=None, high=None, allow_empty=False):
    """Parse flag `name` with int or float; None when empty and allowed; bounds checked."""
    value = getattr(args, name)
    if allow_empty and value == "":
        return None
    kind = "an integer" if cast is int else "a number"
    try:
        number = cast(value)
    except ValueError:
        raise UserError(f"--{name} must be {kind}, got '{value}'") from None
    if (low is not None and number < low) or (high is not None and number > high):
        if high is None:
            bounds = f"at least {low}"
        else:
            bounds = f"{low}..{high}" if cast is int else f"between {low} and {high}"
        raise UserError(f"--{name} must be {bounds}, got {number}")
    return number


def _int(args, name, low=None, high=None, allow_empty=False):
    return _number(args, name, int, low, high, allow_empty)


def _float(args, name, low=None, high=None, allow_empty=False):
    return _number(args, name, float, low, high, allow_empty)


def _flag01(args, name):
    value = getattr(args, name)
    if value not in ("0", "1"):
        raise UserError(f"--{name} must be 0 or 1, got '{value}'")
    return value == "1"


def _scales(value: str) -> list:
    from utils.graphs import SCALES
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in SCALES]
    if unknown or not names:
        raise UserError(f"--scales takes a comma-separated subset of {','.join(SCALES)}; "
                        f"got '{value}'")
    return [s for s in SCALES if s in names]


def common_options(args) -> dict:
    if args.dataset not in REGISTRY:
        raise UserError(f"unknown --dataset '{args.dataset}'; choose one of {', '.join(REGISTRY)}")
    opts = dict(dataset=args.dataset, split=args.split or None,
                length=_int(args, "length", 1, 200),
                view=_int(args, "view", 0, 10, allow_empty=True),
                probe_type=args.probe_type or None, protocol=args.protocol,
                progress=not args.no_progress)
    gpu = _int(args, "gpu", -1)
    opts["gpu"] = gpu
    opts["data_dir"] = args.data_dir
    return opts


def model_options(args, length: int) -> dict:
    """The model flags; `length` (already parsed by common_options) bounds --pred_margin."""
    margin = _int(args, "pred_margin", 0, 2)
    if length - 2 * margin < 1:
        raise UserError(f"--pred_margin {margin} leaves no draw for --length {length}; "
                        f"use a margin below {length / 2:g}")
    return dict(fusion_lambda=_float(args, "fusion_lambda", 0.0, 1.0), P=_int(args, "P", 1, 64),
                n_hood=_int(args, "n_hood", 1, 10),
                batch_size=_int(args, "batch_size", 1, allow_empty=True),
                zero_frame=_flag01(args, "zero_frame"),
                drop_last_test=_flag01(args, "drop_last_test"),
                struct_only=_flag01(args, "struct_only"), global_att=_flag01(args, "global_att"),
                last_pre=_flag01(args, "last_pre"), pred_margin=margin)


def training_options(args) -> dict:
    opts = common_options(args)
    opts.update(model_options(args, opts["length"]))
    if args.loss not in ("l1", "MSE", "l2"):
        raise UserError(f"--loss must be l1, MSE or l2, got '{args.loss}'")
    if args.encoder_ckpt and args.pre_train != "0":
        raise UserError("--encoder_ckpt loads a pre-trained encoder: use it with --pre_train 0")
    opts.update(
        sample_num=_int(args, "sample_num", 1, 20),
        pre_train=_flag01(args, "pre_train"), save_flag=_flag01(args, "save_flag"),
        pre_epochs=_int(args, "pre_epochs", 0, allow_empty=True),
        patience=_int(args, "patience", 1), loss=args.loss,
        seed=_int(args, "seed", 0), selection=args.selection,
        val_fraction=_float(args, "val_fraction", 0.01, 0.9),
        pre_lr=_float(args, "pre_lr", 1e-8, 10.0, allow_empty=True),
        reid_lr=_float(args, "reid_lr", 1e-8, 10.0, allow_empty=True),
        max_reid_epochs=_int(args, "max_reid_epochs", 0),
        optimizers=args.optimizers, cache=_flag01(args, "cache"),
        xla=_flag01(args, "xla"), scales=_scales(args.scales), cross_scale=_flag01(args, "csi"),
        task=args.task, ord_sample=_flag01(args, "ord_sample"), s_range=args.s_range,
        fresh_draws=_flag01(args, "fresh_draws"), encoder_ckpt=args.encoder_ckpt or None,
        resume=args.resume or None,
        time_budget=_float(args, "time_budget", 0.0, allow_empty=True))
    return opts


def guarded(work) -> int:
    """Run an entry script's work; bad input ends in one line on stderr and exit code 2."""
    try:
        work()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    return 0


def select_device(gpu: int) -> None:
    """Must run before TensorFlow is imported: it reads CUDA_VISIBLE_DEVICES once."""
    os.environ["CUDA_VISIBLE_DEVICES"] = "" if gpu < 0 else str(gpu)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
