"""Evaluate a saved SM-SGE Re-ID model: confusion matrix, Rank-n, loss, Rank-1 and nAUC.

    python evaluate.py --dataset KS20 --model_dir best
    python evaluate.py --dataset demo --model_dir RN/demo/6/<run folder>

This script only parses flags; the work is done in utils/pipeline.py.
"""
import sys

from utils.cli import common_options, evaluation_parser, select_device
from utils.errors import UserError


def main(argv=None) -> int:
    args = evaluation_parser().parse_args(argv)
    try:
        opts = common_options(args)
        opts["model_dir"] = args.model_dir
        select_device(opts["gpu"])
        from utils.pipeline import run_evaluation
        run_evaluation(opts)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
