"""SM-SGE: self-supervised multi-scale skeleton graph encoding for person Re-ID.

    python SM-SGE.py                       # the whole pipeline on the built-in demo data
    python SM-SGE.py --dataset KS20        # on the authors' pre-processed KS20 release
    python SM-SGE.py --dataset IAS --split A --pre_train 0

This script only parses flags; the work is done in utils/orchestration/pipeline.py and models/.
"""
import sys

from utils.foundation.errors import EXIT_STOPPED, guarded
from utils.orchestration.cli import select_device, training_options, training_parser


def main(argv=None) -> int:
    args = training_parser().parse_args(argv)

    def work():
        cfg = training_options(args)
        select_device(cfg)
        from utils.orchestration.pipeline import Stopped, run_training
        if isinstance(run_training(cfg), Stopped):
            return EXIT_STOPPED   # --time_budget: a loop can tell "continue" from "finished"
    return guarded(work, "SM-SGE.py", sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
