r"""Semantic transfer: the DCD paper's "semantic proxy" of task similarity, used as a selector.

Fold with target ``t`` and sources ``S``. Each task ``d`` is embedded by averaging the unit text
embeddings of its class prompts ``"a photo of {c}."`` and renormalising::

    e(d) = u / ||u||,   u = mean_c  f("a photo of {c}.") / ||f(...)||

Distance ``D(s, t) = 1 - cos(e(s), e(t))`` (symmetric). The source weights and the predicted
rank are DCD's (:mod:`methods.dcd`, steps 5): softmin ``pi(s) = exp(-gamma (D(s) - min D)) /
sum(...)`` over the sources where the model has a rank, ``rhat_m = sum_s pi(s) r_m(s)``, score
``-rhat_m``; a model with no source rank is ranked last (``max rank + 1``, AvgRank's rule).

Two text encoders ``f`` (one registry entry each):

- ``semantic-transfer`` (:class:`SemanticTransfer`): a shared sentence embedder (``minilm`` by
  default), so every model gets the same source weights: runs on the published files alone.
- ``semantic-transfer-own`` (:class:`OwnTextSemanticTransfer`): each model's own text tower,
  as the DCD paper's proxy is model-specific. Task embedding of ``m`` on ``d`` = the mean of
  ``m``'s zero-shot weights ``text_weights`` of the ``class-stats`` record (prompts of the
  dataset's templates averaged per class, not the single ``"a photo of {c}."``: the pack holds
  only those), renormalised. Needs ``class-stats`` packs (``python -m benchmark extract
  class-stats``); a target sees only their text-derived arrays.

How it differs from ``swab-ot-text`` (:mod:`methods.swab.selectors`): that one compares
*classes* (optimal transport between the class-name embeddings of the sources and the target,
after dropping source classes below a similarity threshold) and weights each source by the mass
it transports; this one compares *whole tasks* by one mean embedding each, keeps every source
and turns distances into weights by DCD's softmin (``gamma``). Both transfer dataset-level
ranks. ``semantic-transfer`` is the same for every model; ``semantic-transfer-own`` is
model-specific, like DCD, which replaces the text proxy by conductance profiles of images.

Defaults: ``gamma = 10`` as DCD's (the same softmin, so the two differ only by the distance).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cache
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from benchmark.data.catalog import DatasetInfo
from methods.base import Selector, TargetView, TrainView
from methods.dcd import predict_rank, source_weights

log = logging.getLogger(__name__)

PROMPT = "a photo of {c}."
CLASS_KIND = "class-stats"
CITATION = ("Semantic proxy of task similarity compared against in 'Model-Specific Task Similarity "
            "for Vision-Language Model Selection via Layer Conductance' (DCD paper); our selector.")


def unit(x: np.ndarray) -> np.ndarray:
    """``x / max(||x||, 1e-12)`` along the last axis (float64)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def task_embedding(class_vectors: np.ndarray) -> np.ndarray:
    """Mean of the unit class vectors, renormalised (rows with NaN are ignored)."""
    v = unit(np.atleast_2d(class_vectors))
    v = v[np.isfinite(v).all(axis=1)]
    if not len(v):
        raise ValueError("no finite class vector to average")
    return unit(v.mean(axis=0))


