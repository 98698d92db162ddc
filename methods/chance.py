"""Random: seeded uniform scores, the lower bound every method must beat."""

from __future__ import annotations

import pandas as pd

from methods.base import Selector, TargetView


class RandomSelector(Selector):
    name = "random"
    target_needs = "nothing"
    citation = "Random ranking (lower bound)."
    stochastic = True

    def score(self, target: TargetView) -> pd.Series:
        rng = target.rng("random")
        return pd.Series(rng.random(len(target.candidates)), index=list(target.candidates))
