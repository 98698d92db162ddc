r"""DCD: Directional Conductance Divergence, the layer-conductance selector.

"Model-Specific Task Similarity for Vision-Language Model Selection via Layer Conductance";
our reconstruction, ``docs/methods/dcd.md``. Every choice is a constructor parameter.

Inputs per model ``m`` and task ``t``: per-image block-conductance vectors ``c_m(x)`` in
``R^{L_m}`` (feature kind ``conductance``; ``L_m`` differs between models), and the source
ranks ``r_m(s)`` (1 = best, ties averaged) from the :class:`TrainView`.

1. Task profile: ``phi_m(t) = mean_x c_m(x)`` over ``N`` images drawn without replacement,
   ``N = min(n_source_images, available)`` for a source and ``min(n_target_images, available)``
   for the target (``None`` = all images). The draw uses ``train.rng(m, s)`` for a source and
   ``target.rng(m)`` for the target: it is determined by (seed, model, dataset), identical in
   every fold where ``s`` is a source, independent of fold order.
2. Normalisation (``normalize``; the paper's equation is lost, ``"sum"`` is our default):
   ``sum``: ``p = phi / (sum_l phi_l + eps)``; ``max``: ``p = phi / (max_l phi_l + eps)``;
   ``zscore``: ``p = (phi - mean_l phi) / (std_l phi + eps)``.
3. Block importance of the target: ``w_m(t) = softmax(beta * p_m(t))``, the maximiser of
   ``<w, p> + H(w) / beta`` on the simplex (computed with log-sum-exp).
4. ``delta_l(s -> t) = |p_l(s) - p_l(t)| / (|p_l(t)| + eps)`` and
   ``DCD_m(s -> t) = sum_l w_l(t) delta_l(s -> t)``: asymmetric, 0 when ``p(s) = p(t)``.
   The spec writes ``p_l(t) + eps``; for ``sum``/``max`` profiles of non-negative
   conductance ``|p_l(t)| = p_l(t)``, so this is the spec's formula. ``zscore`` profiles can
   be negative, where ``p_l(t) + eps`` could vanish or flip the sign of a deviation; hence the
   absolute value (blocks with ``p_l(t)`` near 0 still dominate under ``zscore``: a property
   of relative deviations, not a bug).
5. Softmin over the sources: ``pi_m(s, t) = exp(-gamma (D(s) - min_s' D(s'))) / sum(...)``
   (log-sum-exp; ``gamma = 0``: uniform; ``gamma = inf``: uniform over the arg-min set).
   ``rhat_m(t) = sum_s pi_m(s, t) r_m(s)``; score = ``-rhat_m(t)`` (higher = better).
   A source is used for ``m`` only if ``m`` has both a rank and conductance on it; dropping a
   source and renormalising the weights is the softmin over the remaining sources (the shift
   by the minimum cancels). A model with no usable source is ranked last
   (``rhat = max source rank + 1``, AvgRank's convention).

Symmetric ablations (``similarity``; the paper's Table of ablations; same steps 1 and 5):

- ``"cosine"``: ``D = 1 - <phi(s), phi(t)> / (|phi(s)| |phi(t)| + eps)`` (cosine distance, so
  ``exp(-gamma (D - min D)) = exp(gamma (cos - max cos))``); ``beta``, ``normalize`` unused.
- ``"jsd"``: ``D = JSD(softmax(phi(s)), softmax(phi(t)))`` (natural log, in ``[0, ln 2]``),
  softmax of the raw profile as the spec says; ``beta``, ``normalize`` unused.

Defaults: ``beta = 2.5`` (the middle of the paper's 1.5..3.5 sweep) and ``gamma = 10`` are our
choices -- the paper's best setting is not legible in our copy; see ``benchmark sweep``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from numbers import Real

import numpy as np
import pandas as pd

from benchmark.features.store import FeaturePackError, Record
from methods.base import Selector, TargetView, TrainView

log = logging.getLogger(__name__)

KIND = "conductance"
NORMALIZATIONS = ("sum", "max", "zscore")
SIMILARITIES = ("dcd", "cosine", "jsd")


# -- pure functions (the math; tests hit these directly) -----------------------------------
def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, via log-sum-exp (no overflow for large inputs)."""
    return np.exp(_log_softmax(x))


