"""Open-set identification: the metrics (FPIR, FNIR, DET, FNIR at FPIR targets) on
hand-computed cases, the scores beside them, held-out people in the preparation, and the
measurement tool on a tiny demo run."""
import os

import numpy as np
import pytest

from tests.helpers import KGBD_ORDER, raw_frames
from utils.foundation.errors import UserError
from utils.foundation.skeleton import KGBD_JOINT_NAMES
from utils.foundation.openset import (det_curve, fnir, fnir_at_fpir, fpir, rank1,
                                      threshold_at_fpir)

# Five searches by enrolled people (the third names someone else), four by strangers (two
# tied at 0.65). Every number below is counted by hand from these.
MATED = [0.9, 0.8, 0.7, 0.6, 0.5]
CORRECT = [True, True, False, True, True]
NONMATED = [0.85, 0.65, 0.65, 0.4]


def test_rates_at_a_threshold_count_rejected_and_misnamed():
    assert fpir(NONMATED, 0.7) == 0.25                   # 0.85 returns a name
    assert fnir(MATED, CORRECT, 0.7) == 0.6              # 0.6, 0.5 rejected; 0.7 misnamed
    assert fpir(NONMATED, 0.65) == 0.75                  # at the threshold: accepted
    assert fnir(MATED, CORRECT, -np.inf) == 0.2          # nothing rejected: the misnamed one
    assert fnir(MATED, CORRECT, np.inf) == 1.0 and fpir(NONMATED, np.inf) == 0.0
    assert rank1(CORRECT) == 0.8
    with pytest.raises(ValueError):
        fnir(MATED, CORRECT[:2], 0.5)


def test_det_curve_points():
    det = det_curve(MATED, CORRECT, NONMATED)
    np.testing.assert_array_equal(det.thresholds, [np.inf, 0.9, 0.85, 0.8, 0.7, 0.65, 0.6, 0.5, 0.4])
    np.testing.assert_allclose(det.fpir, [0, 0, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 1.0])
    np.testing.assert_allclose(det.fnir, [1, 0.8, 0.8, 0.6, 0.6, 0.6, 0.4, 0.2, 0.2])
    # every point is what the rates give at its threshold
    for t, a, b in zip(det.thresholds, det.fpir, det.fnir):
        assert (fpir(NONMATED, t), fnir(MATED, CORRECT, t)) == (a, b)


def test_fnir_at_fpir_targets_and_ties():
    # k = floor(target × 4) strangers may be named; t lies just above the (k+1)-th highest
    assert threshold_at_fpir(NONMATED, 0.0) == np.nextafter(0.85, 1)
    assert threshold_at_fpir(NONMATED, 0.25) == np.nextafter(0.65, 1)
    assert threshold_at_fpir(NONMATED, 1.0) == -np.inf
    at = fnir_at_fpir(MATED, CORRECT, NONMATED, targets=(0.1, 0.25, 0.5, 0.75, 1.0))
    assert {x: (r["fpir"], r["fnir"]) for x, r in at.items()} == {
        0.1: (0.0, 0.8),      # none may be named: only 0.9 is above 0.85
        0.25: (0.25, 0.6),
        0.5: (0.25, 0.6),     # two may be, but the next two are tied: both stay rejected
        0.75: (0.75, 0.2),
        1.0: (1.0, 0.2)}
    with pytest.raises(ValueError):
        threshold_at_fpir([], 0.05)


def test_det_plot_is_written(tmp_path):
    from utils.foundation.plots import plot_det
    det = det_curve(MATED, CORRECT, NONMATED)
    path = tmp_path / "det.png"
    plot_det({"a score": (det.fpir, det.fnir), "perfect": ([0, 0, 1], [1, 0, 0])}, str(path), "DET")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------------------
# Held-out people in the preparation

def _people_in(folder, test):
    """Person ids of every window written to a split folder (raw x = person + joint/100)."""
    name = ("t_" if test else "") + "source_x_KGBD_6.npy"
    x = np.load(os.path.join(folder, name)).reshape(-1, 6, 20)
    return {int(round(v)) for v in x[:, 0, 0]}


