"""Evaluate a saved SM-SGE Re-ID model: confusion matrix, Rank-n, loss, Rank-1 and nAUC.

    python evaluate.py --dataset KS20 --model_dir best
    python evaluate.py --dataset demo --model_dir RN/demo/6/<run folder>
    python evaluate.py --dataset KS20 --model_dir RN/best_models/KS20_87.5_95.8_formal  # authors' file

This script only parses flags; the work is done in utils/orchestration/pipeline.py.
"""
import sys

from utils.foundation.errors import guarded
from utils.orchestration.cli import (evaluation_options, evaluation_parser, given_settings,
                                     select_device)


def main(argv=None) -> int:
    parser = evaluation_parser()
    args = parser.parse_args(argv)

    def work():
        cfg = evaluation_options(args)
        select_device(cfg)
        from utils.orchestration.pipeline import run_evaluation
        run_evaluation(cfg, given=given_settings(parser, argv))
    return guarded(work)


if __name__ == "__main__":
    sys.exit(main())
