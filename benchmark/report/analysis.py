"""Paired statistics over target datasets: pure functions of per-target values.

The unit of comparison is a **target dataset**: for each method, the per-target value of one
metric is the mean over seeds (:func:`target_matrix`); two methods are compared on the targets
both have, as paired samples. Everything here is deterministic given its ``seed``.

- **Wilcoxon signed-rank** (:func:`wilcoxon`), two-sided, on ``d = a - b``. Zero differences
  (``|d| <= ZERO_TOL``, float noise included) are dropped (Wilcoxon's convention,
  ``zero_method="wilcox"``); the remaining ``n'`` differences are ranked by ``|d|`` with average
  ranks for ties. p-value: all zero (``n' = 0``) -> 1.0 (no evidence of a difference; scipy
  would return NaN); no ties and ``n' <= 50`` -> ``scipy.stats.wilcoxon(method="exact")``;
  ties and ``n' <= EXACT_MAX_N`` -> the exact conditional distribution, enumerating all
  ``2**n'`` signs of the average ranks (scipy's exhaustive permutation method, computed here so
  that the result does not depend on how a scipy version resolves ``method="auto"``);
  otherwise the normal approximation with tie correction and no continuity correction
  (``method="asymptotic"``).
- **Paired permutation (sign-flip) test** (:func:`permutation_test`), two-sided, statistic
  ``|mean(d)|``: under the null each difference is symmetric about 0, so its sign is flipped at
  random. Exact (all ``2**n'`` sign vectors of the non-zero differences; zeros do not change
  the sum) when ``n' <= EXACT_MAX_N``, else ``PERMUTATION_RESAMPLES`` seeded Monte Carlo sign
  vectors with ``p = (1 + #{|S*| >= |S|}) / (1 + B)`` (Phipson & Smyth 2010: never 0).
- **Bootstrap CI** (:func:`bootstrap_ci`) of the mean over targets: targets resampled with
  replacement ``BOOTSTRAP_RESAMPLES`` times (``numpy.random.default_rng(seed)``), percentile
  interval (``numpy.quantile``, linear interpolation).
- **Win/tie/loss** (:func:`win_tie_loss`): per target, a tie when ``|a - b| <= tol``.

Comparisons are not corrected for multiplicity; the leaderboard says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

ZERO_TOL = 1e-12  # |difference| at or below this is a zero (float noise of means over seeds)
EXACT_MAX_N = 20  # exact enumeration up to 2**20 sign vectors (meet in the middle: 8 MB)
PERMUTATION_RESAMPLES = 20_000
BOOTSTRAP_RESAMPLES = 10_000
TIE_TOL = 0.0005  # win/tie/loss: equal at the leaderboard's three decimals
ALPHA = 0.05


@dataclass(frozen=True)
class TestResult:
    """A two-sided paired test. ``direction``: +1 if ``a`` tends to exceed ``b``, -1 if below,
    0 if neither (all differences zero or balanced)."""

    statistic: float
    pvalue: float
    n: int  # non-zero differences used
    method: str
    direction: int


@dataclass(frozen=True)
class Paired:
    """Everything the leaderboard and ``compare`` report for ``a`` against ``b``."""

    n_targets: int
    mean_a: float
    mean_b: float
    wilcoxon: TestResult
    permutation: TestResult
    wins: int
    ties: int
    losses: int

    @property
    def delta(self) -> float:
        return self.mean_a - self.mean_b

    def mark(self, alpha: float = ALPHA) -> str:
        """▲ ``a`` significantly better, ▼ worse (Wilcoxon p < alpha), = otherwise."""
        if self.wilcoxon.pvalue < alpha and self.wilcoxon.direction != 0:
            return "▲" if self.wilcoxon.direction > 0 else "▼"
        return "="


def target_matrix(scores: pd.DataFrame, metric: str, k: int) -> pd.DataFrame:
    """target x method (both sorted): the mean over seeds of one metric; NaN where missing."""
    s = scores[(scores["metric"] == metric) & (scores["k"] == k)]
    if s.empty:
        return pd.DataFrame(dtype=float)
    table = s.groupby(["target", "method"])["value"].mean().unstack("method")
    return table.sort_index().sort_index(axis=1).astype(float)


def _differences(a, b) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired samples need equal 1-d shapes, got {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("paired samples must be finite (pair only the targets both have)")
    d = a - b
    return d[np.abs(d) > ZERO_TOL]


def signflip_sums(values: np.ndarray) -> np.ndarray:
    """``sum(s * values)`` for all ``2**n`` sign vectors ``s`` (meet in the middle)."""
    values = np.asarray(values, float)
    n = len(values)
    if n > EXACT_MAX_N:
        raise ValueError(f"exact enumeration limited to n <= {EXACT_MAX_N}, got {n}")

    def half(v: np.ndarray) -> np.ndarray:
        sums = np.zeros(1)
        for x in v:
            sums = np.concatenate([sums + x, sums - x])
        return sums

    h = n // 2
    return (half(values[:h])[:, None] + half(values[h:])[None, :]).ravel()


def _two_sided(null: np.ndarray, observed: float) -> float:
    """P(|S| >= |observed|) under ``null``, with a tolerance for float noise in the sums."""
    tol = 1e-9 * max(1.0, abs(observed))
    return float(np.mean(np.abs(null) >= abs(observed) - tol))


def wilcoxon(a, b) -> TestResult:
    """Two-sided Wilcoxon signed-rank test of ``a - b`` (see the module docstring)."""
    d = _differences(a, b)
    n = len(d)
    if n == 0:
        return TestResult(0.0, 1.0, 0, "all differences zero", 0)
    ranks = stats.rankdata(np.abs(d))
    signed = float(np.sum(np.sign(d) * ranks))
    direction = int(np.sign(round(signed, 9)))
    ties = len(np.unique(np.abs(d))) < n
    if not ties and n <= 50:
        res = stats.wilcoxon(d, method="exact")
        return TestResult(float(res.statistic), float(res.pvalue), n, "exact", direction)
    statistic = float(min(ranks[d > 0].sum(), ranks[d < 0].sum()))
    if n <= EXACT_MAX_N:
        p = _two_sided(signflip_sums(ranks), signed)
        return TestResult(statistic, p, n, "exact (ties)", direction)
    res = stats.wilcoxon(d, method="asymptotic")
    return TestResult(float(res.statistic), float(res.pvalue), n, "normal approx.", direction)


def permutation_test(a, b, n_resamples: int = PERMUTATION_RESAMPLES, seed: int = 0
                     ) -> TestResult:
    """Two-sided paired sign-flip test of ``mean(a - b)`` (see the module docstring)."""
    d = _differences(a, b)
    n = len(d)
    total = float(d.sum())
    direction = int(np.sign(round(total, 12)))
    n_all = len(np.asarray(a))
    statistic = abs(total) / n_all if n_all else 0.0
    if n == 0:
        return TestResult(0.0, 1.0, 0, "all differences zero", 0)
    if n <= EXACT_MAX_N:
        return TestResult(statistic, _two_sided(signflip_sums(d), total), n,
                          f"exact ({2 ** n} sign vectors)", direction)
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_resamples, n))
    null = signs @ d
    tol = 1e-9 * max(1.0, abs(total))
    hits = int(np.sum(np.abs(null) >= abs(total) - tol))
    return TestResult(statistic, (1 + hits) / (1 + n_resamples), n,
                      f"Monte Carlo ({n_resamples} resamples, seed {seed})", direction)


def bootstrap_ci(values, n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (one per target)."""
    v = np.asarray(values, float)
    if v.ndim != 1 or len(v) == 0 or not np.all(np.isfinite(v)):
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_resamples, len(v)))].mean(axis=1)
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def win_tie_loss(a, b, tol: float = TIE_TOL) -> tuple[int, int, int]:
    """Per target: ``a`` wins when ``a - b > tol``, loses when ``< -tol``, else a tie."""
    d = np.asarray(a, float) - np.asarray(b, float)
    return int(np.sum(d > tol)), int(np.sum(np.abs(d) <= tol)), int(np.sum(d < -tol))


def paired(matrix: pd.DataFrame, a: str, b: str, seed: int = 0) -> Paired | None:
    """``a`` against ``b`` on the targets where both have a value; None if fewer than 1."""
    if a not in matrix.columns or b not in matrix.columns:
        return None
    x, y = matrix[a].to_numpy(float), matrix[b].to_numpy(float)
    both = ~(np.isnan(x) | np.isnan(y))  # the rows of matrix[[a, b]].dropna()
    if not both.any():
        return None
    x, y = x[both], y[both]
    w, t, lo = win_tie_loss(x, y)
    return Paired(len(x), float(x.mean()), float(y.mean()), wilcoxon(x, y),
                  permutation_test(x, y, seed=seed), w, t, lo)


def format_p(p: float) -> str:
    """Three decimals; ``<0.001`` below."""
    if p is None or not np.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
