"""Who is this walker? Identify new recordings (and videos) with a trained run.

    from utils.orchestration.identify import load_identifier
    walker = load_identifier("RN/demo/6/<run>")          # the run, its classifier or gallery
    result = walker.identify_file("walk.npy")            # -> Identification
    print(result.decision, result.top[:3], result.windows)

A recording is read and judged as tools/prepare_kgbd.py reads and judges one
(utils/data/raw_skeletons.py: the run's layout, glitch values, --bad_frames), cut into windows
of the run's length f as the preparation cuts them (utils/data/prepare_dataset.py: trim, stride
f), centred as the loader centres them (utils/data/reid_data.py) and encoded by the run's encoder.

Scores (higher is more alike), one per identity, by the score chosen at calibration
(classifier_scores, Gallery.scores; DEFAULT_SCORE says which is used when none is chosen):
- by the classifier (classification runs): its softmax probabilities averaged over the
  recording's windows (probability, the default); the mean logit (max_logit); the energy,
  logsumexp of the logits (energy); the share of windows that agree (agreement);
- by a gallery (enrolment: any run, through its encoder), on the recording's encoding (its
  windows' sequence encodings, averaged, standardised with the enrolment's statistics,
  L2-normalised): minus the squared Mahalanobis distance to each enrolled person's mean
  encoding under a covariance all people share (mahalanobis, the default); the cosine
  similarity with each person's mean encoding (cosine).
The best score below the calibrated threshold gives `unknown`. A threshold is set on one
score and stored with it; identification then uses that score. Thresholds are calibrated on
recordings the scores were not built from, at a stated operating point (choose_threshold):
the classifier's on held-out recordings (Identifier.calibrate_classifier, stored with the
run), a gallery's by leave-one-out on its enrolment (Identifier.enrol, in the gallery file).
"""
import hashlib
import json
import os
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from utils.data.prepare_dataset import cut_windows
from utils.data.raw_skeletons import (BAD_FRAME_POLICIES, MAX_COORDINATE, TRIM_FRAMES, RawDataError,
                                 check_frames, discover, read_recording)
from utils.data.reid_data import centre_on, window_fingerprints
from utils.data.video_skeleton import VIDEO_EXTENSIONS, VIDEO_LAYOUTS
from utils.foundation.errors import UserError
from utils.foundation.io import (DAMAGED, atomic_path, atomic_save_json, damage_detail,
                                 read_json)
from utils.foundation.openset import fnir as fnir_at
from utils.foundation.skeleton import SkeletonLayout, get_layout

# The project's root (this file is utils/orchestration/identify.py): where the video route's
# environment and tools/video_to_skeleton.py are.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECORDING_EXTENSIONS = (".npy", ".csv")
DEFAULT_TOP_K = 5
# The default operating point (calibrate): an FPIR target, the share of strangers' walks a
# user accepts to see named; without strangers' walks to set it on, the share of known
# people's walks rejected.
DEFAULT_MAX_FALSE_ACCEPT = 0.05
DEFAULT_MAX_REJECT = 0.05
UNKNOWN = "unknown"
BY = ("classifier", "gallery")


# ----------------------------------------------------------------------------------------
# Recordings -> windows

def is_video(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)


def read_checked(path: str, layout: SkeletonLayout, bad_frames: str = "stop",
                 max_coordinate: float = MAX_COORDINATE) -> np.ndarray:
    """A recording file -> [frames, joints, 3] float32, read and judged exactly as
    tools/prepare_kgbd.py --format folders does (dropped frames are NaN rows)."""
    if bad_frames not in BAD_FRAME_POLICIES:
        raise UserError(f"--bad_frames must be {' or '.join(BAD_FRAME_POLICIES)}, got {bad_frames!r}")
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file; give a recording (.npy or .csv), a folder of "
                        f"them, or a video")
    if not path.endswith(RECORDING_EXTENSIONS):
        raise UserError(f"{path}: not a recording (.npy or .csv) nor a video; convert it to "
                        f"[frames, {layout.num_joints}, 3] in the {layout.name} layout")
    try:
        raw = read_recording(path, layout)
    except RawDataError as exc:
        if "shape" in str(exc):   # another joint count or layout than the run's
            raise UserError(f"{exc}; this run was trained on {layout.name} skeletons of "
                            f"{layout.num_joints} joints: record or convert the walk in that "
                            f"layout, or use a run trained on yours") from None
        raise UserError(f"{exc}; check or re-export the file") from None
    try:
        return check_frames(raw, path, layout.joint_names, bad_frames, max_coordinate).frames
    except RawDataError as exc:   # the preparation's line, with this command's remedies
        where = str(exc).split("; --bad_frames")[0]
        raise UserError(f"{where}; --bad_frames drop drops such frames (as tools/prepare_kgbd.py "
                        f"does), or fix the recording") from None


def recording_windows(frames: np.ndarray, length: int, centre: int, source: str,
                      trim: int = TRIM_FRAMES) -> np.ndarray:
    """[frames, J, 3] -> windows [W, f, J, 3] float32 as the preparation cuts them (trim at
    both ends, non-overlapping, none across dropped frames), centred on joint `centre`."""
    windows = cut_windows(frames, length, trim)
    if not len(windows):
        dropped = int(np.isnan(frames).any(axis=(1, 2)).sum())
        raise UserError(
            f"{source}: {len(frames)} frames, {max(len(frames) - 2 * trim, 0)} after dropping "
            f"{trim} at each end" + (f" ({dropped} dropped for glitches cut it)" if dropped else "")
            + f": no window of f={length} frames; record a longer walk (at least "
            f"{2 * trim + length} clean frames)")
    return centre_on(windows, centre).astype(np.float32)


# ----------------------------------------------------------------------------------------
# Scores (pure)

def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


