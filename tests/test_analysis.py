"""benchmark/report/analysis.py: paired tests over targets, bootstrap CI, win/tie/loss — hand-computed
tiny examples."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.core.harness import SCORE_COLUMNS
from benchmark.report import analysis


def test_target_matrix_is_the_mean_over_seeds_with_missing_cells_nan():
    rows = [("a", "p", 0, "t2", "ndcg", 5, 0.2), ("a", "p", 1, "t2", "ndcg", 5, 0.4),
            ("a", "p", 0, "t1", "ndcg", 5, 1.0), ("b", "p", 0, "t1", "ndcg", 5, 0.5),
            ("b", "p", 0, "t1", "tau", 5, 0.9)]
    m = analysis.target_matrix(pd.DataFrame(rows, columns=SCORE_COLUMNS), "ndcg", 5)
    assert list(m.index) == ["t1", "t2"] and list(m.columns) == ["a", "b"]
    assert m.loc["t2", "a"] == pytest.approx(0.3)
    assert m.loc["t1", "b"] == 0.5
    assert np.isnan(m.loc["t2", "b"])


def test_wilcoxon_matches_scipy_exact_without_ties():
    a = np.array([0.9, 0.4, 1.6, 1.3, 0.8, 0.1, 2.0])
    b = np.array([0.4, 0.6, 0.5, 0.4, 0.5, 0.8, 0.6])  # d = .5 -.2 1.1 .9 .3 -.7 1.4
    ref = stats.wilcoxon(a - b, method="exact")
    res = analysis.wilcoxon(a, b)
    assert res.method == "exact" and res.n == 7 and res.direction == 1
    # |d| ranks: .2->1 .3->2 .5->3 .7->4 .9->5 1.1->6 1.4->7; the negatives (-.2, -.7) sum to
    # T- = 5, T+ = 23; the two-sided statistic is min(T+, T-) = 5. Exact p = 2 P(T <= 5): subsets
    # of {1..7} summing to <= 5: {}, 1, 2, 3, 12, 4, 13, 5, 14, 23 -> 10 of 128 -> p = 20/128.
    assert res.statistic == ref.statistic == 5.0
    assert res.pvalue == pytest.approx(ref.pvalue) == pytest.approx(20 / 128)


def test_wilcoxon_statistic_hand_computed():
    # d = 1, 2, -3, 4: ranks 1, 2, 3, 4; T- = 3, T+ = 7 -> statistic min = 3. Exact two-sided p:
    # over the 16 subsets N of ranks made negative, S = 10 - 2 sum(N), and |S| >= |7 - 3| = 4
    # iff sum(N) <= 3 or >= 7: sums 0, 1, 2, 3, 3 (1+2) and 7 (3+4), 7 (1+2+4), 8, 9, 10 -> 10/16.
    res = analysis.wilcoxon([1, 2, -3, 4], [0, 0, 0, 0])
    assert res.statistic == 3.0
    assert res.pvalue == pytest.approx(10 / 16)
    assert res.pvalue == pytest.approx(stats.wilcoxon([1, 2, -3, 4], method="exact").pvalue)


def test_wilcoxon_drops_zero_differences_and_float_noise():
    res = analysis.wilcoxon([0, 0, 1, 2, 3], [0, 0, 0, 0, 0])
    assert res.n == 3 and res.pvalue == pytest.approx(2 / 8)  # all positive: 2 of 8 sign vectors
    noisy = analysis.wilcoxon([0.1 + 0.2, 1.0], [0.3, 0.0])  # 0.1 + 0.2 != 0.3 in floats
    assert noisy.n == 1


def test_wilcoxon_all_zero_differences_is_p_one_not_nan():
    res = analysis.wilcoxon([0.5, 0.2, 0.0], [0.5, 0.2, 0.0])
    assert (res.pvalue, res.n, res.direction) == (1.0, 0, 0)


def test_wilcoxon_with_ties_is_the_exact_conditional_distribution():
    # d = 1, 1, 1, 2: average ranks 2, 2, 2, 4; observed signed sum 10; |S| >= 10 only for the
    # all-plus and all-minus sign vectors: p = 2/16.
    res = analysis.wilcoxon([1, 1, 1, 2], [0, 0, 0, 0])
    assert res.method == "exact (ties)"
    assert res.pvalue == pytest.approx(2 / 16)
    if hasattr(stats, "PermutationMethod"):  # scipy >= 1.11: same number by exhaustive permutation
        ref = stats.wilcoxon([1, 1, 1, 2], method=stats.PermutationMethod(n_resamples=np.inf))
        assert res.pvalue == pytest.approx(ref.pvalue)


def test_wilcoxon_large_n_with_ties_uses_the_normal_approximation():
    d = np.repeat([1.0, 2.0, -0.5], 9)  # 27 non-zero differences with ties
    res = analysis.wilcoxon(d, np.zeros_like(d))
    ref = stats.wilcoxon(d, method="asymptotic")
    assert res.method == "normal approx." and res.pvalue == pytest.approx(ref.pvalue)


def test_signflip_sums_enumerate_every_sign_vector():
    v = np.array([0.3, 1.0, 2.5, 4.0, 0.7])
    brute = sorted(np.dot(s, v) for s in itertools.product([1, -1], repeat=5))
    assert np.allclose(sorted(analysis.signflip_sums(v)), brute)


def test_permutation_test_exact_on_n4_hand_enumeration():
    # d = 1, 2, 3, -0.5; S = 5.5. The 16 sums of ±1 ±2 ±3 ±0.5 whose absolute value is >= 5.5:
    # +1+2+3+0.5 = 6.5, +1+2+3-0.5 = 5.5, and their negatives; all others are <= 4.5. p = 4/16.
    res = analysis.permutation_test([1, 2, 3, -0.5], [0, 0, 0, 0])
    assert res.pvalue == 4 / 16
    assert res.statistic == pytest.approx(5.5 / 4)
    assert res.method == "exact (16 sign vectors)" and res.direction == 1


def test_permutation_test_ignores_zero_differences_and_all_zero_is_one():
    assert analysis.permutation_test([1, 2, 3, -0.5, 7], [0, 0, 0, 0, 7]).pvalue == 4 / 16
    assert analysis.permutation_test([1, 2], [1, 2]).pvalue == 1.0


def test_permutation_test_monte_carlo_is_seeded_and_never_zero():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 0.1, size=25)
    b = np.zeros(25)
    r1 = analysis.permutation_test(a, b, n_resamples=2000, seed=3)
    r2 = analysis.permutation_test(a, b, n_resamples=2000, seed=3)
    assert r1 == r2 and r1.method.startswith("Monte Carlo (2000 resamples, seed 3)")
    assert r1.pvalue == 1 / 2001  # nothing beats all-positive differences: (1 + 0) / (1 + B)
    null = rng.normal(size=25)
    p = [analysis.permutation_test(null, b, n_resamples=2000, seed=s).pvalue for s in (1, 2)]
    assert p[0] != p[1] and all(0 < x <= 1 for x in p)


def test_bootstrap_ci_contains_the_mean_and_is_deterministic_per_seed():
    v = np.array([0.1, 0.9, 0.4, 0.7, 0.3, 0.8])
    lo, hi = analysis.bootstrap_ci(v, seed=0)
    assert lo < v.mean() < hi and lo >= 0.1 and hi <= 0.9
    assert analysis.bootstrap_ci(v, seed=0) == (lo, hi)
    assert analysis.bootstrap_ci(v, seed=1) != (lo, hi)
    assert analysis.bootstrap_ci(np.full(5, 0.25)) == (0.25, 0.25)
    assert np.isnan(analysis.bootstrap_ci([0.1, np.nan])[0])  # a missing target: no CI


def test_win_tie_loss_counts_with_tolerance():
    a = [0.5, 0.5004, 0.7, 0.1, 0.3]
    b = [0.5, 0.5, 0.6, 0.2, 0.3006]
    assert analysis.win_tie_loss(a, b) == (1, 2, 2)  # 0.0004 ties, 0.0006 loses
    assert analysis.win_tie_loss(a, b, tol=0.0) == (2, 1, 2)


def test_paired_uses_the_targets_both_have_and_marks_direction():
    m = pd.DataFrame({"a": [0.9, 0.8, 0.7, 0.9, 0.6, 0.8, np.nan],
                      "b": [0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.5]},
                     index=[f"t{i}" for i in range(7)])
    p = analysis.paired(m, "a", "b")
    assert p.n_targets == 6 and p.wins == 6 and p.losses == 0
    assert p.wilcoxon.pvalue == pytest.approx(2 / 64)  # all six positive
    assert p.mark() == "▲" and analysis.paired(m, "b", "a").mark() == "▼"
    assert p.delta == pytest.approx(np.mean([0.8, 0.6, 0.4, 0.8, 0.4, 0.5]))
    assert analysis.paired(m, "a", "nope") is None
    assert analysis.paired(m.iloc[:2], "a", "b").mark() == "="  # 2 targets: p = 0.5


def test_unpaired_or_missing_values_are_refused():
    with pytest.raises(ValueError, match="equal 1-d shapes"):
        analysis.wilcoxon([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        analysis.permutation_test([1, np.nan], [0, 0])


def test_format_p():
    assert analysis.format_p(0.0004) == "<0.001"
    assert analysis.format_p(0.04999) == "0.050"
    assert analysis.format_p(float("nan")) == "—"


def test_reused_figure_is_returned_only_for_the_same_data(tmp_path):
    """plots.reuse: a committed PNG stands in for a rendering only when its fingerprint matches."""
    from benchmark.report import plots

    rows = [{"label": "a", "style": "best", "NDCG@5": (0.5, 0.4, 0.6)}]
    png = plots.methods_figure(rows, ["NDCG@5"], "t")
    fake = png.replace(b"IEND", b"IEND")  # same bytes; now register a marked copy
    (tmp_path / "f.png").write_bytes(fake)
    (tmp_path / "junk.png").write_bytes(b"not a png")
    assert plots.reuse([tmp_path / "f.png", tmp_path / "junk.png"]) == 1
    try:
        key = next(k for k, v in plots._KNOWN.items() if v == fake)
        plots._KNOWN[key] = b"MARKER"  # what reuse hands back for this fingerprint
        assert plots.methods_figure(rows, ["NDCG@5"], "t") == b"MARKER"
        other = [{"label": "a", "style": "best", "NDCG@5": (0.51, 0.4, 0.6)}]
        assert plots.methods_figure(other, ["NDCG@5"], "t").startswith(b"\x89PNG")
    finally:
        plots._KNOWN.clear()
