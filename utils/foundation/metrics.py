"""Re-ID metrics, all pure NumPy/scikit-learn functions of scores or distances.

Two nAUC definitions exist in the literature and both are here, named apart:
- `roc_nauc`: the reference's "nAUC", the area under the micro-averaged one-vs-rest ROC
  curve of the classification logits (classification protocol);
- `cmc_nauc`: the area under the CMC curve, normalised to [0, 1] (retrieval works).
"""
from typing import Dict, Sequence

import numpy as np
from sklearn.metrics import auc, confusion_matrix, roc_curve
from sklearn.preprocessing import label_binarize


def rank_n_from_scores(scores: np.ndarray, labels: np.ndarray,
                       ranks: Sequence[int] = (1, 5, 10)) -> Dict[int, float]:
    """Fraction of samples whose true class is among the n highest scores."""
    # Position of the true class when classes are sorted by descending score; ties count
    # against the sample (a tied wrong class ranks ahead), so the result never flatters.
    true_scores = scores[np.arange(len(labels)), labels]
    position = np.sum(scores >= true_scores[:, None], axis=1)   # 1 = top
    return {n: float(np.mean(position <= n)) for n in ranks}


def roc_nauc(scores: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Area under the micro-averaged one-vs-rest ROC curve of the scores."""
    onehot = label_binarize(labels, classes=np.arange(num_classes))
    if num_classes == 2:   # label_binarize gives one column for two classes
        onehot = np.hstack([1 - onehot, onehot])
    fpr, tpr, _ = roc_curve(onehot.ravel(), scores.ravel())
    return float(auc(fpr, tpr))


def confusion(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    return confusion_matrix(labels, predicted, labels=np.arange(num_classes))


def cmc_and_map(distances: np.ndarray, query_ids: np.ndarray, gallery_ids: np.ndarray,
                chunk: int = 1024):
    """CMC curve and mAP from a [queries, gallery] distance matrix.

    Queries with no true match in the gallery are skipped and counted.
    Returns (cmc [gallery size], mAP, number of valid queries, number skipped).
    """
    return _merge_cmc((_cmc_chunk(distances[s:s + chunk], query_ids[s:s + chunk], gallery_ids)
                       for s in range(0, len(query_ids), chunk)), distances.shape[1])


def cmc_and_map_features(queries: np.ndarray, gallery: np.ndarray, query_ids: np.ndarray,
                         gallery_ids: np.ndarray, chunk: int = 1024, distance: str = "euclidean"):
    """cmc_and_map of the named distance between feature rows, computed a chunk of
    queries at a time: a real probe/gallery set (KGBD: 15k x 32k windows) would need
    tens of GB as one matrix."""
    measure = distance_named(distance)
    return _merge_cmc((_cmc_chunk(measure(queries[s:s + chunk], gallery),
                                  query_ids[s:s + chunk], gallery_ids)
                       for s in range(0, len(query_ids), chunk)), len(gallery_ids))


def _cmc_chunk(distances, query_ids, gallery_ids):
    """(first-hit counts per rank, AP of each valid query, skipped queries) of some queries."""
    order = np.argsort(distances, axis=1, kind="stable")
    matches = gallery_ids[order] == query_ids[:, None]          # [Q, G]
    valid = matches.any(axis=1)
    matches = matches[valid]
    counts = np.zeros(distances.shape[1])
    np.add.at(counts, matches.argmax(axis=1), 1)
    hits = np.cumsum(matches, axis=1)
    precision_at_hit = hits / np.arange(1, matches.shape[1] + 1)
    ap = (precision_at_hit * matches).sum(axis=1) / np.maximum(matches.sum(axis=1), 1)
    return counts, ap, int((~valid).sum())


def _merge_cmc(chunks, gallery_size: int):
    counts, aps, skipped = np.zeros(gallery_size), [], 0
    for c, ap, s in chunks:
        counts += c
        aps.append(ap)
        skipped += s
    aps = np.concatenate(aps) if aps else np.zeros(0)
    if not len(aps):
        return np.zeros(gallery_size), 0.0, 0, skipped
    return np.cumsum(counts) / len(aps), float(aps.mean()), int(len(aps)), skipped


def cmc_nauc(cmc: np.ndarray) -> float:
    """Area under the CMC curve over ranks 1..G, normalised by G (1.0 = always rank 1)."""
    return float(np.mean(cmc)) if len(cmc) else 0.0


def pairwise_euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def pairwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of every pair of rows (a zero row is at distance 1)."""
    unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # noqa: E731
    return 1.0 - unit(a) @ unit(b).T


DISTANCES = {"euclidean": pairwise_euclidean, "cosine": pairwise_cosine}


def distance_named(name: str):
    """The pairwise distance function of that name (DISTANCES)."""
    if name not in DISTANCES:
        from utils.foundation.errors import UserError
        raise UserError(f"unknown distance {name!r}; choose one of {', '.join(DISTANCES)}")
    return DISTANCES[name]