# The open-set scores each route offers (docs/identify.md, "What the scores mean"). Each
# gives one score per identity, higher for more alike; the best identity is the one named,
# and its score is what the threshold is compared with.
CLASSIFIER_SCORES = ("probability", "max_logit", "energy", "agreement")
GALLERY_SCORES = ("cosine", "mahalanobis")
SCORES = {"classifier": CLASSIFIER_SCORES, "gallery": GALLERY_SCORES}
# The defaults, chosen by measurement on the demo (docs/identify.md, "Open-set scores
# compared"): the classifier's probability was the best of its four; the gallery's
# Mahalanobis distance named more members and far fewer strangers than its cosine.
DEFAULT_SCORE = {"classifier": "probability", "gallery": "mahalanobis"}
# The score of a threshold stored before scores could be chosen (its `score` is '').
LEGACY_SCORE = {"classifier": "probability", "gallery": "cosine"}
AGREEMENT_TIE_BREAK = 1e-3     # agreement: equal vote shares ordered by the mean probability


def check_score(by: str, score: Optional[str]) -> str:
    """The score to use on route `by` (its default for None or ''), checked."""
    score = score or DEFAULT_SCORE[by]
    if score not in SCORES[by]:
        raise UserError(f"--score {score} does not apply to the {by}; choose one of "
                        f"{', '.join(SCORES[by])}")
    return score


def logsumexp(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=-1, keepdims=True)
    return (top + np.log(np.exp(logits - top).sum(axis=-1, keepdims=True)))[..., 0]


def classifier_scores(window_logits: np.ndarray, score: str = "probability") -> np.ndarray:
    """[W, C] logits of a recording's windows -> [C], one score per identity:
    - probability: the softmax probabilities, averaged over the windows;
    - max_logit: the logits averaged over the windows (the best is the maximum logit);
    - energy: the windows' mean free energy, logsumexp of the logits (the energy score of
      out-of-distribution detection, sign flipped so that higher is more alike), for the
      best identity; each other identity lower by how far its mean logit falls short of
      the best one's (the identities rank as by max_logit);
    - agreement: the share of windows whose own best identity it is; equal shares are
      ordered by the mean probability (AGREEMENT_TIE_BREAK times it is added)."""
    logits = np.asarray(window_logits, np.float64)
    probability = softmax(logits).mean(axis=0)
    if score == "probability":
        return probability
    mean_logit = logits.mean(axis=0)
    if score == "max_logit":
        return mean_logit
    if score == "energy":
        return logsumexp(logits).mean() - (mean_logit.max() - mean_logit)
    if score == "agreement":
        votes = np.bincount(logits.argmax(axis=1), minlength=logits.shape[1]) / len(logits)
        return votes + AGREEMENT_TIE_BREAK * probability
    raise ValueError(f"unknown classifier score {score!r}")


def recording_vector(window_encodings: np.ndarray) -> np.ndarray:
    """[W, K, E] prefix encodings -> [E]: each window's sequence encoding (as retrieval
    matches them), averaged over the windows."""
    from models.training import sequence_encoding
    return sequence_encoding(window_encodings).mean(axis=0)


def standardiser(vectors: np.ndarray):
    """(mean, scale) per dimension of the enrolled recordings' vectors [N, E]."""
    return vectors.mean(axis=0), vectors.std(axis=0) + 1e-6


