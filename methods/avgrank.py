"""AvgRank: rank models by their mean rank over the source datasets.

``score(m) = - mean_{s in sources with a cell for m} rank_s(m)`` where ``rank_s`` is the rank
among the models with a published cell on ``s`` (1 = best, ties averaged). A model with no
source cell at all gets the worst possible score (one past the largest rank).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from methods.base import Selector, TargetView, TrainView


class AverageRank(Selector):
    name = "avgrank"
    target_needs = "nothing (sources' ground truth only)"
    citation = "Average source rank baseline (LOVM, SWAB, DCD papers)."

    def fit(self, train: TrainView) -> AverageRank:
        ranks = train.ranks
        mean = ranks.mean(axis=1, skipna=True)
        worst = float(np.nanmax(ranks.to_numpy())) + 1 if ranks.notna().any().any() else 1.0
        self.mean_rank_ = mean.fillna(worst)
        # the value it predicts: the model's mean top-1 over the sources with a cell
        acc = train.accuracy
        self.mean_acc_ = acc.mean(axis=1, skipna=True)
        self.overall_acc_ = float(np.nanmean(acc.to_numpy(dtype=float))) if acc.size else 0.0
        return self

    def score(self, target: TargetView) -> pd.Series:
        return -self.mean_rank_.reindex(list(target.candidates)).astype(float)

    def predict(self, target: TargetView) -> pd.Series:
        """The model's mean top-1 over the sources (the mean of all source cells when the
        model has none)."""
        return self.mean_acc_.reindex(list(target.candidates)).fillna(self.overall_acc_) \
            .astype(float)
