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


def cmc_and_map(distances: np.ndarray, query_ids: np.ndarray, gallery_ids: np.ndarray):
    """CMC curve and mAP from a [queries, gallery] distance matrix.

    Queries with no true match in the gallery are skipped and counted.
    Returns (cmc [gallery size], mAP, number of valid queries, number skipped).
    """
    order = np.argsort(distances, axis=1, kind="stable")
    matches = gallery_ids[order] == query_ids[:, None]          # [Q, G]
    valid = matches.any(axis=1)
    matches = matches[valid]
    if not len(matches):
        return np.zeros(distances.shape[1]), 0.0, 0, int((~valid).sum())
    first_hit = matches.argmax(axis=1)
    cmc = np.zeros(distances.shape[1])
    np.add.at(cmc, first_hit, 1)
    cmc = np.cumsum(cmc) / len(matches)
    hits = np.cumsum(matches, axis=1)
    precision_at_hit = hits / np.arange(1, matches.shape[1] + 1)
    ap = (precision_at_hit * matches).sum(axis=1) / matches.sum(axis=1)
    return cmc, float(ap.mean()), int(len(matches)), int((~valid).sum())


def cmc_nauc(cmc: np.ndarray) -> float:
    """Area under the CMC curve over ranks 1..G, normalised by G (1.0 = always rank 1)."""
    return float(np.mean(cmc)) if len(cmc) else 0.0


def pairwise_euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))