def standardise(vector: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """A recording's vector as the gallery compares it: standardised per dimension with the
    enrolment's statistics, then L2-normalised. Encodings share a large common part (all
    walkers are walkers); removing it spreads the cosine scores over [-1, 1]."""
    return unit((vector - mean) / scale)


def person_vector(recording_vectors: Sequence[np.ndarray]) -> np.ndarray:
    """One person's gallery entry: the mean of their recordings' vectors, L2-normalised
    (every recording weighs the same, however long)."""
    return unit(np.mean(np.stack(recording_vectors), axis=0))


def gallery_scores(vector: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Cosine similarity of one recording's vector with every gallery entry [P, E]."""
    return gallery @ vector


def scatter(vectors: Sequence[np.ndarray]):
    """One person's share of the tied covariance: (sum of r rᵀ [E, E], sum of |r|^4, count)
    over the residuals r of their recordings about their mean. One recording: nothing."""
    if len(vectors) < 2:
        return 0.0, 0.0, 0
    r = np.stack(vectors).astype(np.float64)
    r -= r.mean(axis=0)
    return r.T @ r, float(((r * r).sum(axis=1) ** 2).sum()), len(r)


def shrunk_precision(outer, fourth: float, count: int):
    """(precision, shrinkage) of the covariance S = outer / count shrunk towards mu I, with
    Ledoit and Wolf's shrinkage (as sklearn.covariance.ledoit_wolf, assume_centered), from
    the sums scatter() gives: mu = tr S / E; delta = |S - mu I|^2 / E; beta = min(delta,
    (sum |r|^4 / count - |S|^2) / (E count)); shrinkage = beta / delta. Their rule gives no
    shrinkage when the residuals cannot show their own noise (one pair of recordings:
    beta = 0), which leaves a singular estimate from fewer recordings than dimensions;
    then the shrinkage is full (mu I: a scaled Euclidean distance)."""
    dims = outer.shape[0]
    cov = outer / count
    mu = np.trace(cov) / dims
    if not mu > 0:
        raise UserError("the enrolled recordings of each person give identical encodings: "
                        "the mahalanobis score cannot be estimated; enrol other recordings, "
                        "or use --score cosine")
    squared = float((cov * cov).sum())
    delta = (squared - 2 * mu * np.trace(cov) + dims * mu * mu) / dims
    beta = min(delta, (fourth / count - squared) / (dims * count))
    shrinkage = 0.0 if beta <= 0 or delta <= 0 else beta / delta
    if shrinkage < 1e-12 and count <= dims:   # zero up to float64 rounding of the sums
        shrinkage = 1.0
    shrunk = (1 - shrinkage) * cov + shrinkage * mu * np.eye(dims)
    return np.linalg.inv(shrunk), float(shrinkage)


def tied_precision(vectors: Dict[str, List[np.ndarray]], parts=None):
    """(precision [E, E], shrinkage): the inverse of the covariance that every person shares
    (tied), estimated from how each person's recordings scatter about their mean. People
    with one recording show no scatter and add nothing. The estimate is shrunk towards a
    multiple of the identity by Ledoit and Wolf's rule: a gallery holds far fewer
    recordings than an encoding has dimensions, so the plain estimate is singular, and
    their rule sets the amount of shrinkage from the data alone (no setting to tune on the
    recordings the threshold is later set on). parts: {person: scatter()} already computed."""
    parts = parts if parts is not None else {n: scatter(vs) for n, vs in vectors.items()}
    used = [parts[n] for n in vectors if parts[n][2]]
    if sum(c for _, _, c in used) < 2:
        raise UserError("the mahalanobis score needs two or more recordings of some person "
                        "in the enrolment; add recordings, or use --score cosine")
    return shrunk_precision(sum(o for o, _, _ in used), sum(f for _, f, _ in used),
                            sum(c for _, _, c in used))


def mahalanobis_scores(vector: np.ndarray, centres: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Minus the squared Mahalanobis distance of one recording's vector to every person's
    mean vector [P, E] under the shared precision [E, E] (higher is more alike)."""
    d = centres - vector[None]
    return -((d @ precision) * d).sum(axis=1)


def choose_threshold(known: Sequence[float], unknown: Sequence[float] = (),
                     max_reject: Optional[float] = DEFAULT_MAX_REJECT,
                     max_false_accept: Optional[float] = None) -> float:
    """The unknown threshold (a best score below it is `unknown`) at an operating point:
    max_reject: at most that share of known people's held-out recordings rejected (their
    best score below it); max_false_accept: at most that share of unknown people's
    recordings accepted (best score at or above it)."""
    if max_false_accept is not None:
        scores = np.sort(np.asarray(unknown, np.float64))[::-1]
        if not len(scores):
            raise UserError("--max_false_accept needs recordings of people the run does not "
                            "know in the calibration folder; add some, or use --max_reject")
        k = int(np.floor(max_false_accept * len(scores) + 1e-9))   # may be accepted
        return float(np.nextafter(scores[k], np.inf)) if k < len(scores) else float(scores[-1])
    scores = np.sort(np.asarray(known, np.float64))
    if not len(scores):
        raise UserError("no held-out recording of a known person to calibrate on; give at "
                        "least one per person (two for enrolment)")
    k = int(np.floor(max_reject * len(scores) + 1e-9))   # may be rejected
    return float(scores[min(k, len(scores) - 1)])


@dataclass
class Calibration:
    """How the unknown threshold was set, and what it gives on the calibration data. In
    the terms of open-set identification (utils/foundation/openset.py): false_accept is the
    FPIR, fnir the FNIR (rejected or misnamed), both on the calibration data."""
    threshold: float
    operating_point: str        # "max_reject" or "max_false_accept"
    rate: float
    data: str                   # what it was calibrated on
    known: int                  # known people's recordings scored
    unknown: int                # unknown people's recordings scored
    false_reject: float         # share of known recordings with a best score below it
    false_accept: Optional[float]   # share of unknown recordings at or above it (None: none)
    identified: float           # share of known recordings accepted and named correctly
    score: str = ""             # the score it was set on ('': an older file, LEGACY_SCORE)
    fnir: Optional[float] = None    # 1 - identified (None: an older file)
    note: str = ""              # why the default FPIR target could not be used, if so

    def describe(self) -> str:
        point = ("at most {:.0%} of known people's held-out recordings rejected"
                 if self.operating_point == "max_reject" else
                 "FPIR target {:.0%}: at most that share of unknown people's recordings named"
                 ).format(self.rate) + (f", {self.note}" if self.note else "")
        far = (f"FPIR {self.false_accept:.0%} of {self.unknown} unknown people's recordings named"
               if self.false_accept is not None else "no unknown people to measure FPIR on")
        fnir = 1 - self.identified if self.fnir is None else self.fnir
        by = f" by {self.score}" if self.score else ""
        return (f"threshold {self.threshold:.4f}{by} ({point}; on {self.data}: FNIR {fnir:.0%} of "
                f"{self.known} known recordings ({self.false_reject:.0%} rejected, "
                f"{self.identified:.0%} identified), {far})")


def calibrate(known_best: Sequence[float], known_correct: Sequence[bool],
              unknown_best: Sequence[float], data: str,
              max_reject: Optional[float] = None,
              max_false_accept: Optional[float] = None, score: str = "") -> Calibration:
    """The threshold at the operating point, and its rates on the calibration scores. No
    operating point given: the default FPIR target (DEFAULT_MAX_FALSE_ACCEPT) where there
    are unknown people's scores, else at most DEFAULT_MAX_REJECT of known ones rejected."""
    known_best, unknown_best = np.asarray(known_best, float), np.asarray(unknown_best, float)
    note = ""
    if max_reject is None and max_false_accept is None:
        if len(unknown_best):
            max_false_accept = DEFAULT_MAX_FALSE_ACCEPT
        else:
            max_reject = DEFAULT_MAX_REJECT
            note = ("the default FPIR target needs walks of people the run does not know "
                    "in the calibration data")
    t = choose_threshold(known_best, unknown_best, max_reject, max_false_accept)
    point, rate = (("max_false_accept", max_false_accept) if max_false_accept is not None
                   else ("max_reject", max_reject))
    accepted = known_best >= t
    identified = (float(np.mean(accepted & np.asarray(known_correct, bool)))
                  if len(known_best) else 0.0)
    return Calibration(
        threshold=t, operating_point=point, rate=float(rate), data=data,
        known=int(len(known_best)), unknown=int(len(unknown_best)),
        false_reject=float(np.mean(~accepted)) if len(known_best) else 0.0,
        false_accept=float(np.mean(unknown_best >= t)) if len(unknown_best) else None,
        identified=identified, score=score, note=note,
        fnir=float(fnir_at(known_best, known_correct, t)) if len(known_best) else 0.0)


def _without(vectors: Sequence[np.ndarray], i: int) -> List[np.ndarray]:
    return [w for j, w in enumerate(vectors) if j != i]


def gallery_leave_one_out(vectors: Dict[str, List[np.ndarray]], score: str = "cosine"):
    """Scores for calibrating a gallery on its own enrolment recordings, none of which
    is matched against an entry built from itself: (known best scores, whether each was
    named correctly, unknown best scores). Known: each recording of a person with two or
    more, against the gallery whose entry for that person leaves it out. Unknown: each
    recording of each person, against the gallery without that person. For the
    mahalanobis score the shared covariance is estimated anew without the person whose
    recordings are scored, so it holds none of them either."""
    names = sorted(vectors)
    known, correct, unknown = [], [], []
    if score == "cosine":
        entry, match = person_vector, gallery_scores
        entries = {n: entry(vectors[n]) for n in names}
    elif score == "mahalanobis":
        entry = lambda vs: np.mean(vs, axis=0)   # noqa: E731
        entries = {n: entry(vectors[n]) for n in names}
    else:
        raise ValueError(f"unknown gallery score {score!r}")
    parts = {n: scatter(vectors[n]) for n in names} if score == "mahalanobis" else {}
    for n in names:
        others = [m for m in names if m != n]
        if score == "mahalanobis":
            rest_vectors = {m: vectors[m] for m in others}
            if not any(len(vs) > 1 for vs in rest_vectors.values()):
                continue      # no scatter left to estimate the covariance from
            precision, _ = tied_precision(rest_vectors, parts)
            match = lambda v, g: mahalanobis_scores(v, g, precision)   # noqa: E731,E306
        rest = np.stack([entries[m] for m in others]) if others else None
        for i, v in enumerate(vectors[n]):
            if len(vectors[n]) > 1:
                own = entry(_without(vectors[n], i))
                scores = match(v, np.vstack([own[None]] + ([rest] if rest is not None else [])))
                known.append(float(scores.max()))
                correct.append(bool(scores.argmax() == 0))
            if rest is not None:
                unknown.append(float(match(v, rest).max()))
    return known, correct, unknown


# ----------------------------------------------------------------------------------------
# Results

@dataclass
class Identification:
    source: str
    decision: str                       # an identity, or "unknown"
    top: List[Tuple[str, float]]        # the k best identities and their scores
    windows: int                        # windows of f frames the recording gave
    threshold: float
    by: str                             # "classifier" or "gallery"
    seconds: float = 0.0                # encoding and scoring time
    score: str = ""                     # which score (CLASSIFIER_SCORES, GALLERY_SCORES)
    seen_windows: int = 0               # windows the run was trained on (--allow_seen_walks)

    def line(self) -> str:
        ranked = ", ".join(f"{name} {score:.3f}" for name, score in self.top)
        head = (f"{UNKNOWN} (best {self.top[0][0]} {self.top[0][1]:.3f} < threshold "
                f"{self.threshold:.3f})" if self.decision == UNKNOWN else self.decision)
        seen = (f" ({self.seen_windows} seen in training: not a clean result)"
                if self.seen_windows else "")
        return (f"{self.source}: {head}; top-{len(self.top)}: {ranked}; {self.windows} "
                f"windows{seen}")

    def record(self) -> dict:
        return dict(file=self.source, decision=self.decision, windows=self.windows,
                    top=[dict(identity=n, score=s) for n, s in self.top],
                    threshold=self.threshold, by=self.by, score=self.score, seconds=self.seconds,
                    seen_windows=self.seen_windows)


def decide(scores: np.ndarray, names: Sequence[str], threshold: float, top_k: int,
           source: str, windows: int, by: str) -> Identification:
    order = np.argsort(-scores, kind="stable")[:max(1, top_k)]
    top = [(names[i], float(scores[i])) for i in order]
    decision = top[0][0] if top[0][1] >= threshold else UNKNOWN
    return Identification(source, decision, top, int(windows), float(threshold), by)


# ----------------------------------------------------------------------------------------
# Galleries and the classifier's calibration, on disk

GALLERY_VERSION = 2      # 2: also the mahalanobis score's centres and shared precision


@dataclass
class Gallery:
    names: List[str]
    vectors: np.ndarray                 # [P, E], L2-normalised (cosine)
    mean: np.ndarray                    # [E] the enrolment's statistics (standardise)
    scale: np.ndarray                   # [E]
    recordings: List[int]               # recordings enrolled per person
    calibration: Calibration
    encoder: str                        # sha256 of the encoder.npz it was built with
    source: str                         # the enrolment folder
    centres: Optional[np.ndarray] = None     # [P, E] mean vectors, not normalised (mahalanobis)
    precision: Optional[np.ndarray] = None   # [E, E] the shared (tied) precision (mahalanobis)
    # the leave-one-out searches its threshold was set on (known best, correct, unknown
    # best); kept in memory to set others (calibrate), not saved
    searches: Optional[tuple] = field(default=None, repr=False, compare=False)

    @property
    def score(self) -> str:
        return self.calibration.score or LEGACY_SCORE["gallery"]

    def scores(self, vector: np.ndarray, score: Optional[str] = None) -> np.ndarray:
        """One standardised recording vector -> a score per person, by `score` (default:
        the one the gallery's threshold was set on)."""
        score = check_score("gallery", score or self.score)
        if score == "cosine":
            return gallery_scores(vector, self.vectors)
        if self.precision is None:
            raise UserError(f"this gallery was enrolled before the mahalanobis score existed; "
                            f"enrol again with identify.py --enrol {self.source}")
        return mahalanobis_scores(vector, self.centres, self.precision)

    def save(self, path: str) -> None:
        meta = dict(version=GALLERY_VERSION, names=self.names, recordings=self.recordings,
                    calibration=asdict(self.calibration), encoder=self.encoder,
                    source=self.source)
        extra = {} if self.precision is None else dict(centres=self.centres, precision=self.precision)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, vectors=self.vectors.astype(np.float32), mean=self.mean,
                         scale=self.scale, meta=np.array(json.dumps(meta)), **extra)

    @classmethod
    def load(cls, path: str) -> "Gallery":
        if not os.path.isfile(path):
            raise UserError(f"gallery {path} not found; enrol one with identify.py --model_dir "
                            f"RUN --enrol GALLERY_DIR")
        try:
            with np.load(path) as data:
                vectors, meta = data["vectors"], json.loads(str(data["meta"]))
                mean, scale = data["mean"], data["scale"]
                centres, precision = ((data["centres"], data["precision"])
                                      if "precision" in data.files else (None, None))
            return cls(meta["names"], vectors, mean, scale, meta["recordings"],
                       Calibration(**meta["calibration"]), meta["encoder"], meta["source"],
                       centres, precision)
        except DAMAGED + (TypeError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read gallery {path} ({damage_detail(exc)}); enrol again "
                            f"with identify.py --model_dir RUN --enrol GALLERY_DIR") from None


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def identity_names(run, id_list: Sequence[int]) -> List[str]:
    """Names of a classification run's identities: the person folders a prepared
    dataset's manifest records, else person<id>. run: utils/orchestration/run.Run."""
    manifest = run.variant.manifest()
    persons, prepared_as = {}, run.protocol.prepared_as
    if manifest is not None:
        try:
            persons = manifest["protocols"][prepared_as]["persons"]
        except (KeyError, TypeError):
            raise UserError(f"the manifest of {run.variant.run_tag} lacks the {prepared_as} "
                            f"protocol's persons; prepare the dataset again") from None
    return [persons.get(str(p), {}).get("folder") or f"person{p}" for p in id_list]


# ----------------------------------------------------------------------------------------
# The API: a loaded run

@dataclass
class Identifier:
    """A trained run ready to identify recordings. Build it with load_identifier."""
    run_dir: str
    cfg: object                               # the run's RunConfig
    layout: SkeletonLayout
    encoder: object                           # models.training.Encoder
    encoder_digest: str
    classifier: object = None                 # the Re-ID classifier, classification runs
    calibration: Optional[Calibration] = None   # the classifier's
    identities: Optional[List[str]] = None      # the classifier's
    gallery: Optional[Gallery] = None
    by: str = "classifier"
    bad_frames: str = "stop"
    max_coordinate: float = MAX_COORDINATE
    trim: int = TRIM_FRAMES
    video_options: List[str] = field(default_factory=list)
    gallery_path: str = ""
    calibration_error: Optional[UserError] = None   # a damaged calibration file, if any
    trained_on: Optional[np.ndarray] = None   # fingerprints of the run's training windows
    allow_seen: bool = False                  # --allow_seen_walks 1: score them, marked
    seen_scored: Dict[str, int] = field(default_factory=dict)   # those scored so, by path

    def check_ready(self) -> None:
        """One line saying what is missing when this run cannot score yet."""
        run, gallery = self.run_dir, self.gallery_path
        if self.by == "gallery" and self.gallery is None:
            raise UserError(f"no gallery at {gallery}; enrol one with identify.py --model_dir "
                            f"{run} --enrol GALLERY_DIR (<person>/<recording> folders)")
        if self.by == "classifier":
            if self.classifier is None:
                raise UserError(f"{run} holds no classifier (a retrieval run) and no gallery at "
                                f"{gallery}; enrol one with identify.py --model_dir {run} "
                                f"--enrol GALLERY_DIR (<person>/<recording> folders)")
            if self.calibration is None and self.calibration_error is not None:
                raise self.calibration_error
            if self.calibration is None:
                raise UserError(f"{run}: its classifier has no unknown threshold yet; calibrate "
                                f"it with identify.py --model_dir {run} --calibrate HELDOUT_DIR "
                                f"(held-out recordings of its people, <person>/<recording>)")

    # -- one recording ----------------------------------------------------------------
    def read(self, path: str) -> np.ndarray:
        """A recording file (or, with the video environment, a video) -> checked frames."""
        if is_video(path):
            return self.read_video(path)
        return read_checked(path, self.layout, self.bad_frames, self.max_coordinate)

    def read_video(self, path: str) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="identify-video-") as tmp:
            return read_checked(video_to_recording(path, self.cfg.layout, tmp, self.video_options),
                                self.layout, self.bad_frames, self.max_coordinate)

    def windows(self, frames: np.ndarray, source: str = "<recording>") -> np.ndarray:
        return recording_windows(frames, self.cfg.length, self.layout.centre, source, self.trim)

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Windows [W, f, J, 3] -> the encoder's prefix encodings [W, K, E]. Every recording
        gives its own number of windows, and a compiled encoder is traced again for every
        new batch size (a second or more each): the last batch is padded with copies of
        its first window to a power of two (16 at least), so a few sizes serve every
        recording; the copies' encodings are dropped."""
        size = self.cfg.batch_size
        tail = len(windows) % size
        if tail:
            padded = min(size, max(16, 1 << (tail - 1).bit_length()))
            filler = np.repeat(windows[len(windows) - tail:][:1], padded - tail, axis=0)
            return self.encoder.encode_all(np.concatenate([windows, filler]), size)[:len(windows)]
        return self.encoder.encode_all(windows, size)

    def scores(self, encodings: np.ndarray, by: Optional[str] = None, score: Optional[str] = None):
        """(scores per identity, names, threshold) of one recording's encodings, by `score`
        (default: the score the route's threshold was set on). The threshold is NaN when it
        was set on another score (no recording is then named), -inf when the classifier
        has none yet."""
        by = by or self.by
        if by == "gallery":
            if self.gallery is None:
                raise UserError(f"{self.run_dir}: no gallery loaded; enrol one with --enrol")
            g = self.gallery
            score = check_score(by, score or g.score)
            threshold = g.calibration.threshold if score == g.score else np.nan
            return (g.scores(standardise(recording_vector(encodings), g.mean, g.scale), score),
                    g.names, threshold)
        from models.engine import backend
        calibrated = (self.calibration.score or LEGACY_SCORE[by]) if self.calibration else None
        score = check_score(by, score or calibrated)
        logits = backend().to_numpy(self.classifier(encodings))
        threshold = (-np.inf if calibrated is None else
                     self.calibration.threshold if score == calibrated else np.nan)
        return classifier_scores(logits, score), self.identities, threshold

    def score_in_use(self) -> str:
        """The score identification uses: the one the route's threshold was set on."""
        if self.by == "gallery":
            return self.gallery.score if self.gallery is not None else DEFAULT_SCORE["gallery"]
        if self.calibration is None:
            return DEFAULT_SCORE["classifier"]
        return self.calibration.score or LEGACY_SCORE["classifier"]

    def encoded(self, folder: str, log=print, scored: Optional[str] = None,
                warn=print) -> List[Tuple[str, str, np.ndarray]]:
        """(person folder, path, encodings) of every <folder>/<person>/<recording>, all read
        and checked before any is encoded. scored names what the recordings are for when
        rates are measured on them ("calibration recordings"): those the run was trained
        on are then refused (seen_in_training); otherwise (enrolment) they are counted in
        a note to warn."""
        found = discover(folder, "folders")
        checked = [(rec, self.windows(self.read(rec.path), rec.path)) for rec in found]
        pairs = [(rec.path, windows) for rec, windows in checked]
        if scored is not None:
            self.seen_in_training(pairs, scored, warn)
        else:
            seen = self.windows_trained_on(pairs)
            if seen:
                warn(f"NOTE: {len(seen)} of {len(pairs)} enrolled recordings have windows this "
                     f"run was trained on: a threshold set on them expects more of new walks "
                     f"than they will give")
        out = [(rec.person, rec.path, self.encode(windows)) for rec, windows in checked]
        log(f"{len(found)} recordings of {len({p for p, _, _ in out})} people read from {folder}")
        return out

    def windows_trained_on(self, recordings: Sequence[Tuple[str, np.ndarray]]) -> Dict[str, int]:
        """{path: windows the run was trained on} of (path, windows), those with any; empty
        for a run that keeps no fingerprints."""
        if self.trained_on is None:
            return {}
        counts = {path: int(np.isin(window_fingerprints(windows), self.trained_on).sum())
                  for path, windows in recordings}
        return {path: count for path, count in counts.items() if count}

    def seen_in_training(self, recordings: Sequence[Tuple[str, np.ndarray]], what: str,
                         warn=print) -> Dict[str, int]:
        """windows_trained_on of (path, windows) about to be scored. Rates measured on them
        would be optimistic: refused in one line with the counts, unless allow_seen (then
        warned, and each result marked). A run saved before the fingerprints were kept
        cannot be checked: a note says so."""
        if not recordings:
            return {}
        if self.trained_on is None:
            warn(f"NOTE: {self.run_dir} keeps no fingerprints of its training windows "
                 f"(saved by an earlier version): {what} are not checked against them")
            return {}
        seen = self.windows_trained_on(recordings)
        if seen:
            first = next(iter(seen))
            total = dict(recordings)[first].shape[0]
            note = (f"{len(seen)} of {len(recordings)} {what} have windows this run was "
                    f"trained on ({first}: {seen[first]} of {total})")
            if not self.allow_seen:
                raise UserError(f"{note}; use walks it was not trained on, or pass "
                                f"--allow_seen_walks 1 to score them anyway, marked so in the "
                                f"output")
            warn(f"WARNING: {note}; scored anyway (--allow_seen_walks 1): not a clean result")
            self.seen_scored.update(seen)
        return seen

    def searches(self, encoded: Sequence[Tuple[str, str, np.ndarray]], by: Optional[str] = None,
                 score: Optional[str] = None):
        """Open-set searches of encoded recordings (encoded()), as utils/foundation/openset.py
        takes them: (best scores of recordings by people the route knows, whether each
        named its own person, best scores of the others)."""
        known, correct, unknown = [], [], []
        for person, _, encodings in encoded:
            scores, names, _ = self.scores(encodings, by, score)
            best = float(scores.max())
            if person in names:
                known.append(best)
                correct.append(names[int(scores.argmax())] == person)
            else:
                unknown.append(best)
        return known, correct, unknown

    def identify(self, frames: np.ndarray, source: str = "<recording>",
                 top_k: int = DEFAULT_TOP_K) -> Identification:
        """Checked frames [F, J, 3] (read) -> the decision and the top-k identities."""
        start = time.perf_counter()
        return self.identify_windows(self.windows(frames, source), source, top_k, start)

    def identify_windows(self, windows: np.ndarray, source: str, top_k: int = DEFAULT_TOP_K,
                         start: Optional[float] = None) -> Identification:
        start = time.perf_counter() if start is None else start
        scores, names, threshold = self.scores(self.encode(windows))
        result = decide(scores, names, threshold, top_k, source, len(windows), self.by)
        result.score = self.score_in_use()
        result.seconds = time.perf_counter() - start
        return result

    def identify_file(self, path: str, top_k: int = DEFAULT_TOP_K) -> Identification:
        return self.identify(self.read(path), path, top_k)

    # -- enrolment and calibration ------------------------------------------------------
    def recording_vectors(self, folder: str, log=print) -> Dict[str, List[np.ndarray]]:
        """{person folder: [one vector per recording]} of <folder>/<person>/<recording>."""
        out: Dict[str, List[np.ndarray]] = {}
        for person, _, encodings in self.encoded(folder, log, warn=log):
            out.setdefault(person, []).append(recording_vector(encodings))
        return out

    def enrol(self, folder: str, path: str, max_reject: Optional[float] = None,
              max_false_accept: Optional[float] = None, log=print,
              score: Optional[str] = None) -> Gallery:
        """Build a gallery (mean encoding per person) from <folder>/<person>/<recording>,
        calibrate its threshold for `score` by leave-one-out on the same recordings, save it
        to `path`."""
        gallery = self.gallery_from(self.recording_vectors(folder, log), folder, max_reject,
                                    max_false_accept, score)
        gallery.save(path)
        self.gallery, self.gallery_path, self.by = gallery, path, "gallery"
        log(f"Gallery of {len(gallery.names)} people written to {path}; "
            f"{gallery.calibration.describe()}")
        return gallery

    def gallery_from(self, raw: Dict[str, List[np.ndarray]], folder: str,
                     max_reject: Optional[float] = None,
                     max_false_accept: Optional[float] = None,
                     score: Optional[str] = None) -> Gallery:
        """A gallery of recording vectors {person: [vector, ...]} (recording_vectors),
        its threshold for `score` set by leave-one-out on them; not saved."""
        score = check_score("gallery", score)
        mean, scale = standardiser(np.stack([v for n in sorted(raw) for v in raw[n]]))
        vectors = {n: [standardise(v, mean, scale) for v in vs] for n, vs in raw.items()}
        known, correct, unknown = gallery_leave_one_out(vectors, score)
        if not known:
            raise UserError(f"{folder}: calibrating the unknown threshold needs two or more "
                            f"recordings of at least one person; add recordings")
        calibration = calibrate(known, correct, unknown,
                                f"{folder}, leave one recording (known) or person (unknown) out",
                                max_reject, max_false_accept, score)
        names = sorted(vectors)
        precision, _ = tied_precision(vectors)
        return Gallery(names, np.stack([person_vector(vectors[n]) for n in names]), mean, scale,
                       [len(vectors[n]) for n in names], calibration, self.encoder_digest,
                       os.path.abspath(folder),
                       np.stack([np.mean(vectors[n], axis=0) for n in names]), precision,
                       (known, correct, unknown))

    def calibrate_classifier(self, folder: str, max_reject: Optional[float] = None,
                             max_false_accept: Optional[float] = None, log=print,
                             score: Optional[str] = None, encoded=None) -> Calibration:
        """Calibrate the classifier's threshold for `score` on <folder>/<person>/<recording>:
        held-out recordings (never trained on) of the run's people, folders named as its
        identities (person<id>, or the prepared dataset's folders); other folders are people
        the run does not know, on whom the false-accept rate (FPIR) is measured. Saved with
        the run. `encoded`: the folder's recordings already encoded (encoded())."""
        if self.classifier is None:
            raise UserError(f"{self.run_dir} holds no classifier (a retrieval run); enrol a "
                            f"gallery with --enrol instead")
        score = check_score("classifier", score)
        if encoded is None:
            encoded = self.encoded(folder, log=lambda *_: None, scored="calibration recordings",
                                   warn=log)
        known, correct, unknown = self.searches(encoded, "classifier", score)
        if not known:
            raise UserError(f"{folder}: no folder is named as one of the run's identities "
                            f"({', '.join(self.identities[:3])}, ...); put held-out recordings "
                            f"of its people in folders with those names")
        calibration = calibrate(known, correct, unknown, os.path.abspath(folder),
                                max_reject, max_false_accept, score)
        save_classifier_calibration(self.run_dir, calibration, self.identities)
        self.calibration = calibration
        people = len({person for person, _, _ in encoded})
        log(f"Classifier calibrated on {len(encoded)} recordings of {people} people: "
            f"{calibration.describe()}")
        return calibration


