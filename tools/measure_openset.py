"""How well does a run say `unknown`? Open-set identification metrics for every score.

    python tools/measure_openset.py RUN --known DIR --unknown DIR [--calibrate DIR] [--enrol DIR]

Folders hold <person>/<recording> files, as identify.py reads them:
- --known: later walks of the people the run knows (classifier: folders named as its
  identities; gallery: as the --enrol folders), never trained on, enrolled or calibrated on;
- --unknown: walks of people the run and the gallery never saw;
- --calibrate: where the classifier's thresholds are set (held-out walks of its people, and
  walks of other strangers than --unknown's), as identify.py --calibrate;
- --enrol: a gallery is built from it (not saved) and its thresholds set by leave-one-out
  on it, as identify.py --enrol.
--calibrate_share S instead of --calibrate sets a share S of --known's people and of
--unknown's people aside to calibrate on (a seeded choice); the rates are then reported on
the other people only. A dataset prepared with tools/prepare_kgbd.py --holdout_people has
the folders: --known <f>/known/test, --unknown <f>/holdout, --enrol <f>/known/train.

Every recording is read and encoded once. For each route and score (identify.py --score)
the tool prints:
- closed-set Rank-1 per recording;
- FNIR at FPIR = 1, 5 and 10 %, with the threshold read off the --unknown scores themselves
  (the DET curve's points; utils/foundation/openset.py);
- the rates on --known and --unknown with thresholds set beforehand, as identify.py sets
  them: at --max_false_accept 0.05 (an FPIR target) and at the default --max_reject 0.05.
  The classifier's come from --calibrate, the gallery's from the enrolment.
With both routes over the same people, `fused` adds the classifier's max_logit and the
gallery's mahalanobis score. Each is first standardised by the mean and spread of its best
scores on --calibrate's walks of known people; the fused threshold is set there too.
Writes DIR/openset_det.png (the DET curves) and DIR/openset.json (every number), with
--out DIR (default: the current folder).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from utils.foundation.errors import UserError, guarded  # noqa: E402
from utils.orchestration.cli import add_reader_flags, reader_options, select_device  # noqa: E402

TARGETS = (0.01, 0.05, 0.10)
CALIBRATED = (("max_false_accept", 0.05), ("max_reject", 0.05))
FUSED = (("classifier", "max_logit"), ("gallery", "mahalanobis"))


def split_people(encoded, share: float, seed: int):
    """(calibration part, report part) of encoded recordings, by person: round(share × P)
    of the P people, a seeded choice, go to calibration with all their recordings."""
    people = sorted({p for p, _, _ in encoded})
    order = np.random.default_rng(seed).permutation(len(people))
    chosen = {people[i] for i in order[:int(round(share * len(people)))]}
    if not chosen or len(chosen) == len(people):
        raise UserError(f"--calibrate_share {share:g} of {len(people)} people leaves one side "
                        f"empty; give more people or another share")
    return ([e for e in encoded if e[0] in chosen], [e for e in encoded if e[0] not in chosen])


def score_matrix(identifier, encoded, by, score):
    """(names, [recordings, identities] scores) of encoded recordings on one route."""
    rows, names = [], None
    for _, _, encodings in encoded:
        scores, names, _ = identifier.scores(encodings, by, score)
        rows.append(np.asarray(scores, np.float64))
    return list(names), np.stack(rows)


def searches(names, matrix, persons):
    """(known best, correct, unknown best) of scored recordings: known are the recordings
    of people among `names`."""
    best, top = matrix.max(axis=1), np.asarray(names)[matrix.argmax(axis=1)]
    known = np.array([p in names for p in persons], bool)
    return best[known], top[known] == np.asarray(persons)[known], best[~known]


def check_people(persons, names, folder, enrolled: bool, route):
    wrong = sorted({p for p in persons if (p in names) != enrolled})
    if wrong:
        what = ("are not among its people" if enrolled else "are among its people")
        raise UserError(f"{folder}: {', '.join(wrong[:3])} {what} (the {route}'s: "
                        f"{', '.join(list(names)[:3])}, ...); --known holds walks of the people "
                        f"the run knows, --unknown of others")


def measure(known, correct, unknown, calibrations):
    """One row of numbers: Rank-1, FNIR at the FPIR targets, and the calibrated rates."""
    from utils.foundation.openset import det_curve, fnir, fnir_at_fpir, fpir, rank1
    at = fnir_at_fpir(known, correct, unknown, TARGETS)
    det = det_curve(known, correct, unknown)
    row = dict(rank1=rank1(correct), known=int(len(known)), unknown=int(len(unknown)),
               fnir_at_fpir={f"{t:g}": at[t] for t in TARGETS},
               det=dict(fpir=det.fpir.tolist(), fnir=det.fnir.tolist()), calibrated={})
    for name, cal in calibrations.items():
        if cal is not None:
            row["calibrated"][name] = dict(threshold=cal.threshold, fpir=fpir(unknown, cal.threshold),
                                           fnir=fnir(known, correct, cal.threshold),
                                           calibration_fpir=cal.false_accept,
                                           calibration_fnir=cal.fnir)
    return row


def calibrations_of(known, correct, unknown, data, score):
    """{operating point: Calibration} on calibration searches (None where it cannot be set)."""
    from utils.foundation.identity_scores import calibrate
    out = {}
    for point, rate in CALIBRATED:
        if point == "max_false_accept" and not len(unknown):
            out[f"{point} {rate:g}"] = None
            continue
        kwargs = (dict(max_reject=None, max_false_accept=rate) if point == "max_false_accept"
                  else dict(max_reject=rate))
        out[f"{point} {rate:g}"] = calibrate(known, correct, unknown, data, score=score, **kwargs)
    return out


def table(rows) -> str:
    pct = lambda v: "–" if v is None else f"{100 * v:.0f} %"   # noqa: E731
    head = ("| route | score | Rank-1 | FNIR at FPIR 1 % | 5 % | 10 % | set at FPIR 5 %: FPIR / FNIR"
            " | set at max_reject 5 %: FPIR / FNIR |")
    lines = [head, "|" + "---|" * 8]
    for (route, score), r in rows.items():
        at = [pct(r["fnir_at_fpir"][f"{t:g}"]["fnir"]) for t in TARGETS]
        cal = []
        for point, rate in CALIBRATED:
            c = r["calibrated"].get(f"{point} {rate:g}")
            cal.append("–" if c is None else f"{pct(c['fpir'])} / {pct(c['fnir'])}")
        lines.append(f"| {route} | {score} | {pct(r['rank1'])} | " + " | ".join(at + cal) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="measure_openset.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a finished run folder")
    p.add_argument("--known", required=True, help="walks of known people: <person>/<recording>")
    p.add_argument("--unknown", required=True, help="walks of people never seen: <person>/<recording>")
    p.add_argument("--calibrate", default="", help="the classifier's calibration walks")
    p.add_argument("--calibrate_share", default="",
                   help="instead of --calibrate: this share of --known's people and of "
                        "--unknown's people (a seeded choice, --seed) calibrate; the rest report")
    p.add_argument("--seed", default="0", help="seed of --calibrate_share's choice (default 0)")
    p.add_argument("--enrol", default="", help="build a gallery from these walks (not saved)")
    p.add_argument("--out", default=".", help="where openset_det.png and openset.json go")
    add_reader_flags(p)   # as identify.py (drop: recordings of a dataset prepared with it)
    p.add_argument("--allow_seen_walks", default="0",
                   help="1: measure on walks the run was trained on too, marked so (default 0: "
                        "refused)")
    args = p.parse_args(argv)

    def work():
        from utils.orchestration.config import RunConfig, parse_number
        select_device(RunConfig(gpu=-1))
        from utils.foundation.io import atomic_save_json, make_folder
        from utils.foundation.plots import plot_det
        from utils.foundation.identity_scores import CLASSIFIER_SCORES, GALLERY_SCORES
        from utils.orchestration.identify import load_identifier, recording_vector
        bad_frames, max_coordinate = reader_options(args)
        identifier = load_identifier(args.run, by="classifier", bad_frames=bad_frames,
                                     max_coordinate=max_coordinate, need_scores=False,
                                     load_gallery=False)
        if identifier.classifier is None and not args.enrol:
            raise UserError(f"{args.run} holds no classifier (a retrieval run): give --enrol "
                            f"GALLERY_DIR to measure its gallery")
        quiet = lambda *_: None   # noqa: E731
        identifier.allow_seen = parse_number(args.allow_seen_walks, "allow_seen_walks", low=0, high=1) == 1
        # rates measured on walks the run was trained on would flatter it: refused
        known_rec = identifier.encoded(args.known, quiet, scored="known walks")
        unknown_rec = identifier.encoded(args.unknown, quiet, scored="unknown walks")
        cal_rec = (identifier.encoded(args.calibrate, quiet, scored="calibration walks")
                   if args.calibrate else [])
        cal_data = args.calibrate and os.path.abspath(args.calibrate)   # what calibration saw
        if args.calibrate_share:
            if args.calibrate:
                raise UserError("give --calibrate DIR or --calibrate_share S, not both")
            share = parse_number(args.calibrate_share, "calibrate_share", float)
            if not 0 < share < 1:
                raise UserError(f"--calibrate_share must lie between 0 and 1, got {share}")
            seed = parse_number(args.seed, "seed")
            cal_k, known_rec = split_people(known_rec, share, seed)
            cal_u, unknown_rec = split_people(unknown_rec, share, seed)
            cal_rec = cal_k + cal_u
            cal_data = (f"{share:g} of the people of {os.path.abspath(args.known)} and "
                        f"{os.path.abspath(args.unknown)} (seed {seed})")
        print(f"{len(known_rec)} known and {len(unknown_rec)} unknown recordings"
              + (f", {len(cal_rec)} to calibrate on" if cal_rec else ""))
        test = known_rec + unknown_rec
        persons = [p for p, _, _ in test]
        routes = {}
        if identifier.classifier is not None:
            routes["classifier"] = CLASSIFIER_SCORES
            for recs, folder, enrolled in ((known_rec, args.known, True),
                                           (unknown_rec, args.unknown, False)):
                check_people([p for p, _, _ in recs], identifier.identities, folder, enrolled,
                             "classifier")
        galleries = {}
        if args.enrol:
            raw = {}
            for person, _, encodings in identifier.encoded(args.enrol, quiet):
                raw.setdefault(person, []).append(recording_vector(encodings))
            for score in GALLERY_SCORES:
                galleries[score] = identifier.gallery_from(raw, args.enrol, score=score)
            routes["gallery"] = GALLERY_SCORES
            names = galleries[GALLERY_SCORES[0]].names
            check_people([p for p, _, _ in known_rec], names, args.known, True, "gallery")
            check_people([p for p, _, _ in unknown_rec], names, args.unknown, False, "gallery")
        rows, scored, cal_scored = {}, {}, {}
        for route, scores in routes.items():
            for score in scores:
                if route == "gallery":
                    identifier.gallery = galleries[score]
                names, matrix = score_matrix(identifier, test, route, score)
                scored[route, score] = (names, matrix)
                if route == "classifier":
                    calibrations = {f"{pt} {r:g}": None for pt, r in CALIBRATED}
                    if cal_rec:
                        cal_scored[route, score] = score_matrix(identifier, cal_rec, route, score)
                        k, c, u = searches(*cal_scored[route, score], [p for p, _, _ in cal_rec])
                        calibrations = calibrations_of(k, c, u, cal_data, score)
                else:
                    if cal_rec and (route, score) in FUSED:
                        cal_scored[route, score] = score_matrix(identifier, cal_rec, route, score)
                    calibrations = calibrations_of(   # leave-one-out on the enrolment
                        *galleries[score].searches, galleries[score].calibration.data, score)
                rows[route, score] = measure(*searches(names, matrix, persons), calibrations)
        fused = fuse(scored, cal_scored, cal_rec, persons, cal_data)
        if fused is not None:
            rows["fused", "+".join(s for _, s in FUSED)] = fused
        print(table(rows))
        make_folder(args.out)
        plot_det({f"{route} {score}": (r["det"]["fpir"], r["det"]["fnir"])
                  for (route, score), r in rows.items()},
                 os.path.join(args.out, "openset_det.png"),
                 f"Open-set identification: {len(known_rec)} known, {len(unknown_rec)} unknown walks")
        atomic_save_json(os.path.join(args.out, "openset.json"), dict(
            run=os.path.abspath(args.run), known=os.path.abspath(args.known),
            unknown=os.path.abspath(args.unknown), calibrate=cal_data or None,
            enrol=args.enrol and os.path.abspath(args.enrol),
            seen_walks=sorted(identifier.seen_scored),   # --allow_seen_walks 1: not clean
            rows=[dict(route=route, score=score, **r) for (route, score), r in rows.items()]))
        print(f"written: {os.path.join(args.out, 'openset_det.png')}, "
              f"{os.path.join(args.out, 'openset.json')}")
    return guarded(work)


def fuse(scored, cal_scored, cal_rec, persons, calibrate_dir):
    """The fused row (see the module's note), or None without both parts or --calibrate."""
    if not all(k in scored and k in cal_scored for k in FUSED):
        return None
    names = scored[FUSED[0]][0]
    if sorted(names) != sorted(scored[FUSED[1]][0]):
        return None
    cal_persons = [p for p, _, _ in cal_rec]

    def aligned(key, table):
        own, matrix = table[key]
        return matrix[:, [own.index(n) for n in names]]

    parts = []
    for key in FUSED:   # standardised by the known calibration walks' best scores
        cal = aligned(key, cal_scored)
        known = np.array([p in names for p in cal_persons])
        if not known.any():
            return None
        best = cal[known].max(axis=1)
        parts.append((best.mean(), best.std() + 1e-12, key))
    fused = lambda table: sum((aligned(k, table) - m) / s for m, s, k in parts)   # noqa: E731
    k, c, u = searches(names, fused(cal_scored), cal_persons)
    calibrations = calibrations_of(k, c, u, calibrate_dir, "fused")
    return measure(*searches(names, fused(scored), persons), calibrations)


if __name__ == "__main__":
    sys.exit(main())