def test_held_out_people_are_in_no_split_and_are_written_whole(tmp_path):
    from tests.helpers import write_kgbd_tree
    from utils.data.prepare_dataset import prepare, summary_line
    from utils.foundation.skeleton import KINECT_V1
    raw = write_kgbd_tree(tmp_path / "raw", walks={1: 5, 2: 5, 3: 3, 4: 4, 5: 4, 6: 3})
    quiet = dict(lengths=(6,), seed=4, log=lambda *_: None)   # holds out 2 and 4
    every = prepare(str(raw), str(tmp_path / "every"), **quiet).manifests[6]
    man = prepare(str(raw), str(tmp_path / "held"), holdout_people=2, **quiet).manifests[6]
    held = man["holdout"]
    chosen = {int(p) for p in held["persons"]}
    assert chosen == {2, 4} and (held["people"], held["folder"], held["seed"]) == (2, "holdout", 4)
    assert "2 people held out" in summary_line(man)
    base = tmp_path / "held" / "KGBD" / "6"
    for protocol, folder in (("classification", base), ("retrieval", base / "retrieval")):
        persons = man["protocols"][protocol]["persons"]
        assert {int(p) for p in persons} == set(range(1, 7)) - chosen
        for pid, entry in persons.items():          # the others' walks keep their roles
            assert entry == every["protocols"][protocol]["persons"][pid]
        for split, test in (("KGBD_train_npy_data", False), ("KGBD_test_npy_data", True)):
            written = _people_in(folder / split, test)
            assert written and not written & chosen
    # every held-out walk with a window of 6 frames, whole, as the preparation read it
    # (all frames, joints in the SDK order); a walk too short for one window is not written
    order = [KINECT_V1.joint_names.index(KGBD_JOINT_NAMES[n]) for n in KGBD_ORDER]
    for pid, entry in held["persons"].items():
        for name, rec in entry["recordings"].items():
            walk = int(name.split(".")[0])
            if rec["frames"] < 26:
                assert rec["windows"] == 0 and "file" not in rec
                continue
            frames = np.load(base / "holdout" / rec["file"])
            assert rec["file"] == f"{entry['folder']}/{walk}.npy" and frames.dtype == np.float32
            expected = raw_frames(int(pid), walk, rec["frames"])
            np.testing.assert_allclose(frames[:, order], expected, rtol=1e-6)
    # the others' walks, by their classification role, for enrolment (train) and for
    # identification (test: never trained on)
    assert man["holdout"]["known"]["folder"] == "known"
    for pid, entry in man["protocols"]["classification"]["persons"].items():
        for name, rec in entry["recordings"].items():
            path = base / "known" / rec["role"] / entry["folder"] / name.replace(".txt", ".npy")
            assert path.exists() == (rec["role"] in ("train", "test") and rec["windows"] > 0
                                     and "left_out" not in entry)
            if path.exists():
                expected = raw_frames(int(pid), int(name.split(".")[0]), rec["frames"])
                np.testing.assert_allclose(np.load(path)[:, order], expected, rtol=1e-6)
    tests = os.listdir(base / "known" / "test")
    assert len(tests) == 4 - sum(
        "left_out" in e for e in man["protocols"]["classification"]["persons"].values())
    assert all(len(os.listdir(base / "known" / "test" / n)) == 1 for n in tests)
    assert man["holdout"]["known"]["walks"]["test"] == len(tests)
    # seeded: the same seed holds out the same people, other seeds others
    again = prepare(str(raw), str(tmp_path / "again"), holdout_people=2, **quiet).manifests[6]
    assert again["holdout"] == held
    others = [set(prepare(str(raw), str(tmp_path / f"s{s}"), holdout_people=2, lengths=(6,), seed=s,
                          log=lambda *_: None).manifests[6]["holdout"]["persons"]) for s in range(5, 9)]
    assert any(o != set(held["persons"]) for o in others)
    with pytest.raises(UserError, match="--holdout_people 5: only 6 people"):
        prepare(str(raw), str(tmp_path / "x"), holdout_people=5, **quiet)


# ----------------------------------------------------------------------------------------
# The scores (utils/orchestration/identify.py)

def test_classifier_scores_on_hand_logits():
    from utils.foundation.identity_scores import AGREEMENT_TIE_BREAK, classifier_scores, softmax
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 0.0], [2.0, 0.0, 1.0]])   # 3 windows, 3 people
    probability = softmax(logits).mean(axis=0)
    np.testing.assert_allclose(classifier_scores(logits), probability)       # the default
    np.testing.assert_allclose(classifier_scores(logits, "max_logit"), [4 / 3, 4 / 3, 1 / 3])
    # energy: the windows' mean logsumexp for the best, the others lower by their logit gap
    energy = np.mean([np.log(np.exp(row).sum()) for row in logits])
    np.testing.assert_allclose(classifier_scores(logits, "energy"), [energy, energy, energy - 1])
    # agreement: windows 1 and 3 vote for person 0, window 2 for person 1
    np.testing.assert_allclose(classifier_scores(logits, "agreement"),
                               np.array([2 / 3, 1 / 3, 0]) + AGREEMENT_TIE_BREAK * probability)
    with pytest.raises(ValueError):
        classifier_scores(logits, "cosine")