def save_classifier_calibration(run_dir: str, calibration: Calibration, identities) -> None:
    from utils.orchestration.storage import CALIBRATION_FILE
    atomic_save_json(os.path.join(run_dir, CALIBRATION_FILE),
                     dict(calibration=asdict(calibration), identities=list(identities)))


def load_classifier_calibration(run_dir: str):
    """(Calibration, identities) stored with the run, or (None, None)."""
    from utils.orchestration.storage import CALIBRATION_FILE
    path = os.path.join(run_dir, CALIBRATION_FILE)
    if not os.path.isfile(path):
        return None, None
    try:
        saved = read_json(path, "calibration file")
        return Calibration(**saved["calibration"]), list(saved["identities"])
    except UserError as exc:
        raise UserError(f"{exc}; calibrate again with identify.py --model_dir {run_dir} "
                        f"--calibrate HELDOUT_DIR") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is damaged ({damage_detail(exc)}); calibrate again with "
                        f"identify.py --model_dir {run_dir} --calibrate HELDOUT_DIR") from None


def load_identifier(run_dir: str, gallery_path: Optional[str] = None, by: Optional[str] = None,
                    bad_frames: str = "stop", max_coordinate: float = MAX_COORDINATE,
                    need_scores: bool = True, video_options: Sequence[str] = (),
                    load_gallery: bool = True) -> Identifier:
    """A finished run folder (encoder.npz, config.json) -> an Identifier. It identifies by
    its gallery (gallery_path, default <run>/gallery.npz) where there is one, else by its
    classifier; `by` forces one. need_scores=False: for enrolment or calibration, which
    need only the encoder (and the classifier to calibrate); load_gallery=False: before
    enrolling anew, the old gallery is not read."""
    from models.factory import build_classifier, build_encoder, build_model
    from utils.foundation.checkpoints import load_module
    from utils.orchestration.storage import (CLASSIFIER_FILE, ENCODER_FILE, GALLERY_FILE,
                                             RESUME_FILE, TRAINING_WINDOWS_FILE, load_run_config)
    if by is not None and by not in BY:
        raise UserError(f"--by must be {' or '.join(BY)}, got {by!r}")
    if not os.path.isdir(run_dir):
        raise UserError(f"run folder {run_dir} not found; give a folder under RN/ written by "
                        f"SM-SGE.py, or 'best' with --dataset")
    from utils.orchestration.run import resolve
    cfg = load_run_config(run_dir)
    layout = resolve(cfg, build=False).layout
    encoder_path = os.path.join(run_dir, ENCODER_FILE)
    if not os.path.isfile(encoder_path):
        if not os.path.isfile(os.path.join(run_dir, RESUME_FILE)):
            raise UserError(f"{run_dir} holds neither {ENCODER_FILE} nor a resume checkpoint: a "
                            f"run that ended before its first epoch, with nothing to resume or "
                            f"identify with; delete it, or give another run")
        raise UserError(f"{run_dir} holds no {ENCODER_FILE}: not a finished run; finish it "
                        f"(SM-SGE.py --resume {run_dir}) or give another")
    model = build_model(cfg)
    load_module(encoder_path, model)
    walker = Identifier(run_dir, cfg, layout, build_encoder(cfg, model),
                        file_digest(encoder_path), bad_frames=bad_frames,
                        max_coordinate=max_coordinate, video_options=list(video_options))
    classifier_path = os.path.join(run_dir, CLASSIFIER_FILE)
    if os.path.isfile(classifier_path):
        walker.classifier = build_classifier(cfg, model, _classes_in(classifier_path))
        load_module(classifier_path, walker.classifier)
        try:
            walker.calibration, walker.identities = load_classifier_calibration(run_dir)
        except UserError as exc:       # matters to the classifier route only (check_ready)
            walker.calibration_error = exc
        if walker.identities is None:
            walker.identities = _run_identities(cfg)
    gallery_path = gallery_path or os.path.join(run_dir, GALLERY_FILE)
    if load_gallery and os.path.isfile(gallery_path) and by != "classifier":
        walker.gallery = Gallery.load(gallery_path)
        if walker.gallery.encoder != walker.encoder_digest:
            raise UserError(f"gallery {gallery_path} was enrolled with another encoder than "
                            f"{encoder_path}; enrol again with identify.py --model_dir {run_dir} "
                            f"--enrol {walker.gallery.source}")
    walker.by = by or ("gallery" if walker.gallery is not None else "classifier")
    walker.gallery_path = gallery_path
    fingerprints = os.path.join(run_dir, TRAINING_WINDOWS_FILE)
    if os.path.isfile(fingerprints):
        try:
            walker.trained_on = np.load(fingerprints, allow_pickle=False)
        except DAMAGED as exc:
            raise UserError(f"cannot read {fingerprints}: it is damaged ({damage_detail(exc)}); "
                            f"delete it to identify without the check of recordings the run "
                            f"was trained on") from None
    if need_scores:
        walker.check_ready()
    return walker


