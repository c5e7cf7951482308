import numpy as np
import pytest

from utils.foundation.metrics import cmc_and_map, cmc_nauc, rank_n_from_scores, roc_nauc


def test_rank_n_hand_worked():
    scores = np.array([[0.9, 0.1, 0.0],    # true 0: rank 1
                       [0.5, 0.2, 0.3],    # true 1: rank 3
                       [0.1, 0.6, 0.3]])   # true 2: rank 2
    labels = np.array([0, 1, 2])
    r = rank_n_from_scores(scores, labels, (1, 2, 3))
    assert r == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 3: pytest.approx(1.0)}


def test_roc_nauc_perfect_and_hand_worked():
    labels = np.array([0, 1])
    assert roc_nauc(np.array([[2.0, 0.0], [0.0, 2.0]]), labels, 2) == pytest.approx(1.0)
    # Micro-averaged over 3 classes: positives score 3, 1; negatives 2, 0, 0, 0.
    scores = np.array([[3.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    # positives {3, 1}, negatives {2, 0, 0, 0}: pairs won = 4 (3>all) + 3 (1>0,0,0) of 8
    assert roc_nauc(scores, np.array([0, 2]), 3) == pytest.approx(7 / 8)


def test_cmc_and_map_hand_worked():
    # Two queries, gallery ids [1, 2, 1, 3].
    gallery = np.array([1, 2, 1, 3])
    queries = np.array([1, 2, 9])              # id 9 has no match: skipped and counted
    d = np.array([[0.5, 0.1, 0.9, 0.3],        # order: 2,3,1,1 -> hits at ranks 3 and 4
                  [0.2, 0.1, 0.3, 0.4],        # order: 2,1,1,3 -> hit at rank 1
                  [0.1, 0.2, 0.3, 0.4]])
    cmc, mean_ap, valid, skipped = cmc_and_map(d, queries, gallery)
    assert valid == 2 and skipped == 1
    np.testing.assert_allclose(cmc, [0.5, 0.5, 1.0, 1.0])
    ap_q1 = (1 / 3 + 2 / 4) / 2
    assert mean_ap == pytest.approx((ap_q1 + 1.0) / 2)
    assert cmc_nauc(cmc) == pytest.approx(0.75)


def test_chunked_retrieval_metrics_equal_the_whole_matrix():
    from utils.foundation.metrics import cmc_and_map_features, pairwise_euclidean
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(37, 5)), rng.normal(size=(50, 5))
    qid, gid = rng.integers(0, 8, 37), rng.integers(0, 6, 50)   # ids 6, 7: no true match
    whole = cmc_and_map(pairwise_euclidean(q, g), qid, gid, chunk=1000)
    for chunk in (1, 7):
        parts = cmc_and_map_features(q, g, qid, gid, chunk=chunk)
        np.testing.assert_allclose(parts[0], whole[0])
        assert parts[1:] == pytest.approx(whole[1:])
    assert whole[3] == int(np.isin(qid, [6, 7]).sum()) > 0