def test_a_score_belongs_to_its_route():
    from utils.foundation.identity_scores import DEFAULT_SCORE, check_score
    assert check_score("classifier", None) == DEFAULT_SCORE["classifier"] == "probability"
    assert check_score("gallery", "") == DEFAULT_SCORE["gallery"] == "mahalanobis"
    assert check_score("gallery", "cosine") == "cosine"
    with pytest.raises(UserError, match="--score cosine does not apply to the classifier; "
                                        "choose one of probability, max_logit, energy, agreement"):
        check_score("classifier", "cosine")


def test_tied_precision_is_ledoit_wolf_of_the_within_person_scatter():
    from sklearn.covariance import ledoit_wolf
    from utils.foundation.identity_scores import mahalanobis_scores, tied_precision
    rng = np.random.default_rng(0)
    vectors = {n: list(rng.normal(size=(k, 6)) + 5 * i) for i, (n, k) in enumerate(
        (("a", 3), ("b", 4), ("c", 1)))}          # c: one recording, no scatter to add
    residuals = np.concatenate([np.stack(vectors[n]) - np.mean(vectors[n], axis=0) for n in "ab"])
    covariance, shrinkage = ledoit_wolf(residuals, assume_centered=True)
    precision, s = tied_precision(vectors)
    np.testing.assert_allclose(precision @ covariance, np.eye(6), atol=1e-9)
    assert s == pytest.approx(shrinkage) and 0 < s < 1
    centres, v = rng.normal(size=(3, 6)), rng.normal(size=6)
    expected = [-(v - c) @ precision @ (v - c) for c in centres]
    np.testing.assert_allclose(mahalanobis_scores(v, centres, precision), expected)
    with pytest.raises(UserError, match="needs two or more recordings of some person"):
        tied_precision({"a": [v], "b": [v]})


def test_tied_precision_of_one_pair_of_recordings_is_fully_shrunk_not_singular():
    """Two recordings of one person (leave-one-out of a two-person enrolment keeps only the
    other's pair): Ledoit and Wolf's rule gives no shrinkage there, and the rank-1 estimate
    cannot be inverted; the shrinkage is then full (a scaled Euclidean distance)."""
    from sklearn.covariance import ledoit_wolf
    from utils.foundation.identity_scores import tied_precision
    rng = np.random.default_rng(1)
    pair = list(rng.normal(size=(2, 8)))
    residuals = np.stack(pair) - np.mean(pair, axis=0)
    assert ledoit_wolf(residuals, assume_centered=True)[1] == pytest.approx(0.0, abs=1e-12)
    precision, s = tied_precision({"a": pair, "b": [rng.normal(size=8)]})
    mu = (residuals ** 2).sum() / len(residuals) / 8
    assert s == 1.0
    np.testing.assert_allclose(precision, np.eye(8) / mu)
    with pytest.raises(UserError, match="identical encodings"):
        tied_precision({"a": [pair[0], pair[0]]})


def _noisy_people(rng, people=5, recordings=10):
    """16-dimensional vectors of people 0.5 apart along one direction, spread 0.05 about
    their mean in 14 directions and 1.0 in two that say nothing about who walks."""
    spread = np.array([0.05] * 14 + [1.0] * 2)
    out = {}
    for p in range(people):
        centre = np.zeros(16)
        centre[:2] = 0.5 * p, 1.0
        out[f"p{p}"] = list(centre + rng.normal(size=(recordings, 16)) * spread)
    return out


def test_mahalanobis_sees_past_a_spread_that_cosine_is_misled_by():
    from utils.foundation.identity_scores import gallery_leave_one_out
    vectors = _noisy_people(np.random.default_rng(1))
    known, correct, unknown = gallery_leave_one_out(vectors, "mahalanobis")
    assert len(known) == len(unknown) == 50
    assert np.mean(correct) == 1.0
    _, correct_cos, _ = gallery_leave_one_out(vectors, "cosine")
    assert np.mean(correct_cos) < 0.6


