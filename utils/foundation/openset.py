"""Open-set identification metrics (1:N search with a reject option), pure NumPy.

The vocabulary is that of biometric identification (ISO/IEC 19795-1, and NIST's 1:N
evaluations). A *search* is one recording scored against everyone enrolled (the people a
classifier was trained on, or a gallery). It returns the best-scoring identity when that
score is at or above a threshold t, and no name (`unknown`) otherwise.

- **Mated searches** come from enrolled people. Each is summed up by its best score and by
  whether the best identity is the searcher's own.
- **Non-mated searches** come from people not enrolled. Each is summed up by its best score.
- **FPIR(t)**, the false-positive identification rate: the share of non-mated searches that
  return a name (best score >= t).
- **FNIR(t)**, the false-negative identification rate: the share of mated searches that do
  not return the searcher's own name. Such a search was either rejected (best score < t) or
  misnamed (accepted, but the best identity is someone else's).
- **DET curve**: FNIR against FPIR as t sweeps over every score.

Ties: a search is accepted when its score is *at or above* t, so searches with equal scores
are always accepted or rejected together. FNIR at an FPIR target x uses the lowest
threshold whose FPIR does not exceed x. If a group of tied non-mated scores would carry FPIR
past x, the whole group is rejected (t lies just above it). The reported FPIR can then be
below x. Nothing is interpolated between points, so the reported FNIR is one a threshold
really gives.
"""
from dataclasses import dataclass
from typing import Dict, Sequence

import numpy as np


def _scores(values) -> np.ndarray:
    return np.asarray(values, np.float64).reshape(-1)


def fpir(nonmated: Sequence[float], threshold: float) -> float:
    """Share of non-mated searches that return a name at `threshold` (0 when there are none)."""
    nonmated = _scores(nonmated)
    return float(np.mean(nonmated >= threshold)) if len(nonmated) else 0.0


def fnir(mated: Sequence[float], correct: Sequence[bool], threshold: float) -> float:
    """Share of mated searches that do not return the searcher's own name at `threshold`:
    rejected (best score below it) or misnamed (`correct` false)."""
    mated, correct = _scores(mated), np.asarray(correct, bool).reshape(-1)
    if len(mated) != len(correct):
        raise ValueError(f"{len(mated)} mated scores but {len(correct)} correctness flags")
    if not len(mated):
        return 0.0
    return float(np.mean(~((mated >= threshold) & correct)))


def threshold_at_fpir(nonmated: Sequence[float], target: float) -> float:
    """The lowest threshold t with FPIR(t) <= target: with k = floor(target × N) searches
    allowed to return a name, t lies just above the (k+1)-th highest non-mated score.
    All may return one (k >= N): -inf. Needs at least one non-mated score."""
    scores = np.sort(_scores(nonmated))[::-1]
    if not len(scores):
        raise ValueError("an FPIR target needs at least one non-mated search")
    if not 0 <= target <= 1:
        raise ValueError(f"an FPIR target is a share between 0 and 1, got {target}")
    k = int(np.floor(target * len(scores) + 1e-9))
    if k >= len(scores):
        return -np.inf
    return float(np.nextafter(scores[k], np.inf))


@dataclass
class DET:
    """The DET curve's points, ordered by descending threshold: thresholds[i] gives
    fpir[i] and fnir[i]. The first point (t = +inf) rejects every search."""
    thresholds: np.ndarray
    fpir: np.ndarray
    fnir: np.ndarray


def det_curve(mated: Sequence[float], correct: Sequence[bool],
              nonmated: Sequence[float]) -> DET:
    """Every operating point the scores allow: t = +inf, then each distinct score, highest
    first (below the lowest score nothing changes any more)."""
    mated, nonmated = _scores(mated), _scores(nonmated)
    correct = np.asarray(correct, bool).reshape(-1)
    if len(mated) != len(correct):
        raise ValueError(f"{len(mated)} mated scores but {len(correct)} correctness flags")
    thresholds = np.concatenate([[np.inf], np.unique(np.concatenate([mated, nonmated]))[::-1]])
    # searches at or above t, counted with sorted arrays (ties fall on the accepted side)
    nm = np.sort(nonmated)
    accepted_nm = len(nm) - np.searchsorted(nm, thresholds, side="left")
    hits = np.sort(mated[correct])
    named_right = len(hits) - np.searchsorted(hits, thresholds, side="left")
    return DET(thresholds,
               accepted_nm / len(nm) if len(nm) else np.zeros(len(thresholds)),
               (len(mated) - named_right) / len(mated) if len(mated) else np.zeros(len(thresholds)))


def fnir_at_fpir(mated: Sequence[float], correct: Sequence[bool], nonmated: Sequence[float],
                 targets: Sequence[float] = (0.01, 0.05, 0.10)) -> Dict[float, dict]:
    """{target: {threshold, fpir, fnir}} at each FPIR target, the threshold chosen on the
    non-mated scores themselves (threshold_at_fpir; ties as the module says)."""
    out = {}
    for target in targets:
        t = threshold_at_fpir(nonmated, target)
        out[target] = dict(threshold=t, fpir=fpir(nonmated, t), fnir=fnir(mated, correct, t))
    return out


def rank1(correct: Sequence[bool]) -> float:
    """Closed-set Rank-1 of the mated searches: the share whose best identity is their own,
    whatever the threshold."""
    correct = np.asarray(correct, bool).reshape(-1)
    return float(correct.mean()) if len(correct) else 0.0