def _classes_in(classifier_path: str) -> int:
    """Identities of a saved classifier: the length of its output bias b2 (ReIDClassifier)."""
    try:
        with np.load(classifier_path) as data:
            (key,) = [k for k in data.files if k.endswith(":b2")]
            return int(data[key].shape[0])
    except DAMAGED as exc:   # ValueError too: no ":b2" member
        raise UserError(f"cannot read weights file {classifier_path}: it is damaged "
                        f"({damage_detail(exc)}); train the model again, or use another run") from None


def _run_identities(cfg) -> List[str]:
    from utils.data.reid_data import load_reid_data
    from utils.orchestration.run import resolve
    run = resolve(cfg)
    data = load_reid_data(run.variant.files, run.layout)
    return identity_names(run, data.id_list.tolist())


# ----------------------------------------------------------------------------------------
# Inputs: files, folders, videos

def expand_inputs(paths: Sequence[str]) -> List[str]:
    """Recordings and videos named, or found (recursively, sorted) in named folders."""
    out = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(d, f) for d, _, files in os.walk(path) for f in files
                           if f.endswith(RECORDING_EXTENSIONS) or is_video(f))
            if not found:
                raise UserError(f"{path}: no recording (.npy, .csv) or video in this folder")
            out += found
        else:
            out.append(path)
    return out


