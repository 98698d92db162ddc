"""Metrics: expected values written as the formulas of metrics.md, plus edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

from benchmark.core.metrics import (
    MetricConfig,
    kendall_tau_at_k,
    ndcg_at_k,
    order,
    recall_at_k,
    sum_at_k,
    top_k,
    true_ranks,
)

MODELS = ["a", "b", "c", "d", "e", "f"]
TRUTH = pd.Series([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], index=MODELS)  # true order a > b > ... > f


def s(values, index=MODELS):
    return pd.Series(values, index=index, dtype=float)


def test_order_breaks_ties_by_model_id_and_ignores_input_order():
    scores = s([1, 2, 2, 0, 2, 1])
    assert order(scores) == ["b", "c", "e", "a", "f", "d"]
    shuffled = scores.iloc[[5, 3, 1, 0, 4, 2]]
    assert order(shuffled) == order(scores)


def test_true_ranks_average_ties():
    r = true_ranks(s([0.5, 0.7, 0.7, 0.1], ["w", "x", "y", "z"]))
    assert r.to_dict() == {"w": 3.0, "x": 1.5, "y": 1.5, "z": 4.0}


def test_perfect_prediction_scores_one():
    assert recall_at_k(TRUTH, TRUTH, 3) == 1
    assert kendall_tau_at_k(TRUTH, TRUTH, 3) == pytest.approx(1)
    assert ndcg_at_k(TRUTH, TRUTH, 3) == pytest.approx(1)
    assert ndcg_at_k(TRUTH, TRUTH, 3, ideal="truth_topk") == pytest.approx(1)
    assert sum_at_k(TRUTH, TRUTH, 3) == pytest.approx(2)


def test_reversed_prediction_within_topk():
    # predicted top-3: c, b, a (the true top-3, reversed); the rest below.
    pred = s([4, 5, 6, 1, 0.5, 0.1])
    assert recall_at_k(pred, TRUTH, 3) == 1
    assert kendall_tau_at_k(pred, TRUTH, 3) == pytest.approx(-1)
    # rel = k + 1 - true rank: a=3, b=2, c=1; predicted order c, b, a.
    dcg = 1 / np.log2(2) + 2 / np.log2(3) + 3 / np.log2(4)
    idcg = 3 / np.log2(2) + 2 / np.log2(3) + 1 / np.log2(4)
    assert ndcg_at_k(pred, TRUTH, 3) == pytest.approx(dcg / idcg)


def test_partial_overlap_hand_computed():
    # predicted top-3: a, d, c  -> I_3 = {a, c} in predicted order (a, c); T_3 = a, b, c
    pred = s([9, 1, 7, 8, 0, 0.5])
    assert top_k(pred, 3) == ["a", "d", "c"]
    assert recall_at_k(pred, TRUTH, 3) == pytest.approx(2 / 3)
    # tau-b on I_3 = {a, c}: pred (9, 7), truth (0.9, 0.7): concordant -> 1
    assert kendall_tau_at_k(pred, TRUTH, 3) == pytest.approx(1)
    # rel(a) = 3, rel(c) = 1; DCG over I_k in predicted order; IDCG over I_k in true order
    dcg = 3 / np.log2(2) + 1 / np.log2(3)
    assert ndcg_at_k(pred, TRUTH, 3) == pytest.approx(dcg / dcg)
    # truth_topk: IDCG over T_3 = a, b, c
    idcg_t = 3 / np.log2(2) + 2 / np.log2(3) + 1 / np.log2(4)
    assert ndcg_at_k(pred, TRUTH, 3, ideal="truth_topk") == pytest.approx(dcg / idcg_t)


def test_misordered_intersection_hand_computed():
    # predicted order c > a > e > b > d > f; T_4 = a, b, c, d
    pred = s([8, 5, 9, 1, 7, 0])
    i_k = [m for m in top_k(pred, 4) if m in set(top_k(TRUTH, 4))]
    assert i_k == ["c", "a", "b"]
    rel = {"a": 4, "b": 3, "c": 2}
    dcg = rel["c"] / np.log2(2) + rel["a"] / np.log2(3) + rel["b"] / np.log2(4)
    idcg = rel["a"] / np.log2(2) + rel["b"] / np.log2(3) + rel["c"] / np.log2(4)
    assert ndcg_at_k(pred, TRUTH, 4) == pytest.approx(dcg / idcg)
    expected_tau = kendalltau([9, 8, 5], [0.7, 0.9, 0.8]).statistic
    assert kendall_tau_at_k(pred, TRUTH, 4) == pytest.approx(expected_tau)
    assert expected_tau == pytest.approx(-1 / 3)


def test_intersection_smaller_than_two_gives_zero():
    pred = s([9, 0, 0, 8, 7, 6])  # top-3 = a, d, e: I_3 = {a}
    assert recall_at_k(pred, TRUTH, 3) == pytest.approx(1 / 3)
    assert kendall_tau_at_k(pred, TRUTH, 3) == 0
    assert ndcg_at_k(pred, TRUTH, 3) == 0
    empty = s([0, 0, 0, 9, 8, 7])  # no overlap
    assert recall_at_k(empty, TRUTH, 3) == 0
    assert ndcg_at_k(empty, TRUTH, 3) == 0


def test_k_larger_than_n_uses_all_models():
    assert recall_at_k(TRUTH, TRUTH, 10) == 1
    assert ndcg_at_k(TRUTH, TRUTH, 10) == pytest.approx(1)
    assert kendall_tau_at_k(-TRUTH, TRUTH, 10) == pytest.approx(-1)


def test_ties_in_scores_are_broken_by_model_id_for_topk_and_kept_for_tau():
    pred = s([1, 1, 1, 0, 0, 0])  # top-3 by id: a, b, c == T_3
    assert recall_at_k(pred, TRUTH, 3) == 1
    assert kendall_tau_at_k(pred, TRUTH, 3) == 0  # constant predictions: tau-b undefined -> 0
    # NDCG orders I_k by predicted rank with the id tie-break: a, b, c == true order
    assert ndcg_at_k(pred, TRUTH, 3) == pytest.approx(1)


def test_ties_in_truth_average_relevance():
    truth = s([0.9, 0.8, 0.8, 0.1], ["a", "b", "c", "d"])
    pred = s([3, 1, 2, 0], ["a", "b", "c", "d"])  # predicted a, c, b
    # ranks: a=1, b=c=2.5 -> rel = 3, 1.5, 1.5 for k=3; DCG == IDCG (tied gains)
    assert ndcg_at_k(pred, truth, 3) == pytest.approx(1)


def test_lovm_tau_variant_truncates_ranks_and_needs_three():
    # two models in the intersection: clean gives +-1, LOVM gives 0
    pred = s([9, 0, 8, 7, 6, 5])
    assert kendall_tau_at_k(pred, TRUTH, 3) == pytest.approx(1)  # I = {a, c}
    assert kendall_tau_at_k(pred, TRUTH, 3, variant="lovm") == 0
    # three models with tied predictions: average ranks 1.5, 1.5 truncate to 1, 1
    truth = s([0.9, 0.8, 0.7, 0.1], ["a", "b", "c", "d"])
    pred = s([2, 2, 1, 0], ["a", "b", "c", "d"])
    lovm = kendalltau([1, 1, 3], [1, 2, 3]).statistic
    assert kendall_tau_at_k(pred, truth, 3, variant="lovm") == pytest.approx(lovm)
    clean = kendalltau([2, 2, 1], [0.9, 0.8, 0.7]).statistic
    assert kendall_tau_at_k(pred, truth, 3) == pytest.approx(clean)


def test_invalid_inputs_are_rejected():
    with pytest.raises(ValueError, match="same models"):
        recall_at_k(s([1, 2], ["a", "b"]), s([1, 2], ["a", "c"]))
    with pytest.raises(ValueError, match="finite"):
        recall_at_k(s([1, np.nan], ["a", "b"]), s([1, 2], ["a", "b"]))
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(TRUTH, TRUTH, 0)
    with pytest.raises(ValueError, match="tau variant"):
        kendall_tau_at_k(TRUTH, TRUTH, 3, variant="nope")
    with pytest.raises(ValueError, match="ideal"):
        MetricConfig(ndcg_ideal="nope")


def test_metric_config_rows_and_sum():
    pred = s([8, 5, 9, 1, 7, 0])
    rows = {(m, k): v for m, k, v in MetricConfig(ks=(3, 5)).evaluate(pred, TRUTH)}
    assert set(rows) == ({(m, k) for m in ("ndcg", "tau", "recall", "sum") for k in (3, 5)}
                         | {(m, k) for m in ("acc", "regret", "nregret", "hit",
                                                "regret_tol", "hit_tol")
                            for k in (1, 3, 5)})
    assert rows[("sum", 5)] == pytest.approx(rows[("ndcg", 5)] + rows[("tau", 5)])
    assert rows[("recall", 5)] == pytest.approx(recall_at_k(pred, TRUTH, 5))


def test_metrics_invariant_to_input_order():
    rng = np.random.default_rng(0)
    truth = s(rng.random(6))
    pred = s(rng.random(6))
    perm = rng.permutation(6)
    for k in (2, 3, 5):
        assert ndcg_at_k(pred, truth, k) == ndcg_at_k(pred.iloc[perm], truth.iloc[perm[::-1]], k)
        assert kendall_tau_at_k(pred, truth, k) == kendall_tau_at_k(
            pred.iloc[perm], truth.iloc[perm], k
        )


# The harness computes metrics through MetricConfig.evaluate's numpy path; it must equal the
# reference functions (written as the formulas) on any input, ties included.
@pytest.mark.parametrize("ideal", ["intersection", "truth_topk"])
@pytest.mark.parametrize("variant", ["clean", "lovm"])
def test_fast_evaluate_equals_the_reference_functions(ideal, variant):
    from benchmark.core.metrics import MetricConfig, kendall_tau_at_k, ndcg_at_k, recall_at_k

    rng = np.random.default_rng(7)
    cfg = MetricConfig(ks=(1, 2, 3, 5, 7, 30), ndcg_ideal=ideal, tau_variant=variant)
    for trial in range(300):
        n = int(rng.integers(2, 25))
        ids = [f"m{j}" for j in rng.permutation(n)]
        # coarse values make ties common on both sides
        scores = pd.Series(rng.integers(0, 4 if trial % 2 else 50, n).astype(float), index=ids)
        truth = pd.Series(rng.integers(0, 5 if trial % 3 else 60, n) / 10.0,
                          index=rng.permutation(ids))
        got = {(m, k): v for m, k, v in cfg.evaluate(scores, truth)}
        for k in cfg.ks:
            want = {
                "ndcg": ndcg_at_k(scores, truth, k, ideal=ideal),
                "tau": kendall_tau_at_k(scores, truth, k, variant=variant),
                "recall": recall_at_k(scores, truth, k),
            }
            want["sum"] = want["ndcg"] + want["tau"]
            for m, v in want.items():
                # bit for bit: paired tests rank the differences, so 1e-16 matters there
                assert got[(m, k)] == v, (trial, m, k)