def sample_images(values: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """``min(n, available)`` rows of ``values`` drawn without replacement (``None``: all rows)."""
    values = np.asarray(values, dtype=float)
    available = values.shape[0]
    if n is None or n >= available:
        return values
    idx = np.sort(rng.choice(available, size=int(n), replace=False))
    return values[idx]


def task_profile(values: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """``phi = mean over the sampled images of c(x)``: shape ``[L]``."""
    return sample_images(values, n, rng).mean(axis=0)


def normalize_profile(phi: np.ndarray, method: str = "sum", eps: float = 1e-8) -> np.ndarray:
    """``p`` from ``phi`` over the last axis: ``sum`` (default), ``max`` or ``zscore``."""
    phi = np.asarray(phi, dtype=float)
    if method == "sum":
        return phi / (phi.sum(axis=-1, keepdims=True) + eps)
    if method == "max":
        return phi / (phi.max(axis=-1, keepdims=True) + eps)
    if method == "zscore":
        mean = phi.mean(axis=-1, keepdims=True)
        return (phi - mean) / (phi.std(axis=-1, keepdims=True) + eps)
    raise ValueError(f"unknown normalize {method!r} (valid: {', '.join(NORMALIZATIONS)})")


def importance(p_target: np.ndarray, beta: float) -> np.ndarray:
    """Block importance ``w = softmax(beta * p)``."""
    return softmax(beta * np.asarray(p_target, dtype=float))


def dcd(p_source: np.ndarray, p_target: np.ndarray, beta: float, eps: float = 1e-8) -> np.ndarray:
    """``DCD(s -> t) = sum_l softmax(beta p(t))_l |p_l(s) - p_l(t)| / (|p_l(t)| + eps)``.

    ``p_source`` is ``[L]`` or ``[n_sources, L]``; returns a float or ``[n_sources]``.
    """
    p_s, p_t = np.asarray(p_source, dtype=float), np.asarray(p_target, dtype=float)
    if p_s.shape[-1] != p_t.shape[-1]:
        raise ValueError(f"profiles of different lengths: {p_s.shape[-1]} vs {p_t.shape[-1]}")
    delta = np.abs(p_s - p_t) / (np.abs(p_t) + eps)
    return delta @ importance(p_t, beta)


def cosine_distance(phi_source: np.ndarray, phi_target: np.ndarray, eps: float = 1e-8):
    """``1 - <phi(s), phi(t)> / (|phi(s)| |phi(t)| + eps)`` (rows of ``phi_source``)."""
    a, b = np.asarray(phi_source, dtype=float), np.asarray(phi_target, dtype=float)
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b)
    return 1.0 - (a @ b) / (norms + eps)


def jensen_shannon(phi_source: np.ndarray, phi_target: np.ndarray):
    """``JSD(softmax(phi(s)), softmax(phi(t)))`` in nats (rows of ``phi_source``)."""
    log_p, log_q = _log_softmax(phi_source), _log_softmax(phi_target)
    p, q = np.exp(log_p), np.exp(log_q)
    log_m = np.log(0.5 * (p + q))
    return 0.5 * np.sum(p * (log_p - log_m), axis=-1) + 0.5 * np.sum(q * (log_q - log_m), axis=-1)


def divergences(
    phi_sources: np.ndarray,
    phi_target: np.ndarray,
    similarity: str = "dcd",
    beta: float = 2.5,
    normalize: str = "sum",
    eps: float = 1e-8,
) -> np.ndarray:
    """``D(s -> t)`` for every row of ``phi_sources`` ``[n_sources, L]`` (lower = closer)."""
    if similarity == "dcd":
        p_s = normalize_profile(phi_sources, normalize, eps)
        p_t = normalize_profile(phi_target, normalize, eps)
        return np.atleast_1d(dcd(p_s, p_t, beta, eps))
    if similarity == "cosine":
        return np.atleast_1d(cosine_distance(phi_sources, phi_target, eps))
    if similarity == "jsd":
        return np.atleast_1d(jensen_shannon(phi_sources, phi_target))
    raise ValueError(f"unknown similarity {similarity!r} (valid: {', '.join(SIMILARITIES)})")


def source_weights(div: np.ndarray, gamma: float) -> np.ndarray:
    """Softmin ``pi(s) = exp(-gamma (D(s) - min D)) / sum(...)``; sums to 1.

    ``gamma = 0``: uniform. ``gamma = inf``: uniform over the sources attaining the minimum.
    """
    d = np.asarray(div, dtype=float)
    if d.ndim != 1 or d.size == 0:
        raise ValueError(f"need a non-empty vector of divergences, got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError("divergences must be finite (drop missing sources before weighting)")
    if np.isinf(gamma):
        nearest = (d == d.min()).astype(float)
        return nearest / nearest.sum()
    if gamma == 0:
        return np.full(d.size, 1.0 / d.size)
    return softmax(-gamma * (d - d.min()))


def predict_rank(weights: np.ndarray, ranks: np.ndarray) -> float:
    """``rhat = sum_s pi(s) r(s)`` over the sources with a rank; weights renormalised there."""
    w, r = np.asarray(weights, dtype=float), np.asarray(ranks, dtype=float)
    keep = np.isfinite(r)
    if not keep.any():
        return float("nan")
    w = w[keep]
    total = w.sum()
    if total <= 0:  # every weight on a dropped source underflowed: fall back to uniform
        return float(r[keep].mean())
    return float(w @ r[keep] / total)


def conductance_values(record: Record) -> np.ndarray:
    """The ``[n_images, L]`` per-image conductance array of a record, validated."""
    values = np.asarray(record["values"], dtype=float)
    if values.ndim != 2 or values.shape[0] < 1 or values.shape[1] < 1:
        raise FeaturePackError(
            f"conductance of {record.model} on {record.dataset} must be [n_images, n_blocks], "
            f"got shape {values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise FeaturePackError(f"non-finite conductance for {record.model} on {record.dataset}")
    return values


# -- the selector ------------------------------------------------------------------------
class DCDSelector(Selector):
    """Model-specific source weights from conductance profiles; weighted source ranks."""

    name = "dcd"
    target_needs = ("unlabeled target images: a forward + backward pass per image and "
                    "candidate (layer conductance); no labels")
    requires = (KIND,)
    citation = (
        "Model-Specific Task Similarity for Vision-Language Model Selection via Layer "
        "Conductance (DCD)."
    )
    stochastic = True  # which images are drawn depends on the seed

    def __init__(
        self,
        beta: float = 2.5,
        gamma: float = 10.0,
        n_source_images: int | None = 25,
        n_target_images: int | None = 25,
        normalize: str = "sum",
        similarity: str = "dcd",
        eps: float = 1e-8,
    ) -> None:
        self.beta = beta
        self.gamma = gamma
        self.n_source_images = n_source_images
        self.n_target_images = n_target_images
        self.normalize = normalize
        self.similarity = similarity
        self.eps = eps

    def _validate(self) -> None:
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"dcd: unknown similarity {self.similarity!r} "
                             f"(valid: {', '.join(SIMILARITIES)})")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"dcd: unknown normalize {self.normalize!r} "
                             f"(valid: {', '.join(NORMALIZATIONS)})")
        for name in ("beta", "gamma", "eps"):
            v = getattr(self, name)
            ok = isinstance(v, Real) and v >= 0 and (name == "gamma" or np.isfinite(v))
            if not ok:  # gamma = inf is allowed: all weight on the nearest source(s)
                raise ValueError(f"dcd: {name} must be a number >= 0, got {v!r}")
        for name in ("n_source_images", "n_target_images"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, Real) and v >= 1 and float(v).is_integer()):
                raise ValueError(f"dcd: {name} must be a positive integer or None, got {v!r}")

    @staticmethod
    def _n(v: int | float | None) -> int | None:
        return None if v is None else int(v)

    def fit(self, train: TrainView) -> DCDSelector:
        self._validate()
        cond = train.feature(KIND)
        ranks = train.ranks
        rank_of = {m: dict(zip(ranks.columns, row, strict=True))
                   for m, row in zip(ranks.index, ranks.to_numpy(float), strict=True)}
        n = self._n(self.n_source_images)
        sources: dict[str, tuple[str, ...]] = {}
        profiles: dict[str, np.ndarray] = {}
        source_ranks: dict[str, np.ndarray] = {}
        for m in train.models:
            used, phis, rs = [], [], []
            for s in train.source_ids:
                r = rank_of.get(m, {}).get(s, np.nan)
                if not np.isfinite(r) or not cond.has(m, s):
                    continue  # no rank or no conductance on s: s is dropped for m
                values = conductance_values(cond.get(m, s))
                if phis and values.shape[1] != phis[0].shape[0]:
                    raise FeaturePackError(
                        f"conductance of {m} has {values.shape[1]} blocks on {s} but "
                        f"{phis[0].shape[0]} on {used[0]}"
                    )
                used.append(s)
                phis.append(task_profile(values, n, train.rng(m, s)))
                rs.append(float(r))
            if used:
                sources[m] = tuple(used)
                profiles[m] = np.stack(phis)
                source_ranks[m] = np.asarray(rs)
        self.sources_: Mapping[str, tuple[str, ...]] = sources
        self.profiles_: Mapping[str, np.ndarray] = profiles
        self.source_ranks_: Mapping[str, np.ndarray] = source_ranks
        finite = ranks.to_numpy(float)
        finite = finite[np.isfinite(finite)]
        self.fallback_rank_ = float(finite.max()) + 1 if finite.size else 1.0
        return self

    def _target_profile(self, target: TargetView, model: str) -> np.ndarray:
        values = conductance_values(target.feature(KIND).get(model, target.dataset.id))
        phi = task_profile(values, self._n(self.n_target_images), target.rng(model))
        if model in self.profiles_ and self.profiles_[model].shape[1] != phi.shape[0]:
            raise FeaturePackError(
                f"conductance of {model} has {phi.shape[0]} blocks on {target.dataset.id} but "
                f"{self.profiles_[model].shape[1]} on its sources"
            )
        return phi

    def explain(self, target: TargetView) -> pd.DataFrame:
        """Per candidate and usable source: divergence, weight and source rank (long table)."""
        rows = []
        for m in target.candidates:
            phi_t = self._target_profile(target, m)
            if m not in self.profiles_:
                continue
            div = divergences(self.profiles_[m], phi_t, self.similarity, self.beta,
                              self.normalize, self.eps)
            w = source_weights(div, self.gamma)
            rows += [(m, s, d, wi, r) for s, d, wi, r in
                     zip(self.sources_[m], div, w, self.source_ranks_[m], strict=True)]
        return pd.DataFrame(rows, columns=["model", "source", "divergence", "weight", "rank"])

    def predicted_ranks(self, target: TargetView) -> pd.Series:
        """``rhat_m(t)`` per candidate (lower = better)."""
        out = {}
        for m in target.candidates:
            phi_t = self._target_profile(target, m)
            if m not in self.profiles_:
                log.info("dcd: %s has no usable source on %s; ranked last", m, target.dataset.id)
                out[m] = self.fallback_rank_
                continue
            div = divergences(self.profiles_[m], phi_t, self.similarity, self.beta,
                              self.normalize, self.eps)
            out[m] = predict_rank(source_weights(div, self.gamma), self.source_ranks_[m])
        return pd.Series(out, dtype=float).reindex(list(target.candidates))

    def score(self, target: TargetView) -> pd.Series:
        return -self.predicted_ranks(target)
