"""SM-SGE: self-supervised multi-scale skeleton graph encoding for person Re-ID.

    python SM-SGE.py                       # the whole pipeline on the built-in demo data
    python SM-SGE.py --dataset KS20        # on the authors' pre-processed KS20 release
    python SM-SGE.py --dataset IAS --split A --pre_train 0

This script only parses flags; the work is done in utils/pipeline.py and models/.
"""
import sys

from utils.cli import select_device, training_options, training_parser
from utils.errors import UserError


def main(argv=None) -> int:
    args = training_parser().parse_args(argv)
    try:
        opts = training_options(args)
        select_device(opts["gpu"])
        from utils.pipeline import run_training
        run_training(opts)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
