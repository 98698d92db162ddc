"""The :class:`Selector` interface every method implements (scikit-learn estimator style).

- ``__init__`` only stores its keyword arguments, under the same names (no I/O, no checks);
- ``fit(train: TrainView) -> self`` learns from the source datasets; learned state ends in ``_``;
- ``score(target: TargetView) -> pd.Series``: one finite score per candidate model of the
  target (index = ``target.candidates``), higher = better;
- class attributes: ``name``, ``requires`` (feature kinds the harness must provide),
  ``citation``, ``stochastic`` (True when scores depend on the seed), ``target_needs`` (what
  selecting costs on the target: which of its class names, unlabeled images, labels and model
  forward passes the method uses; shown on the leaderboard's cost column).

A complete method::

    class BiggestImageNet(Selector):
        name = "inb-copy"
        def score(self, target):
            return target.imagenet.reindex(list(target.candidates))
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import pandas as pd

from benchmark.core.views import FeatureView, LeakageError, TargetView, TrainView

__all__ = ["Selector", "TrainView", "TargetView", "FeatureView", "LeakageError"]


class Selector:
    name: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    citation: ClassVar[str] = ""
    stochastic: ClassVar[bool] = False
    target_needs: ClassVar[str] = "not declared"

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters and their current values (sklearn's contract)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def fit(self, train: TrainView) -> Selector:
        return self

    def score(self, target: TargetView) -> pd.Series:
        raise NotImplementedError(f"{type(self).__name__} must implement score(target)")

    def predict(self, target: TargetView) -> pd.Series:
        """Optional second task (LOVM's ``model_pred``): each candidate's predicted top-1
        accuracy on the target, raw (a fraction in [0, 1], not centred), indexed like
        ``score``. Methods that predict no value leave it unimplemented
        (:meth:`predicts_values` is then False); ``benchmark performance-prediction``
        reports the L1 of those that do."""
        raise NotImplementedError(f"{type(self).__name__} predicts no accuracy value")

    @classmethod
    def predicts_values(cls) -> bool:
        return cls.predict is not Selector.predict

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