def test_mahalanobis_leave_one_out_holds_none_of_the_scored_person_out_of_the_fit():
    from utils.foundation.identity_scores import gallery_leave_one_out, mahalanobis_scores, tied_precision
    vectors = _noisy_people(np.random.default_rng(2), people=3, recordings=3)
    known, correct, unknown = gallery_leave_one_out(vectors, "mahalanobis")
    # the first known search: p0's first recording against p0's other two and p1, p2 in
    # full, under the covariance of p1's and p2's recordings only
    precision, _ = tied_precision({n: vectors[n] for n in ("p1", "p2")})
    centres = np.stack([np.mean(vectors["p0"][1:], axis=0)] +
                       [np.mean(vectors[n], axis=0) for n in ("p1", "p2")])
    scores = mahalanobis_scores(vectors["p0"][0], centres, precision)
    assert known[0] == pytest.approx(scores.max()) and correct[0] == (scores.argmax() == 0)
    assert unknown[0] == pytest.approx(scores[1:].max())


def test_calibration_states_fnir_and_its_score_and_reads_older_files():
    from dataclasses import asdict
    from utils.foundation.identity_scores import Calibration, calibrate
    cal = calibrate(MATED, CORRECT, NONMATED, "held-out walks", max_reject=None,
                    max_false_accept=0.25, score="agreement")
    assert cal.threshold == np.nextafter(0.65, 1) and cal.score == "agreement"
    assert (cal.false_accept, cal.fnir, cal.false_reject) == (0.25, 0.6, 0.4)
    text = cal.describe()
    assert "by agreement (FPIR target 25%" in text and "FNIR 60% of 5 known recordings" in text
    assert "FPIR 25% of 4 unknown people's recordings named" in text
    older = {k: v for k, v in asdict(cal).items() if k not in ("score", "fnir")}
    old = Calibration(**older)
    assert old.score == "" and old.fnir is None and "FNIR 60%" in old.describe()


def test_a_gallery_keeps_both_scores_and_an_older_one_keeps_cosine(tmp_path):
    from utils.foundation.identity_scores import (Calibration, calibrate, gallery_leave_one_out,
                                                  person_vector, tied_precision, unit)
    from utils.orchestration.galleries import Gallery
    vectors = {n: [unit(v) for v in vs] for n, vs in _noisy_people(np.random.default_rng(3)).items()}
    names = sorted(vectors)
    cal = calibrate(*gallery_leave_one_out(vectors, "mahalanobis"), "enrolment", score="mahalanobis")
    precision, _ = tied_precision(vectors)
    gallery = Gallery(names, np.stack([person_vector(vectors[n]) for n in names]), np.zeros(16),
                      np.ones(16), [10] * 5, cal, "digest", "people",
                      np.stack([np.mean(vectors[n], axis=0) for n in names]), precision)
    gallery.save(str(tmp_path / "g.npz"))
    again = Gallery.load(str(tmp_path / "g.npz"))
    assert again.score == "mahalanobis"
    probe = vectors["p2"][0]
    np.testing.assert_allclose(again.scores(probe), gallery.scores(probe), rtol=1e-5)
    np.testing.assert_allclose(again.scores(probe, "cosine"), again.vectors @ probe, rtol=1e-6)
    # a gallery written before scores could be chosen: no precision, a threshold on cosine
    older = Calibration(**{k: v for k, v in cal.__dict__.items() if k not in ("score", "fnir")})
    Gallery(names, gallery.vectors, gallery.mean, gallery.scale, gallery.recordings, older,
            "digest", "people").save(str(tmp_path / "old.npz"))
    old = Gallery.load(str(tmp_path / "old.npz"))
    assert old.score == "cosine" and old.scores(probe).shape == (5,)
    with pytest.raises(UserError, match="enrol again"):
        old.scores(probe, "mahalanobis")


# ----------------------------------------------------------------------------------------
# The scripts, on a tiny demo run

@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_demo_run):
    """A tiny classification run (a copy of the shared one) and the demo's walks as files:
    calibration (5th walks, new people 1-4), known (6th walks), unknown (new people 5-10),
    enrolment (walks 1-4)."""
    from tests.helpers import copy_of_run
    from utils.data.demo import generate_recordings, unseen_recordings, write_recordings
    root = tmp_path_factory.mktemp("openset")
    run_dir = copy_of_run(tiny_demo_run, root)
    trained, new = generate_recordings(), unseen_recordings(10, 3)
    write_recordings(str(root / "calibrate"), trained, which=[4])
    write_recordings(str(root / "calibrate"), {k: new[k] for k in range(1, 5)}, prefix="new")
    write_recordings(str(root / "known"), trained, which=[5])
    write_recordings(str(root / "unknown"), {k: new[k] for k in range(5, 11)}, prefix="new")
    write_recordings(str(root / "enrol"), trained, which=[0, 1, 2, 3])
    return root, run_dir


