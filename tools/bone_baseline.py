"""A simple baseline for context: nearest neighbour on mean bone lengths.

    python tools/bone_baseline.py --dataset KGBD --length 6
    python tools/bone_baseline.py --dataset KGBD --length 6 --protocol retrieval

Each window becomes the vector of its bones' lengths averaged over its frames (a body-shape
signature with no motion). Classification: a test window gets, for every identity, minus
the distance to that identity's nearest training window as its score (Rank-1 = 1-nearest
neighbour; Rank-n and the ROC nAUC from the same scores). Retrieval: probe windows are
ranked against the gallery by Euclidean distance (CMC, mAP). No training, no tuning. Both
run through the pipeline's own protocols (utils/orchestration/protocols.py: NearestNeighbour, Retrieval)
with this encode function; --distance cosine is offered.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from utils.foundation.errors import guarded  # noqa: E402


def mean_bone_lengths(sequences: np.ndarray, bones) -> np.ndarray:
    """[N, f, V, 3] -> [N, bones]: each bone's length, averaged over the frames."""
    i, j = np.array(bones).T
    return np.linalg.norm(sequences[:, :, i] - sequences[:, :, j], axis=-1).mean(axis=1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bone_baseline.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="demo")
    p.add_argument("--length", default="6")
    p.add_argument("--split", default="")
    p.add_argument("--data_dir", default="Datasets")
    p.add_argument("--protocol", default="classification", choices=("classification", "retrieval"))
    p.add_argument("--distance", default="euclidean", choices=("euclidean", "cosine"))
    args = p.parse_args(argv)

    def work():
        from utils.orchestration.config import RunConfig
        from utils.data.reid_data import load_variant
        from utils.foundation.errors import UserError
        from utils.orchestration.protocols import NearestNeighbour, Retrieval
        from utils.orchestration.run import resolve
        try:
            length = int(args.length)
        except ValueError:
            raise UserError(f"--length must be an integer, got {args.length!r}") from None
        start = time.time()
        run = resolve(RunConfig(dataset=args.dataset, length=length, split=args.split or None,
                                data_dir=args.data_dir, protocol=args.protocol))
        variant = run.variant
        bones = variant.layout.bones
        encode = lambda sequences: mean_bone_lengths(sequences, bones)   # noqa: E731
        if isinstance(run.protocol, Retrieval):
            result = Retrieval(args.distance).run(encode, run.protocol.data(variant))
            what = f"retrieval, mean bone lengths + {args.distance} NN"
        else:
            result = NearestNeighbour(args.distance).run(
                encode, load_variant(variant))
            what = f"classification, mean bone lengths + {args.distance} 1-NN"
        print(f"{variant.run_tag} f={length} {what}  ({time.time() - start:.0f} s)")
        for line in result.summary():
            print(line)
    return guarded(work)


if __name__ == "__main__":
    sys.exit(main())
