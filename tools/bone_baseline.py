"""A simple baseline for context: nearest neighbour on mean bone lengths.

    python tools/bone_baseline.py --dataset KGBD --length 6
    python tools/bone_baseline.py --dataset KGBD --length 6 --protocol retrieval

Each window becomes the vector of its bones' lengths averaged over its frames (a body-shape
signature with no motion). Classification: a test window gets, for every identity, minus
the distance to that identity's nearest training window as its score (Rank-1 = 1-nearest
neighbour; Rank-n and the ROC nAUC from the same scores). Retrieval: probe windows are
ranked against the gallery by Euclidean distance (CMC, mAP). No training, no tuning.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from utils.cli import guarded  # noqa: E402


def mean_bone_lengths(sequences: np.ndarray, bones) -> np.ndarray:
    """[N, f, V, 3] -> [N, bones]: each bone's length, averaged over the frames."""
    i, j = np.array(bones).T
    return np.linalg.norm(sequences[:, :, i] - sequences[:, :, j], axis=-1).mean(axis=1)


def nearest_per_class(test: np.ndarray, train: np.ndarray, train_labels: np.ndarray,
                      num_classes: int, chunk: int = 512) -> np.ndarray:
    """[N_test, classes] minus the distance to each class's nearest training vector."""
    from utils.metrics import pairwise_euclidean
    scores = np.empty((len(test), num_classes))
    for s in range(0, len(test), chunk):
        d = pairwise_euclidean(test[s:s + chunk], train)
        for c in range(num_classes):
            scores[s:s + chunk, c] = -d[:, train_labels == c].min(axis=1)
    return scores


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bone_baseline.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="demo")
    p.add_argument("--length", default="6")
    p.add_argument("--split", default="")
    p.add_argument("--data_dir", default="Datasets")
    p.add_argument("--protocol", default="classification", choices=("classification", "retrieval"))
    args = p.parse_args(argv)

    def work():
        from utils.config import RunConfig, resolve
        from utils.data import load_reid_data
        from utils.errors import UserError
        from utils.metrics import cmc_and_map_features, cmc_nauc, rank_n_from_scores, roc_nauc
        try:
            length = int(args.length)
        except ValueError:
            raise UserError(f"--length must be an integer, got {args.length!r}") from None
        from utils.storage import variant_of
        start = time.time()
        variant = variant_of(resolve(RunConfig(dataset=args.dataset, length=length,
                                               split=args.split or None, data_dir=args.data_dir,
                                               protocol=args.protocol)))
        loc, layout = variant.files, variant.layout
        bones = layout.bones
        if args.protocol == "retrieval":
            from utils.data import retrieval_splits
            probe, gallery = retrieval_splits(loc, layout, variant.retrieval_sets())
            cmc, mean_ap, valid, _ = cmc_and_map_features(
                mean_bone_lengths(probe.sequences, bones), mean_bone_lengths(gallery.sequences, bones),
                probe.person_ids, gallery.person_ids)
            print(f"{loc.run_tag} f={length} retrieval, mean bone lengths + Euclidean NN "
                  f"({valid} probes, gallery {len(gallery.person_ids)}): Rank-1 {100 * cmc[0]:.2f}  "
                  f"Rank-5 {100 * cmc[4]:.2f}  Rank-10 {100 * cmc[9]:.2f}  mAP {100 * mean_ap:.2f}  "
                  f"nAUC(CMC) {100 * cmc_nauc(cmc):.2f}  ({time.time() - start:.0f} s)")
            return
        data = load_reid_data(loc, layout)
        scores = nearest_per_class(mean_bone_lengths(data.test.sequences, bones),
                                   mean_bone_lengths(data.train.sequences, bones),
                                   data.train_labels, data.num_classes)
        ranks = rank_n_from_scores(scores, data.test_labels, (1, 5, 10))
        nauc = roc_nauc(scores, data.test_labels, data.num_classes)
        print(f"{loc.run_tag} f={length} classification, mean bone lengths + 1-NN "
              f"({len(data.test_labels)} test windows, all scored): Rank-1 {100 * ranks[1]:.2f}  "
              f"Rank-5 {100 * ranks[5]:.2f}  Rank-10 {100 * ranks[10]:.2f}  nAUC {100 * nauc:.2f}  "
              f"({time.time() - start:.0f} s)")
    return guarded(work)


if __name__ == "__main__":
    sys.exit(main())
