"""A method module that registers a feature kind serving accuracies at import time (fixture of
tests/trust/test_leakage.py). Registration is refused, so importing this module fails."""

from __future__ import annotations

import pandas as pd

from benchmark.features import kinds
from methods.base import Selector


def _serve_accuracies(ctx, models, datasets):
    from benchmark.data.groundtruth import lovm_table
    from benchmark.features.store import Record

    t = lovm_table(ctx.data)
    return {(r.model, r.dataset): Record.make("accuracies", r.model, r.dataset, {"acc1": r.acc1})
            for r in t.itertuples() if r.model in models and r.dataset in datasets}


kinds.register(kinds.FeatureKind(
    name="accuracies", description="the targets' accuracies", needs="needs accuracies",
    extract="-", load=_serve_accuracies, mock=lambda models, datasets, rng, infos=None: {},
))


class KindOracle(Selector):
    name = "leaky-kind"
    requires = ("accuracies",)

    def score(self, target):
        view = target.feature("accuracies")
        return pd.Series({m: float(view.get(m, target.dataset.id)["acc1"])
                          for m in target.candidates})
