r"""Nested leave-one-out parameter selection: any method with a grid, chosen on the sources only.

A sweep that reports the best grid point picks a value by looking at every target (the same
artefact as a feature subset chosen on the test targets). Here the choice is made **inside
each outer fold**, on that fold's sources alone::

    for each grid point p:
        inner(p) = mean over s in S of  metric( inner method(p) fitted on S - {s}, scored on s )
    p* = argmax_p inner(p)   (ties: the first point of the grid, in grid order)
    scores on the target t = the method with p* fitted on all of S, scored on t

``S`` = the outer fold's sources (the outer target ``t`` is never among them: it is not in
the TrainView the harness hands ``fit``), ``metric`` = ``sum@5`` by default (NDCG@k + tau@k,
clean variants; any of ``ndcg``, ``tau``, ``recall``, ``sum`` at any k), computed on ``s``'s
truth, which is a *source's* and part of the view. Inner targets with fewer than two
candidates are skipped. The chosen point of every fold is kept (``chosen_``) and written to
the run's provenance by the ``run`` command.

:func:`nested_class` makes the selector for one inner method (its ``requires`` and
``stochastic`` are the inner method's, so the harness hands it the same views); ``run --methods
dcd --grid dcd.beta=1,5,10 --select nested`` runs ``dcd+nested``. Cost: ``|grid| x |S|`` inner
folds per outer fold, plus one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import product
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from methods.base import FeatureView, Selector, TargetView, TrainView

SUFFIX = "+nested"
DEFAULT_METRIC = "sum@5"


def parse_metric(text: str) -> tuple[str, int]:
    name, _, k = str(text).partition("@")
    if name not in ("ndcg", "tau", "recall", "sum") or not k.isdigit() or int(k) < 1:
        raise ValueError(f"nested: metric must be ndcg|tau|recall|sum@k, got {text!r}")
    return name, int(k)


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination, in the order the grid lists its values (first parameter slowest)."""
    if not grid or any(len(v) == 0 for v in grid.values()):
        raise ValueError("nested: the grid needs at least one parameter with values")
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in product(*grid.values())]


class NestedSelection(Selector):
    """Base of :func:`nested_class`; ``inner``: the wrapped Selector class."""

    inner: ClassVar[type[Selector] | None] = None
    name = "nested"
    citation = "Nested leave-one-source-out parameter selection (this benchmark)."

    def __init__(self, grid: Mapping[str, Sequence[Any]] | None = None,
                 params: Mapping[str, Any] | None = None, metric: str = DEFAULT_METRIC) -> None:
        self.grid = grid
        self.params = params
        self.metric = metric

    # -- inner folds ----------------------------------------------------------------------
    @staticmethod
    def _restrict(fv: FeatureView, datasets: frozenset[str], part=None) -> FeatureView:
        recs = {k: (part(r) if part else r) for k, r in fv.records.items() if k[1] in datasets}
        return FeatureView(fv.kind, datasets, MappingProxyType(recs),
                           dense=None if part else fv.dense)

    def _inner_views(self, train: TrainView, s: str) -> tuple[TrainView, TargetView] | None:
        from benchmark.features.kinds import get_kind

        rest = tuple(d for d in train.sources if d.id != s)
        keep = frozenset(d.id for d in rest)
        inner_train = TrainView(
            protocol=train.protocol, seed=train.seed, imagenet=train.imagenet,
            features=MappingProxyType({k: self._restrict(v, keep)
                                       for k, v in train.features.items()}),
            sources=rest, models=train.models,
            ground_truth=train.ground_truth.restrict(datasets=list(keep)))
        acc = train.accuracy[s] if s in train.accuracy.columns else pd.Series(dtype=float)
        cands = [m for m in train.models if m in acc.index and np.isfinite(acc.get(m, np.nan))
                 and all(train.features[k].has(m, s) for k in self.inner.requires)]
        if len(cands) < 2:
            return None
        info = next(d for d in train.sources if d.id == s)
        feats = {k: self._restrict(v, frozenset([s]), get_kind(k).target_part or (lambda r: r))
                 for k, v in train.features.items()}
        inner_target = TargetView(protocol=train.protocol, seed=train.seed,
                                  imagenet=train.imagenet, features=MappingProxyType(feats),
                                  dataset=info, candidates=tuple(cands))
        return inner_train, inner_target

    def _make(self, point: Mapping[str, Any]) -> Selector:
        return self.inner(**{**dict(self.params or {}), **dict(point)})

    # -- Selector API ----------------------------------------------------------------------
    def fit(self, train: TrainView) -> NestedSelection:
        from benchmark.core.metrics import MetricConfig

        if self.inner is None:
            raise ValueError("nested: no inner method (use methods.nested.nested_class)")
        points = grid_points(dict(self.grid or {}))
        bad = sorted({p for pt in points for p in pt} - set(self.inner._param_names()))
        if bad:
            raise ValueError(f"nested: unknown parameter {bad[0]!r} of {self.inner.name}")
        metric, k = parse_metric(self.metric)
        cfg = MetricConfig(ks=(k,))
        folds = [(s, v) for s in train.source_ids if (v := self._inner_views(train, s))]
        if not folds:
            raise ValueError("nested: no source with two candidates to select parameters on")
        table = []
        for point in points:
            values = []
            for s, (tr, tv) in folds:
                sel = self._make(point)
                sel.fit(tr)
                scores = sel.score(tv).reindex(list(tv.candidates)).astype(float)
                truth = train.accuracy[s].reindex(scores.index).astype(float)
                got = {(m, kk): v for m, kk, v in cfg.evaluate(scores, truth)}
                values.append(got[(metric, k)])
            table.append(float(np.mean(values)))
        best = int(np.argmax(table))  # first of the best, in grid order
        self.inner_scores_ = table
        self.chosen_ = dict(points[best])
        self.selector_ = self._make(self.chosen_).fit(train)
        return self

    def score(self, target: TargetView) -> pd.Series:
        return self.selector_.score(target)


_CLASSES: dict[type, type] = {}


def nested_class(inner: type[Selector]) -> type[NestedSelection]:
    """The nested-selection selector of ``inner`` (one class per inner class, cached)."""
    if inner not in _CLASSES:
        name = f"{inner.name or inner.__name__}{SUFFIX}"
        _CLASSES[inner] = type(f"Nested{inner.__name__}", (NestedSelection,), {
            "inner": inner, "name": name, "requires": tuple(inner.requires),
            "stochastic": bool(inner.stochastic),
            "target_needs": getattr(inner, "target_needs", "not declared"),
            "__module__": __name__,
            "__doc__": f"{inner.__name__} with parameters chosen by nested leave-one-out."})
        globals()[_CLASSES[inner].__name__] = _CLASSES[inner]  # importable: module:Class
    return _CLASSES[inner]
