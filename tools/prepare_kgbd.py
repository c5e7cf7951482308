"""Turn raw skeleton recordings into the released format that SM-SGE.py reads.

    python tools/prepare_kgbd.py RAW_DATA_DIR                  # KGBD text files (Data/PersonNNN/K.txt)
    python tools/prepare_kgbd.py RAW --lengths 6 --seed 1
    python tools/prepare_kgbd.py RAW --format folders --layout kinect_v2 --name KS20

Writes, for every length f, <out>/<name>/<f>/ (classification protocol: one walk per
person for testing), <out>/<name>/<f>/retrieval/ (probe/gallery protocol) and
<out>/<name>/<f>/manifest.json. With --holdout_people N, N people (seeded) are left out of
both protocols and written whole, for identification, to <out>/<name>/<f>/holdout/, and the
others' walks by classification role to <out>/<name>/<f>/known/. The method and format are in utils/data/raw_skeletons.py and the
docs/datasets.md ("KGBD from its raw recordings").
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils.foundation.errors import guarded  # noqa: E402
from utils.foundation.errors import UserError  # noqa: E402
from utils.orchestration.cli import add_reader_flags, reader_options  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prepare_kgbd.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("raw_dir", help="raw data: KGBD's Data/ folder (or the repository above it), "
                                   "or <root>/<person>/<recording>.{npy,csv} with --format folders")
    p.add_argument("--out", default="Datasets", help="output root (default: Datasets)")
    p.add_argument("--lengths", default="4,6,8,10", help="comma-separated window lengths f")
    p.add_argument("--seed", default="0", help="seed of the walk splits (same seed, same files)")
    p.add_argument("--format", default="kgbd", choices=("kgbd", "folders"))
    p.add_argument("--layout", default="kinect_v1",
                   help="joint layout of --format folders: a built-in name (kinect_v1, kinect_v2, "
                        "casia14, coco17, mediapipe33) or a layout file PATH.json")
    p.add_argument("--name", default="KGBD",
                   help="dataset name to write; any name of your own runs with SM-SGE.py --dataset NAME")
    p.add_argument("--skip_bad", action="store_true",
                   help="skip unreadable or malformed files (and count them) instead of stopping")
    p.add_argument("--joint_order", default="sdk", choices=("sdk", "file"),
                   help="KGBD: joints re-ordered by name into the Kinect SDK order (sdk, default) "
                        "or kept in the files' order, Head first (file: the authors' convention)")
    p.add_argument("--train_stride", default="",
                   help="training windows start every S frames (default: f, non-overlapping; the "
                        "authors' IAS/BIWI pre-processing uses 1); test windows never overlap")
    p.add_argument("--split_unit", default="walk", choices=("walk", "window"),
                   help="classification split: hold out one whole walk per person (walk, default: "
                        "our reading of the protocol), or take the same number of test windows "
                        "evenly from every walk, so training and test share walks but no frames "
                        "(window: a research switch for the other reading; retrieval unchanged)")
    p.add_argument("--holdout_people", default="0",
                   help="set N people aside (a seeded choice, listed in manifest.json): none of "
                        "their walks is trained on, pre-trained on, selected or calibrated on; "
                        "they are written whole to <out>/<name>/<f>/holdout/<person>/<walk>.npy, "
                        "strangers for measuring identify.py, and the others' walks by role to "
                        "<out>/<name>/<f>/known/{train,test}/ (default 0)")
    add_reader_flags(p)
    p.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    return p


def parse_lengths(text: str):
    try:
        lengths = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise UserError(f"--lengths takes comma-separated integers, got {text!r}") from None
    if not lengths or lengths[0] < 1 or lengths[-1] > 200:
        raise UserError(f"--lengths must be between 1 and 200, got {text!r}")
    return lengths


def main(argv=None) -> int:
    args = parser().parse_args(argv)

    def work():
        from tqdm import tqdm
        from utils.data.prepare_dataset import prepare, summary_line
        try:
            seed = int(args.seed)
        except ValueError:
            raise UserError(f"--seed must be an integer, got {args.seed!r}") from None
        lengths = parse_lengths(args.lengths)
        _, max_coordinate = reader_options(args)
        try:
            holdout = int(args.holdout_people)
        except ValueError:
            holdout = -1
        if holdout < 0:
            raise UserError(f"--holdout_people must be a whole number of people (0 or more), "
                            f"got {args.holdout_people!r}")
        stride = 0
        if args.train_stride:
            try:
                stride = int(args.train_stride)
            except ValueError:
                stride = -1
            if stride < 1:
                raise UserError(f"--train_stride must be a positive integer, got {args.train_stride!r}")
        start = time.time()
        result = prepare(args.raw_dir, args.out, args.name, args.format, args.layout, lengths,
                         seed, args.skip_bad,
                         progress=lambda it: tqdm(it, desc="reading recordings", leave=False,
                                                  disable=True if args.no_progress else None),
                         joint_order=args.joint_order, train_stride=stride,
                         bad_frames=args.bad_frames, max_coordinate=max_coordinate,
                         split_unit=args.split_unit, holdout_people=holdout)
        for length in lengths:
            print(summary_line(result.manifests[length]))
        if result.skipped_files:
            print(f"{len(result.skipped_files)} file(s) skipped (--skip_bad); listed in each manifest.json")
        print(f"written under {os.path.join(args.out, args.name)} in {time.time() - start:.0f} s")
    return guarded(work)


if __name__ == "__main__":
    sys.exit(main())
