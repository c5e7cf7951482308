"""Who is this walker? Identify new recordings (or videos) with a trained SM-SGE run.

    python identify.py --model_dir RUN --calibrate HELDOUT_DIR     # classifier: set the unknown threshold
    python identify.py --model_dir RUN --enrol GALLERY_DIR         # or enrol people: <person>/<recording>
    python identify.py --model_dir RUN walk.npy more_walks/ [--json out.json]
    python identify.py --model_dir best --dataset demo --length 4 walk.npy

One line per recording: the decision (an identity, or `unknown` below the calibrated
threshold), the top-k identities with their scores and the windows used. This script only
parses flags; the work is done in utils/orchestration/identify.py (also a small Python API).
"""
import argparse
import os
import sys

from utils.foundation.errors import UserError, guarded
from utils.orchestration.cli import add_reader_flags, reader_options, select_device


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="identify.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*",
                   help="recordings (.npy/.csv, [frames, joints, 3] or [frames, joints*3], in the "
                        "run's layout), folders of them, or videos (with the video environment)")
    p.add_argument("--model_dir", default="best",
                   help="a finished run folder under RN/, or 'best' (highest recorded Rank-1 "
                        "for --dataset/--length/--protocol, as evaluate.py)")
    p.add_argument("--dataset", default="demo", help="with --model_dir best: the dataset")
    p.add_argument("--length", default="6", help="with --model_dir best: the length f")
    p.add_argument("--split", default="", help="with --model_dir best: IAS split A or B")
    p.add_argument("--view", default="", help="with --model_dir best: CASIA_B test view, 0..10")
    p.add_argument("--probe_type", default="",
                   help="with --model_dir best: CASIA_B probe.gallery matching, e.g. nm.nm")
    p.add_argument("--protocol", default="classification", choices=("classification", "retrieval"),
                   help="with --model_dir best: which kind of run")
    p.add_argument("--data_dir", default="Datasets", help="where the datasets are (default Datasets)")
    p.add_argument("--top_k", default="5", help="identities listed per recording (default 5)")
    p.add_argument("--json", default="", help="also write the results to this JSON file")
    p.add_argument("--watch", default="",
                   help="keep the model loaded and identify every recording in this folder, "
                        "and each one that appears in it later, until Ctrl-C")
    p.add_argument("--enrol", default="",
                   help="build a gallery from GALLERY_DIR/<person>/<recording> (mean encoding "
                        "per person) and calibrate its threshold; replaces the previous gallery")
    p.add_argument("--calibrate", default="",
                   help="calibrate the classifier's unknown threshold on HELDOUT_DIR/<person>/"
                        "<recording>: held-out recordings of the run's people (folders named as "
                        "its identities), optionally also of people it does not know")
    p.add_argument("--gallery", default="", help="the gallery file (default RUN/gallery.npz)")
    p.add_argument("--by", default="", choices=("", "classifier", "gallery"),
                   help="score by the classifier or the gallery (default: the gallery if one "
                        "is enrolled, else the classifier)")
    p.add_argument("--score", default="",
                   help="with --calibrate or --enrol: the open-set score the threshold is set on "
                        "and identification then uses; classifier: probability (default), "
                        "max_logit, energy, agreement; gallery: mahalanobis (default), cosine")
    p.add_argument("--max_false_accept", default="",
                   help="operating point, an FPIR target: at most this share of unknown "
                        "people's recordings named (default 0.05 where the calibration data "
                        "holds unknown people, as a gallery of two or more people does)")
    p.add_argument("--max_reject", default="",
                   help="operating point instead: at most this share of known people's "
                        "held-out recordings rejected as unknown (0.05 when no unknown "
                        "people are there to set the FPIR target on)")
    add_reader_flags(p)     # judged as tools/prepare_kgbd.py judges a recording
    p.add_argument("--max_gap", default="", help="videos: as tools/video_to_skeleton.py")
    p.add_argument("--max_jump", default="", help="videos: as tools/video_to_skeleton.py")
    p.add_argument("--min_visibility", default="", help="videos: as tools/video_to_skeleton.py")
    p.add_argument("--allow_seen_walks", default="0",
                   help="1: identify or calibrate on recordings the run was trained on, marked "
                        "so in the output (default 0: refused)")
    p.add_argument("--backend", default="", help="engine: tensorflow or jax")
    p.add_argument("--gpu", default="-1", help="GPU number; -1 (default) uses the CPU")
    p.add_argument("--no_progress", action="store_true", help="accepted for symmetry; no bars")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)

    def work():
        from utils.orchestration.config import RunConfig, parse_number
        cfg = RunConfig(dataset=args.dataset, length=parse_number(args.length, "length", low=1),
                        split=args.split or None, protocol=args.protocol, data_dir=args.data_dir,
                        view=parse_number(args.view, "view", low=0) if args.view else None,
                        probe_type=args.probe_type or None,
                        backend=args.backend or None, gpu=parse_number(args.gpu, "gpu", low=-1),
                        progress=False)
        top_k = parse_number(args.top_k, "top_k", low=1)
        allow_seen = parse_number(args.allow_seen_walks, "allow_seen_walks", low=0, high=1) == 1
        bad_frames, max_coordinate = reader_options(args)
        if not (args.inputs or args.enrol or args.calibrate or args.watch):
            raise UserError("nothing to do: give recordings to identify, or --watch FOLDER, "
                            "or --enrol GALLERY_DIR, or --calibrate HELDOUT_DIR")
        if args.watch and not os.path.isdir(args.watch):
            raise UserError(f"--watch {args.watch}: no such folder")
        from utils.orchestration.identify import parse_rate
        max_false_accept = parse_rate(args.max_false_accept, "--max_false_accept")
        max_reject = parse_rate(args.max_reject, "--max_reject")
        if max_reject is not None and max_false_accept is not None:
            raise UserError("give one operating point: --max_reject or --max_false_accept")
        if args.score and not (args.calibrate or args.enrol):
            raise UserError("--score is chosen when the threshold is set: give it with "
                            "--calibrate HELDOUT_DIR or --enrol GALLERY_DIR (identification "
                            "uses the score stored with the threshold)")
        if args.score and args.calibrate and args.enrol:
            raise UserError("--score names one route's score: calibrate and enrol in two "
                            "commands, each with its own --score")
        from utils.foundation.identity_scores import check_score
        if args.calibrate and args.score:
            check_score("classifier", args.score)
        if args.enrol and args.score:
            check_score("gallery", args.score)
        from utils.foundation.io import check_can_write
        if args.json:
            check_can_write(args.json)       # before the work whose result it is to hold
        video = []
        for flag in ("max_gap", "max_jump", "min_visibility"):
            if getattr(args, flag):
                video += [f"--{flag}", getattr(args, flag)]
        select_device(cfg)
        from utils.orchestration.identify import identify_all, load_identifier, results_record
        from utils.foundation.io import atomic_save_json
        from utils.orchestration.protocols import metric_label
        from utils.orchestration.run import resolve
        from utils.orchestration.storage import GALLERY_FILE, find_best_run
        folder = args.model_dir
        if folder == "best":
            best = resolve(cfg, build=False)
            folder = find_best_run(best)
            ranked_by = metric_label(best.protocol.ranked_by)
            print(f"Best saved model (highest recorded {ranked_by}): {folder}")
        identifier = load_identifier(folder, args.gallery or None, args.by or None, bad_frames,
                                 max_coordinate, need_scores=False, video_options=video,
                                 load_gallery=not args.enrol)
        identifier.allow_seen = allow_seen
        if args.calibrate or args.enrol:
            # one writer per run folder: a second enrolment or calibration waits its turn
            from utils.foundation.io import remove_leftovers
            from utils.foundation.lock import FolderLock
            gallery = args.gallery or os.path.join(folder, GALLERY_FILE)
            with FolderLock(folder, "identify.py " + ("--enrol" if args.enrol else "--calibrate")):
                for place in {folder, os.path.dirname(os.path.abspath(gallery))}:
                    remove_leftovers(place)   # what an enrolment killed mid-write left
                if args.calibrate:
                    identifier.calibrate_classifier(args.calibrate, max_reject, max_false_accept,
                                                score=args.score or None)
                if args.enrol:
                    identifier.enrol(args.enrol, gallery, max_reject, max_false_accept,
                                 score=args.score or None)
        if not (args.inputs or args.watch):
            return 0
        identifier.by = args.by or identifier.by   # after --enrol: the new gallery, unless --by says
        identifier.check_ready()
        calibration = identifier.gallery.calibration if identifier.by == "gallery" else identifier.calibration
        print(f"Identifying by the {identifier.by} of {folder}, score {identifier.score_in_use()}: "
              f"{calibration.describe()}", flush=True)
        results = identify_all(identifier, args.inputs, top_k) if args.inputs else []
        if args.watch:
            from utils.orchestration.identify import watch
            print(f"Watching {args.watch} for recordings (Ctrl-C to stop)", flush=True)
            found, refused = watch(identifier, args.watch, top_k)
            results += found
            print(f"Stopped watching {args.watch}: {len(found)} recording(s) identified, "
                  f"{refused} refused")
        seconds = sum(r.seconds for r in results)
        unknown = sum(r.decision == "unknown" for r in results)
        if results:
            print(f"{len(results)} recording(s): {len(results) - unknown} named, {unknown} "
                  f"unknown; {seconds / len(results):.3f} s per recording (encoding and scoring)")
        if args.json:
            atomic_save_json(args.json, results_record(identifier, results))
        return 0
    return guarded(work)


if __name__ == "__main__":
    sys.exit(main())