def video_python() -> str:
    return os.environ.get("SMSGE_VIDEO_PYTHON",
                          os.path.join(ROOT, ".venv-video", "bin", "python"))


def video_to_recording(path: str, layout, out: str, options: Sequence[str] = ()) -> str:
    """Run the video route (tools/video_to_skeleton.py, in the video environment) on one
    video, writing the recording in the run's layout under `out`; returns its path."""
    python = video_python()
    if not os.path.isfile(python):
        raise UserError(f"{path}: a video needs the video environment: python3 -m venv "
                        f".venv-video && .venv-video/bin/pip install -r requirements-video.txt "
                        f"(or set SMSGE_VIDEO_PYTHON)")
    if layout not in VIDEO_LAYOUTS:
        name = layout if isinstance(layout, str) else layout.get("name", "its own")
        raise UserError(f"{path}: the video route writes {', '.join(VIDEO_LAYOUTS)} skeletons, "
                        f"this run takes the {name} layout; use a run trained on one of them")
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    cmd = [python, os.path.join(ROOT, "tools", "video_to_skeleton.py"), path, "--out", out,
           "--person", "video", "--layout", layout, "--no_progress"] + list(options)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", GLOG_minloglevel="3")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
        reason = errors[-1][len("error: "):] if errors else (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise UserError(f"{path}: the video route failed: {reason}")
    recording = os.path.join(out, "video", os.path.splitext(os.path.basename(path))[0] + ".npy")
    if not os.path.isfile(recording):
        raise UserError(f"{path}: the video route wrote no recording; check the video")
    return recording


def identify_all(walker: Identifier, paths: Sequence[str], top_k: int = DEFAULT_TOP_K,
                 log=print) -> List[Identification]:
    """Every input read and checked first (one bad input stops all, nothing is written),
    then identified one by one."""
    frames = [(path, walker.read(path)) for path in expand_inputs(paths)]
    windows = [(path, walker.windows(f, path)) for path, f in frames]
    seen = walker.seen_in_training(windows, "recordings to identify", log)
    results = []
    for path, w in windows:
        results.append(walker.identify_windows(w, path, top_k))
        results[-1].seen_windows = seen.get(path, 0)
        log(results[-1].line())
    return results


def watch(walker: Identifier, folder: str, top_k: int = DEFAULT_TOP_K, log=print,
          poll: float = 1.0, stop=None) -> Tuple[List[Identification], int]:
    """identify.py --watch: the recordings (and videos) in `folder`, those there at the
    start and each that appears later, identified as they come with the model loaded once.
    A file is taken once its size and time stamp have held for one poll (a copy still
    being written is not read half-way); hidden files (.name, a writer's temporary) are
    not. A bad recording, or one the run was trained on, gives its line and the watch
    goes on. Ends on Ctrl-C or SIGTERM (or when stop() is true). Returns (results, files
    refused)."""
    if not os.path.isdir(folder):
        raise UserError(f"--watch {folder}: no such folder")
    results, refused, done, pending = [], 0, set(), {}
    try:
        while stop is None or not stop():
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                if (name.startswith(".") or path in done or not os.path.isfile(path)
                        or not (name.endswith(RECORDING_EXTENSIONS) or is_video(name))):
                    continue
                info = os.stat(path)
                if pending.get(path) != (info.st_size, info.st_mtime_ns):
                    pending[path] = (info.st_size, info.st_mtime_ns)
                    continue
                done.add(path)
                try:
                    windows = walker.windows(walker.read(path), path)
                    seen = walker.seen_in_training([(path, windows)], "recordings to identify",
                                                   lambda line: log(line, flush=True))
                    result = walker.identify_windows(windows, path, top_k)
                except UserError as exc:
                    refused += 1
                    log(f"error: {exc}", flush=True)
                    continue
                result.seen_windows = seen.get(path, 0)
                results.append(result)
                log(result.line(), flush=True)
            time.sleep(poll)
    except KeyboardInterrupt:   # the way a watch ends
        pass
    return results, refused


def results_record(walker: Identifier, results: Sequence[Identification]) -> dict:
    calibration = (walker.gallery.calibration if walker.by == "gallery" else walker.calibration)
    return dict(run=walker.run_dir, by=walker.by,
                calibration=asdict(calibration) if calibration else None,
                results=[r.record() for r in results])


def parse_rate(text: Optional[str], flag: str) -> Optional[float]:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise UserError(f"{flag} must be a share between 0 and 1 (0.05: 5 %), got {text!r}")
    return value

