"""The two scripts' command lines, derived from the declared configuration (utils/config.py),
and the error handling that turns bad input into one line and exit code 2.
"""
import argparse
import os
import sys

from utils.config import RunConfig, add_flags, parse_flags
from utils.errors import UserError

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
    from utils.config import field_of_flag
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return {field_of_flag(flag) for flag in vars(probe.parse_args(argv))}


# Exit codes of every entry script (README: "Exit codes").
EXIT_OK, EXIT_USER_ERROR, EXIT_STOPPED = 0, 2, 3   # 3: --time_budget spent (SM-SGE.py)
EXIT_SIGINT, EXIT_SIGTERM = 130, 143               # 128 + the signal's number, as shells do


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `timeout`, batch schedulers and container stops send), raised where the
    program is, like Ctrl-C: the same clean-up runs, nothing is left half-written."""


def _raise_terminated(signum, frame):
    raise Terminated()


def resume_command(script: str, argv) -> str:
    """The command line that continues a run: the same flags, any --resume replaced."""
    import shlex
    args, i = [], 0
    while i < len(argv):
        if argv[i] == "--resume":
            i += 2 if i + 1 < len(argv) and not argv[i + 1].startswith("-") else 1
            continue
        if not argv[i].startswith("--resume="):
            args.append(argv[i])
        i += 1
    return shlex.join(["python", script] + args)


def guarded(work, script: str = "", argv=None) -> int:
    """Run an entry script's work; bad input ends in one line on stderr and exit code 2, an
    interrupt (Ctrl-C or SIGTERM) in one line and 130 or 143. The exit code is otherwise what
    work() returns (None: 0). script, argv: name the command that resumes an interrupted run."""
    import signal
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        code = work()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        name, code = (("SIGTERM", EXIT_SIGTERM) if isinstance(exc, Terminated)
                      else ("interrupted", EXIT_SIGINT))
        message = f"{name}: stopped; nothing half-written was left behind"
        run_dir = getattr(exc, "run_dir", None)
        if run_dir and script:
            argv = sys.argv[1:] if argv is None else argv
            message += f"; continue with: {resume_command(script, argv)} --resume {run_dir}"
        elif script and hasattr(exc, "run_dir"):
            message += "; the run had not finished its first epoch, so there is nothing to resume"
        print(message, file=sys.stderr)
        return code
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code or EXIT_OK


def select_device(cfg: RunConfig) -> None:
    """The engine (--backend) and the device (--gpu). Must run before Keras, TensorFlow or
    JAX is imported: they read these settings once."""
    from models.engine import select
    select(cfg.backend)
    os.environ["CUDA_VISIBLE_DEVICES"] = "" if cfg.gpu < 0 else str(cfg.gpu)
    if cfg.gpu < 0:
        os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
