"""The two scripts' command lines, derived from the declared configuration (utils/orchestration/config.py).
The guard that turns bad input into one line and an exit code is in utils/foundation/errors.py."""
import argparse
import os

from utils.orchestration.config import RunConfig, add_flags, parse_flags

TRAINING_GROUPS = ("data", "model", "train")
# evaluate.py: our run folders carry their settings in config.json; the model flags serve
# the authors' checkpoints, which carry none.
EVALUATION_GROUPS = ("data", "model", "eval")


def training_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="SM-SGE.py", description="Self-supervised pre-training of SM-SGE, then person Re-ID.")
    add_flags(p, TRAINING_GROUPS)
    return p


def evaluation_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate.py", description="Evaluate a saved SM-SGE Re-ID model.")
    add_flags(p, EVALUATION_GROUPS)
    return p


def training_options(args) -> RunConfig:
    return parse_flags(args, TRAINING_GROUPS)


def evaluation_options(args) -> RunConfig:
    return parse_flags(args, EVALUATION_GROUPS)


def given_settings(parser: argparse.ArgumentParser, argv=None) -> set:
    """The RunConfig fields whose flags appear on the command line (whatever their value)."""
    import copy
    from utils.orchestration.config import field_of_flag
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return {field_of_flag(flag) for flag in vars(probe.parse_args(argv))}


def add_reader_flags(p: argparse.ArgumentParser) -> None:
    """How a recording is read and judged: declared once, for the preparation tool and
    for identify.py and tools/measure_openset.py, which must judge a recording as the
    preparation did."""
    p.add_argument("--bad_frames", default="stop", choices=("stop", "drop"),
                   help="a frame with a non-finite value or one beyond --max_coordinate: stop with "
                        "one line naming file, frame and joint (default), or drop such frames and "
                        "frames with a lost joint (0,0,0), cutting the recording there")
    p.add_argument("--max_coordinate", default="20",
                   help="largest plausible |coordinate| in metres (default 20)")


def reader_options(args) -> tuple:
    """(bad_frames, max_coordinate) of add_reader_flags' flags, or one line."""
    from utils.foundation.errors import UserError
    try:
        max_coordinate = float(args.max_coordinate)
    except ValueError:
        max_coordinate = -1.0
    if not max_coordinate > 0 or max_coordinate == float("inf"):
        raise UserError(f"--max_coordinate must be a positive number of metres, got "
                        f"{args.max_coordinate!r}")
    return args.bad_frames, max_coordinate


def select_device(cfg: RunConfig) -> None:
    """The engine (--backend) and the device (--gpu). Must run before Keras, TensorFlow or
    JAX is imported: they read these settings once."""
    from models.engine import select
    select(cfg.backend)
    os.environ["CUDA_VISIBLE_DEVICES"] = "" if cfg.gpu < 0 else str(cfg.gpu)
    if cfg.gpu < 0:
        os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
