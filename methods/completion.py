r"""Matrix completion: an inductive low-rank model of the (model x dataset) accuracy table.

The target's column is empty (no ground truth), so plain collaborative filtering cannot fill
it; it is predicted from a side feature of the dataset, its text embedding. Recent work does
this at scale: CrossPred-LVLM (Zhao et al., "Can We Predict Performance of Large Models across
Vision-Language Tasks?", ICML 2025, arXiv 2410.10112) completes a sparse model x dataset matrix
by probabilistic matrix factorisation (MCMC) and adds model/dataset profiles as side
information for new rows/columns; ModelLens (Cai et al., arXiv 2605.07075, 2026) learns a
latent space of model-dataset-metric records with frozen text descriptions of datasets so that
unseen datasets can be ranked. Neither is followed exactly (both are trained on their own large
record sets; ModelLens's network and CrossPred's MCMC sampler are not reproducible from the
21-23 dataset tables here). What we implement is the smallest faithful member of the family,
an inductive low-rank completion with dataset side features:

1. ``A`` = models x sources accuracy; every column z-scored over the models that have a cell
   (datasets differ in scale); missing cells filled by hard-impute: start at 0 (the column
   mean), then iterate ``Z <- P_obs(A) + P_miss(SVD_r(Z))`` (``n_iter`` times).
2. Rank-``r`` truncated SVD ``Z_r = U_r S_r V_r^T``: ``U_r S_r`` = model factors, ``V_r`` the
   sources' dataset factors.
3. Dataset factors from side features by kernel ridge regression: ``x_d`` = the unit task
   embedding of :func:`methods.semantic.prompt_task_embedding` (``"a photo of {c}."``,
   shared embedder), kernel ``K = X X^T`` (cosine) over the sources, and the target's factors
   ``v_t = V_r^T (K + lam I)^{-1} k_t`` with ``k_t = X x_t``.
4. Predicted column ``z_t = U_r S_r v_t = Z_r alpha``, ``alpha = (K + lam I)^{-1} k_t``: the
   low-rank-smoothed source columns, combined by the ridge coefficients. Score = ``z_t``.

``rank`` and ``lam`` are chosen inside ``fit`` from the sources only (``rank=None`` /
``lam=None``, the defaults): leave-one-source-out over the grids ``RANKS`` x ``LAMS``, each
held-out source's column predicted from the others exactly as above, criterion the mean Spearman
correlation between the predicted and the true column (ties: the smaller rank, then the larger
``lam``). Fixed values skip the search. A candidate without any source cell gets its imputed
row (the column means, i.e. score 0 in z units, unless the low-rank fill says otherwise).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

from methods.base import Selector, TargetView, TrainView
from methods.semantic import prompt_task_embedding

log = logging.getLogger(__name__)

RANKS: tuple[int, ...] = (1, 2, 3, 5)
LAMS: tuple[float, ...] = (0.1, 1.0, 10.0)
CITATION = ("Inductive low-rank matrix completion with dataset side features; after CrossPred-LVLM "
            "(Zhao et al., ICML 2025, arXiv:2410.10112) and ModelLens (Cai et al., "
            "arXiv:2605.07075).")


def zscore_columns(a: np.ndarray) -> np.ndarray:
    """Each column minus its mean over the finite cells, divided by their std (1 if 0)."""
    a = np.asarray(a, dtype=np.float64)
    finite = np.where(np.isfinite(a), a, np.nan)
    n = np.isfinite(a).sum(axis=0)
    # a column without finite cells (a dataset no model of the fold has) has mean 0, std 1
    mu = np.divide(np.nansum(finite, axis=0), n, out=np.zeros(a.shape[1]), where=n > 0)
    dev = np.where(np.isfinite(a), a - mu, 0.0)
    sd = np.sqrt(np.divide((dev ** 2).sum(axis=0), n, out=np.zeros(a.shape[1]), where=n > 0))
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    return (a - np.nan_to_num(mu)) / sd


def truncated(z: np.ndarray, rank: int) -> np.ndarray:
    """Best rank-``rank`` approximation of ``z`` (truncated SVD)."""
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    r = min(rank, len(s))
    return (u[:, :r] * s[:r]) @ vt[:r]


def hard_impute(z: np.ndarray, rank: int, n_iter: int = 20) -> np.ndarray:
    """Missing cells (NaN) of ``z`` filled by iterated rank-``rank`` SVD, observed ones kept."""
    obs = np.isfinite(z)
    filled = np.where(obs, z, 0.0)
    if obs.all():
        return filled
    for _ in range(n_iter):
        filled = np.where(obs, z, truncated(filled, rank))
    return filled


def predict_column(z: np.ndarray, x_sources: np.ndarray, x_target: np.ndarray, rank: int,
                   lam: float, n_iter: int = 20) -> np.ndarray:
    """Step 1-4 of the module docstring: the target column from the source columns ``z``
    (already z-scored, NaN = missing) and unit side features of sources and target."""
    return combine(low_rank(z, rank, n_iter), x_sources, x_target, lam)


def low_rank(z: np.ndarray, rank: int, n_iter: int = 20) -> np.ndarray:
    """Steps 1-2: ``Z_r``, the hard-imputed source columns truncated to ``rank`` (no ``lam``)."""
    return truncated(hard_impute(z, rank, n_iter), rank)


def combine(zr: np.ndarray, x_sources: np.ndarray, x_target: np.ndarray, lam: float
            ) -> np.ndarray:
    """Steps 3-4: ``Z_r alpha``, ``alpha = (K + lam I)^{-1} k_t``."""
    k = x_sources @ x_sources.T
    alpha = np.linalg.solve(k + lam * np.eye(len(k)), x_sources @ x_target)
    return zr @ alpha


def _average_ranks(v: np.ndarray) -> np.ndarray:
    """scipy's ``rankdata(v, method="average")`` (the same algorithm; ranks are exact)."""
    order = np.argsort(v, kind="mergesort")
    sv = v[order]
    first = np.r_[True, sv[1:] != sv[:-1]]
    dense = np.cumsum(first)
    count = np.r_[np.flatnonzero(first), len(v)]
    ranks = np.empty(len(v))
    ranks[order] = 0.5 * (count[dense] + count[dense - 1] + 1)
    return ranks


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """``spearmanr(a, b)[0]`` over the pairs finite in both (0 if fewer than 3 or constant):
    scipy's statistic, ``corrcoef`` of the two rank vectors, without its p-value
    (tests/methods/test_baselines.py checks it bit for bit)."""
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return 0.0
    ranked = np.vstack((_average_ranks(a[ok]), _average_ranks(b[ok])))  # scipy's layout
    return float(np.corrcoef(ranked)[1, 0])