@pytest.mark.slow
def test_measure_openset_reports_every_score_with_honest_thresholds(tiny):
    import json
    from tests.helpers import run
    root, run_dir = tiny
    proc = run(os.path.join("tools", "measure_openset.py"),
               [str(run_dir), "--known", "known", "--unknown", "unknown", "--calibrate",
                "calibrate", "--enrol", "enrol", "--out", "m"], root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "20 known and 18 unknown recordings, 32 to calibrate on" in proc.stdout
    rows = [l for l in proc.stdout.splitlines() if l.startswith("| ") and "route" not in l]
    assert [tuple(c.strip() for c in l.split("|")[1:3]) for l in rows] == [
        ("classifier", "probability"), ("classifier", "max_logit"), ("classifier", "energy"),
        ("classifier", "agreement"), ("gallery", "cosine"), ("gallery", "mahalanobis"),
        ("fused", "max_logit+mahalanobis")]
    assert (root / "m" / "openset_det.png").read_bytes()[:4] == b"\x89PNG"
    out = json.loads((root / "m" / "openset.json").read_text())
    for row in out["rows"]:
        assert (row["known"], row["unknown"]) == (20, 18) and 0 <= row["rank1"] <= 1
        for target, at in row["fnir_at_fpir"].items():   # read off the unknown walks
            assert at["fpir"] <= float(target) + 1e-12
        # thresholds set on other walks: their rates are measured, not promised
        cal = row["calibrated"]["max_false_accept 0.05"]
        assert cal["calibration_fpir"] <= 0.05 and 0 <= cal["fpir"] <= 1
    # --calibrate_share: calibration on half of the people, the rest reported
    proc = run(os.path.join("tools", "measure_openset.py"),
               [str(run_dir), "--known", "known", "--unknown", "unknown", "--calibrate_share",
                "0.5", "--out", "h"], root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "10 known and 9 unknown recordings, 19 to calibrate on" in proc.stdout
    # a stranger's folder among the known: one line
    proc = run(os.path.join("tools", "measure_openset.py"),
               [str(run_dir), "--known", "unknown", "--unknown", "unknown"], root)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "are not among its people" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_identify_sets_a_score_stores_it_and_uses_it(tiny):
    import json
    from tests.helpers import run
    root, run_dir = tiny
    proc = run("identify.py", ["--model_dir", str(run_dir), "--calibrate", "calibrate",
                               "--score", "agreement", "--max_false_accept", "0.25"], root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = json.loads((run_dir / "identify_calibration.json").read_text())["calibration"]
    assert saved["score"] == "agreement" and saved["operating_point"] == "max_false_accept"
    assert saved["fnir"] == pytest.approx(1 - saved["identified"]) and saved["false_accept"] <= 0.25
    assert f"FNIR {saved['fnir']:.0%} of 20 known recordings" in proc.stdout
    proc = run("identify.py", ["--model_dir", str(run_dir), "known/person2", "--json", "a.json"], root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "score agreement" in proc.stdout
    result = json.loads((root / "a.json").read_text())["results"][0]
    assert result["score"] == "agreement" and result["by"] == "classifier"
    for args, message in (
            (["--score", "energy", "known"], "--score is chosen when the threshold is set"),
            (["--calibrate", "calibrate", "--score", "cosine"],
             "--score cosine does not apply to the classifier"),
            (["--enrol", "enrol", "--score", "agreement"],
             "--score agreement does not apply to the gallery")):
        proc = run("identify.py", ["--model_dir", str(run_dir)] + args, root)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert message in proc.stderr.strip().splitlines()[-1]
    # the default gallery score, stored with the gallery
    proc = run("identify.py", ["--model_dir", str(run_dir), "--enrol", "enrol", "known/person2"], root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "by mahalanobis" in proc.stdout and "score mahalanobis" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("value, message", [
    ("x", "--holdout_people must be a whole number of people"),
    ("3", "--holdout_people 3: only 4 people have readable recordings")])
def test_holdout_people_errors_are_one_line(tmp_path, value, message):
    import subprocess
    import sys
    from tests.helpers import ROOT, write_kgbd_tree
    raw = write_kgbd_tree(tmp_path / "raw")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "prepare_kgbd.py"), str(raw),
                           "--lengths", "6", "--holdout_people", value], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert message in proc.stderr.strip().splitlines()[-1]
