"""Export the authors' TF1 checkpoints to NumPy, so that machines without TensorFlow (the
JAX engine alone, as on the GPU machines) can load them:

    python tools/export_checkpoint.py RN/best_models/KS20_87.5_95.8_formal [MORE ...]

Writes <prefix>.npz beside each checkpoint (every variable by its name); the loaders use
it when it is there. Needs TensorFlow.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from utils.foundation.errors import guarded  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="export_checkpoint.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", help="checkpoint prefixes (or folders with one)")
    args = p.parse_args(argv)

    def work():
        from models.reference_checkpoint import export_checkpoint
        for path in args.checkpoints:
            print(f"written {export_checkpoint(path)}")
    return guarded(work)


if __name__ == "__main__":
    sys.exit(main())