def select_hyperparameters(z: np.ndarray, x: np.ndarray, ranks: Sequence[int],
                           lams: Sequence[float], n_iter: int = 20) -> tuple[int, float, float]:
    """``(rank, lam, score)`` maximising the leave-one-source-out mean Spearman correlation.

    The z-scored remaining columns depend on the held-out source only and ``Z_r`` on it and
    the rank: both are computed once and reused over the grid."""
    n = z.shape[1]
    held_out = []  # per source j: the other sources and their z-scored columns
    for j in range(n):
        keep = [i for i in range(n) if i != j]
        held_out.append((keep, zscore_columns(z[:, keep])))
    best: tuple[float, int, float] | None = None
    for r in sorted(ranks):
        fills: dict[int, np.ndarray] = {}
        for lam in sorted(lams, reverse=True):
            rhos = []
            for j, (keep, zk) in enumerate(held_out):
                if j not in fills:
                    fills[j] = low_rank(zk, min(r, n - 1), n_iter)
                pred = combine(fills[j], x[keep], x[j], lam)
                rhos.append(_spearman(pred, z[:, j]))
            score = float(np.mean(rhos))
            if best is None or score > best[0] + 1e-12:
                best = (score, r, lam)
    assert best is not None
    return best[1], best[2], best[0]


class MatrixCompletion(Selector):
    """Low-rank accuracy table + kernel ridge from task text embeddings (``matrix-completion``)."""

    name = "matrix-completion"
    target_needs = "class names (task text embedding); no images, no labels"
    requires: tuple[str, ...] = ()
    citation = CITATION
    stochastic = False

    def __init__(self, rank: int | None = None, lam: float | None = None,
                 embedder: Any = "minilm", n_iter: int = 20) -> None:
        self.rank = rank
        self.lam = lam
        self.embedder = embedder
        self.n_iter = n_iter

    def _validate(self) -> None:
        if self.rank is not None and not (isinstance(self.rank, Integral) and self.rank >= 1):
            raise ValueError(f"rank must be an integer >= 1 or None, got {self.rank!r}")
        if self.lam is not None and not (isinstance(self.lam, Real) and self.lam > 0
                                         and np.isfinite(self.lam)):
            raise ValueError(f"lam must be a finite number > 0 or None, got {self.lam!r}")
        if not (isinstance(self.n_iter, Integral) and self.n_iter >= 1):
            raise ValueError(f"n_iter must be an integer >= 1, got {self.n_iter!r}")

    def fit(self, train: TrainView) -> MatrixCompletion:
        self._validate()
        acc = train.accuracy
        raw = acc.to_numpy(dtype=np.float64)
        self.models_ = list(acc.index)
        self.source_ids_ = list(acc.columns)
        self.x_ = np.stack([prompt_task_embedding(d, self.embedder) for d in train.sources])
        n = raw.shape[1]
        ranks = RANKS if self.rank is None else (self.rank,)
        lams = LAMS if self.lam is None else (self.lam,)
        if len(ranks) * len(lams) > 1 and n >= 3:
            self.rank_, self.lam_, self.cv_spearman_ = select_hyperparameters(
                raw, self.x_, ranks, lams, self.n_iter)
        else:
            self.rank_, self.lam_, self.cv_spearman_ = ranks[0], float(lams[0]), float("nan")
        self.rank_ = min(self.rank_, n)
        self.z_ = zscore_columns(raw)
        log.debug("matrix-completion: rank %s, lam %s (LOSO spearman %.3f)", self.rank_,
                  self.lam_, self.cv_spearman_)
        return self

    def score(self, target: TargetView) -> pd.Series:
        x_t = prompt_task_embedding(target.dataset, self.embedder)
        pred = predict_column(self.z_, self.x_, x_t, self.rank_, self.lam_, self.n_iter)
        s = pd.Series(pred, index=self.models_, dtype=float)
        return s.reindex(list(target.candidates)).fillna(0.0)
