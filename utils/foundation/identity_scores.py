"""Open-set identification's mathematics (pure): the scores each route gives one recording
for every identity, the thresholds that turn the best score into a name or `unknown`, and
how a threshold is calibrated at an operating point. docs/identify.md explains the scores;
docs/openset.md how they were compared.

Scores are higher for more alike, one per identity:
- by the classifier (classification runs): its softmax probabilities averaged over the
  recording's windows (probability, the default); the mean logit (max_logit); the energy,
  logsumexp of the logits (energy); the share of windows that agree (agreement);
- by a gallery (enrolment: any run, through its encoder), on the recording's vector (its
  windows' sequence encodings, averaged, standardised with the enrolment's statistics,
  L2-normalised): minus the squared Mahalanobis distance to each enrolled person's mean
  under a covariance all people share (mahalanobis, the default); the cosine similarity
  with each person's mean vector (cosine).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from utils.foundation.errors import UserError
from utils.foundation.openset import fnir as fnir_at

# The default operating point (calibrate): an FPIR target, the share of strangers' walks a
# user accepts to see named; without strangers' walks to set it on, the share of known
# people's walks rejected.
DEFAULT_MAX_FALSE_ACCEPT = 0.05
DEFAULT_MAX_REJECT = 0.05
UNKNOWN = "unknown"
BY = ("classifier", "gallery")   # the two routes: a run's classifier, or an enrolled gallery


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


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


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
