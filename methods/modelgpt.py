r"""ModelGPT (LOVM): rank models on a target by a regression on text-only features.

Zohar et al., "LOVM: Language-Only Vision Model Selection", NeurIPS 2023 D&B; the predictor is
``modelGPT/model_gpt_predictor.py::ModelGPTPredictor.predict_model_rank`` of ``orrzohar/LOVM``
(read, not copied). SWAB (Yi et al., NeurIPS 2024) uses the same regression as its "ranking 1".

Features of model ``m`` on dataset ``d`` (``x_{m,d}``; kind ``text-features``, see
:mod:`benchmark.features.text_features` and :mod:`benchmark.extract.text_features`), by group:

- ``C``: ``text-f1``, ``text-acc1`` (m's zero-shot classifier applied to LLM captions);
- ``G``: ``intraclass_sim``, ``inter_close``, ``intra_close``, ``superclass_metric``;
- ``INB``: ``IN-score`` = m's ImageNet-1k top-1, taken from ``view.imagenet`` (side
  information of the protocol), never from the CSV.

Fit, on the sources ``S`` of the fold only (rows = pairs with both features and accuracy)::

    y_{m,s} = acc1(m, s) - mean_{m' in R_s} acc1(m', s)      (centre per source dataset)
    (b_0, b) = argmin  sum_{s in S} sum_{m in R_s} (y_{m,s} - b_0 - b . x_{m,s})^2

``R_s`` = the models with a row on ``s``. Score on target ``t``: ``b_0 + b . x_{m,t}`` for every
candidate ``m`` (higher = better). Centring is LOVM's (``norm_acc1``): it removes each source's
difficulty so the regression explains differences *between models*; it cannot change the
ranking on the target, only the fit. LOVM scales nothing and uses sklearn's
``LinearRegression`` (its default; no grid search for it). Other regressors (LOVM: Lasso, GBR,
SVR, MLP; SWAB: Huber) are registered variants (``modelgpt-lasso``, ``-gbr``, ``-svr``,
``-mlp``: ``grid_search=True``, LOVM's ``PARAMETERS`` grids, tuned by cross-validation *over
source datasets* (``GroupKFold``) inside ``fit``; ``modelgpt-huber``: SWAB's settings); GBR
and MLP have ``random_state=0`` (LOVM's have none, so its numbers for them are not
reproducible run to run).

Performance prediction (LOVM's second task, ``loo_model_pred``): :meth:`ModelGPT.predict`
returns each candidate's raw top-1 from the same regression fitted on the sources' raw
(uncentred) accuracies; ``benchmark performance-prediction`` reports its L1
(:mod:`benchmark.studies.performance_prediction`).

Differences from LOVM's code (which evaluates the same regression):

- IN-score comes from the protocol's ImageNet-1k accuracies (``lovm``: LOVM's
  ``eval_table.csv``); LOVM's CSV holds a separate evaluation that differs by at most 2.6e-4.
- ImageNet-1k is never a target nor a source here; LOVM's ``DATASET_TO_REMOVE = []`` keeps it
  as both (the reproduction in ``tests/methods/test_modelgpt.py`` covers both settings).
- LOVM's ``_loo_prediction`` calls ``drop_duplicates()`` on each target's predictions, which
  would drop a model whose prediction equals another's; not reproduced (no such ties occur on
  LOVM's data).
- LOVM's grid search uses ``cv=10`` over rows; here folds are source datasets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from benchmark.features.text_features import FEATURE_COLUMNS, GROUPS, KIND
from methods.base import Selector, TargetView, TrainView

IN_SCORE = "IN-score"
#: Regressors by name -> (sklearn class path, default kwargs). "nn" is LOVM's name for MLP.
REGRESSORS: dict[str, tuple[str, dict[str, Any]]] = {
    "linear": ("sklearn.linear_model:LinearRegression", {}),
    "lasso": ("sklearn.linear_model:Lasso", {}),
    "ridge": ("sklearn.linear_model:Ridge", {}),
    "huber": ("sklearn.linear_model:HuberRegressor", {"epsilon": 1.5, "max_iter": 2000,
                                                      "alpha": 1e-4}),  # SWAB's settings
    "gbr": ("sklearn.ensemble:GradientBoostingRegressor", {"random_state": 0}),
    "svr": ("sklearn.svm:SVR", {}),
    "mlp": ("sklearn.neural_network:MLPRegressor", {"random_state": 0}),
}
#: LOVM's ``PARAMETERS`` grids (modelGPT/constants), used when ``grid_search=True``.
GRIDS: dict[str, dict[str, list]] = {
    "lasso": {"alpha": [0.01, 0.1, 1.0]},
    "gbr": {"loss": ["absolute_error", "huber", "quantile"], "alpha": [0.01, 0.1, 1.0]},
    "svr": {"kernel": ["poly", "rbf", "sigmoid"], "degree": [2, 4, 5]},
    "mlp": {"hidden_layer_sizes": [(100,), (10,), (5,)], "learning_rate_init": [0.001, 0.01, 0.1]},
}


def feature_columns(features: Sequence[str] | str) -> tuple[str, ...]:
    """Expand groups ("INB", "C", "G") and column names into an ordered, deduplicated tuple."""
    if isinstance(features, str):
        features = [f.strip() for f in features.split(",") if f.strip()]
    out: list[str] = []
    for f in features:
        if f == "INB":
            cols: tuple[str, ...] = (IN_SCORE,)
        elif f in GROUPS:
            cols = GROUPS[f]
        elif f in FEATURE_COLUMNS or f == IN_SCORE:
            cols = (f,)
        else:
            valid = ["INB", *GROUPS, *FEATURE_COLUMNS, IN_SCORE]
            raise ValueError(f"modelgpt: unknown feature {f!r} (valid: {', '.join(valid)})")
        out += [c for c in cols if c not in out]
    if not out:
        raise ValueError("modelgpt: no features selected")
    return tuple(out)


def make_regressor(name: str, params: dict[str, Any] | None = None):
    import importlib

    try:
        path, defaults = REGRESSORS[name]
    except KeyError:
        raise ValueError(
            f"modelgpt: unknown regressor {name!r} (valid: {', '.join(REGRESSORS)})"
        ) from None
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)(**{**defaults, **dict(params or {})})


class ModelGPT(Selector):
    """LOVM's ModelGPT. ``features``: groups/columns; ``regressor``: a key of ``REGRESSORS``."""

    name = "modelgpt"
    target_needs = "class names (text embeddings of each model); no images, no labels"
    requires = (KIND,)
    citation = "Zohar et al., LOVM: Language-Only Vision Model Selection, NeurIPS 2023 D&B."
    stochastic = False

    def __init__(
        self,
        features: Sequence[str] | str = ("INB", "C", "G"),
        regressor: str = "linear",
        regressor_params: dict[str, Any] | None = None,
        center_per_dataset: bool = True,
        standardize: bool = False,
        grid_search: bool = False,
    ) -> None:
        self.features = features
        self.regressor = regressor
        self.regressor_params = regressor_params
        self.center_per_dataset = center_per_dataset
        self.standardize = standardize
        self.grid_search = grid_search

    # -- rows -----------------------------------------------------------------------------
    def _needs_imagenet(self) -> bool:
        return IN_SCORE in self.columns_

    def _design(self, fv, models: list[str], dataset: str, imagenet: pd.Series) -> np.ndarray:
        """``[len(models), len(columns_)]`` feature rows of ``models`` on ``dataset``."""
        cols = []
        for c in self.columns_:
            if c == IN_SCORE:
                cols.append(imagenet.reindex(models).to_numpy(dtype=float))
            else:
                cols.append(fv.scalar_array(c, models, [dataset])[:, 0])
        return np.stack(cols, axis=1) if cols else np.zeros((len(models), 0))

    def training_table(self, train: TrainView, center: bool | None = None
                       ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """``(X, y, source of each row)`` over the (model, source) pairs usable for the fit;
        ``y`` centred per source when ``center`` (default: ``center_per_dataset``)."""
        center = self.center_per_dataset if center is None else center
        fv = train.feature(KIND)
        imagenet = train.imagenet.dropna().astype(float)
        acc = train.accuracy
        sources = list(train.source_ids)
        models = list(acc.index)
        feats = {c: fv.scalar_array(c, models, sources) for c in self.columns_ if c != IN_SCORE}
        inb = imagenet.reindex(models).to_numpy(dtype=float)
        a = acc.reindex(columns=sources).to_numpy(dtype=float)
        # a (model, source) pair needs an accuracy and a record (every record has every column)
        has = np.isfinite(a) & np.isfinite(fv.scalar_array(FEATURE_COLUMNS[0], models, sources))
        if self._needs_imagenet():
            has &= np.isfinite(inb)[:, None]
        # rows in the order (source, model): the sources in view order, models in zoo order
        keep = np.ascontiguousarray(has.T)
        counts = keep.sum(axis=1)
        if not counts.any():
            return np.zeros((0, len(self.columns_))), np.zeros(0), []
        src, mod = np.nonzero(keep)
        flat = mod * len(sources) + src  # positions in the models x sources arrays
        columns = np.empty((len(self.columns_), len(flat)))
        for i, c in enumerate(self.columns_):
            if c == IN_SCORE:
                inb.take(mod, out=columns[i])
            else:
                feats[c].take(flat, out=columns[i])
        X = np.ascontiguousarray(columns.T)
        y = a.take(flat)
        if center:  # the mean of each source's contiguous block of rows
            ends = np.cumsum(counts)
            for start, end in zip(ends - counts, ends, strict=True):
                if end > start:
                    block = y[start:end]
                    y[start:end] = block - block.mean()
        groups = np.repeat(np.asarray(sources, dtype=object), counts).tolist()
        return X, y, groups

    # -- Selector API -------------------------------------------------------------------------
    def fit(self, train: TrainView) -> ModelGPT:
        self.columns_ = feature_columns(self.features)
        X, y, groups = self.training_table(train)
        if len(y) == 0:
            raise ValueError(
                "modelgpt: no (model, source) pair has both text features and an accuracy"
            )
        self.estimator_, self.best_params_ = self._fit_estimator(X, y, groups)
        self.n_train_ = len(y)
        self._train = train  # the value regression (predict) is fitted on first use
        self.value_estimator_ = None
        return self

    def _fit_estimator(self, X, y, groups):
        estimator = make_regressor(self.regressor, self.regressor_params)
        if self.standardize:
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            estimator = make_pipeline(StandardScaler(), estimator)
        if self.grid_search and self.regressor in GRIDS and len(set(groups)) >= 2:
            from sklearn.model_selection import GridSearchCV, GroupKFold

            grid = GRIDS[self.regressor]
            if self.standardize:
                grid = {f"{estimator.steps[-1][0]}__{k}": v for k, v in grid.items()}
            search = GridSearchCV(
                estimator, grid, scoring="neg_mean_squared_error",
                cv=GroupKFold(n_splits=min(10, len(set(groups)))),
            )
            search.fit(X, y, groups=groups)
            return search.best_estimator_, dict(search.best_params_)
        estimator.fit(X, y)
        return estimator, None

    def score(self, target: TargetView) -> pd.Series:
        return self._apply(self.estimator_, target)

    def predict(self, target: TargetView) -> pd.Series:
        """Each candidate's top-1 on the target, as LOVM's ``loo_model_pred`` predicts it: the
        same regression fitted on the sources' RAW accuracies (no centring per source)."""
        if self.value_estimator_ is None:
            X, y, groups = self.training_table(self._train, center=False)
            self.value_estimator_, self.value_best_params_ = self._fit_estimator(X, y, groups)
        return self._apply(self.value_estimator_, target)

    def _apply(self, estimator, target: TargetView) -> pd.Series:
        fv = target.feature(KIND)
        cands = list(target.candidates)
        imagenet = target.imagenet.dropna().astype(float).to_dict()
        if self._needs_imagenet():
            missing = [m for m in cands if m not in imagenet]
            if missing:
                raise ValueError(
                    f"modelgpt: no ImageNet-1k accuracy (IN-score) for {missing[:3]}; use a "
                    f"variant without INB (e.g. modelgpt-noinb)"
                )
        if not cands:
            return pd.Series(dtype=float)
        X = self._design(fv, cands, target.dataset.id, target.imagenet.dropna().astype(float))
        if not np.all(np.isfinite(X)):
            bad = [m for m, row in zip(cands, X, strict=True) if not np.all(np.isfinite(row))]
            fv.get(bad[0], target.dataset.id)  # raises: no record for that candidate
        return pd.Series(estimator.predict(X).astype(float), index=cands)