def cosine_distances(sources: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``1 - cos`` between each row of ``sources`` and ``target`` (all unit vectors)."""
    return 1.0 - np.atleast_2d(sources) @ np.asarray(target)


def prompt_task_embedding(info: DatasetInfo, embedder: Any = "minilm") -> np.ndarray:
    """:func:`task_embedding` of ``info``'s prompts ``"a photo of {c}."`` (cached embeddings)."""
    if not info.classnames:
        raise ValueError(f"{info.id}: no class names to embed")
    return _prompt_embedding(embedder, info.id, tuple(info.classnames))


@cache  # pure: (embedder, dataset, class names) -> read-only vector
def _prompt_embedding(embedder: Any, dataset: str, classnames: tuple[str, ...]) -> np.ndarray:
    from benchmark.features.embedders import embed_texts

    texts = [PROMPT.format(c=c) for c in classnames]
    e = task_embedding(embed_texts(texts, embedder, label=f"semantic:{dataset}"))
    e.setflags(write=False)
    return e


def _check_gamma(gamma: Any) -> None:
    if not (isinstance(gamma, Real) and not isinstance(gamma, bool) and gamma >= 0):
        raise ValueError(f"gamma must be a number >= 0 (inf allowed), got {gamma!r}")


class _RankTransfer(Selector):
    """Softmin over per-model source distances -> weighted source ranks (DCD's step 5)."""

    stochastic = False
    citation = CITATION

    def _fit_ranks(self, train: TrainView) -> None:
        ranks = train.ranks
        self.ranks_ = ranks
        finite = ranks.to_numpy(float)
        self.fallback_rank_ = float(np.nanmax(finite)) + 1 if np.isfinite(finite).any() else 1.0

    def distances(self, target: TargetView, model: str) -> Mapping[str, float]:
        raise NotImplementedError

    def predicted_ranks(self, target: TargetView) -> pd.Series:
        out = {}
        for m in target.candidates:
            dist = self.distances(target, m)
            row = self.ranks_.loc[m] if m in self.ranks_.index else pd.Series(dtype=float)
            srcs = [s for s in dist if s in row.index and np.isfinite(row[s])]
            if not srcs:
                out[m] = self.fallback_rank_
                continue
            d = np.array([dist[s] for s in srcs])
            out[m] = predict_rank(source_weights(d, self.gamma), row[srcs].to_numpy(float))
        return pd.Series(out, dtype=float).reindex(list(target.candidates))

    def score(self, target: TargetView) -> pd.Series:
        return -self.predicted_ranks(target)


class SemanticTransfer(_RankTransfer):
    """Shared-embedder task similarity -> DCD softmin over source ranks (``semantic-transfer``)."""

    name = "semantic-transfer"
    target_needs = "class names (one shared text embedder); no images, no labels"
    requires: tuple[str, ...] = ()

    def __init__(self, embedder: Any = "minilm", gamma: float = 10.0) -> None:
        self.embedder = embedder
        self.gamma = gamma

    def fit(self, train: TrainView) -> SemanticTransfer:
        _check_gamma(self.gamma)
        self._fit_ranks(train)
        self.source_embeddings_ = {d.id: prompt_task_embedding(d, self.embedder)
                                   for d in train.sources}
        return self

    def distances(self, target: TargetView, model: str) -> Mapping[str, float]:
        e_t = prompt_task_embedding(target.dataset, self.embedder)  # memoised per dataset
        ids = list(self.source_embeddings_)
        d = cosine_distances(np.stack([self.source_embeddings_[s] for s in ids]), e_t)
        return dict(zip(ids, d.tolist(), strict=True))

    def explain(self, target: TargetView) -> pd.DataFrame:
        """Per source: distance and softmin weight (shared by every model)."""
        dist = self.distances(target, "")
        w = source_weights(np.array(list(dist.values())), self.gamma)
        return pd.DataFrame({"source": list(dist), "distance": list(dist.values()), "weight": w})


class OwnTextSemanticTransfer(_RankTransfer):
    """Each model's own text tower (``class-stats`` zero-shot weights): ``semantic-transfer-own``."""

    name = "semantic-transfer-own"
    target_needs = "class names (each model's own text tower); no images, no labels"
    requires = (CLASS_KIND,)

    def __init__(self, gamma: float = 10.0) -> None:
        self.gamma = gamma

    def fit(self, train: TrainView) -> OwnTextSemanticTransfer:
        _check_gamma(self.gamma)
        self._fit_ranks(train)
        view = train.feature(CLASS_KIND)
        self.source_embeddings_: dict[str, dict[str, np.ndarray]] = {}
        for s in train.source_ids:
            for m in view.models(s):
                self.source_embeddings_.setdefault(m, {})[s] = task_embedding(
                    view.get(m, s)["text_weights"])
        return self

    def distances(self, target: TargetView, model: str) -> Mapping[str, float]:
        view = target.feature(CLASS_KIND)
        src = self.source_embeddings_.get(model, {})
        if not src or not view.has(model, target.dataset.id):
            return {}
        e_t = task_embedding(view.get(model, target.dataset.id)["text_weights"])
        ids: Sequence[str] = list(src)
        d = cosine_distances(np.stack([src[s] for s in ids]), e_t)
        return dict(zip(ids, d.tolist(), strict=True))
